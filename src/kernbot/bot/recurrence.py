"""Across kills, from the bot's store: the same pod or cgroup killed at the same usage again and
again (`kernbot.core.oom.recurrence`), for alerts whose agent did not say so itself (an agent
restarted with an empty history, or an older agent)."""

from __future__ import annotations

from datetime import datetime

from kernbot.bot.store import Repository
from kernbot.core.context import Recurrence
from kernbot.core.events import OomKillEvent
from kernbot.core.oom.recurrence import Kill, as_kill, kill_key, recurrence

RECENT = 500
"""How many of the host's newest OOM events are looked at."""


def _epoch(time: str | None, fallback: float) -> float:
    if time:
        try:
            ts = datetime.fromisoformat(time)
        except ValueError:
            return fallback
        if ts.tzinfo is not None:
            return ts.timestamp()
    return fallback


def store_recurrence(repo: Repository, event: OomKillEvent, now: float) -> Recurrence | None:
    """The recurrence of `event` among the host's stored kills, or None."""
    key = kill_key(event)
    if key is None or not event.host:
        return None
    current = as_kill(event, min(_epoch(event.time, now), now))
    if current is None:
        return None
    known: list[Kill] = []
    for row in repo.recent_events(event.host, "oom_kill", RECENT):
        if row.data.get("id") == event.id:
            continue
        try:
            ev = OomKillEvent.model_validate(row.data)
        except ValueError:
            continue
        kill = as_kill(ev, _epoch(ev.time, row.received_at))
        if kill is not None and kill.key == key:
            known.append(kill)
    return recurrence(current, known)
