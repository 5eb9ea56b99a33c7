"""The combined detector, and the fast whole-file path that must equal feeding every line."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from kernbot.core import prefilter
from kernbot.core.detector import Detector, FinalRevisions, detect
from kernbot.core.event_id import stable_event_id
from kernbot.core.events import Event, OomKillEvent, SynFloodEvent
from kernbot.core.formats.reader import read_lines
from kernbot.core.prefilter import candidate_offsets, detect_bytes
from kernbot.core.record import Record

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
CORPUS_FILES = sorted(CORPUS.glob("*.txt"))
NOISE = (
    "e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
    'audit: type=1400 audit(1700000000.123:77): apparmor="DENIED" operation="open"',
    "docker0: port 1(veth3c1) entered forwarding state",
    "EXT4-fs (sda1): re-mounted. Opts: errors=remount-ro",
    " dump_stack+0x63/0x85",
    "Memory: 16318820K/16776684K available (12291K kernel code, 2534K rwdata)",
    "cgroup: fork rejected by pids controller in /system.slice/x.service",
)


def dump(events: list[Event]) -> list[str]:
    return [json.dumps(e.model_dump(mode="json"), sort_keys=True) for e in events]


def test_routes_both_kinds_and_attaches_advice_to_every_emission() -> None:
    text = (CORPUS / "oom-6.x-k8s-systemd-containerd-cgv2-memcg-grep.txt").read_text()
    syn = "[ 2994.000001] TCP: request_sock_TCP: Possible SYN flooding on port 80. Sending cookies."
    det = Detector(host="n1")
    emitted: list[Event] = []
    for rec in read_lines([*text.splitlines(), syn]):
        emitted += det.feed(rec)
    emitted += det.flush()
    assert {e.kind for e in emitted} == {"oom_kill", "syn_flood"}
    assert all(e.advice for e in emitted)
    assert all(e.host == "n1" for e in emitted)
    oom = [e for e in emitted if isinstance(e, OomKillEvent)]
    assert [e.revision for e in oom] == list(range(len(oom)))  # live: early, then updates


def test_detect_keeps_final_revision_in_order_of_first_appearance() -> None:
    syn_line = "[ 2993.700000] TCP: TCP: Possible SYN flooding on port 443. Sending cookies."
    text = (CORPUS / "oom-6.x-k8s-systemd-containerd-cgv2-memcg-grep.txt").read_text()
    lines = text.splitlines()
    lines.insert(8, syn_line)  # inside the OOM report, before its kill line
    events = detect(read_lines(lines))
    assert [e.kind for e in events] == ["syn_flood", "oom_kill"]
    oom = events[1]
    assert isinstance(oom, OomKillEvent)
    assert oom.revision > 0 and oom.group_kill  # the memory.oom.group update won


def test_wrapped_syn_line_is_pending_until_its_tail() -> None:
    det = Detector()
    head = Record(text="TCP: request_sock_TCP: Possible SYN flooding on port")
    assert det.feed(head) == [] and det.pending
    (ev,) = det.feed(Record(text="0.0.0.0:7070. Sending cookies."))
    assert isinstance(ev, SynFloodEvent) and (ev.addr, ev.port) == ("0.0.0.0", 7070)
    assert ev.lines == [head.text, "0.0.0.0:7070. Sending cookies."]
    assert not det.pending


def test_other_programs_lines_are_not_kernel_text() -> None:
    lines = [
        "Feb 25 21:35:48 srv sshd[12]: possible SYN flooding on port 22. Sending cookies.",
        "Feb 25 21:35:49 srv app[7]: Out of memory: Killed process 1 (init) total-vm:1kB, "
        "anon-rss:1kB, file-rss:0kB, shmem-rss:0kB",
    ]
    assert detect(read_lines(lines)) == []


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_fast_path_equals_every_line_on_each_corpus_file(path: Path) -> None:
    data = path.read_bytes()
    assert dump(detect_bytes(data)) == dump(detect_bytes(data, fast=False))


def mixed_log(seed: int, noise_lines: int) -> bytes:
    """Corpus files in random order, separated by random runs of noise (some indented)."""
    rng = random.Random(seed)
    files = CORPUS_FILES[:]
    rng.shuffle(files)
    out: list[str] = []
    usec = 1_000_000
    for path in files:
        for _ in range(rng.randrange(noise_lines)):
            usec += rng.randrange(1, 3_000_000)
            out.append(f"[{usec // 1_000_000:5d}.{usec % 1_000_000:06d}] {rng.choice(NOISE)}")
        out.extend(path.read_text().splitlines())
    return ("\n".join(out) + "\n").encode()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_path_equals_every_line_on_mixed_logs(seed: int) -> None:
    data = mixed_log(seed, 300)
    fast = detect_bytes(data, host="h")
    assert len(fast) > 40
    assert dump(fast) == dump(detect_bytes(data, host="h", fast=False))


def test_fast_path_equals_every_line_on_back_to_back_files() -> None:
    data = b"".join(p.read_bytes() for p in CORPUS_FILES)
    assert dump(detect_bytes(data)) == dump(detect_bytes(data, fast=False))


def test_keyword_inside_indented_continuation_lines() -> None:
    """dmesg indents a record's embedded lines; the head line carries the metadata."""
    lines = [
        "[  10.000000] noise",
        "[  20.000000] Out of memory: Killed process 42 (hog) total-vm:100kB, anon-rss:90kB, "
        "file-rss:0kB, shmem-rss:0kB",
        "              oom_reaper: reaped process 42 (hog), now anon-rss:0kB, file-rss:0kB, "
        "shmem-rss:0kB",
        "[  30.000000] more noise",
    ]
    data = ("\n".join(["[   1.000000] x"] * 50 + lines + ["[  40.000000] y"] * 50) + "\n").encode()
    fast, slow = detect_bytes(data), detect_bytes(data, fast=False)
    assert dump(fast) == dump(slow)
    (ev,) = fast
    assert isinstance(ev, OomKillEvent) and ev.reaper is not None and ev.mono_usec == 20_000_000


