"""The bot core tests' harness: a per-process PostgreSQL database, a fake clock, a recording
notifier and an Ingestor/DeliveryWorker pair. Imported by name (`from bot_harness import ...`);
the pytest fixtures built on it live in conftest.py."""

from __future__ import annotations

import atexit
import os
import uuid
from dataclasses import dataclass, field

import pytest
from sqlalchemy import create_engine, make_url, text

from kernbot.bot.alerts import AlertDecider, AlertPolicy
from kernbot.bot.delivery import DeliveryWorker
from kernbot.bot.ingest import Ingestor
from kernbot.bot.ports import DeliveryError, Message, PostedRef
from kernbot.bot.store import Database

PG_ENV = "KERNBOT_TEST_POSTGRES_URL"
TABLES = (
    "kernbot_events",
    "kernbot_agents",
    "kernbot_alerts",
    "kernbot_outbox",
    "kernbot_silences",
    "kernbot_alembic_version",
)


_session_db: list[str] = []


def _session_database(base: str) -> str:
    """A database of this test process's own on the test server (created once, dropped at exit),
    so two test runs sharing one PostgreSQL (a developer's and CI's) never drop each other's
    tables."""
    if _session_db:
        return _session_db[0]
    server = make_url(base)
    name = f"{server.database or 'kernbot_test'}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()

    def drop() -> None:
        eng = create_engine(server, isolation_level="AUTOCOMMIT")
        try:
            with eng.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            eng.dispose()

    atexit.register(drop)
    _session_db.append(server.set(database=name).render_as_string(hide_password=False))
    return _session_db[0]


def postgres_url() -> str:
    """This process's test PostgreSQL database with every kernbot table dropped, or skip saying
    why."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(
            f"{PG_ENV} is not set (e.g. postgresql+psycopg://kernbot:kernbot@127.0.0.1/kernbot_test)"
        )
    try:
        url = _session_database(base)
    except Exception as exc:  # set but unusable: a broken test setup, not a reason to skip
        pytest.fail(f"PostgreSQL at {PG_ENV} is unusable: {type(exc).__name__}: {exc}")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for table in TABLES:
                conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {PG_ENV} is unusable: {type(exc).__name__}: {exc}")
    finally:
        engine.dispose()
    return url


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class RecordingNotifier:
    """A Notifier that keeps what it was asked to do; `errors` are raised first, in order."""

    name: str = "recording"
    posts: list[tuple[str | None, Message, PostedRef | None, PostedRef]] = field(
        default_factory=list
    )
    updates: list[tuple[PostedRef, Message]] = field(default_factory=list)
    errors: list[DeliveryError] = field(default_factory=list)
    calls: int = 0

    async def post(
        self, channel: str | None, message: Message, thread: PostedRef | None = None
    ) -> PostedRef:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        ref = thread or PostedRef(channel=channel or "C0DEFAULT", ts=f"{1000 + len(self.posts)}.0")
        if thread is not None:
            ref = PostedRef(channel=thread.channel, ts=f"{1000 + len(self.posts)}.0")
        self.posts.append((channel, message, thread, ref))
        return ref

    async def update(self, ref: PostedRef, message: Message) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        self.updates.append((ref, message))

    def top_level(self) -> list[tuple[str | None, Message, PostedRef | None, PostedRef]]:
        return [p for p in self.posts if p[2] is None]

    def replies(self) -> list[tuple[str | None, Message, PostedRef | None, PostedRef]]:
        return [p for p in self.posts if p[2] is not None]


@dataclass
class Pipeline:
    ingestor: Ingestor
    worker: DeliveryWorker
    notifier: RecordingNotifier
    clock: FakeClock

    async def drain(self, rounds: int = 10) -> None:
        """Deliver everything due now (replies wait for their parent: several passes)."""
        idle = 0
        for _ in range(rounds * 5):
            if await self.worker.drain_once():
                idle = 0
                continue
            idle += 1
            if idle > 4:  # nothing due for 4 s of fake time (updates wait 2 s)
                return
            self.clock.advance(1.0)


def make_pipeline(
    db: Database, notifier: RecordingNotifier, clock: FakeClock, **policy: object
) -> Pipeline:
    decider = AlertDecider(AlertPolicy(**policy))  # type: ignore[arg-type]
    worker = DeliveryWorker(db, notifier, clock=clock, backoff_base_s=1.0)
    return Pipeline(Ingestor(db, decider, clock=clock), worker, notifier, clock)
