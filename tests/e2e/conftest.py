"""Fixtures of the end-to-end tests: the fake Slack, a response_url recorder and the kernbot
subprocesses a test started (killed by pid at teardown if a test left one running)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from e2e_processes import KernbotProcess

from fakes.fake_slack import FakeSlack, ResponseUrlRecorder


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def recorder() -> AsyncIterator[ResponseUrlRecorder]:
    async with ResponseUrlRecorder() as rec:
        yield rec


@pytest.fixture
def procs() -> Iterator[list[KernbotProcess]]:
    made: list[KernbotProcess] = []
    yield made
    for p in made:
        p.cleanup()
