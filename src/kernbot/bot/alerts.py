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
from typing import Any, Literal

from kernbot.bot.store import Repository
from kernbot.bot.store.json_text import model_json
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
    update_delay_s: float = 2.0
    """Re-renders of a parent wait this long, so a storm's many repeats become one chat.update."""
    max_thread_replies: int = 20
    """Past this many repeats a storm only bumps the parent's counter: a thread of thousands of
    identical replies helps nobody and would hit Slack's rate limits."""

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
    return event.history


class _Batch:
    """Per-transaction caches, so a batch of events costs a handful of queries, not a handful
    per event. Valid only inside the decide lock (see `Database.transaction(decide=True)`)."""

    def __init__(self, repo: Repository, policy: AlertPolicy, now: float) -> None:
        self.repo, self.policy, self.now = repo, policy, now
        self.outbox: list[dict[str, Any]] = []
        self._silences: list[str] | None = None
        self._open: dict[str, AlertRow | None] = {}
        self._burst: AlertRow | bool | None = False  # False: not loaded yet
        self._hosts: set[str] | None = None
        self._waiting: dict[int, bool] = {}

    def silenced(self, event: Event) -> bool:
        if self._silences is None:
            self._silences = [s.target for s in self.repo.active_silences(self.now)]
        return any(silence_matches(t, event) for t in self._silences)

    def preload(self, group_keys: set[str]) -> None:
        since = self.now - self.policy.storm_window_s
        found = self.repo.open_alerts("event", group_keys - set(self._open), since)
        for key in group_keys:
            self._open.setdefault(key, found.get(key))
        ids = {a.id for a in found.values()} - set(self._waiting)
        waiting = self.repo.waiting_alerts(ids, ("post", "update"), self.now)
        self._waiting.update({i: i in waiting for i in ids})

    def open_alert(self, gkey: str) -> AlertRow | None:
        if gkey not in self._open:
            self.preload({gkey})
        return self._open[gkey]

    def burst(self) -> AlertRow | None:
        if self._burst is False:
            since = self.now - self.policy.fleet_burst_window_s
            self._burst = self.repo.open_alert("burst", BURST_GROUP, since)
        assert self._burst is not True
        return self._burst

    def alert_hosts(self) -> set[str]:
        if self._hosts is None:
            since = self.now - self.policy.fleet_burst_window_s
            self._hosts = self.repo.alert_hosts_since(since)
        return self._hosts

    def new_alert(self, alert: AlertRow) -> None:
        self.repo.add(alert)
        self._waiting[alert.id] = True
        if alert.kind == "burst":
            self._burst = alert
        else:
            self._open[alert.group_key] = alert
            self.alert_hosts().add(alert.host or "")
        self.enqueue("post", alert.id)

    def enqueue(self, op: str, alert_id: int, event_key: str | None = None) -> None:
        due = self.now + (self.policy.update_delay_s if op == "update" else 0.0)
        self.outbox.append(
            {"op": op, "alert_id": alert_id, "event_key": event_key, "channel": None,
             "payload": None, "next_at": due}
        )  # fmt: skip

    def refresh(self, alert_id: int) -> None:
        """Queue a re-render of an alert's parent unless one is already waiting."""
        if alert_id not in self._waiting:
            self._waiting[alert_id] = self.repo.has_waiting(alert_id, ("post", "update"), self.now)
        if not self._waiting[alert_id]:
            self.enqueue("update", alert_id)
            self._waiting[alert_id] = True


class AlertDecider:
    def __init__(self, policy: AlertPolicy) -> None:
        self.policy = policy

    def ingest_batch(self, repo: Repository, events: list[Event], now: float) -> list[Outcome]:
        """Store and decide a batch in the caller's (decide-locked) transaction."""
        batch = _Batch(repo, self.policy, now)
        keyed = [(event_key(e), e) for e in events]
        existing = repo.events_by_keys({k for k, _ in keyed})
        batch.preload({group_key(e) for k, e in keyed if k not in existing})
        fresh: dict[str, dict[str, Any]] = {}
        outcomes: list[Outcome] = []
        for key, event in keyed:
            if key in existing:
                outcomes.append(self._revise(batch, existing[key], event))
            elif key in fresh:  # the same event twice in one batch
                values = fresh[key]
                if event.revision > values["revision"]:
                    values.update(self._values(key, event, now), alert_id=values["alert_id"])
                    outcomes.append("updated")
                else:
                    outcomes.append("duplicate")
            else:
                values = self._values(key, event, now)
                outcome, values["alert_id"] = self._decide(batch, key, event, values["history"])
                fresh[key] = values
                outcomes.append(outcome)
        repo.insert_events(list(fresh.values()))
        repo.enqueue_many(batch.outbox, now)
        return outcomes

    @staticmethod
    def _values(key: str, event: Event, now: float) -> dict[str, Any]:
        namespace, pod = pod_of(event)
        return {
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
            "data": model_json(event),
        }

    def _revise(self, batch: _Batch, row: EventRow, event: Event) -> Outcome:
        if event.revision <= row.revision:
            return "duplicate"
        row.revision = event.revision
        row.data = event.model_dump(mode="json")
        row.time = event.time
        if row.alert_id is not None:
            alert = batch.repo.get_alert(row.alert_id)
            if alert is not None and alert.kind == "event" and alert.event_key == row.key:
                batch.refresh(alert.id)
        return "updated"

    def _decide(
        self, batch: _Batch, key: str, event: Event, history: bool
    ) -> tuple[Outcome, int | None]:
        if history:
            return "history", None
        if batch.silenced(event):
            return "silenced", None
        policy, now = self.policy, batch.now
        gkey = group_key(event)
        alert = batch.open_alert(gkey)
        if alert is not None:
            alert.count += 1
            alert.last_at = now
            if alert.count - 1 <= policy.max_thread_replies:
                batch.enqueue("reply", alert.id, key)
            batch.refresh(alert.id)
            return "threaded", alert.id
        burst = batch.burst()
        host = event.host or ""
        if burst is not None:
            burst.count += 1
            burst.last_at = now
            if host not in burst.hosts:
                burst.hosts = sorted({*burst.hosts, host})
            batch.refresh(burst.id)
            return "burst", burst.id
        hosts = batch.alert_hosts() | {host}
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
            batch.new_alert(burst)
            return "burst", burst.id
        alert = AlertRow(
            kind="event",
            group_key=gkey,
            host=host,
            channel=policy.channel_for(event),
            event_key=key,
            count=1,
            hosts=[host],
            created_at=now,
            last_at=now,
        )
        batch.new_alert(alert)
        return "posted", alert.id
