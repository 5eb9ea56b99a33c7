"""Every field of the event models is bounded on JSON input, and only there.

The bounds (kernbot.core.bounds) sit in the JSON branch of each field's schema: these tests fail
when a field that can carry a number, a string or a container is declared without `Bounded` (the
bot would then store what it used to refuse), and when a check starts running on models the
core builds in Python (a bad log line must never stop a scan).
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from kernbot.core import events
from kernbot.core.bounds import (
    COMM_MAX_CHARS,
    INT64_MAX,
    KMSG_RECORD_MAX,
    MAX_CONTAINER,
    WireOnly,
    bounded,
    clip_comm,
)

MODELS = sorted(
    (
        m
        for m in vars(events).values()
        if isinstance(m, type) and issubclass(m, events._Model) and m is not events._Model
    ),
    key=lambda m: m.__name__,
)
REQUIRED: dict[str, Any] = {"pid": 1, "kind": "container", "title": "t", "why": "w"}
REQUIRED |= {"cause": "c", "summary": "s", "scope": "memcg"}


def _bare(annotation: Any) -> Any:
    """The annotation without `None` (and the one type left, when only one is)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _too_big(annotation: Any) -> Any:
    """A JSON value of the field's type past its wire bound; None when the type has no bound
    of its own (bool, literals, models: their own fields are checked)."""
    bare = _bare(annotation)
    origin = typing.get_origin(bare)
    if bare is int:
        return INT64_MAX + 1
    if bare is float:
        return None  # JSON has no non-finite numbers
    if bare is str:
        return "x" * (KMSG_RECORD_MAX + 1)
    if origin is list:
        item = typing.get_args(bare)[0]
        one = "x" if item is str else 0 if item is int else {"pid": 1} | REQUIRED
        return [one] * (MAX_CONTAINER + 1)
    if origin is dict:
        value: Any = [] if typing.get_origin(typing.get_args(bare)[1]) is list else 0
        return {str(i): value for i in range(MAX_CONTAINER + 1)}
    return None


def _fields() -> list[tuple[type[BaseModel], str, Any]]:
    out: list[tuple[type[BaseModel], str, Any]] = []
    for model in MODELS:
        for name, info in model.model_fields.items():
            bad = _too_big(info.annotation)
            if bad is not None:
                out.append((model, name, bad))
    return out


FIELDS = _fields()
CHEAP = [(m, n, bad) for m, n, bad in FIELDS if not (isinstance(bad, list) and bad[0] == REQUIRED)]
"""A list of 100,001 models takes seconds to validate: those fields are checked by their
declaration (`test_every_field_with_a_bound_declares_it`)."""


def test_every_field_with_a_bound_declares_it() -> None:
    for model, name, _ in FIELDS:
        meta = model.model_fields[name].metadata
        checks = [m.check for m in meta if isinstance(m, WireOnly)]
        own = any(getattr(m, "le", None) == INT64_MAX for m in meta)  # Count: int64 already
        # a bounded string type (Comm, CgroupPath...) has its own, tighter, JSON-only check
        text = bool(checks) and _bare(model.model_fields[name].annotation) is str
        assert bounded in checks or text or own, f"{model.__name__}.{name} is not Bounded"


def test_the_models_have_fields_to_check() -> None:
    names = {(m.__name__, n) for m, n, _ in FIELDS}
    assert {("Task", "pid"), ("OomKillEvent", "lines"), ("Finding", "evidence")} <= names
    assert len(FIELDS) > 80


@pytest.mark.parametrize(
    ("model", "name", "bad"), CHEAP, ids=[f"{m.__name__}.{n}" for m, n, _ in CHEAP]
)
def test_each_field_is_refused_past_its_bound_as_json_only(
    model: type[BaseModel], name: str, bad: Any
) -> None:
    fields = model.model_fields
    body = {k: v for k, v in REQUIRED.items() if k in fields and fields[k].is_required()}
    body[name] = bad
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(json.dumps(body))
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [(name,)], caught.value
    assert errors[0]["type"] in ("value_error", "too_long", "less_than_equal"), caught.value
    if any(not isinstance(m, WireOnly) for m in fields[name].metadata):
        return  # a constraint of its own (revision >= 0, 400 lines) holds in Python too
    built = model.model_validate(body)  # built in Python: kept as it is
    kept = getattr(built, name)
    if any(isinstance(m, WireOnly) and m.python is clip_comm for m in fields[name].metadata):
        # a comm is cut to what the wire takes instead (`bounds.clip_comm`)
        assert kept == bad[: COMM_MAX_CHARS - 1] + "…"
        model.model_validate_json(built.model_dump_json())
        return
    assert len(kept) == len(bad) if isinstance(bad, list | dict) else kept == bad


def test_bounded_strings_and_extra_fields_are_json_only_too() -> None:
    big = {"pid": 1, "name": "n" * 65, "anything": 2**64}
    with pytest.raises(ValidationError) as caught:
        events.Task.model_validate_json(json.dumps(big))
    assert {"name"} <= {str(e["loc"][0]) for e in caught.value.errors() if e["loc"]}
    with pytest.raises(ValidationError, match="anything: integer outside the 64-bit range"):
        events.Task.model_validate_json(json.dumps(big | {"name": "ok"}))
    task = events.Task.model_validate(big)
    assert task.name == "n" * 63 + "…" and task.model_extra == {"anything": 2**64}
    assert events.OomKillEvent(host="not a host name", lines=["l" * 9000]).host == "not a host name"


def test_fit_to_wire_makes_sizes_and_ranges_fit_and_nothing_else() -> None:
    """The shipper's last resort (`wire.fit_to_wire`): each value the JSON wire refuses for its
    size or range is cut or clamped, the result validates; other faults are not mended."""
    from kernbot.core.wire import fit_to_wire

    ev = events.OomKillEvent(id="boot:1\x00", revision=0, host="h")
    body = json.loads(ev.model_dump_json())
    body["victim"] = {"pid": -(10**30), "comm": "c" * 70}
    body["lines"] = ["x"] * 500
    body["revision"] = -3
    fitted = fit_to_wire(json.dumps(body))
    assert fitted is not None
    back = events.OomKillEvent.model_validate_json(fitted)
    assert back.victim.pid == -(2**63) and back.victim.comm == "c" * 63 + "…"
    assert len(back.lines) == 400 and back.revision == 0 and back.id == "boot:1\ufffd"
    assert fit_to_wire(ev.model_copy(update={"id": "boot:1"}).model_dump_json()) is None  # fits
    assert fit_to_wire(json.dumps(body | {"victim": {"pid": "not a number"}})) is None
    assert fit_to_wire("not json") is None and fit_to_wire("[1]") is None