def test_pretty_dmesg_json_falls_back_to_every_line() -> None:
    doc = {
        "dmesg": [
            {"pri": 6, "time": 1.5, "msg": "noise"},
            {
                "pri": 6,
                "time": 2.5,
                "msg": "TCP: TCP: Possible SYN flooding on port 25. "
                "Sending cookies.  Check SNMP counters.",
            },
        ]
    }
    data = json.dumps(doc, indent=3).encode()
    (ev,) = detect_bytes(data)
    assert isinstance(ev, SynFloodEvent) and ev.port == 25 and ev.mono_usec == 2_500_000


def test_libc_and_python_searches_agree_across_chunk_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefilter, "CHUNK", 97)  # keywords straddle many chunk boundaries
    data = mixed_log(4, 30)
    expected = candidate_offsets(data, use_libc=False)
    assert expected and candidate_offsets(data) == expected
    assert candidate_offsets(b"") == [] and candidate_offsets(b"oom-kill:") == [0]


def test_gzip_is_the_callers_job_and_invalid_utf8_is_replaced() -> None:
    raw = b"[ 1.0] TCP: TCP: Possible SYN flooding on port 80. Sending cookies. \xff\xfe\n"
    (ev,) = detect_bytes(raw)
    assert ev.lines[0].endswith("\ufffd\ufffd")
    assert detect_bytes(gzip.compress(raw)) == []


def test_colliding_ids_stay_separate_events() -> None:
    """Year-less syslog without `[ts]`: two reports can hash alike; neither may be lost."""
    head = (
        "Jan  5 10:00:00 h kernel: app invoked oom-killer: gfp_mask=0xcc0(), order=0, "
        "oom_score_adj=0"
    )
    kill = (
        "Jan  5 10:00:00 h kernel: Out of memory: Killed process {pid} (app) total-vm:10kB, "
        "anon-rss:9kB, file-rss:0kB, shmem-rss:0kB"
    )
    lines = [head, kill.format(pid=1), head, kill.format(pid=2)]
    events = detect(read_lines(lines))
    pids = [e.victim.pid for e in events if isinstance(e, OomKillEvent)]
    assert pids == [1, 2]


