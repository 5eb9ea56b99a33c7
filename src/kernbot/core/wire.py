"""The agent <-> bot contract: request and response bodies of the HTTP APIs.

Agent and bot never import each other; they share only this module and `kernbot.core.events`.
Every body carries `version`; receivers validate with these models and reject what does not fit.
"""

from __future__ import annotations

import json

from pydantic import ConfigDict, Field, field_validator

from kernbot.core.bounds import HostName, Url, check_bounded
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
