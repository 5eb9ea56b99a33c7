"""The store on SQLite and a real PostgreSQL: migrations, dedup, the agent registry, claiming."""

from __future__ import annotations

import asyncio
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from bot_harness import FakeClock, Pipeline
from pydantic_core import PydanticSerializationError

from fakes.fake_fleet import sample_oom, sample_syn
from kernbot.bot.migrations import VERSION_TABLE
from kernbot.bot.store import Database, Repository
from kernbot.bot.store.models import Base, EventRow
from kernbot.core.events import Victim
from kernbot.core.wire import EventBatch, Heartbeat


def test_migrations_create_exactly_the_models(db: Database) -> None:
    db.migrate()  # a second upgrade is a no-op
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(ctx, Base.metadata) == []
        assert ctx.get_current_revision() == "0003"


async def test_retried_batch_is_stored_once_and_alerted_once(pipeline: Pipeline) -> None:
    batch = EventBatch(host="k8s-node-17", events=[sample_oom(), sample_syn()])
    first = await pipeline.ingestor.events(batch)
    again = await pipeline.ingestor.events(batch)
    assert (first.accepted, first.duplicates) == (2, 0)
    assert (again.accepted, again.duplicates) == (0, 2)
    await pipeline.drain()
    assert len(pipeline.notifier.top_level()) == 2
    rows = await pipeline.ingestor.db.run(lambda s: s.query(EventRow).count())
    assert rows == 2


async def test_higher_revision_replaces_lower_is_ignored(pipeline: Pipeline) -> None:
    ing = pipeline.ingestor
    await ing.events(EventBatch(host="h", events=[sample_oom(revision=1, complete=False)]))
    await ing.events(EventBatch(host="h", events=[sample_oom(revision=2, complete=True)]))
    stale = await ing.events(EventBatch(host="h", events=[sample_oom(revision=1)]))
    assert stale.duplicates == 1
    row = await ing.db.run(lambda s: s.query(EventRow).one())
    assert row.revision == 2 and row.data["complete"] is True


async def test_stored_document_reads_back_as_the_event(pipeline: Pipeline) -> None:
    """Events are written as pydantic's JSON text; one pydantic cannot encode (a lone surrogate
    from kernel bytes, possible when `kernbot up` feeds events in-process) falls back to
    json.dumps. Both read back as the document `model_dump(mode="json")` gives."""
    plain = sample_oom(id="plain", victim=Victim(pid=1, comm="<!channel> *bold* é"))
    odd = sample_oom(id="odd", victim=Victim(pid=2, comm="runc:[2:INIT]"), lines=["a\udcffb"])
    with pytest.raises(PydanticSerializationError):
        odd.model_dump_json()
    res = await pipeline.ingestor.events(EventBatch(host="h", events=[plain, odd]))
    assert res.accepted == 2
    rows = await pipeline.ingestor.db.run(
        lambda s: {r.key.rsplit("/", 1)[1]: r.data for r in s.query(EventRow)}
    )
    assert rows == {"plain": plain.model_dump(mode="json"), "odd": odd.model_dump(mode="json")}
    await pipeline.drain()  # the same pod: one alert and the second kill in its thread
    assert (len(pipeline.notifier.top_level()), len(pipeline.notifier.replies())) == (1, 1)


async def test_events_without_id_dedup_by_content(pipeline: Pipeline) -> None:
    event = sample_syn(id=None, host="edge-9")
    await pipeline.ingestor.events(EventBatch(host="edge-9", events=[event]))
    res = await pipeline.ingestor.events(EventBatch(host="edge-9", events=[event]))
    assert res.duplicates == 1


async def test_heartbeats_fill_the_registry(db: Database, clock: FakeClock) -> None:
    from kernbot.bot.alerts import AlertDecider, AlertPolicy
    from kernbot.bot.ingest import Ingestor

    ing = Ingestor(db, AlertDecider(AlertPolicy()), clock=clock)
    hb = Heartbeat(
        host="web-1",
        agent_version="0.1.0",
        source="kmsg",
        kernel="6.1.0",
        advertise_url="http://10.0.0.1:9101",
    )
    assert await ing.heartbeat(hb) is False
    clock.advance(30)
    assert await ing.heartbeat(hb.model_copy(update={"records_lost": 3})) is False
    agents = await db.run(lambda s: Repository(s).agents())
    assert [(a.host, a.kernel, a.last_seen, a.data["records_lost"]) for a in agents] == [
        ("web-1", "6.1.0", clock.now, 3)
    ]


def test_two_claimers_never_get_the_same_row(db: Database) -> None:
    """Two threads (separate connections, as two replicas would be) claim concurrently."""
    with db.transaction() as s:
        repo = Repository(s)
        for _ in range(40):
            repo.enqueue("notice", 1.0, payload={"kind": "info", "title": "x"})
    got: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def claimer(i: int) -> None:
        barrier.wait()
        for _ in range(10):
            with db.transaction() as s:
                got[i].extend(r.id for r in Repository(s).claim(2.0, 3, 60.0))

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not set(got[0]) & set(got[1])
    assert sorted(got[0] + got[1]) == sorted(set(got[0] + got[1]))
    assert len(got[0]) + len(got[1]) == 40


async def test_concurrent_ingest_of_the_same_event_alerts_once(pipeline: Pipeline) -> None:
    batch = EventBatch(host="k8s-node-17", events=[sample_oom()])
    results = await asyncio.gather(*(pipeline.ingestor.events(batch) for _ in range(6)))
    assert sum(r.accepted for r in results) == 1
    await pipeline.drain()
    assert len(pipeline.notifier.top_level()) == 1
