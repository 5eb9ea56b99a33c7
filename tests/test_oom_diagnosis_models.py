"""The diagnosis against the reference: every fixture report and garbled copies of them.

Two things are checked on each report. The findings and accounting the diagnosis makes without
pydantic's validation (`events.validated`) are what validating the same values makes: equal
values of the same types all the way down, the same fields set, the same JSON, and no list or
dict shared between two of them. And the whole outcome (findings, gaps, accounting, Why line,
bar) is the reference's: `diagnosis_reference.json` holds a digest of each report's outcome as
the code before the second round of issue 11 (commit c780f06) computed it; the reports are made
again here from the fixtures and a seeded generator, so a change in any of them shows.
To rewrite the digests after a deliberate change of the diagnosis:
`python -c "import tests.test_oom_diagnosis_models as t; t.write_reference()"`.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from kernbot.core.detector import Detector, FinalRevisions
from kernbot.core.events import Finding, MemoryAccounting, OomKillEvent
from kernbot.core.formats.reader import LineReader
from kernbot.core.oom.diagnosis import attach_diagnosis
from kernbot.core.oom.why import accounting_bar, why_line

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = FIXTURES / "diagnosis_reference.json"
SEED = 7
GARBLED = 1_500
PIECES = [
    *("#012", "#011", "\n", "\r", " ", "\t", "\u00a0", ":", "=", "kB", "KB", "*", "1", "0", "٣"),
    *("a:1", "x", "Node 0 ", "free:", " swap", "RAM", "reserved", "pagecache", ": usage "),
    *("Memory cgroup stats for /a:", "Unreclaimable slab info", "Name Used Total", "anon "),
    *("file ", "shmem:", "(", "_", "CPU", "total_"),
]


def _read(path: Path) -> list[OomKillEvent]:
    det = Detector(advise=False, diagnose=False)
    reader = LineReader()
    final = FinalRevisions()
    with path.open(encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f):
            for rec in reader.feed(line.rstrip("\n"), n):
                final.add(det.feed(rec))
    for rec in reader.flush():
        final.add(det.feed(rec))
    final.add(det.flush())
    return [e for e in final.events() if isinstance(e, OomKillEvent)]


def _garbled(rng: random.Random, base: list[OomKillEvent], every: list[str]) -> OomKillEvent:
    """A copy of a report with lines garbled, cut, dropped, moved, joined or borrowed."""
    ev = rng.choice(base).model_copy(deep=True)
    lines = list(ev.lines)
    for _ in range(rng.randint(1, 6)):
        if not lines:
            break
        op, k = rng.random(), rng.randrange(len(lines))
        if op < 0.45:
            line = lines[k]
            i = rng.randint(0, len(line))
            j = rng.randint(i, min(len(line), i + 8))
            lines[k] = line[:i] + "".join(rng.choices(PIECES, k=rng.randint(0, 3))) + line[j:]
        elif op < 0.6:
            del lines[k : k + rng.randint(1, 20)]
        elif op < 0.7:
            lines = lines[:k]
        elif op < 0.8:
            lines.insert(k, rng.choice(every))
        elif op < 0.9:
            j = rng.randrange(len(lines))
            lines[k], lines[j] = lines[j], lines[k]
        else:
            lines[k] = lines[k] + "#012" + rng.choice(every)
    ev.lines = lines
    if rng.random() < 0.2 and ev.tasks:
        ev.tasks = rng.sample(ev.tasks, rng.randint(0, len(ev.tasks)))
    return ev


def reports() -> list[OomKillEvent]:
    """Every fixture's OOM reports, then `GARBLED` garbled copies (seeded), undiagnosed."""
    files = sorted(
        [
            *FIXTURES.glob("corpus/*"),
            *FIXTURES.glob("diagnosis/*.txt"),
            *FIXTURES.glob("exports/*"),
            *FIXTURES.glob("dmesg/*"),
        ]
    )
    base = [ev for path in files for ev in _read(path)]
    every = [line for ev in base for line in ev.lines]
    rng = random.Random(SEED)
    return base + [_garbled(rng, base, every) for _ in range(GARBLED)]


def outcome(ev: OomKillEvent) -> str:
    """What the diagnosis gives a report, as text: findings, gaps, accounting, Why, bar."""
    try:
        attach_diagnosis(ev)
    except Exception as exc:  # the reference's failures must stay the same failures
        return f"ERROR {type(exc).__name__}: {exc}"
    dumped = ev.model_dump_json(include={"diagnosis", "diagnosis_gaps", "accounting"})
    return f"{dumped} | {why_line(ev)} | {accounting_bar(ev)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_reference() -> None:
    digests = [_digest(outcome(ev)) for ev in reports()]
    REFERENCE.write_text(json.dumps({"seed": SEED, "garbled": GARBLED, "digests": digests}) + "\n")


def test_every_report_is_diagnosed_as_the_reference_did() -> None:
    ref = json.loads(REFERENCE.read_text())
    assert (ref["seed"], ref["garbled"]) == (SEED, GARBLED)
    evs = reports()
    assert len(evs) == len(ref["digests"]) > GARBLED + 50
    differ = [
        (i, ev.lines[:2]) for i, ev in enumerate(evs) if _digest(outcome(ev)) != ref["digests"][i]
    ]
    assert differ == []


def _same(a: Any, b: Any, path: str = "") -> None:
    """Equal and of the same types all the way down (1 == 1.0 == True would pass `==`)."""
    assert type(a) is type(b), (path, a, b)
    if isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{n}]")
    else:
        assert a == b, (path, a, b)


def _same_model(made: BaseModel, validated: BaseModel) -> None:
    assert type(made) is type(validated)
    _same(made.__dict__, validated.__dict__)
    assert made.model_fields_set == validated.model_fields_set
    assert made.__pydantic_extra__ == validated.__pydantic_extra__ == {}
    assert made.__pydantic_private__ is validated.__pydantic_private__ is None
    assert made.model_dump_json() == validated.model_dump_json()
    assert made.model_dump() == validated.model_dump()
    assert made == validated


def _containers(value: Any, out: list[Any]) -> None:
    """Every list, dict and set in `value`, itself included (kept, so no id is reused)."""
    if isinstance(value, dict | list | set):
        out.append(value)
        for v in value.values() if isinstance(value, dict) else value:
            _containers(v, out)


def test_findings_and_accounting_are_what_validation_makes() -> None:
    """On every report of the reference: each finding and the accounting equal the model
    validated from their values, and no two of them share a list or dict, nor with the
    diagnosis' own accounting (validation copies every container; an alias would let a change
    of one show in another)."""
    checked = 0
    for ev in reports():
        try:
            d = attach_diagnosis(ev)
        except Exception:  # a garbled report the diagnosis refuses: no model made
            continue
        held: list[Any] = []
        for f in ev.diagnosis:
            _same_model(f, Finding(cause=f.cause, summary=f.summary, evidence=f.evidence))
            _containers(f.__dict__, held)
            checked += 1
        acc = ev.accounting
        if acc is not None:
            fields = {k: getattr(acc, k) for k in MemoryAccounting.model_fields}
            _same_model(acc, MemoryAccounting(**fields))
            _containers(acc.__dict__, held)
            checked += 1
        _containers([ev.diagnosis, ev.diagnosis_gaps], held)
        if d.accounting is not None:
            own = d.accounting
            _containers([own.parts, own.sources, own.gaps, own.groups, own.nodes], held)
        assert len({id(x) for x in held}) == len(held)
    assert checked > 3_000
