"""The agent's Prometheus metrics, in its own registry (never the process-global one), so that
`kernbot up` can run an agent and a bot in one process without name clashes."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.records_read = Counter(
            "kernbot_agent_records_read", "Kernel log records read", registry=r
        )
        self.records_lost = Counter(
            "kernbot_agent_records_lost",
            "Records the kernel ring buffer overwrote unread",
            registry=r,
        )
        self.records_garbled = Counter(
            "kernbot_agent_records_garbled", "Raw records that could not be parsed", registry=r
        )
        self.records_not_kernel = Counter(
            "kernbot_agent_records_not_kernel",
            "Records user space wrote to /dev/kmsg (facility not kern): never events",
            registry=r,
        )
        self.events = Counter("kernbot_agent_events", "Events detected", ["kind"], registry=r)
        self.events_shipped = Counter(
            "kernbot_agent_events_shipped", "Events the bot accepted", registry=r
        )
        self.ship_failures = Counter(
            "kernbot_agent_ship_failures", "Failed attempts to post events to the bot", registry=r
        )
        self.outbox_depth = Gauge(
            "kernbot_agent_outbox_depth", "Events waiting to ship", registry=r
        )
        self.outbox_dropped = Gauge(
            "kernbot_agent_outbox_dropped", "Events dropped because the outbox was full", registry=r
        )
        self.source_failures = Counter(
            "kernbot_agent_source_failures", "Times the log source failed while reading", registry=r
        )
        self.source_reopen_failures = Counter(
            "kernbot_agent_source_reopen_failures",
            "Failed attempts to reopen the log source after a failure",
            registry=r,
        )
        self.source_healthy = Gauge(
            "kernbot_agent_source_healthy", "1 when the log source is readable", registry=r
        )
        self.risk_cgroups = Gauge(
            "kernbot_agent_oom_risk_cgroups",
            "Memory cgroups with a limit the OOM-risk sampler watches",
            registry=r,
        )
        self.risk_open = Gauge(
            "kernbot_agent_oom_risk_open",
            "Open OOM-risk episodes (cgroups or the host)",
            registry=r,
        )

    def bind_risk(self, cgroups: Callable[[], int], open_episodes: Callable[[], int]) -> None:
        self.risk_cgroups.set_function(lambda: float(cgroups()))
        self.risk_open.set_function(lambda: float(open_episodes()))

    def bind_outbox(self, depth: Callable[[], int], dropped: Callable[[], int]) -> None:
        self.outbox_depth.set_function(lambda: float(depth()))
        self.outbox_dropped.set_function(lambda: float(dropped()))

    def render(self) -> bytes:
        return generate_latest(self.registry)
