"""What the two agent endpoints do once a body is validated: store events (and decide their
alerts) and record heartbeats, each request in one transaction.

Kept apart from the HTTP layer so tests and `kernbot up` can feed events without a socket.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from sqlalchemy.orm import Session

from kernbot.bot.alerts import AlertDecider, Outcome
from kernbot.bot.ports import Notice
from kernbot.bot.store import Database, Repository
from kernbot.core.wire import EventBatch, EventBatchResult, Heartbeat

log = logging.getLogger(__name__)


class Ingestor:
    def __init__(
        self,
        db: Database,
        decider: AlertDecider,
        *,
        notice_channel: str | None = None,
        clock: Callable[[], float] = time.time,
        on_enqueue: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.decider = decider
        self.notice_channel = notice_channel
        self.clock = clock
        self.on_enqueue = on_enqueue
        self.outcomes: Counter[str] = Counter()

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

    async def heartbeat(self, hb: Heartbeat) -> bool:
        """Record a heartbeat; True when the agent was stale and is now back (notice queued)."""
        now = self.clock()
        values = {
            "host": hb.host,
            "advertise_url": hb.advertise_url,
            "agent_version": hb.agent_version[:64],
            "kernel": (hb.kernel or "")[:255] or None,
            "last_seen": now,
            "stale": False,
            "data": hb.model_dump(mode="json"),
        }

        def _record(session: Session) -> bool:
            repo = Repository(session)
            if repo.insert_agent(values):
                return False
            agent = repo.get_agent(hb.host, for_update=True)
            assert agent is not None
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

        back = await self.db.run(_record, decide=True)
        if back:
            log.info("agent %s is back", hb.host)
            self.on_enqueue()
        return back