def test_final_revisions_keep_the_latest_of_each() -> None:
    final = FinalRevisions()
    a0 = SynFloodEvent(id="x", port=1)
    b0 = SynFloodEvent(id="y", port=2)
    a1 = a0.model_copy(update={"revision": 1, "port": 3})
    stale = a0.model_copy(update={"revision": 1, "port": 4})
    final.add([a0, b0, a1])
    assert [(e.id, e.port) for e in final.events() if isinstance(e, SynFloodEvent)] == [
        ("x", 3),
        ("y", 2),
    ]
    final.add([a0.model_copy(update={"port": 9})])  # revision 0 again: a new event
    final.add([stale.model_copy(update={"revision": 2})])
    assert [(e.id, e.port) for e in final.events() if isinstance(e, SynFloodEvent)] == [
        ("x", 3),
        ("y", 2),
        ("x", 4),
    ]


def test_oom_and_syn_ids_share_one_recipe_and_hash_lone_surrogates() -> None:
    """Both detectors key an event by its first record; journal JSON can carry `\\ud800`."""
    comm = "a\ud800b"
    oom_first = Record(f"{comm} invoked oom-killer: gfp_mask=0xcc0(), order=0, oom_score_adj=0")
    kill = Record(
        f"Out of memory: Killed process 7 ({comm}) total-vm:10kB, anon-rss:9kB, file-rss:0kB, "
        "shmem-rss:0kB"
    )
    syn_first = Record(f"TCP: {comm}: Possible SYN flooding on port 80. Sending cookies.")
    (oom,) = detect([oom_first, kill], host="n1")
    (syn,) = detect([syn_first], host="n1")
    assert oom.id == stable_event_id(oom_first, "n1", None)
    assert syn.id == stable_event_id(syn_first, "n1", None)
    assert oom.id != syn.id and len(oom.id or "") == 16
    seq = Record("x", seq=42, lineno=3)
    assert stable_event_id(seq, "n1", "boot") == "boot:42"
    assert stable_event_id(seq, "n1", None) != stable_event_id(seq, "n2", None)


def _built_at_once(data: bytes, host: str | None = None) -> list[Event]:
    """What the agent's way gives: every revision built as it is emitted, the last one kept."""
    return detect(read_lines(data.decode().splitlines()), host=host)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_revisions_built_when_final_equal_revisions_built_at_once(path: Path) -> None:
    """`kernbot scan` builds each OOM event once, from the report, when no line can revise it
    (kernbot.core.deferred); the result must be the event the assembler would have built."""
    data = path.read_bytes()
    assert dump(detect_bytes(data, fast=False)) == dump(_built_at_once(data))


def test_revisions_built_late_on_mixed_and_back_to_back_logs() -> None:
    mixed = mixed_log(4, 300)
    assert dump(detect_bytes(mixed, host="h")) == dump(_built_at_once(mixed, host="h"))
    joined = b"".join(p.read_bytes() for p in CORPUS_FILES)
    assert dump(detect_bytes(joined)) == dump(_built_at_once(joined))


def test_revision_emitted_before_its_kill_line_is_built_at_once() -> None:
    """A reaper line for an open report without a kill line emits it early; the lines after it
    join the report without a new revision, so that revision must not be built late (from the
    report as it ends), and a `sharing same memory` line after a kill adds a line, no revision."""
    lines = [
        "[   10.000000] app invoked oom-killer: gfp_mask=0xcc0(), order=0, oom_score_adj=0",
        "[   10.000100] oom_reaper: reaped process 77 (app), now anon-rss:0kB, file-rss:0kB, "
        "shmem-rss:0kB",
        "[   10.000200] Tasks state (memory values in pages):",
        "[   10.000300] [  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents "
        "oom_score_adj name",
        "[   10.000400] [     77]     0    77    42446      630    98304        0             0 "
        "app",
        "[   12.000000] web invoked oom-killer: gfp_mask=0xcc0(), order=0, oom_score_adj=0",
        "[   12.000100] Out of memory: Killed process 80 (web) total-vm:10kB, anon-rss:9kB, "
        "file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0",
        "[   12.000200] Kill process 81 (web) sharing same memory",
    ]
    data = ("\n".join(lines) + "\n").encode()
    late = detect_bytes(data)
    assert [e.kind for e in late] == ["oom_kill", "oom_kill"]
    first, second = late
    assert isinstance(first, OomKillEvent) and isinstance(second, OomKillEvent)
    assert first.tasks == [] and first.reaper is not None  # as emitted on the reaper line
    assert len(second.lines) == 2  # the sharing line came after the last revision
    assert dump(late) == dump(_built_at_once(data))
