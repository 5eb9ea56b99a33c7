"""The OOM event build (`kernbot.core.oom.event`) gives exactly the event of the reference build
(`oom_build_reference`: the code before issue 11 part 6, every model validated by pydantic), and
every model in it is what full validation makes of its values: on every state of every report of
the corpus, and on random reports fed back to back (the scoring cache shared across them)."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import oom_build_reference as ref
from kernbot.core.events import (
    ContainerOwner,
    Kubernetes,
    Memcg,
    OomKillEvent,
    Reaper,
    Task,
    Trigger,
    Victim,
    validated,
)
from kernbot.core.formats.reader import read_lines
from kernbot.core.oom import event as ev
from kernbot.core.oom.report import OomAssembler
from kernbot.core.oom.report_state import ReportState
from kernbot.core.record import Record

FIXTURES = Path(__file__).parent / "fixtures"
REPORTS = sorted(
    [*FIXTURES.glob("corpus/oom-*.txt"), *FIXTURES.glob("diagnosis/oom-*.txt")],
    key=lambda p: p.name,
)


def same_model(a: Any, b: Any, where: str = "event", *, fields_set: bool = False) -> None:
    """`a` and `b` hold the same values, recursively: type, `__dict__` (keys in order, and
    values), extra and private attributes of every model; lists item by item. `fields_set`:
    `model_fields_set` too, but a `Victim`'s (the old build assigned its fields one by one after
    making it, so its set said which branch it took; nothing reads it)."""
    assert type(a) is type(b), where
    if isinstance(a, BaseModel):
        assert list(a.__dict__) == list(b.__dict__), where
        assert a.__pydantic_extra__ == b.__pydantic_extra__, where
        assert a.__pydantic_private__ == b.__pydantic_private__, where
        if fields_set and not isinstance(a, Victim):
            assert a.model_fields_set == b.model_fields_set, where
        for name, value in a.__dict__.items():
            same_model(value, b.__dict__[name], f"{where}.{name}", fields_set=fields_set)
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same_model(x, y, f"{where}[{i}]", fields_set=fields_set)
    else:
        assert a == b, where


def check_state(r: ReportState, host: str | None, boot_id: str | None) -> None:
    lines = len(r.lines) - 1 if len(r.lines) > 1 else None  # a revision built later, too
    for n, revision in ((None, 0), (lines, 3)):
        new = ev.build_event(r, host=host, boot_id=boot_id, lines=n, revision=revision)
        old = ref.build_event(r, host=host, boot_id=boot_id, lines=n)
        if revision:
            old.revision = revision  # as DeferredOomEvent.build and the assembler did
        same_model(new, old, fields_set=True)
        assert new == old
        assert new.model_dump_json() == old.model_dump_json()
        # Every model is what full validation makes of its values (Python mode, as built).
        same_model(new, OomKillEvent.model_validate(new.model_dump()))
        # And the wire takes it (JSON mode: the bounds).
        OomKillEvent.model_validate_json(new.model_dump_json())


def feed_and_check(records: list[Record], host: str | None, boot_id: str | None) -> int:
    """Feeds the records and compares both builds on the open and the newest closed report
    each time what the build reads but lines changed (every report at the end); returns how
    many report states were compared."""
    asm = OomAssembler(host=host, boot_id=boot_id)
    checked = 0
    seen: dict[int, tuple[object, ...]] = {}
    for rec in records:
        asm.feed(rec)
        states = [*list(asm._recent)[-1:], *([asm._open] if asm._open is not None else [])]
        for r in states:
            if seen.get(id(r)) == (fingerprint := r.fingerprint()):
                continue
            seen[id(r)] = fingerprint
            check_state(r, host, boot_id)
            checked += 1
    asm.flush()
    for r in asm._recent:
        check_state(r, host, boot_id)
    return checked


@pytest.mark.parametrize("path", REPORTS, ids=lambda p: p.name)
def test_every_state_of_every_corpus_report_builds_as_before(path: Path) -> None:
    with path.open(encoding="utf-8", errors="replace") as fh:
        records = list(read_lines(fh))
    assert feed_and_check(records, host=None, boot_id=None) > 0
    assert feed_and_check(records, host="h", boot_id="b") > 0


TEMPLATE = (FIXTURES / "corpus" / "oom-proxmox-5.15-cgv2-lxc-docker-memcg.txt").read_text()
OLD_TEMPLATE = (FIXTURES / "corpus" / "oom-rhel7-3.10.0-514-global.txt").read_text()
THREE_X = (FIXTURES / "corpus" / "oom-3.2-rc3-global-oom_adj-era.txt").read_text()
NUMBER = re.compile(r"(?<![0-9a-fx.])[0-9]{1,9}(?![0-9.]*\])")


def mutate(text: str, rnd: random.Random) -> list[str]:
    """A report with some of its numbers replaced (pids, sizes, limits, adj, uid), lines
    dropped or repeated now and then, and some task names long or odd."""
    out = []
    for kept in text.splitlines():
        line = kept
        pick = rnd.random()
        if pick < 0.03:
            continue
        if pick < 0.3:
            line = NUMBER.sub(
                lambda m: str(rnd.choice([0, 1, 1000, rnd.randrange(10**9), int(m.group())])),
                line,
            )
        if pick > 0.97 and line.endswith(("sh", "bash", "systemd")):
            line += rnd.choice(["x" * 90, " two words", "\\x01\\x02"])
        out.append(line)
        if rnd.random() < 0.02:
            out.append(line)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.lists(st.sampled_from([0, 1, 2]), min_size=1, max_size=4))
def test_random_reports_back_to_back_build_as_before(seed: int, kinds: list[int]) -> None:
    rnd = random.Random(seed)
    text: list[str] = []
    for k in kinds:
        text += mutate((TEMPLATE, OLD_TEMPLATE, THREE_X)[k], rnd)
    records = list(read_lines(text))
    feed_and_check(records, host="h", boot_id=None)


def test_the_same_rows_on_another_scale_are_scored_again() -> None:
    """The scoring cache is per (era, totalpages, ...): the very same rows under another memcg
    limit get other scores, and equal the reference build's."""
    lines = TEMPLATE.splitlines()
    other = [
        line.replace("limit 31211520kB", "limit 1048576kB") if "memory: usage" in line else line
        for line in lines
    ]
    events = []
    for text in (lines, other, lines):
        asm = OomAssembler()
        out = [e for rec in read_lines(text) for e in asm.feed(rec)] + asm.flush()
        events.append(out[-1])
    scores = [[t.oom_score for t in e.tasks] for e in events]
    assert scores[0] == scores[2] != scores[1]
    asm = OomAssembler()
    for rec in read_lines(other):
        asm.feed(rec)
    check_state(asm._open or asm._recent[-1], None, None)


