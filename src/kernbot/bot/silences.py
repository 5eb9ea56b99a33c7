"""Silences that the whole channel can see and undo.

A silence used to be one ephemeral line to the person who typed it: anyone could run
`/kernbot silence * 30d` and every later alert was stored but never posted, without a trace in
the channel. Now every silence is announced in the alert channel (who, target, until, reason),
`/kernbot silences` lists the active ones with ids, `/kernbot unsilence ID|TARGET` ends one, and
when one ends (early or on time) the channel is told how many alerts it held back; those events
stay in the store and in `/oom` answers.

Targets: `host:NAME` (or a bare host name), `pod:NAMESPACE/NAME`, `namespace:NAME`; shell globs
make a target fleet-wide, which (like a silence longer than KERNBOT_MAX_SILENCE) needs an admin.
"""

from __future__ import annotations

from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import select, update

from kernbot.bot.ports import Notice, Silence
from kernbot.bot.store import Repository
from kernbot.bot.store.models import EventRow, SilenceRow

KINDS = ("host", "pod", "namespace")
GLOB_CHARS = "*?["
MAX_TARGET = 300
MAX_REASON = 300


def split_target(target: str) -> tuple[str, str]:
    """(`host`|`pod`|`namespace`, value); a bare name is a host. ValueError for another kind."""
    kind, sep, value = target.partition(":")
    if not sep:
        return "host", target
    kind = kind.lower()
    if kind not in KINDS:
        raise ValueError(kind)
    return kind, value


def is_fleet_wide(target: str) -> bool:
    """A glob may match any number of hosts or pods: treat it as fleet-wide."""
    return any(c in target for c in GLOB_CHARS)


def target_matches(target: str, host: str | None, namespace: str | None, pod: str | None) -> bool:
    try:
        kind, value = split_target(target)
    except ValueError:
        return False
    if kind == "host":
        return fnmatchcase(host or "", value)
    if kind == "namespace":
        return namespace is not None and fnmatchcase(namespace, value)
    return pod is not None and fnmatchcase(f"{namespace}/{pod}", value)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def view(row: SilenceRow, held_back: int | None = None) -> Silence:
    return Silence(
        id=row.id, target=row.target, until=iso(row.end()), by=row.by, reason=row.reason,
        held_back=held_back,
    )  # fmt: skip


def active(repo: Repository, now: float) -> list[SilenceRow]:
    stmt = (
        select(SilenceRow)
        .where(SilenceRow.until > now, SilenceRow.ended_at.is_(None))
        .order_by(SilenceRow.id)
    )
    return list(repo.session.scalars(stmt))


def held_back(repo: Repository, row: SilenceRow) -> int:
    """Events this silence kept out of the channel: stored while it was active, matching its
    target, and never part of an alert (history is not counted: it never alerts anyway)."""
    stmt = select(EventRow.host, EventRow.namespace, EventRow.pod).where(
        EventRow.received_at >= row.created_at,
        EventRow.received_at < row.end(),
        EventRow.alert_id.is_(None),
        EventRow.history.is_(False),
    )
    return sum(
        1 for h, ns, pod in repo.session.execute(stmt) if target_matches(row.target, h, ns, pod)
    )


def start_notice(row: SilenceRow) -> dict[str, Any]:
    lines = [f"until {iso(row.until)}"]
    if row.reason:
        lines.append(f"reason: {row.reason}")
    lines.append(f"silence #{row.id}; `/kernbot unsilence {row.id}` ends it")
    return Notice(
        kind="silence", title=f"Alerts for {row.target} are silenced", lines=lines, by=row.by
    ).model_dump()


def end_notice(row: SilenceRow, held: int) -> dict[str, Any]:
    how = "ended early" if row.ended_at is not None and row.ended_at < row.until else "expired"
    alerts = "1 alert" if held == 1 else f"{held} alerts"
    lines = [
        f"silence #{row.id} {how}; it held back {alerts} (still in the store and in /oom answers)"
    ]
    return Notice(
        kind="unsilence", title=f"Alerts for {row.target} are back on", lines=lines,
        by=row.ended_by,
    ).model_dump()  # fmt: skip


def report_end(repo: Repository, row: SilenceRow, now: float, channel: str | None) -> int | None:
    """Announce the end of `row` once (a conditional UPDATE, so two bot replicas running this
    together announce it once); the number held back, or None when another run did it."""
    claimed = repo.session.execute(
        update(SilenceRow)
        .where(SilenceRow.id == row.id, SilenceRow.reported.is_(False))
        .values(reported=True)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return None
    held = held_back(repo, row)
    repo.enqueue("notice", now, channel=channel, payload=end_notice(row, held))
    return held


def ended_unreported(repo: Repository, now: float) -> list[SilenceRow]:
    stmt = select(SilenceRow).where(
        SilenceRow.reported.is_(False),
        (SilenceRow.until <= now) | SilenceRow.ended_at.is_not(None),
    )
    return list(repo.session.scalars(stmt))
