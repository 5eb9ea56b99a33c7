"""Fixtures for the agent tests: a loopback fake bot and agent subprocesses (cleaned up)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_process import TOKEN, AgentProcess

from fakes.fake_bot import FakeBot


@pytest.fixture
async def fake_bot() -> AsyncIterator[FakeBot]:
    bot = await FakeBot(TOKEN).start()
    yield bot
    await bot.stop()


@pytest.fixture
def agent_factory(tmp_path: Path) -> Iterator[Any]:
    made: list[AgentProcess] = []

    def make(bot: FakeBot, env: dict[str, str] | None = None) -> AgentProcess:
        agent = AgentProcess(tmp_path / f"state{len(made)}", bot.url, env)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.cleanup()
