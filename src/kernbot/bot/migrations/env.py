"""Alembic environment: always online, on the connection the bot handed over."""

from __future__ import annotations

from alembic import context

from kernbot.bot.migrations import VERSION_TABLE
from kernbot.bot.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("kernbot migrations run only through kernbot.bot.migrations.upgrade()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