def test_validated_is_what_validation_gives() -> None:
    fields = {
        "pid": 1,
        "uid": None,
        "tgid": 1,
        "total_vm_kb": 4,
        "rss_kb": 8,
        "pgtables_kb": None,
        "swapents_kb": 0,
        "oom_score_adj": -1000,
        "name": "sh",
        "oom_score": 0,
    }
    made = validated(Task, dict(fields), set(fields))
    same_model(made, Task(**fields))
    assert made.model_fields_set == Task(**fields).model_fields_set
    made.name = "x"  # an ordinary model afterwards
    assert made.model_dump()["name"] == "x"
    # What `validated` assumes of every model the build makes with it.
    for cls in (Task, Victim, Trigger, Memcg, Reaper, OomKillEvent, Kubernetes, ContainerOwner):
        assert cls.model_config.get("extra") == "allow", cls
        assert not cls.__private_attributes__, cls
        assert not cls.__pydantic_post_init__, cls


def events_of(path: Path) -> list[OomKillEvent]:
    asm = OomAssembler()
    return [e for rec in read_lines(path.read_text().splitlines()) for e in asm.feed(rec)] + (
        asm.flush()
    )


def test_a_pods_names_filled_in_on_one_event_stay_off_the_next() -> None:
    """The cgroup owners are kept per path (`event._owners`); each event gets its own copy,
    since the agent fills a pod's names in on the event it ships."""
    k8s = FIXTURES / "corpus" / "oom-rhel8-4.18.0-147-k8s-systemd-docker-cgv1-memcg.txt"
    a, b = (next(e for e in events_of(k8s) if e.kubernetes is not None) for _ in "ab")
    assert a.kubernetes is not None and b.kubernetes is not None
    assert a.kubernetes is not b.kubernetes
    assert a.kubernetes == b.kubernetes
    a.kubernetes.namespace = "changed"
    assert b.kubernetes.namespace is None
    lxc = FIXTURES / "corpus" / "oom-proxmox-5.15-cgv2-lxc-docker-memcg.txt"
    c, d = (next(e for e in events_of(lxc) if e.container is not None) for _ in "ab")
    assert c.container is not None and d.container is not None
    assert c.container is not d.container
    assert c.container == d.container


def test_the_kept_owners_stay_small() -> None:
    """Paths past OWNER_PATHS_MAX (a garbled line) are worked out but not kept."""
    ev._kept_owners.cache_clear()
    long = "/kubepods/burstable/pod" + "0" * ev.OWNER_PATHS_MAX
    assert ev._owners(long, None) == ev._owners_of(long, None)
    short = "/lxc/101/ns/system.slice/nginx.service"
    assert ev._owners(short, "/lxc/101") == ev._owners_of(short, "/lxc/101")
    assert ev._kept_owners.cache_info().currsize == 1


def test_the_kept_task_fields_stay_bounded() -> None:
    from kernbot.core.oom.task_table import TaskRow

    r = ReportState(first=Record(text="x"))
    r.tasks = [TaskRow(n, 0, n, 4 * n, 4 * n, 0, 0, 0, f"t{n}") for n in range(ev.SCORED_ROWS + 5)]
    for totalpages in range(1000, 1000 + ev.SCORED_SCALES * 2):
        tasks = ev._scored_tasks(r, "5.9+", totalpages, True)
        assert len(tasks) == len(r.tasks)
        assert len(ev._SCORED) <= ev.SCORED_SCALES
        assert all(len(rows) <= ev.SCORED_ROWS for rows in ev._SCORED.values())
    same = ev._scored_tasks(r, "5.9+", totalpages, True)
    assert same == ref._scored_tasks(r, "5.9+", totalpages, True)
