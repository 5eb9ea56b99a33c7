"""Enricher over the captured proc root and a kubelet-shaped pod log tree."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kernbot.agent.enrich import MAX_PER_KEY, SNAPSHOT_TTL_S, Enricher, pick_listener
from kernbot.agent.pods import PodResolver
from kernbot.agent.proc import ProcReader
from kernbot.core.advice import advise
from kernbot.core.context import OomContext
from kernbot.core.events import Memcg, OomKillEvent, SynFloodEvent, Victim
from kernbot.core.syn.episodes import COUNTERS
from kernbot.core.wire import Listener, ProcInfo

SNAPSHOT = Path(__file__).resolve().parents[1] / "fixtures" / "proc" / "snapshot"
UID = "0f1c2d3e-1111-2222-3333-444455556666"
CID = "3b8f5a1c9d2e4f60718293a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e"
TASK_PATH = f"/kubepods/burstable/pod{UID}/{CID}"
NOW = 1_750_000_000.0


@pytest.fixture
def pods(tmp_path: Path) -> PodResolver:
    pod_dir = tmp_path / "pods" / f"shop_web-7d9f_{UID}"
    for name in ("app", "sidecar"):
        (pod_dir / name).mkdir(parents=True)
        (pod_dir / name / "0.log").write_text("{}\n")
    (tmp_path / "containers").mkdir()
    (tmp_path / "containers" / f"web-7d9f_shop_app-{CID}.log").symlink_to(pod_dir / "app/0.log")
    return PodResolver(tmp_path / "pods")


def oom(event_id: str, task_path: str, time: str | None = None) -> OomKillEvent:
    return OomKillEvent(
        id=event_id,
        time=time,
        constraint="CONSTRAINT_MEMCG",
        victim=Victim(pid=4242, comm="<!channel>", anon_rss_kb=500_000, oom_score_adj=968),
        memcg=Memcg(oom_path=task_path, task_path=task_path, usage_kb=524288, limit_kb=524288),
    )


def test_oom_gets_host_context_and_pod_names(pods: PodResolver) -> None:
    enricher = Enricher(ProcReader(SNAPSHOT), pods, top_n=3, clock=lambda: NOW)
    original = oom("b:1", TASK_PATH)
    ev = enricher.enrich(original)
    assert isinstance(ev, OomKillEvent)
    assert original.context == OomContext() and original.kubernetes is None  # input untouched

    assert ev.kubernetes is not None
    assert (ev.kubernetes.pod_uid, ev.kubernetes.container_id) == (UID, CID)
    assert (ev.kubernetes.namespace, ev.kubernetes.pod, ev.kubernetes.container) == (
        "shop",
        "web-7d9f",
        "app",
    )
    assert ev.kubernetes.name_source == "pod-logs"
    assert ev.context.pod_source == "names from the kubelet's pod log directories"

    ctx = ev.context
    assert ctx.meminfo is not None and ctx.meminfo.MemTotal == 24683656
    assert ctx.psi is not None and ctx.psi.some is not None and ctx.psi.some.total == 2726
    assert ctx.oom_kill_total == 2
    assert ctx.sysctls["vm.panic_on_oom"] == 0
    assert ctx.kills_24h == 1
    top = ctx.top_oom_score
    assert top is not None
    assert [p.pid for p in top] == [4243, 4242, 19029]
    assert top[1].comm == "<!channel>"
    assert (top[1].namespace, top[1].pod, top[1].container) == ("shop", "web-7d9f", "app")
    assert top[0].pod is None  # 4243's pod has no log dir here: uid only
    assert top[0].pod_uid == "7a6b5c4d-0000-1111-2222-333344445555"
    assert not ev.advice, "advice is the pipeline's next stage, not enrichment"
    assert isinstance(top[0], ProcInfo)  # the same model /v1/oom sends


def test_kills_24h_counts_same_cgroup_once_per_event(pods: PodResolver) -> None:
    enricher = Enricher(ProcReader(SNAPSHOT), pods, clock=lambda: NOW)
    other = "/system.slice/mysqld.service"
    counts = [
        enricher.enrich(e).context.kills_24h
        for e in (
            oom("b:1", TASK_PATH),
            oom("b:1", TASK_PATH),  # the same event again (a later revision)
            oom("b:2", other),
            oom("b:3", TASK_PATH),
            oom("b:0", TASK_PATH, time="2020-01-01T00:00:00+00:00"),  # history, too old
        )
    ]
    assert counts == [1, 1, 1, 2, 2]


def test_syn_flood_gets_listener_counters_sysctls(pods: PodResolver) -> None:
    enricher = Enricher(ProcReader(SNAPSHOT), pods)
    ev = enricher.enrich(
        SynFloodEvent(
            port=33933,
            addr="192.0.2.2",
            proto="TCP",
            context={"counter_rates": {"SyncookiesSent": 300.0, "SyncookiesRecv": 0.0}},
        )
    )
    ctx = ev.context
    assert ctx.listener is not None
    assert ctx.listener.model_dump() == {
        "family": "ipv4",
        "addr": "192.0.2.2",
        "port": 33933,
        "pid": 19133,
        "comm": "python",
        "accept_queue": 0,
        "backlog": None,
        "syn_recv": 5,
    }
    assert ctx.counters["SyncookiesSent"] == 600
    assert set(ctx.counters) == set(COUNTERS)  # the seven SYN-related TcpExt counters
    assert ctx.sysctls["net.ipv4.tcp_syncookies"] == 1
    assert ctx.counter_rates["SyncookiesSent"] == 300.0  # what the tracker put there stays
    assert advise(ev)[0].title == "Rate-limit SYNs to port 33933 upstream"
    no_listener = enricher.enrich(SynFloodEvent(port=1))
    assert no_listener.context.listener is None


class BrokenProc(ProcReader):
    """A proc root whose reads fail the way a dying /proc mount does."""

    def meminfo(self) -> dict[str, int]:
        raise OSError(5, "Input/output error")

    def listeners(self) -> list[Listener]:
        raise PermissionError(13, "Permission denied")


def test_failed_reads_are_noted_and_the_event_still_goes_out(pods: PodResolver) -> None:
    enricher = Enricher(BrokenProc(SNAPSHOT), pods, clock=lambda: NOW)
    ev = enricher.enrich(oom("b:1", TASK_PATH))
    assert ev.context.meminfo is None
    assert ev.context.enrich_errors == ["meminfo: [Errno 5] Input/output error"]
    assert ev.context.psi  # the other reads still happened
    syn = enricher.enrich(SynFloodEvent(port=33933))
    assert syn.context.enrich_errors == ["listener: [Errno 13] Permission denied"]
    assert syn.context.counters["SyncookiesSent"] == 600


def test_pick_listener_prefers_exact_address_then_same_family_wildcard() -> None:
    v4_any = Listener(family="ipv4", addr="0.0.0.0", port=80)
    v6_any = Listener(family="ipv6", addr="::", port=80)
    v4_one = Listener(family="ipv4", addr="10.0.0.5", port=80)
    both = [v6_any, v4_one, v4_any]
    assert pick_listener(both, SynFloodEvent(port=80, addr="10.0.0.5")) is v4_one
    assert pick_listener(both, SynFloodEvent(port=80)) is v4_any
    assert pick_listener(both, SynFloodEvent(port=80, family="ipv6", addr="::")) is v6_any
    assert pick_listener([v6_any], SynFloodEvent(port=80, addr="0.0.0.0")) is v6_any
    assert pick_listener(both, SynFloodEvent(port=443)) is None


def test_kills_of_one_container_at_its_limit_say_how_often(pods: PodResolver) -> None:
    """Three kills 20 minutes apart at the same usage: the third says 'every ~20 min' and its
    first advice is about the pattern; history from before a restart counts too."""
    now = [NOW + 3600]
    enricher = Enricher(ProcReader(SNAPSHOT), pods, clock=lambda: now[0])
    stamps = ["2025-06-15T15:06:40+00:00", "2025-06-15T15:26:40+00:00"]
    enricher.remember([oom(f"k{i}", TASK_PATH, t) for i, t in enumerate(stamps)])
    third = enricher.enrich(oom("k2", TASK_PATH, "2025-06-15T15:46:40+00:00"))
    assert isinstance(third, OomKillEvent)
    again = third.context.recurrence
    assert again is not None
    assert again.kills == 3 and again.interval_s == 1200.0
    assert again.text.startswith("grows to its limit every ~20 min (3 kills at 512.0 MiB)")
    # advice comes after enrichment (the Advise stage): the pattern leads it
    assert advise(third)[0].title.startswith("It grows to its limit every ~20 min")
    other = enricher.enrich(oom("k3", "/kubepods/burstable/podffff/x", None))
    assert isinstance(other, OomKillEvent) and other.context.recurrence is None


class CountingProc(ProcReader):
    """The real reader over the captured proc root, counting the reads enrichment makes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.calls: dict[str, int] = {"top": 0, "meminfo": 0}

    def top_by_oom_score(self, n: int = 10) -> list[ProcInfo]:
        self.calls["top"] += 1
        return super().top_by_oom_score(n)

    def meminfo(self) -> dict[str, int]:
        self.calls["meminfo"] += 1
        return super().meminfo()


