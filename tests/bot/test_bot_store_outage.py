"""A database the bot cannot reach: the driver's error becomes `StoreUnavailable` at the store's
edge, and the agents' endpoints answer 503 with Retry-After (their outbox keeps the events)."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text

from fakes.fake_fleet import sample_oom
from kernbot.bot.alerts import AlertDecider, AlertPolicy
from kernbot.bot.delivery import DeliveryHealth
from kernbot.bot.ingest import Ingestor
from kernbot.bot.server import ServerContext, build_app
from kernbot.bot.store import Database, StoreUnavailable
from kernbot.core.wire import EventBatch
from kernbot.errors import KernbotError

TOKEN = "agent-secret"


def dead_postgres() -> Database:
    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return Database(
        f"postgresql+psycopg://kernbot:hunter2@127.0.0.1:{port}/kernbot?connect_timeout=2"
    )


async def test_the_store_translates_a_dead_database() -> None:
    db = dead_postgres()
    with pytest.raises(StoreUnavailable) as err:
        await db.run(lambda s: s.execute(text("SELECT 1")))
    assert isinstance(err.value, KernbotError)
    assert "hunter2" not in str(err.value), "the password never reaches a message"
    assert "127.0.0.1" in str(err.value)


async def test_ingest_answers_503_with_retry_after_when_the_database_is_down() -> None:
    db = dead_postgres()
    ctx = ServerContext(
        db=db,
        ingestor=Ingestor(db, AlertDecider(AlertPolicy())),
        delivery=DeliveryHealth(),
        notifier_name="console",
        token=TOKEN,
        stale_after_s=120.0,
        clock=lambda: 0.0,
    )
    runner = web.AppRunner(build_app(ctx, max_body_bytes=1 << 20))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    body = EventBatch(host="node-1", events=[sample_oom()]).model_dump_json()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://127.0.0.1:{port}/v1/events",
                data=body,
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            ) as resp,
        ):
            assert resp.status == 503
            assert resp.headers["Retry-After"] == "5"
            answer = await resp.json()
    finally:
        await runner.cleanup()
    assert "database" in answer["error"] and "retry later" in answer["error"]
    assert "hunter2" not in answer["error"]
