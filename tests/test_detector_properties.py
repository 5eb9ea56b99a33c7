"""Properties: the detector never raises on hostile or mangled text, and the fast whole-file path
gives exactly what feeding every line gives, whatever the lines are."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernbot.core.detector import Detector
from kernbot.core.events import Event
from kernbot.core.formats.reader import read_lines
from kernbot.core.prefilter import detect_bytes
from kernbot.core.record import Record

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
CORPUS_LINES = sorted(
    {line for p in CORPUS.glob("*.txt") for line in p.read_text().splitlines() if line}
)
HOSTILE = ["<!channel>", "*bold*", "runc:[2:INIT]", "a b/c", "\x1b[2J", "\u202e", "(", ")", "\\x0a"]

corpus_line = st.sampled_from(CORPUS_LINES)
edit = st.tuples(
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=8),
    st.one_of(st.text(max_size=6), st.sampled_from(HOSTILE), st.just("")),
)


@st.composite
def mutated_line(draw: st.DrawFn) -> str:
    line = draw(corpus_line)
    for where, cut, insert in draw(st.lists(edit, max_size=4)):
        pos = min(where, len(line))
        line = line[:pos] + insert + line[pos + cut :]
    return line


any_line = st.one_of(corpus_line, mutated_line(), st.text(max_size=120))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.lists(any_line, max_size=60), st.integers(min_value=-1, max_value=2**40))
def test_detector_never_raises(lines: list[str], mono: int) -> None:
    det = Detector(host="h", boot_id="b")
    for i, text in enumerate(lines):
        for ev in det.feed(Record(text=text, mono_usec=mono + i if mono >= 0 else None, seq=i)):
            assert ev.advice is not None
            ev.model_dump_json()
    det.flush()


@SETTINGS
@given(st.lists(any_line, max_size=60))
def test_reader_and_detector_never_raise_on_raw_lines(lines: list[str]) -> None:
    det = Detector()
    for rec in read_lines(lines):
        det.feed(rec)
    det.flush()


def dump(events: list[Event]) -> list[str]:
    return [json.dumps(e.model_dump(mode="json"), sort_keys=True) for e in events]


noise = st.sampled_from(
    [
        "[  12.000001] e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex",
        '[  13.000002] audit: type=1400 audit(1700000000.123:77): apparmor="DENIED"',
        "              indented continuation line",
        " KEY=value",
        "",
        "6,99,13000003,-;plain kmsg record",
    ]
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(noise, noise, corpus_line, mutated_line()), max_size=120))
def test_fast_path_equals_every_line(lines: list[str]) -> None:
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    assert dump(detect_bytes(data)) == dump(detect_bytes(data, fast=False))


def test_a_table_header_without_the_keyword_is_no_report_either_way() -> None:
    """Found by `test_fast_path_equals_every_line`: a mangled table header (`uid gid total_vm`)
    started a report when every line was fed, but the scan finds headers by `tgid total_vm` and
    skipped it. Every kernel prints `tgid total_vm`, so the parser asks for it too."""
    head = "[  pid  ]   uid{} total_vm      rss pgtables_bytes swapents oom_score_adj name"
    for cols, found in ((" gid", 0), ("  tgid", 1)):
        data = ("[   30.745824] " + head.format(cols)).encode()
        assert len(detect_bytes(data)) == len(detect_bytes(data, fast=False)) == found
