"""What the agent answers over HTTP (`AgentQueries`, kernbot.agent.api): status, the kills and
floods it saw (from the history), live /proc views, the recent kernel log and metrics.

Read-only over the agent's parts; no lifecycle here.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kernbot import __version__
from kernbot.agent.history import History, RecentLines
from kernbot.agent.metrics import AgentMetrics
from kernbot.agent.outbox import Outbox
from kernbot.agent.pipeline import Stats
from kernbot.agent.proc import ProcReader
from kernbot.agent.risk import RiskSampler
from kernbot.core.events import OomKillEvent, SynFloodEvent
from kernbot.core.syn.episodes import SynEpisodeTracker
from kernbot.core.wire import (
    AgentStatus,
    DmesgResponse,
    OomResponse,
    SynResponse,
    TopResponse,
)


class SourceState(Protocol):
    """What the status needs of the source follower (kernbot.agent.follow.SourceFollower)."""

    spec: str

    @property
    def healthy(self) -> bool: ...
    @property
    def error(self) -> str | None: ...


@dataclass
class HostQueries:
    host: str
    boot_id: str | None
    proc: ProcReader
    source: SourceState
    stats: Stats
    outbox: Outbox
    history: History
    recent: RecentLines
    metrics: AgentMetrics
    syn_tracker: SynEpisodeTracker
    uptime_s: Callable[[], float]
    queue_test_alert: Callable[[], str]
    """Queues an alert marked as a test (`kernbot doctor --test-alert`); returns its id."""
    risk: RiskSampler | None = None

    def status(self, light: bool = False) -> AgentStatus:
        return AgentStatus(
            host=self.host,
            agent_version=__version__,
            kernel=self.proc.kernel_release() or platform.release(),
            boot_id=self.boot_id,
            uptime_s=round(self.uptime_s(), 3),
            source=self.source.spec,
            source_healthy=self.source.healthy,
            source_error=self.source.error,
            records_read=self.stats.records_read,
            records_lost=self.stats.records_lost,
            records_garbled=self.stats.records_garbled,
            events=dict(self.stats.events),
            outbox_depth=self.outbox.depth(),
            meminfo={} if light else self.proc.meminfo(),
            psi={} if light else self.proc.psi_memory(),
            risk_cgroups=len(self.risk.reader.cgroups) if self.risk is not None else None,
            risks_open=len(self.risk.risks()) if self.risk is not None else 0,
        )

    def oom(self, since: float | None) -> OomResponse:
        events = [OomKillEvent.model_validate(b) for b in self.history.query("oom_kill", since)]
        return OomResponse(
            host=self.host,
            events=events,
            top=self.proc.top_by_oom_score(10),
            meminfo=self.proc.meminfo(),
            psi=self.proc.psi_memory(),
            risks=self.risk.risks() if self.risk is not None else [],
        )

    def syn(self, since: float | None) -> SynResponse:
        events = [SynFloodEvent.model_validate(b) for b in self.history.query("syn_flood", since)]
        return SynResponse(
            host=self.host,
            events=events,
            listeners=self.proc.listeners(),
            counter_rates=dict(self.syn_tracker.rates),
            counters=self.proc.tcpext(),
            sysctls=self.proc.net_sysctls(),
        )

    def top(self, n: int) -> TopResponse:
        return TopResponse(host=self.host, processes=self.proc.top_by_oom_score(n))

    def dmesg(self, grep: str | None, lines: int) -> DmesgResponse:
        out, more = self.recent.tail(lines, grep)
        return DmesgResponse(host=self.host, lines=out, truncated=more)

    def metrics_text(self) -> bytes:
        return self.metrics.render()

    def health_findings(self) -> list[str]:
        """What this agent may not read on this host (e.g. another netns without CAP_SYS_PTRACE)."""
        return list(self.proc.findings)

    def test_alert(self) -> str:
        alert_id: str = self.queue_test_alert()
        return alert_id
