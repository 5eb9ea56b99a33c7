"""Deciding what a newly stored event becomes in Slack: a new alert, a reply in an existing
alert's thread (storm control), part of a fleet-wide burst summary, or nothing (history, silence).

Runs inside the ingest transaction (see `kernbot.bot.ingest`), so the decision and the outbox
row it produces commit together: an agent retrying the same batch, or a second bot replica
receiving it, finds the event already stored and posts nothing twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Literal

from kernbot.bot.store import Repository
from kernbot.bot.store.models import AlertRow, EventRow
from kernbot.core.events import Event, OomKillEvent

Outcome = Literal["posted", "threaded", "burst", "history", "silenced", "updated", "duplicate"]
BURST_GROUP = "fleet"


@dataclass(frozen=True, slots=True)
class Route:
    """First matching route picks the channel; unset fields match everything."""

    channel: str
    host: str | None = None
    namespace: str | None = None
    kind: str | None = None

    def matches(self, event: Event) -> bool:
        if self.kind and self.kind != event.kind:
            return False
        if self.host and not fnmatchcase(event.host or "", self.host):
            return False
        if self.namespace:
            ns, _pod = pod_of(event)
            if ns is None or not fnmatchcase(ns, self.namespace):
                return False
        return True


def parse_routes(raw: list[dict[str, str]]) -> list[Route]:
    routes = []
    for i, item in enumerate(raw):
        unknown = set(item) - {"channel", "host", "namespace", "kind"}
        if "channel" not in item or unknown:
            raise ValueError(
                f"routes[{i}]: needs `channel`, may have host/namespace/kind: {item!r}"
            )
        routes.append(
            Route(item["channel"], item.get("host"), item.get("namespace"), item.get("kind"))
        )
    return routes


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    storm_window_s: float = 600.0
    fleet_burst_hosts: int = 5
    fleet_burst_window_s: float = 60.0
    default_channel: str | None = None
    routes: list[Route] = field(default_factory=list)

    def channel_for(self, event: Event) -> str | None:
        for route in self.routes:
            if route.matches(event):
                return route.channel
        return self.default_channel


def pod_of(event: Event) -> tuple[str | None, str | None]:
    if isinstance(event, OomKillEvent) and event.kubernetes:
        return event.kubernetes.namespace, event.kubernetes.pod
    return None, None


def subject_of(event: Event) -> str | None:
    if isinstance(event, OomKillEvent):
        return event.victim.comm
    return f"port {event.port}" if event.port is not None else None


def group_key(event: Event) -> str:
    """Storm control groups the same host and the same victim (pod if known, else comm) or port."""
    namespace, pod = pod_of(event)
    what = f"pod:{namespace}/{pod}" if pod else f"subject:{subject_of(event)}"
    return f"{event.kind}|{event.host}|{what}"


def event_key(event: Event) -> str:
    """Host plus the agent's idempotency id; a stable hash when the event carries no id."""
    ident = event.id
    if not ident:
        first = event.lines[0] if event.lines else ""
        raw = f"{event.kind}|{event.boot_id}|{event.seq}|{event.time}|{first}"
        ident = "h:" + hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return f"{event.host}/{ident}"


def silence_matches(target: str, event: Event) -> bool:
    """`host:NAME`, `pod:NAMESPACE/NAME` or a bare host name; shell globs allowed."""
    kind, sep, value = target.partition(":")
    if not sep:
        kind, value = "host", target
    if kind == "host":
        return fnmatchcase(event.host or "", value)
    if kind == "pod":
        namespace, pod = pod_of(event)
        return pod is not None and fnmatchcase(f"{namespace}/{pod}", value)
    return False


def is_history(event: Event) -> bool:
    return event.context.get("history") is True


class AlertDecider:
    def __init__(self, policy: AlertPolicy) -> None:
        self.policy = policy

    def ingest(self, repo: Repository, event: Event, now: float) -> Outcome:
        key = event_key(event)
        namespace, pod = pod_of(event)
        data = event.model_dump(mode="json")
        inserted = repo.insert_event(
            {
                "key": key,
                "kind": event.kind,
                "host": event.host or "",
                "revision": event.revision,
                "time": event.time,
                "received_at": now,
                "namespace": namespace,
                "pod": pod,
                "subject": (subject_of(event) or "")[:255] or None,
                "history": is_history(event),
                "alert_id": None,
                "data": data,
            }
        )
        row = repo.get_event(key, for_update=not inserted)
        assert row is not None
        if not inserted:
            return self._revise(repo, row, event, data, now)
        return self._decide(repo, row, event, now)

    def _revise(
        self, repo: Repository, row: EventRow, event: Event, data: dict[str, object], now: float
    ) -> Outcome:
        if event.revision <= row.revision:
            return "duplicate"
        row.revision = event.revision
        row.data = data
        row.time = event.time
        if row.alert_id is not None:
            alert = repo.get_alert(row.alert_id)
            if (
                alert is not None
                and alert.kind == "event"
                and alert.event_key == row.key
                and not repo.has_waiting(alert.id, ("post", "update"), now)
            ):
                repo.enqueue("update", now, alert_id=alert.id)
        return "updated"

    def _decide(self, repo: Repository, row: EventRow, event: Event, now: float) -> Outcome:
        if row.history:
            return "history"
        if any(silence_matches(s.target, event) for s in repo.active_silences(now)):
            return "silenced"
        policy = self.policy
        gkey = group_key(event)
        alert = repo.open_alert("event", gkey, now - policy.storm_window_s)
        if alert is not None:
            alert.count += 1
            alert.last_at = now
            row.alert_id = alert.id
            repo.enqueue("reply", now, alert_id=alert.id, event_key=row.key)
            if not repo.has_waiting(alert.id, ("post", "update"), now):
                repo.enqueue("update", now, alert_id=alert.id)
            return "threaded"
        burst = repo.open_alert("burst", BURST_GROUP, now - policy.fleet_burst_window_s)
        host = event.host or ""
        if burst is not None:
            burst.count += 1
            burst.last_at = now
            if host not in burst.hosts:
                burst.hosts = sorted({*burst.hosts, host})
            row.alert_id = burst.id
            if not repo.has_waiting(burst.id, ("post", "update"), now):
                repo.enqueue("update", now, alert_id=burst.id)
            return "burst"
        hosts = repo.alert_hosts_since(now - policy.fleet_burst_window_s) | {host}
        if len(hosts) >= policy.fleet_burst_hosts:
            burst = AlertRow(
                kind="burst",
                group_key=BURST_GROUP,
                host=None,
                channel=policy.default_channel,
                event_key=None,
                count=1,
                hosts=sorted(hosts),
                created_at=now,
                last_at=now,
            )
            repo.add(burst)
            row.alert_id = burst.id
            repo.enqueue("post", now, alert_id=burst.id)
            return "burst"
        alert = AlertRow(
            kind="event",
            group_key=gkey,
            host=host,
            channel=policy.channel_for(event),
            event_key=row.key,
            count=1,
            hosts=[host],
            created_at=now,
            last_at=now,
        )
        repo.add(alert)
        row.alert_id = alert.id
        repo.enqueue("post", now, alert_id=alert.id)
        return "posted"
