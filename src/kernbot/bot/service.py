"""The bot core behind slash commands: `FleetQueries` over the store and the live agents.

A live answer is preferred; when an agent is slow or down the answer still comes, from what
the store knows, saying so (`from_store`, `agent_error`) instead of leaving Slack waiting.
"""

from __future__ import annotations

import difflib
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from kernbot.bot import silences
from kernbot.bot.agents_client import AgentError, AgentsClient, AgentTarget
from kernbot.bot.alerts import column_text, event_key, pod_of, subject_of
from kernbot.bot.ports import (
    AgentInfo,
    DmesgAnswer,
    FleetRisks,
    FleetRow,
    FleetSummary,
    OomHostAnswer,
    Silence,
    SynHostAnswer,
    TopAnswer,
    UnknownHost,
)
from kernbot.bot.store import Database, Repository
from kernbot.bot.store.models import AgentRow, SilenceRow
from kernbot.core.events import Event, OomKillEvent, OomRiskEvent, SynFloodEvent
from kernbot.core.risk.summary import severity
from kernbot.core.wire import DmesgResponse, OomResponse, SynResponse, TopResponse

M = TypeVar("M", bound=BaseModel)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


class FleetService:
    def __init__(
        self,
        db: Database,
        client: AgentsClient,
        *,
        stale_after_s: float = 180.0,
        clock: Callable[[], float] = time.time,
        notice_channel: str | None = None,
        on_enqueue: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.client = client
        self.notice_channel = notice_channel
        self.on_enqueue = on_enqueue
        self.stale_after_s = stale_after_s
        self.clock = clock

    # -- registry --------------------------------------------------------------------------
    def _info(self, row: AgentRow, now: float) -> AgentInfo:
        data = row.data or {}
        return AgentInfo(
            host=row.host,
            advertise_url=row.advertise_url,
            agent_version=row.agent_version,
            kernel=row.kernel,
            last_seen=iso(row.last_seen),
            stale=row.is_stale(now, self.stale_after_s),
            source=data.get("source"),
            source_healthy=bool(data.get("source_healthy", True)),
            records_lost=int(data.get("records_lost") or 0),
        )

    async def hosts(self) -> list[AgentInfo]:
        now = self.clock()
        rows = await self.db.run(lambda s: Repository(s).agents())
        return [self._info(r, now) for r in rows]

    async def _target(self, host: str) -> AgentTarget | None:
        """The agent to ask, None when it never told us where it listens; UnknownHost if none."""
        rows = await self.db.run(lambda s: Repository(s).agents())
        by_name = {r.host: r for r in rows}
        row = by_name.get(host) or next((r for r in rows if r.host.lower() == host.lower()), None)
        if row is None:
            close = difflib.get_close_matches(host, list(by_name), n=3, cutoff=0.5)
            raise UnknownHost(host, close)
        return AgentTarget(row.host, row.advertise_url) if row.advertise_url else None

    async def _stored(self, host: str, kind: str, limit: int = 20) -> list[Event]:
        rows = await self.db.run(lambda s: Repository(s).recent_events(host, kind, limit))
        return [r.event() for r in rows]

    async def _ask(
        self, host: str, path: str, model: type[M], params: dict[str, str | int] | None = None
    ) -> tuple[str, M | AgentError]:
        """The host's canonical name and the agent's answer, or why there is none."""
        target = await self._target(host)
        if target is None:
            return host, AgentError(host, "the agent did not advertise a URL")
        try:
            return target.host, await self.client.get(target, path, model, params)
        except AgentError as exc:
            return target.host, exc

    @staticmethod
    def _missing(exc: AgentError) -> dict[str, Any]:
        return {"agent_reachable": False, "agent_error": str(exc), "from_store": True}

    # -- per host --------------------------------------------------------------------------
    async def oom_host(self, host: str) -> OomHostAnswer:
        name, resp = await self._ask(host, "/v1/oom", OomResponse)
        if isinstance(resp, AgentError):
            stored = await self._stored(name, "oom_kill")
            events = [e for e in stored if isinstance(e, OomKillEvent)]
            # the last word the agent sent on each episode; open ones may since have ended
            risks = [
                e
                for e in await self._stored(name, "oom_risk")
                if isinstance(e, OomRiskEvent) and e.state in ("start", "ongoing")
            ]
            risks.sort(key=severity, reverse=True)
            return OomHostAnswer(host=name, events=events, risks=risks, **self._missing(resp))
        return OomHostAnswer(
            host=name, agent_reachable=True, events=resp.events, top=resp.top,
            meminfo=resp.meminfo, psi=resp.psi, risks=resp.risks,
        )  # fmt: skip

    async def syn_host(self, host: str) -> SynHostAnswer:
        name, resp = await self._ask(host, "/v1/syn", SynResponse)
        if isinstance(resp, AgentError):
            stored = await self._stored(name, "syn_flood")
            events = [e for e in stored if isinstance(e, SynFloodEvent)]
            return SynHostAnswer(host=name, events=events, **self._missing(resp))
        return SynHostAnswer(
            host=name, agent_reachable=True, events=resp.events, listeners=resp.listeners,
            counter_rates=resp.counter_rates, sysctls=resp.sysctls,
        )  # fmt: skip

    async def top(self, host: str, n: int = 10) -> TopAnswer:
        name, resp = await self._ask(host, "/v1/top", TopResponse, {"n": n})
        if isinstance(resp, AgentError):
            return TopAnswer(host=name, **self._missing(resp))
        return TopAnswer(host=name, agent_reachable=True, processes=resp.processes[:n])

    async def dmesg(self, host: str, grep: str | None, lines: int = 50) -> DmesgAnswer:
        params: dict[str, str | int] = {"lines": lines}
        if grep:
            params["grep"] = grep
        name, resp = await self._ask(host, "/v1/dmesg", DmesgResponse, params)
        if isinstance(resp, AgentError):
            stored: list[str] = []
            for kind in ("oom_kill", "syn_flood"):
                for event in await self._stored(name, kind, 5):
                    stored.extend(event.lines)
            if grep:
                stored = [line for line in stored if grep.lower() in line.lower()]
            return DmesgAnswer(
                host=name, lines=stored[-lines:], truncated=len(stored) > lines,
                **self._missing(resp),
            )  # fmt: skip
        return DmesgAnswer(
            host=name, agent_reachable=True, lines=resp.lines, truncated=resp.truncated
        )

    # -- fleet -----------------------------------------------------------------------------
    async def oom_fleet(self, since_s: float = 86400.0) -> FleetSummary:
        """Kills per host/pod from the store, plus any the live agents know that it lacks."""
        now = self.clock()
        since = now - since_s

        def _read(
            s: Session,
        ) -> tuple[
            list[tuple[str, str | None, str | None, str | None, int]], set[str], int, list[AgentRow]
        ]:
            repo = Repository(s)
            return (
                repo.kill_groups(since),
                repo.event_keys_since("oom_kill", since),
                repo.count_events("syn_flood", since),
                repo.agents(),
            )

        groups, known, syn, agents = await self.db.run(_read)
        counts: Counter[tuple[str, str | None, str | None, str | None]] = Counter()
        for host, ns, pod, subject, n in groups:
            counts[(host, ns, pod, subject)] += n
        live = [
            AgentTarget(a.host, a.advertise_url)
            for a in agents
            if a.advertise_url and not a.is_stale(now, self.stale_after_s)
        ]
        answers = await self.client.fan_out(live, "/v1/oom", OomResponse)
        for host, answer in answers.items():
            if isinstance(answer, AgentError):
                continue
            for event in answer.events:
                event.host = event.host or host
                when = _epoch(event.time)
                if when is None or when < since or event_key(event) in known:
                    continue
                known.add(event_key(event))
                ns, pod = pod_of(event)
                counts[(event.host, ns, pod, subject_of(event))] += 1
        per_host: Counter[str] = Counter()
        for (host, _ns, _pod, _subject), n in counts.items():
            per_host[host] += n
        offenders = [
            FleetRow(host=h, namespace=ns, pod=p, victim=s, kills=n)
            for (h, ns, p, s), n in counts.most_common()
            if n > 1
        ]
        return FleetSummary(
            since=iso(since),
            total_kills=sum(per_host.values()),
            by_host=[FleetRow(host=h, kills=n) for h, n in per_host.most_common()],
            repeat_offenders=offenders,
            syn_floods=syn,
        )

    async def risks_fleet(self) -> FleetRisks:
        """Open OOM-risk episodes, live from every agent that is not stale, worst first."""
        now = self.clock()
        agents = await self.db.run(lambda s: Repository(s).agents())
        live = [
            AgentTarget(a.host, a.advertise_url)
            for a in agents
            if a.advertise_url and not a.is_stale(now, self.stale_after_s)
        ]
        # `since` keeps the kill history out of the answers: only the risks are wanted here
        answers = await self.client.fan_out(live, "/v1/oom", OomResponse, {"since": "1m"})
        risks: list[OomRiskEvent] = []
        unreachable: list[str] = []
        for host, answer in sorted(answers.items()):
            if isinstance(answer, AgentError):
                unreachable.append(host)
                continue
            for risk in answer.risks:
                risk.host = risk.host or host
                risks.append(risk)
        risks.sort(key=severity, reverse=True)
        return FleetRisks(risks=risks, hosts_asked=len(live), unreachable=unreachable)

    # -- silences --------------------------------------------------------------------------
    async def check_target(self, target: str) -> None:
        """UnknownHost (with close names) unless `target` names a known host, pod or namespace;
        a glob must match at least one."""
        try:
            kind, value = silences.split_target(target)
        except ValueError:
            raise UnknownHost(target, [f"host:{target}"], what="kind of target") from None
        known = await self.db.run(lambda s: Repository(s).known_names(kind))
        if any(fnmatchcase(name, value) for name in known):
            return
        if not silences.is_fleet_wide(value):
            lowered = {n.lower(): n for n in known}
            if value.lower() in lowered:
                return
            close = difflib.get_close_matches(value, sorted(known), n=3, cutoff=0.5)
        else:
            close = []
        raise UnknownHost(value, [f"{kind}:{c}" if kind != "host" else c for c in close], kind)

    async def silence(
        self, target: str, duration_s: float, by: str | None, reason: str | None = None
    ) -> Silence:
        await self.check_target(target)
        now = self.clock()
        row = SilenceRow(
            target=target[: silences.MAX_TARGET], until=now + duration_s, by=by, created_at=now,
            reason=column_text((reason or "")[: silences.MAX_REASON] or None), reported=False,
        )  # fmt: skip

        def _add(session: Session) -> Silence:
            repo = Repository(session)
            repo.add(row)
            session.flush()
            repo.enqueue(
                "notice", now, channel=self.notice_channel, payload=silences.start_notice(row)
            )
            return silences.view(row)

        made = await self.db.run(_add)
        self.on_enqueue()
        return made

    async def silences(self) -> list[Silence]:
        now = self.clock()
        rows = await self.db.run(lambda s: silences.active(Repository(s), now))
        return [silences.view(r) for r in rows]

    async def unsilence(self, ref: str, by: str | None) -> list[Silence]:
        """End the active silence with id `ref`, or every active one whose target is `ref`;
        the channel is told how many alerts each held back."""
        now = self.clock()

        def _end(session: Session) -> list[Silence]:
            repo = Repository(session)
            rows = [
                r
                for r in silences.active(repo, now)
                if (ref.lstrip("#").isdigit() and r.id == int(ref.lstrip("#"))) or r.target == ref
            ]
            ended = []
            for row in rows:
                row.ended_at, row.ended_by = now, by
                session.flush()
                held = silences.report_end(repo, row, now, self.notice_channel)
                ended.append(silences.view(row, held))
            return ended

        ended = await self.db.run(_end)
        if ended:
            self.on_enqueue()
        return ended

    async def report_ended_silences(self) -> int:
        """Announce silences that expired (a job calls this); how many were announced."""
        now = self.clock()

        def _report(session: Session) -> int:
            repo = Repository(session)
            done = 0
            for row in silences.ended_unreported(repo, now):
                if silences.report_end(repo, row, now, self.notice_channel) is not None:
                    done += 1
            return done

        done = await self.db.run(_report)
        if done:
            self.on_enqueue()
        return done
