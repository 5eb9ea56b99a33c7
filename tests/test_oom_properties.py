# ruff: noqa: E501  (real kernel lines and cgroup paths are longer than 100 characters)
"""Random and mutated report text never raises, and whatever comes out is a valid event."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kernbot.core.events import OomKillEvent
from kernbot.core.oom import lines as lines_mod
from kernbot.core.oom.lines import parse_any, parse_line
from kernbot.core.oom.report import OomAssembler
from kernbot.core.record import Record

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
SEED_LINES = [
    "x invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
    "CPU: 1 UID: 0 PID: 116 Comm: a b Not tainted 6.11.0 #15",
    "memory: usage 4194304kB, limit 9007199254740988kB, failcnt 1",
    "Task in /a killed as a result of limit of /b",
    "Tasks state (memory values in pages):",
    "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
    "[    111]     0   111      431      289    49152        0             0 sh",
    "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/a,task_memcg=/a/b,task=x,pid=1,uid=0",
    "Memory cgroup out of memory: Killed process 1 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:1kB oom_score_adj:0",
    "Out of memory: Kill process 1 (x) score 5 or sacrifice child",
    "oom_reaper: reaped process 1 (x), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
    "Tasks in /a are going to be killed due to memory.oom.group set",
    "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",
    "Node 0 DMA free:32kB boost:0kB min:20kB managed:15360kB",
    "2097022 pages RAM",
    "Total swap = 0kB",
]
CORPUS_LINES = sorted(
    {line for p in CORPUS.glob("oom-*.txt") for line in p.read_text(encoding="utf-8").splitlines()}
)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from(SEED_LINES + CORPUS_LINES[:400]))
    if not base:
        return draw(st.text(max_size=40))
    i = draw(st.integers(0, len(base)))
    j = draw(st.integers(i, min(len(base), i + 12)))
    junk = draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=12))
    return base[:i] + junk + base[j:]


lines_strategy = st.lists(st.one_of(mutated(), st.text(max_size=80)), max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines_strategy, st.booleans())
def test_random_and_mutated_text_never_raises(lines: list[str], with_meta: bool) -> None:
    asm = OomAssembler(host="h", boot_id="b" if with_meta else None)
    events: list[OomKillEvent] = []
    for n, text in enumerate(lines):
        parse_line(text)
        rec = Record(text=text, seq=n if with_meta else None, mono_usec=n * 1000)
        events += asm.feed(rec)
    events += asm.flush()
    assert not asm.pending
    for e in events:
        assert e.id
        assert len(e.lines) <= 400
        OomKillEvent.model_validate_json(e.model_dump_json())


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=0, max_size=20))
def test_any_comm_in_any_position_parses(comm: str) -> None:
    comm = comm.replace("\n", " ").replace("\r", " ")
    asm = OomAssembler()
    out: list[OomKillEvent] = []
    for t in SEED_LINES[:10]:
        out += asm.feed(
            Record(text=t.replace("(x)", f"({comm})").replace("task=x", f"task={comm}"))
        )
    out += asm.flush()
    assert out and out[0].victim.pid == 1


@settings(max_examples=400, deadline=None)
@given(st.one_of(mutated(), st.text(max_size=80)), st.text(max_size=3))
def test_the_first_character_test_only_skips_lines_no_parser_takes(line: str, lead: str) -> None:
    """`parse_line` returns None at once for a line that starts with none of the characters an
    anchored pattern needs and holds none of the pieces the others need; that must never skip a
    line the parsers take, whatever comes first (`lead`: blanks, a comm, a stray character)."""
    for text in (line, lead + line):
        bare = text.rstrip("\r\n")
        assert parse_line(text) == (parse_any(bare) if bare else None)


PLAIN_LINES = [  # the kinds a line with neither ':' nor '=' can be
    "Killed process 1 (a (b) c)",
    "Kill process 2 (x) sharing same memory",
    "kill process 3 (x) score 5 or sacrifice child",
    "Tasks in /a are going to be killed due to memory.oom.group set",
    "OOM victim 5 (x) is already exiting. Skip killing the task",
    "oom killer 1 (a) has mm pinned by 2 (b)",
    "Manual OOM execution",
    "Task in /a",
    "killed as a result of limit of /b",
    "Memory limit reached of cgroup /x",
    "[  pid  ]   uid  tgid total_vm      rss cpu oom_adj name",
    "2097022 pages RAM",
    "12 reserved pages",
]


def test_the_first_character_test_on_every_corpus_line() -> None:
    assert all(parse_line(line) is not None for line in PLAIN_LINES)
    for line in [*CORPUS_LINES, *PLAIN_LINES]:
        for text in (line, line.lstrip(), " " + line, "x" + line, "[" + line, "[ 1] " + line):
            assert parse_line(text) == (parse_any(text) if text else None), text


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(CORPUS_LINES + PLAIN_LINES + SEED_LINES), max_size=300))
@example(["[ pid ]   uid  tgid total_vm      rss nr_ptes nr_pmds swapents oom_score_adj name"])
def test_lines_seen_before_read_as_the_first_time(lines: list[str]) -> None:
    """`parse_line` remembers what it read from a line (`lines._SEEN`): the same text read
    again, and again after the memory was emptied (`SEEN_LINES`), gives an equal result, the
    very object for a text it remembers (a task table header is read before the memory is
    asked, so it is only equal), and what the parsers give."""
    for text in lines + lines[::-1]:
        found = parse_line(text)
        assert found == (parse_any(text) if text else None), text
        if found is not None:
            again = parse_line(text)
            assert again == found, text
            if text.rstrip("\r\n") in lines_mod._SEEN:
                assert again is found, text
    lines_mod._SEEN.clear()
    for text in lines:
        assert parse_line(text) == (parse_any(text) if text else None), text


def test_the_memory_of_lines_stays_bounded() -> None:
    for n in range(lines_mod.SEEN_LINES * 2 + 10):
        parse_line(f"memory: usage {n}kB, limit 1kB, failcnt {n}")
        assert len(lines_mod._SEEN) <= lines_mod.SEEN_LINES
    counter = parse_line("memory: usage 7kB, limit 9kB, failcnt 3")
    assert counter == parse_any("memory: usage 7kB, limit 9kB, failcnt 3")
    long = "memory: usage 7kB, limit 9kB, failcnt 3" + " " * lines_mod.SEEN_LINE_MAX
    assert parse_line(long) == parse_any(long)
    assert long not in lines_mod._SEEN


def test_a_garbled_report_still_gives_an_event_the_wire_takes() -> None:
    """A glued or garbled line can put 80 characters where a comm stands and a log file's line
    may be far longer than a kernel record: the kill is still a kill, its names and lines cut to
    what the bot accepts (an event the bot refuses would be dropped by the agent's shipper)."""
    garbage = "Dec  1 10:00:00 host kernel: " + "x" * 80
    lines = [
        garbage + " invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        "Mem-Info: " + "z" * 9000,
        "Out of memory: Killed process 1234 (" + "y" * 80 + ") total-vm:1000kB, anon-rss:100kB,"
        " file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:10kB oom_score_adj:0",
    ]
    asm = OomAssembler()
    events: list[OomKillEvent] = []
    for n, text in enumerate(lines):
        events += asm.feed(Record(text=text, mono_usec=n))
    events += asm.flush()
    (ev,) = events
    assert ev.killed and ev.victim.pid == 1234
    assert ev.victim.comm == "y" * 63 + "…"
    assert ev.trigger is not None and ev.trigger.comm == garbage[:63] + "…"
    assert [len(line) for line in ev.lines] == [len(lines[0]), 8192, len(lines[2])]
    back = OomKillEvent.model_validate_json(ev.model_dump_json())
    assert back.victim.comm == ev.victim.comm


KILL_TAILS = (
    " total-vm:{a}kB, anon-rss:{b}kB, file-rss:{c}kB, shmem-rss:{d}kB, UID:{e} pgtables:{f}kB"
    " oom_score_adj:{g}",
    " total-vm:{a}kB, anon-rss:{b}kB, file-rss:{c}kB, shmem-rss:{d}kB, UID:{e} pgtables:{f}kB"
    " oom_score_adj:{g}  ",
    " total-vm:{a}kB, anon-rss:{b}kB, file-rss:{c}kB, shmem-rss:{d}kB, UID:{e} pgtables:{f}kB"
    " oom_score_adj:{g} UID:{a}",
    " total-vm:{a}kB, anon-rss:{b}kB, file-rss:{c}kB, shmem-rss:{d}kB, pgtables:{f}kB",
    " total-vm:{a}kB, anon-rss:{b}kB, file-rss:{c}kB, shmem-rss:{d}kB",
    " total-vm:{a}kB, anon-rss:{b}kB, file-rss:{c}kB, shmem-rss:{d}kB, UID:{e}"
    " pgtables:{f}kB oom_score_adj:{g}, anon-rss:{a}kB",
    " vsz:{a}kB, anon-rss:{b}kB, file-rss:{c}kB",
    "",
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(KILL_TAILS),
    st.lists(st.integers(-1000, 2**40), min_size=7, max_size=7),
    st.sampled_from(["", "Out of memory: ", "Memory cgroup out of memory: "]),
    st.sampled_from(["", ", UID 0,"]),
    st.text(max_size=20),
)
def test_the_kill_lines_5x_tail_reads_as_every_tail_does(
    tail: str, numbers: list[int], msg: str, uid: str, comm: str
) -> None:
    """`_parse_killed` reads the 5.x tail in one match; every other tail the general way."""
    values = dict(
        zip(
            "abcdefg",
            (abs(n) if k != "g" else n for k, n in zip("abcdefg", numbers, strict=True)),
            strict=True,
        )
    )
    line = f"{msg}Killed process 42{uid} ({comm.replace(chr(10), ' ')}){tail.format(**values)}"
    m = lines_mod._KILLED.match(line)
    if m is None:
        return
    if tail == KILL_TAILS[0] and not uid:  # the fast path is taken
        assert lines_mod._KILLED_5X.fullmatch(m.group("rest"))
    assert lines_mod._parse_killed(m) == lines_mod.killed_general(m)
