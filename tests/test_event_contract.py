"""The event contract: typed host context, the history flag, declared corner-case fields."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from kernbot.core.context import OomContext, SynContext
from kernbot.core.detector import detect
from kernbot.core.events import Event, OomKillEvent, SynFloodEvent
from kernbot.core.formats.reader import read_lines

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
EVENT: TypeAdapter[Event] = TypeAdapter(Event)


def test_history_flag_of_agents_before_the_typed_contract_still_counts() -> None:
    old = EVENT.validate_python({"kind": "oom_kill", "context": {"history": True}})
    assert old.history is True
    assert EVENT.validate_python({"kind": "syn_flood", "context": {}}).history is False
    assert OomKillEvent(history=True).model_dump(mode="json")["history"] is True


def test_context_is_typed_per_kind_and_round_trips() -> None:
    oom = OomKillEvent()
    oom.context = OomContext.model_validate(
        {
            "meminfo": {"MemTotal": 1024, "MemAvailable": 10, "Hugepagesize": 2048},
            "psi": {"some": {"avg10": 1.5, "total": 7}},
            "top_oom_score": [{"pid": 1, "comm": "init", "oom_score": 0}],
            "kills_24h": 3,
        }
    )
    again = EVENT.validate_json(oom.model_dump_json())
    assert isinstance(again, OomKillEvent) and again.context == oom.context
    assert again.context.meminfo is not None
    assert again.context.meminfo.model_dump()["Hugepagesize"] == 2048  # extra keys kept
    syn = SynFloodEvent(context=SynContext(verdict="attack", counter_rates={"X": 1.0}))
    assert EVENT.validate_json(syn.model_dump_json()).context == syn.context
    with pytest.raises(ValidationError):
        OomContext.model_validate({"kills_24h": "many"})


@pytest.mark.parametrize("path", sorted(CORPUS.glob("oom-*.txt")), ids=lambda p: p.name)
def test_scan_json_prints_only_declared_fields(path: Path) -> None:
    """Every field the parser sets is declared: `scan --json` has no undeclared extras."""
    for ev in detect(read_lines(path.read_text(errors="replace").splitlines())):
        assert not ev.model_extra, ev.model_extra
        for part in (ev.victim, ev.trigger, ev.memcg) if isinstance(ev, OomKillEvent) else ():
            assert part is None or not part.model_extra
