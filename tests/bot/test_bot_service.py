"""FleetQueries against fake agents on loopback: live answers, timeouts answered from the
store, unknown hosts with suggestions, the fleet view merging store and agents."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from agent_doubles import AgentFarm

from fakes.fake_fleet import sample_oom, sample_risk
from kernbot.bot.agents_client import AgentsClient
from kernbot.bot.alerts import AlertDecider, AlertPolicy
from kernbot.bot.ingest import Ingestor
from kernbot.bot.ports import UnknownHost
from kernbot.bot.service import FleetService
from kernbot.bot.store import Database
from kernbot.core.events import Kubernetes, Victim
from kernbot.core.wire import EventBatch, Heartbeat

TOKEN = "s3cret"
HOSTS = ["web-1", "web-2", "db-1"]


@pytest.fixture
async def farm() -> AsyncIterator[AgentFarm]:
    f = AgentFarm(token=TOKEN, slow={"db-1"}, delay_s=1.0)
    await f.start(HOSTS)
    yield f
    await f.close()


@pytest.fixture
async def svc(db: Database, farm: AgentFarm) -> AsyncIterator[tuple[FleetService, Ingestor]]:
    ingestor = Ingestor(db, AlertDecider(AlertPolicy()))
    for host, url in farm.urls.items():
        await ingestor.heartbeat(
            Heartbeat(host=host, advertise_url=url, agent_version="0.1", source="kmsg")
        )
    async with aiohttp.ClientSession() as http:
        client = AgentsClient(http, token=TOKEN, timeout_s=0.5)
        yield FleetService(db, client), ingestor


async def test_live_answers(svc: tuple[FleetService, Ingestor], farm: AgentFarm) -> None:
    service, _ = svc
    farm.events["web-1"] = [sample_oom(host="web-1")]
    oom = await service.oom_host("web-1")
    assert oom.agent_reachable and not oom.from_store and oom.events[0].victim.comm == "java"
    top = await service.top("web-2", n=3)
    assert [p.comm for p in top.processes] == ["proc0", "proc1", "proc2"]
    dmesg = await service.dmesg("web-2", "Out of memory")
    assert dmesg.lines == ["Out of memory: Killed process"]
    syn = await service.syn_host("WEB-2")  # case does not matter
    assert syn.host == "web-2" and syn.sysctls["net.ipv4.tcp_syncookies"] == 1


async def test_slow_agent_answered_from_store(svc: tuple[FleetService, Ingestor]) -> None:
    service, ingestor = svc
    ended = sample_risk("db-1", 85.0)
    ended.id, ended.state = "b00t:risk:over", "ended"
    risks = [sample_risk("db-1", 96.0), ended]
    await ingestor.events(EventBatch(host="db-1", events=[sample_oom(host="db-1"), *risks]))
    started = time.monotonic()
    oom = await service.oom_host("db-1")
    assert time.monotonic() - started < 1.5
    assert oom.from_store and not oom.agent_reachable
    assert oom.agent_error is not None and "db-1" in oom.agent_error and "0.5s" in oom.agent_error
    assert [e.victim.comm for e in oom.events] == ["java"]
    assert [r.percent for r in oom.risks] == [96.0]  # the open episode, not the ended one
    top = await service.top("db-1")
    assert top.from_store and top.processes == []


async def test_unknown_host_suggests_close_names(svc: tuple[FleetService, Ingestor]) -> None:
    service, _ = svc
    with pytest.raises(UnknownHost) as err:
        await service.oom_host("web1")
    assert err.value.suggestions[:2] == ["web-1", "web-2"]


async def test_wrong_token_is_reported(db: Database, farm: AgentFarm) -> None:
    ingestor = Ingestor(db, AlertDecider(AlertPolicy()))
    await ingestor.heartbeat(
        Heartbeat(host="web-1", advertise_url=farm.urls["web-1"], agent_version="1", source="kmsg")
    )
    async with aiohttp.ClientSession() as http:
        service = FleetService(db, AgentsClient(http, token="wrong", timeout_s=0.5))
        answer = await service.top("web-1")
    assert answer.from_store and "HTTP 401" in (answer.agent_error or "")


async def test_fleet_merges_store_and_agents(
    svc: tuple[FleetService, Ingestor], farm: AgentFarm
) -> None:
    service, ingestor = svc
    now_iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    pod = Kubernetes(namespace="payments", pod="ledger-1")
    stored = [sample_oom(id=f"s:{i}", host="web-1", time=now_iso, kubernetes=pod) for i in range(3)]
    await ingestor.events(EventBatch(host="web-1", events=stored))
    # web-2's agent knows a kill the bot never received; web-1 repeats one the store has
    farm.events["web-2"] = [
        sample_oom(id="a:1", host="web-2", time=now_iso, kubernetes=None, victim=Victim(comm="x"))
    ]
    farm.events["web-1"] = [stored[0]]
    summary = await service.oom_fleet(3600)
    assert summary.total_kills == 4
    assert [(r.host, r.kills) for r in summary.by_host] == [("web-1", 3), ("web-2", 1)]
    assert [(r.pod, r.kills) for r in summary.repeat_offenders] == [("ledger-1", 3)]


async def test_risks_fleet_wide_worst_first(
    svc: tuple[FleetService, Ingestor], farm: AgentFarm
) -> None:
    service, _ = svc
    farm.risks["web-1"] = [sample_risk("web-1", 91.0, None)]
    farm.risks["web-2"] = [sample_risk("web-2", 95.0, 90.0), sample_risk("web-2", 92.0, None)]
    answer = await service.risks_fleet()
    assert [(r.host, r.percent) for r in answer.risks] == [
        ("web-2", 95.0), ("web-2", 92.0), ("web-1", 91.0)
    ]  # fmt: skip
    assert answer.hosts_asked == 3 and answer.unreachable == ["db-1"]  # db-1 is too slow
    host = await service.oom_host("web-2")
    assert [r.percent for r in host.risks] == [95.0, 92.0]