def test_proc_is_read_once_per_event_not_per_revision(pods: PodResolver) -> None:
    # Issue 11: a node in an OOM loop makes ~100 events/s, each revised as its lines arrive;
    # reading all of /proc per revision cost most of a core, and once per event still a tenth.
    proc = CountingProc(SNAPSHOT)
    now = [NOW]
    enricher = Enricher(proc, pods, top_n=3, clock=lambda: now[0])
    first = enricher.enrich(oom("b:1", TASK_PATH))
    again = enricher.enrich(oom("b:1", TASK_PATH).model_copy(update={"revision": 1}))
    assert proc.calls == {"top": 1, "meminfo": 1}
    assert again.context.meminfo == first.context.meminfo
    assert again.context.top_oom_score == first.context.top_oom_score
    assert again.context.kills_24h == first.context.kills_24h == 1
    assert first.context.top_oom_score is not None
    first.context.top_oom_score.clear()  # each event gets its own copy of the snapshot
    assert again.context.top_oom_score
    other = enricher.enrich(oom("b:2", TASK_PATH))
    assert proc.calls == {"top": 1, "meminfo": 1}, "another event within the second shares it"
    assert other.context.top_oom_score == again.context.top_oom_score
    assert other.context.meminfo == again.context.meminfo
    assert other.context.kills_24h == 2
    now[0] += SNAPSHOT_TTL_S
    later = enricher.enrich(oom("b:3", TASK_PATH))
    assert proc.calls["meminfo"] == 2, "a second later: read again"
    assert later.context.meminfo is not None
    assert enricher.enrich(oom("b:1", TASK_PATH)).context.meminfo == first.context.meminfo, (
        "a later revision keeps its event's own snapshot"
    )


