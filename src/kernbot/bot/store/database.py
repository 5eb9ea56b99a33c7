"""One engine per bot, the schema upgrade at start, and transactions that serialize writers.

SQLAlchemy here is synchronous; the async bot runs each transaction in a worker thread
(`Database.run`). SQLite transactions start with BEGIN IMMEDIATE so two writers never both read
then both write; on PostgreSQL a transaction that decides alerts takes an advisory lock, so two
bot replicas ingesting the same events decide each alert exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from kernbot.bot.store.json_text import serialize
from kernbot.errors import KernbotError

log = logging.getLogger(__name__)

T = TypeVar("T")

MIGRATION_LOCK = 0x6B65726E  # "kern": serializes schema upgrades of replicas starting together
DECIDE_LOCK = 0x626F7431  # "bot1": serializes alert decisions across replicas


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": 30, "check_same_thread": False},
        json_serializer=serialize,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" hook issue BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class StoreUnavailable(KernbotError):
    """The database cannot be reached or upgraded; the message says which URL and why."""


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        backend = make_url(url).get_backend_name()
        self.is_postgres = backend == "postgresql"
        if backend == "sqlite":
            self.engine = _sqlite_engine(url)
        else:
            self.engine = create_engine(
                url, pool_pre_ping=True, pool_size=10, max_overflow=20, json_serializer=serialize
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def unavailable(self, exc: OperationalError | InterfaceError) -> StoreUnavailable:
        """The driver's "cannot reach / cannot use the database" as kernbot's error (the URL
        without its password, the driver's first line)."""
        reason = str(exc.orig or exc).strip().splitlines()[0]
        return StoreUnavailable(f"database {_safe_url(self.url)}: {reason}")

    def migrate(self) -> None:
        """Bring the schema to the newest version (Alembic, configured in code)."""
        try:
            self._migrate()
        except OperationalError as exc:
            raise self.unavailable(exc) from exc

    def _migrate(self) -> None:
        from kernbot.bot.migrations import upgrade

        with self.engine.connect() as conn:
            if self.is_postgres:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
                conn.commit()
            try:
                upgrade(conn)
            finally:
                if self.is_postgres:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                    conn.commit()

    @contextmanager
    def transaction(self, *, decide: bool = False) -> Iterator[Session]:
        """A committed-or-rolled-back session; `decide=True` serializes it across replicas."""
        with self._sessions() as session, session.begin():
            if decide and self.is_postgres:
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": DECIDE_LOCK})
            yield session

    async def run(self, fn: Callable[[Session], T], *, decide: bool = False) -> T:
        """Run `fn` in one transaction on a worker thread. A database that cannot be reached or
        used (the driver's OperationalError/InterfaceError) raises `StoreUnavailable`."""

        def _work() -> T:
            with self.transaction(decide=decide) as session:
                return fn(session)

        try:
            return await asyncio.to_thread(_work)
        except (OperationalError, InterfaceError) as exc:
            raise self.unavailable(exc) from exc

    @asynccontextmanager
    async def singleton(self, name: str) -> AsyncIterator[bool]:
        """True inside when this replica may run job `name` now (pg_try_advisory_lock); always
        True on SQLite, which one bot process owns."""
        if not self.is_postgres:
            yield True
            return
        key = zlib.crc32(name.encode("utf-8"))
        conn = await asyncio.to_thread(self.engine.connect)
        try:
            got = await asyncio.to_thread(
                lambda: bool(
                    conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
                )
            )
            try:
                yield got
            finally:
                if got:
                    await asyncio.to_thread(
                        conn.execute, text("SELECT pg_advisory_unlock(:k)"), {"k": key}
                    )
        finally:
            await asyncio.to_thread(conn.close)

    def dispose(self) -> None:
        self.engine.dispose()
