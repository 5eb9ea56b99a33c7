# ruff: noqa: E501  (real kernel lines and cgroup paths are longer than 100 characters)
"""oom_badness() per era against the values the corpus verified (PROVENANCE.md section 4)."""

from __future__ import annotations

from kernbot.core.oom.lines import Killed, parse_line
from kernbot.core.oom.score import ERA_ANCIENT, ERA_NEW, ERA_OLD, oom_score
from kernbot.core.oom.task_table import TableLayout, parse_row


def test_6_11_stress_ng_proc_oom_score_1989() -> None:
    # rss 1995298 pages, pgtables_bytes 16052224, adj 1000, totalpages = sum(managed) = 2029656
    score = oom_score(
        era=ERA_NEW,
        rss_kb=1995298 * 4,
        pgtables_kb=16052224 // 1024,
        oom_score_adj=1000,
        totalpages=2029656,
    )
    assert score == 1989


def test_old_era_printed_scores() -> None:
    assert (
        oom_score(
            era=ERA_OLD,
            rss_kb=65119 * 4,
            pgtables_kb=577536 // 1024,
            oom_score_adj=968,
            totalpages=65536,
        )
        == 1955
    )
    assert (
        oom_score(era=ERA_OLD, rss_kb=134371 * 4, pgtables_kb=1466368 // 1024, totalpages=131072)
        == 1027
    )
    assert (
        oom_score(
            era=ERA_OLD,
            rss_kb=5157063 * 4,
            pgtables_kb=15483 * 4,
            swapents_kb=1527848 * 4,
            totalpages=8379834 - 192987 + 8388604 // 4,
        )
        == 651
    )


def test_adj_minus_1000_is_zero_and_unknown_era_or_scale_is_none() -> None:
    assert oom_score(era=ERA_NEW, rss_kb=10**6, oom_score_adj=-1000, totalpages=1000) == 0
    assert oom_score(era=ERA_OLD, rss_kb=10**6, oom_score_adj=-1000, totalpages=1000) == 0
    assert oom_score(era=ERA_ANCIENT, rss_kb=4, totalpages=1000) is None
    assert oom_score(era=ERA_NEW, rss_kb=4, totalpages=None) is None
    assert oom_score(era=None, rss_kb=4, totalpages=10) is None


def test_new_era_scale_is_0_to_2000_and_plain_process_near_666() -> None:
    assert oom_score(era=ERA_NEW, rss_kb=0, totalpages=1_000_000) == 666
    assert (
        oom_score(era=ERA_NEW, rss_kb=4_000_000, oom_score_adj=1000, totalpages=1_000_000) == 2000
    )
    assert oom_score(era=ERA_NEW, rss_kb=4, oom_score_adj=-999, totalpages=1_000_000) == 1


def test_old_era_negative_points_clamp_to_one_and_root_bonus() -> None:
    assert oom_score(era=ERA_OLD, rss_kb=400, oom_score_adj=-500, totalpages=100_000) == 0
    plain = oom_score(era=ERA_OLD, rss_kb=16193 * 4, totalpages=21850)
    bonus = oom_score(era=ERA_OLD, rss_kb=16193 * 4, totalpages=21850, root_bonus=True)
    assert (plain, bonus) == (741, 718)


def test_2_6_36_to_3_7_normalised_form() -> None:
    # 3.2: (rss + swap + ptes) * 1000 / totalpages - 30 (root) + adj, clamped 1..1000
    score = oom_score(
        era=ERA_OLD,
        rss_kb=(981936 + 124494 + 1900) * 4,
        totalpages=1136979,
        root_bonus=True,
        normalised_3x=True,
    )
    assert score == 944
    assert (
        oom_score(era=ERA_OLD, rss_kb=4, oom_score_adj=-900, totalpages=10, normalised_3x=True) == 1
    )


def test_table_layouts_map_columns_by_header_and_survive_wide_pids() -> None:
    hdr = parse_line(
        "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name"
    )
    assert hdr is not None
    layout = TableLayout(hdr.columns)  # type: ignore[union-attr]
    t = parse_row(
        layout, "[3902942]  1000 3902942  3685044  3195335 27021312        0             0 php-fpm"
    )
    assert t is not None and (t.pid, t.rss_kb, t.pgtables_kb, t.name) == (
        3902942,
        3195335 * 4,
        26388,
        "php-fpm",
    )
    pmds = TableLayout(
        (
            "uid",
            "tgid",
            "total_vm",
            "rss",
            "nr_ptes",
            "nr_pmds",
            "swapents",
            "oom_score_adj",
            "name",
        )
    )
    t2 = parse_row(
        pmds, "[  782]     0   782    26563    16153      40       0        0             0 oom"
    )
    assert t2 is not None and t2.pgtables_kb == 160 and pmds.style == "4.0-4.14"
    old = TableLayout(("uid", "tgid", "total_vm", "rss", "cpu", "oom_adj", "oom_score_adj", "name"))
    t3 = parse_row(old, "[ 4144]   497  4144 10443009  7862020   0       0             0 mysqld")
    assert t3 is not None and t3.oom_score_adj == 0 and t3.uid == 497 and t3.pgtables_kb is None
    assert parse_row(layout, "[<ffffffff8168863d>] dump_stack+0x19/0x1b") is None
    assert parse_row(layout, "[  12]  x") is None


def test_kill_line_forms() -> None:
    rhel6 = parse_line(
        "Killed process 11726, UID 498, (mysqld) total-vm:7823732kB, anon-rss:2539268kB, file-rss:768kB"
    )
    assert isinstance(rhel6, Killed) and (rhel6.uid, rhel6.comm, rhel6.file_rss_kb) == (
        498,
        "mysqld",
        768,
    )
    rhel7 = parse_line(
        "Killed process 799153 (node), UID 1000, total-vm:606096kB, anon-rss:68308kB, file-rss:13648kB, shmem-rss:0kB"
    )
    assert isinstance(rhel7, Killed) and (rhel7.uid, rhel7.comm) == (1000, "node")
    bare = parse_line("Killed process 12 (a (b) c)")
    assert isinstance(bare, Killed) and bare.comm == "a (b) c" and bare.total_vm_kb is None
