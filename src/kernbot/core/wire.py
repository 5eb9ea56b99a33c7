"""The agent <-> bot contract: request and response bodies of the HTTP APIs.

Agent and bot never import each other; they share only this module and `kernbot.core.events`.
Every body carries `version`; receivers validate with these models and reject what does not fit.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from kernbot.core.bounds import INT64_MAX, INT64_MIN, HostName, Url, check_bounded, clip
from kernbot.core.context import Listener, ProcInfo, Psi
from kernbot.core.events import (
    WIRE_VERSION,
    Event,
    OomKillEvent,
    OomRiskEvent,
    SynFloodEvent,
    _Model,
)

__all__ = [
    "MAX_BATCH",
    "AgentStatus",
    "DmesgResponse",
    "EventBatch",
    "EventBatchResult",
    "Heartbeat",
    "Listener",
    "OomResponse",
    "ProcInfo",
    "SynResponse",
    "TopResponse",
    "fit_to_wire",
    "newer_major",
]

MAX_BATCH = 500
"""Most events in one POST /v1/events."""


def newer_major(raw: bytes) -> int | None:
    """The body's `version` when it is a wire major this build does not know, else None.

    Checked before validation: a newer major may have changed what a field means, so its body is
    refused as a whole (HTTP 422 telling the operator to upgrade) rather than half understood.
    """
    try:
        head = json.loads(raw)
    except ValueError:
        return None
    version = head.get("version") if isinstance(head, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > WIRE_VERSION:
        return version
    return None


class _Wire(_Model):
    model_config = ConfigDict(extra="allow")
    _bounded = field_validator("*")(check_bounded)  # see kernbot.core.bounds
    version: int = WIRE_VERSION


class EventBatch(_Wire):
    host: HostName
    events: list[Event] = Field(max_length=MAX_BATCH)


class EventBatchResult(_Wire):
    accepted: int
    duplicates: int


class _AgentState(_Wire):
    """What an agent says about itself, in its heartbeat to the bot and on its /v1/status."""

    agent_version: str
    kernel: str | None = None
    boot_id: str | None = None
    uptime_s: float | None = None
    source: str
    source_healthy: bool = True
    source_error: str | None = None
    records_read: int = 0
    records_lost: int = 0
    outbox_depth: int = 0


class Heartbeat(_AgentState):
    host: HostName
    advertise_url: Url | None = None
    time: str | None = None


class AgentStatus(_AgentState):
    host: str
    records_garbled: int = 0
    events: dict[str, int] = Field(default_factory=dict)
    meminfo: dict[str, int] = Field(default_factory=dict)
    psi: Psi = Field(default_factory=Psi)
    risk_cgroups: int | None = None
    """Memory cgroups with a limit the OOM-risk sampler watches (None: sampling off)."""
    risks_open: int = 0


class OomResponse(_Wire):
    host: str
    events: list[OomKillEvent] = Field(default_factory=list)
    top: list[ProcInfo] = Field(default_factory=list)
    meminfo: dict[str, int] = Field(default_factory=dict)
    psi: Psi = Field(default_factory=Psi)
    risks: list[OomRiskEvent] = Field(default_factory=list)
    """Open OOM-risk episodes on the host now, worst first."""


class SynResponse(_Wire):
    host: str
    events: list[SynFloodEvent] = Field(default_factory=list)
    listeners: list[Listener] = Field(default_factory=list)
    counter_rates: dict[str, float] = Field(default_factory=dict)
    """TcpExt counters per second over the last sampling interval."""
    counters: dict[str, int] = Field(default_factory=dict)
    sysctls: dict[str, int] = Field(default_factory=dict)


class TopResponse(_Wire):
    host: str
    processes: list[ProcInfo] = Field(default_factory=list)


class DmesgResponse(_Wire):
    host: str
    lines: list[str] = Field(default_factory=list)
    truncated: bool = False


_EVENT = TypeAdapter(Event)
_LIMIT = re.compile(r"(?:at most|longer than) (\d+) characters")


def fit_to_wire(text: str) -> str | None:
    """The event JSON `text` with each value the wire refuses for its size or range made to fit
    (a string cut, with `…`, to its limit; an integer clamped to its range; a list cut to its
    length; a NUL replaced), or None when it cannot be made to fit (not JSON, not an event,
    some other fault) or fits already.

    The agent's last resort before it drops an event the bot refused: the core cuts what a
    garbled line can make too long when it builds an event (`bounds.clip_comm`, the lines), and
    this catches the rest (a 25-digit pid) so a kill is delivered rather than lost."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    for attempt in range(3):
        try:
            _EVENT.validate_json(json.dumps(body))
        except ValidationError as exc:
            if not all(_fit(body, err) for err in exc.errors()):
                return None
            continue
        return json.dumps(body) if attempt else None  # None: it fits already
    return None


def _fit(body: dict[str, Any], err: Any) -> bool:
    """Make the value `err` names fit; False when this error is not about size or range."""
    loc = list(err["loc"])
    if loc and loc[0] == body.get("kind"):
        loc = loc[1:]  # the union's tag
    if not loc:
        return False
    parent: Any = body
    try:
        for key in loc[:-1]:
            parent = parent[key]
        value = parent[loc[-1]]
    except (KeyError, IndexError, TypeError):
        return False
    fitted = _fitted(value, err)
    if fitted is None:
        return False
    parent[loc[-1]] = fitted
    return True


def _fitted(value: Any, err: Any) -> Any:
    """`value` made to fit what `err` says of it, or None."""
    ctx = err.get("ctx") or {}
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        low, high = ctx.get("ge", INT64_MIN), ctx.get("le", INT64_MAX)
        if not isinstance(low, int) or not isinstance(high, int):
            return None
        clamped = max(low, min(high, value))
        return clamped if clamped != value else None
    if isinstance(value, str):
        m = _LIMIT.search(str(err.get("msg", "")))
        fixed = value.replace("\x00", "\ufffd")
        if m is not None:
            fixed = clip(fixed, int(m.group(1)))
        return fixed if fixed != value else None
    if isinstance(value, list) and isinstance(ctx.get("max_length"), int):
        return value[: ctx["max_length"]]
    return None
