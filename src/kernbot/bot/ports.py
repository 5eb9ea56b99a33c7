"""The seams inside the bot: between its core (store, agents, grouping) and its Slack edge.

The core (`kernbot.bot.service`, store, scheduler) produces the data below; the Slack edge
(`kernbot.bot.slack_*`, `kernbot.bot.render`) renders it and calls back through `FleetQueries`.
Nothing here imports Slack, SQLAlchemy or aiohttp.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from kernbot.core.alert import AlertDocument
from kernbot.core.context import Listener, ProcInfo, Psi
from kernbot.core.events import Event, OomKillEvent, OomRiskEvent, SynFloodEvent
from kernbot.errors import KernbotError


class PostedRef(BaseModel):
    """Where a message landed: enough to update it or reply in its thread."""

    channel: str
    ts: str
    permalink: str | None = None
    """The message's Slack permalink (chat.getPermalink), for alerts that point at it."""


class Message(BaseModel):
    """A rendered message: `text` is the plain-text notification fallback."""

    text: str
    blocks: list[dict[str, Any]] = Field(default_factory=list)
    document: AlertDocument | None = None
    """What the blocks were rendered from: a terminal renders this, never the blocks."""


class DeliveryError(KernbotError):
    """A notifier could not deliver. `retry_after` (seconds) when the service said so;
    `permanent` for errors retrying cannot fix (invalid_auth, channel_not_found)."""

    def __init__(
        self, code: str, *, retry_after: float | None = None, permanent: bool = False
    ) -> None:
        super().__init__(code)
        self.code = code
        self.retry_after = retry_after
        self.permanent = permanent


class Notifier(Protocol):
    name: str

    async def post(
        self, channel: str | None, message: Message, thread: PostedRef | None = None
    ) -> PostedRef: ...

    async def update(self, ref: PostedRef, message: Message) -> None: ...


class AlertView(BaseModel):
    """One alert as the Slack edge renders it."""

    event: Event
    repeat_count: int = 1
    """How many events this alert groups (storm control); >1 after repeats."""
    kills_24h_host: int | None = None
    kills_24h_pod: int | None = None
    silenced_until: str | None = None
    related: PostedRef | None = None
    """The other alert of an OOM-risk warning and its kill (each names the other), if posted."""


class Notice(BaseModel):
    """Messages that are not an event: agent stale/back, fleet burst summary, daily digest."""

    kind: Literal[
        "agent_stale",
        "agent_back",
        "fleet_burst",
        "digest",
        "info",
        "silence",
        "unsilence",
        "storm",
    ]
    title: str
    lines: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)
    by: str | None = None
    """The Slack user who caused it (a silence), shown as a mention."""


class AgentInfo(BaseModel):
    host: str
    advertise_url: str | None = None
    agent_version: str | None = None
    kernel: str | None = None
    last_seen: str | None = None
    """ISO time of the last heartbeat."""
    stale: bool = False
    source: str | None = None
    source_healthy: bool = True
    records_lost: int = 0


class UnknownHost(KernbotError):
    """No agent by that name; `suggestions` are the close ones."""

    def __init__(self, host: str, suggestions: list[str], what: str = "host") -> None:
        super().__init__(f"no {what} named {host!r}")
        self.host = host
        self.suggestions = suggestions
        self.what = what
        """`host`, `pod` or `namespace`: what kind of name was not found."""


class HostAnswer(BaseModel):
    host: str
    agent_reachable: bool
    agent_error: str | None = None
    """Why the agent did not answer (timeout, refused, 401...), when it did not."""
    from_store: bool = False
    """True when the data comes from the bot's store because the agent did not answer."""


class OomHostAnswer(HostAnswer):
    events: list[OomKillEvent] = Field(default_factory=list)
    top: list[ProcInfo] = Field(default_factory=list)
    meminfo: dict[str, int] = Field(default_factory=dict)
    psi: Psi = Field(default_factory=Psi)
    risks: list[OomRiskEvent] = Field(default_factory=list)
    """Open OOM-risk episodes on the host now, worst first."""


class FleetRisks(BaseModel):
    """`/kernbot risks`: every open OOM-risk episode the live agents report, worst first."""

    risks: list[OomRiskEvent] = Field(default_factory=list)
    hosts_asked: int = 0
    unreachable: list[str] = Field(default_factory=list)


class SynHostAnswer(HostAnswer):
    events: list[SynFloodEvent] = Field(default_factory=list)
    listeners: list[Listener] = Field(default_factory=list)
    counter_rates: dict[str, float] = Field(default_factory=dict)
    sysctls: dict[str, int] = Field(default_factory=dict)


class TopAnswer(HostAnswer):
    processes: list[ProcInfo] = Field(default_factory=list)


class DmesgAnswer(HostAnswer):
    lines: list[str] = Field(default_factory=list)
    truncated: bool = False


class FleetRow(BaseModel):
    host: str
    namespace: str | None = None
    pod: str | None = None
    victim: str | None = None
    kills: int


class FleetSummary(BaseModel):
    since: str
    total_kills: int
    by_host: list[FleetRow] = Field(default_factory=list)
    repeat_offenders: list[FleetRow] = Field(default_factory=list)
    """Same host+pod/victim killed more than once in the window."""
    syn_floods: int = 0


class Silence(BaseModel):
    id: int | None = None
    target: str
    """`host:NAME`, `pod:NAMESPACE/NAME`, `namespace:NAME`, or a bare host name."""
    until: str
    by: str | None = None
    reason: str | None = None
    held_back: int | None = None
    """When it ended: alerts it kept out of the channel."""


class FleetQueries(Protocol):
    """What slash commands and buttons may ask; implemented by the bot core."""

    async def hosts(self) -> list[AgentInfo]: ...

    async def oom_host(self, host: str) -> OomHostAnswer: ...

    async def oom_fleet(self, since_s: float = 86400.0) -> FleetSummary: ...

    async def risks_fleet(self) -> FleetRisks: ...

    async def syn_host(self, host: str) -> SynHostAnswer: ...

    async def top(self, host: str, n: int = 10) -> TopAnswer: ...

    async def dmesg(self, host: str, grep: str | None, lines: int = 50) -> DmesgAnswer: ...

    async def silence(
        self, target: str, duration_s: float, by: str | None, reason: str | None = None
    ) -> Silence: ...

    async def silences(self) -> list[Silence]: ...

    async def unsilence(self, ref: str, by: str | None) -> list[Silence]: ...
