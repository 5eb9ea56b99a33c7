"""Prometheus text for the bot's /metrics, built per scrape from live state (no global registry,
so several bots in one test process do not collide)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from kernbot.bot.delivery import DeliveryHealth


class _Snapshot:
    def __init__(
        self,
        outcomes: Mapping[str, int],
        health: DeliveryHealth,
        outbox: Mapping[str, int],
        refused: Mapping[str, int],
    ) -> None:
        self.outcomes, self.health, self.outbox = outcomes, health, outbox
        self.refused = refused

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "kernbot_bot_events", "Events received, by what became of them", labels=["outcome"]
        )
        for outcome, n in sorted(self.outcomes.items()):
            events.add_metric([outcome], n)
        yield events
        refused = CounterMetricFamily(
            "kernbot_bot_heartbeats_refused",
            "Heartbeats refused: advertise (URL not the agent's own), conflict (host name bound "
            "to another live agent)",
            labels=["reason"],
        )
        for reason in ("advertise", "conflict"):
            refused.add_metric([reason], self.refused.get(reason, 0))
        yield refused
        deliveries = CounterMetricFamily(
            "kernbot_bot_deliveries", "Notifier calls, by result", labels=["result"]
        )
        h = self.health
        for result, n in (("ok", h.delivered), ("retry", h.retried), ("failed", h.failed)):
            deliveries.add_metric([result], n)
        yield deliveries
        outbox = GaugeMetricFamily("kernbot_bot_outbox", "Outbox rows by status", labels=["status"])
        for status in ("pending", "sent", "failed"):
            outbox.add_metric([status], self.outbox.get(status, 0))
        yield outbox
        yield GaugeMetricFamily(
            "kernbot_bot_delivery_permanent_error",
            "1 while the notifier reports an error retrying cannot fix",
            value=1 if h.permanent_error else 0,
        )


def render_metrics(
    outcomes: Mapping[str, int],
    health: DeliveryHealth,
    outbox: Mapping[str, int],
    refused: Mapping[str, int] | None = None,
) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(outcomes, health, outbox, refused or {}))
    return generate_latest(registry)
