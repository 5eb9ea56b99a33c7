"""Periodic work: noticing agents that went silent, and the optional daily digest.

APScheduler (3.x, asyncio) fires the jobs; with several bot replicas on PostgreSQL each run takes
an advisory lock so one replica does it. The stale flip itself is a conditional UPDATE, so even
two runs at once produce one `agent_stale` notice per silence, and `kernbot.bot.ingest` queues
the matching `agent_back` when the agent's next heartbeat arrives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.orm import Session

from kernbot.bot.ports import FleetQueries, Notice
from kernbot.bot.store import Database, Repository

log = logging.getLogger(__name__)


def _human(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


class BotJobs:
    def __init__(
        self,
        db: Database,
        *,
        stale_after_s: float,
        notice_channel: str | None = None,
        digest_time: str | None = None,
        fleet: FleetQueries | None = None,
        clock: Callable[[], float] = time.time,
        on_enqueue: Callable[[], None] = lambda: None,
        check_every_s: float | None = None,
    ) -> None:
        self.db = db
        self.stale_after_s = stale_after_s
        self.notice_channel = notice_channel
        self.digest_time = digest_time
        self.fleet = fleet
        self.clock = clock
        self.on_enqueue = on_enqueue
        self.check_every_s = check_every_s or max(1.0, min(30.0, stale_after_s / 4))
        self._scheduler: AsyncIOScheduler | None = None

    async def check_stale(self) -> list[str]:
        """Flip silent agents to stale and queue one notice for those flipped now."""
        async with self.db.singleton("kernbot.jobs.stale") as mine:
            if not mine:
                return []
            now = self.clock()

            def _flip(session: Session) -> list[str]:
                repo = Repository(session)
                hosts = repo.mark_stale(now - self.stale_after_s)
                if hosts:
                    title = (
                        f"kernbot agent on {hosts[0]} is silent"
                        if len(hosts) == 1
                        else f"{len(hosts)} kernbot agents are silent"
                    )
                    notice = Notice(
                        kind="agent_stale",
                        title=title,
                        lines=[
                            f"no heartbeat for more than {_human(self.stale_after_s)}: OOM kills "
                            "and SYN floods on these hosts are not being reported",
                        ],
                        hosts=hosts,
                    )
                    repo.enqueue(
                        "notice", now, channel=self.notice_channel, payload=notice.model_dump()
                    )
                return hosts

            hosts = await self.db.run(_flip, decide=True)
        if hosts:
            log.warning("agents stale: %s", ", ".join(hosts))
            self.on_enqueue()
        return hosts

    async def digest(self) -> None:
        if self.fleet is None:
            return
        async with self.db.singleton("kernbot.jobs.digest") as mine:
            if not mine:
                return
            summary = await self.fleet.oom_fleet(86400.0)
            lines = [f"{summary.total_kills} OOM kills, {summary.syn_floods} SYN flood reports"]
            lines += [f"{row.host}: {row.kills} kills" for row in summary.by_host[:10]]
            lines += [
                f"repeat: {r.host} {r.namespace or ''}/{r.pod or r.victim or '?'} x{r.kills}"
                for r in summary.repeat_offenders[:10]
            ]
            notice = Notice(kind="digest", title="kernbot: the last 24 hours", lines=lines)
            now = self.clock()
            await self.db.run(
                lambda s: Repository(s).enqueue(
                    "notice", now, channel=self.notice_channel, payload=notice.model_dump()
                )
            )
        self.on_enqueue()

    async def prune(
        self, keep_events_s: float = 30 * 86400.0, keep_sent_s: float = 86400.0
    ) -> None:
        """Retention: events and alerts for 30 days, delivered notifications for a day."""
        now = self.clock()
        async with self.db.singleton("kernbot.jobs.prune") as mine:
            if mine:
                gone = await self.db.run(
                    lambda s: Repository(s).prune(now - keep_events_s, now - keep_sent_s)
                )
                log.info("pruned %s", gone)

    async def silences(self) -> None:
        """Tell the channel about silences that ran out (and what they held back)."""
        report = getattr(self.fleet, "report_ended_silences", None)
        if report is not None:
            await report()

    async def _safe(self, name: str) -> None:
        jobs = {
            "stale": self.check_stale,
            "digest": self.digest,
            "prune": self.prune,
            "silences": self.silences,
        }
        try:
            await jobs[name]()
        except Exception:
            log.exception("job %s failed; it runs again at its next time", name)

    def start(self) -> None:
        """Schedule the jobs on the running event loop."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            self._safe,
            "interval",
            args=["stale"],
            seconds=self.check_every_s,
            max_instances=1,
            coalesce=True,
            id="stale",
        )
        scheduler.add_job(
            self._safe, "interval", args=["prune"], hours=1, max_instances=1, coalesce=True,
            id="prune",
        )  # fmt: skip
        scheduler.add_job(
            self._safe, "interval", args=["silences"], seconds=self.check_every_s,
            max_instances=1, coalesce=True, id="silences",
        )  # fmt: skip
        if self.digest_time:
            hour, _, minute = self.digest_time.partition(":")
            scheduler.add_job(
                self._safe,
                "cron",
                args=["digest"],
                hour=int(hour),
                minute=int(minute or 0),
                max_instances=1,
                coalesce=True,
                id="digest",
            )
        scheduler.start()
        self._scheduler = scheduler

    def shutdown(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
