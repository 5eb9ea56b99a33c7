"""The bot's durable state: events, agents, alert threads, the notification outbox, silences.

SQLAlchemy lives only in this package; the rest of the bot talks to `Database` and `Repository`.
"""

from kernbot.bot.store.database import Database, StoreUnavailable
from kernbot.bot.store.repository import Repository

__all__ = ["Database", "Repository", "StoreUnavailable"]
