"""Fixtures for the bot core's tests: a migrated database on SQLite and (when reachable) a real
PostgreSQL, a fake clock, a recording notifier and ready-made Ingestor/DeliveryWorker pairs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bot_harness import FakeClock, Pipeline, RecordingNotifier, make_pipeline, postgres_url

from kernbot.bot.store import Database


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    return postgres_url()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def pipeline(db: Database, notifier: RecordingNotifier, clock: FakeClock) -> Pipeline:
    return make_pipeline(db, notifier, clock, default_channel="C0ALERTS")