def test_the_event_handed_in_is_not_changed(pods: PodResolver) -> None:
    ev = oom("b:1", TASK_PATH)
    before = ev.model_dump()
    out = Enricher(ProcReader(SNAPSHOT), pods, clock=lambda: NOW).enrich(ev)
    assert out.context.meminfo is not None and ev.context.meminfo is None
    assert ev.model_dump() == before


def test_recurrence_counts_the_newest_kills_of_each_cgroup(pods: PodResolver) -> None:
    """A cgroup killed in a loop: the pattern is measured over its newest MAX_PER_KEY kills,
    another cgroup's kills are kept apart, and a revision of a kill is not a second kill."""
    now = [NOW]
    enricher = Enricher(ProcReader(SNAPSHOT), pods, clock=lambda: now[0])
    for i in range(MAX_PER_KEY + 20):
        stamp = datetime.fromtimestamp(NOW - 1000 + i, UTC).isoformat()
        ev = enricher.enrich(oom(f"k{i}", TASK_PATH, stamp))
        again = enricher.enrich(oom(f"k{i}", TASK_PATH, stamp).model_copy(update={"revision": 1}))
    assert ev.context.recurrence is not None and again.context.recurrence is not None
    assert ev.context.recurrence.kills == again.context.recurrence.kills == MAX_PER_KEY
    assert ev.context.recurrence.interval_s == 1.0
    # the older kills were forgotten: the count is said as a lower bound
    assert f"({MAX_PER_KEY}+ kills" in ev.context.recurrence.text
    early = Enricher(ProcReader(SNAPSHOT), pods, clock=lambda: now[0])
    for i in range(5):
        stamp = datetime.fromtimestamp(NOW - 1000 + i, UTC).isoformat()
        few = early.enrich(oom(f"k{i}", TASK_PATH, stamp))
    assert few.context.recurrence is not None and "(5 kills" in few.context.recurrence.text
    other = enricher.enrich(oom("o1", "/kubepods/burstable/podffff/x", None))
    assert other.context.recurrence is None
