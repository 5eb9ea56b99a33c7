"""What the two agent endpoints do once a body is validated: store events (and decide their
alerts) and record heartbeats, each request in one transaction.

Kept apart from the HTTP layer so tests and `kernbot up` can feed events without a socket.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session

from kernbot.bot.advertise import (
    AdvertiseRefused,
    IPNetwork,
    Resolver,
    check_advertise,
    resolve,
)
from kernbot.bot.alerts import AlertDecider, Outcome, column_text
from kernbot.bot.ports import Notice
from kernbot.bot.store import Database, Repository
from kernbot.core.wire import EventBatch, EventBatchResult, Heartbeat
from kernbot.errors import KernbotError
from kernbot.logsafe import logsafe

log = logging.getLogger(__name__)


class HeartbeatRefused(KernbotError):
    """A heartbeat the bot will not record: `status` is the HTTP answer, the message why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Ingestor:
    def __init__(
        self,
        db: Database,
        decider: AlertDecider,
        *,
        notice_channel: str | None = None,
        clock: Callable[[], float] = time.time,
        on_enqueue: Callable[[], None] = lambda: None,
        agent_networks: Sequence[IPNetwork] = (),
        stale_after_s: float = 180.0,
        resolver: Resolver = resolve,
    ) -> None:
        self.db = db
        self.decider = decider
        self.notice_channel = notice_channel
        self.clock = clock
        self.on_enqueue = on_enqueue
        self.agent_networks = list(agent_networks)
        self.stale_after_s = stale_after_s
        self.resolver = resolver
        self.outcomes: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        """Heartbeats refused, by reason (`advertise`, `conflict`)."""

    async def events(self, batch: EventBatch) -> EventBatchResult:
        now = self.clock()
        for event in batch.events:
            if not event.host:
                event.host = batch.host

        def _store(session: Session) -> list[Outcome]:
            repo = Repository(session)
            return self.decider.ingest_batch(repo, list(batch.events), now)

        outcomes = await self.db.run(_store, decide=True)
        self.outcomes.update(outcomes)
        duplicates = outcomes.count("duplicate")
        if any(o in ("posted", "threaded", "burst", "updated") for o in outcomes):
            self.on_enqueue()
        return EventBatchResult(accepted=len(outcomes) - duplicates, duplicates=duplicates)

    async def heartbeat(self, hb: Heartbeat, peer: str | None = None) -> bool:
        """Record a heartbeat; True when the agent was stale and is now back (notice queued).

        `peer` is the address the heartbeat came from (None: an in-process caller such as
        `kernbot up`). Raises HeartbeatRefused when the advertised URL is not the agent's own
        (422) or another live agent holds the host name (409)."""
        now = self.clock()
        if peer is not None and hb.advertise_url:
            try:
                await check_advertise(hb.advertise_url, peer, self.agent_networks, self.resolver)
            except AdvertiseRefused as exc:
                self.refused["advertise"] += 1
                log.warning("heartbeat for %s from %s refused: %s", logsafe(hb.host), peer, exc)
                raise HeartbeatRefused(422, f"advertise_url: {exc}") from None
        data = hb.model_dump(mode="json")
        if peer is not None:
            data["peer"] = peer
        values = {
            "host": hb.host,
            "advertise_url": column_text(hb.advertise_url),
            "agent_version": column_text(hb.agent_version[:64]),
            "kernel": column_text((hb.kernel or "")[:255] or None),
            "last_seen": now,
            "stale": False,
            "data": data,
        }

        def _record(session: Session) -> bool:
            repo = Repository(session)
            if repo.insert_agent(values):
                return False
            agent = repo.get_agent(hb.host, for_update=True)
            assert agent is not None
            bound = (agent.data or {}).get("peer")
            if (
                peer is not None
                and bound is not None
                and bound != peer
                and not agent.is_stale(now, self.stale_after_s)
            ):
                raise HeartbeatRefused(
                    409,
                    f"host {hb.host} is registered by the agent at {bound}, which is not stale; "
                    "two agents use one KERNBOT_HOSTNAME, or someone is impersonating it",
                )
            was_stale = agent.stale
            for name, value in values.items():
                setattr(agent, name, value)
            if was_stale:
                notice = Notice(
                    kind="agent_back",
                    title=f"kernbot agent on {hb.host} is reporting again",
                    hosts=[hb.host],
                )
                repo.enqueue(
                    "notice", now, channel=self.notice_channel, payload=notice.model_dump()
                )
            return was_stale

        try:
            back = await self.db.run(_record, decide=True)
        except HeartbeatRefused as exc:
            self.refused["conflict"] += 1
            log.warning("heartbeat from %s refused: %s", peer, logsafe(exc.reason, 300))
            raise
        if back:
            log.info("agent %s is back", hb.host)
            self.on_enqueue()
        return back
