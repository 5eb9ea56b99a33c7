"""Fixtures shared by the Slack edge tests: a running fake Slack and a response_url recorder."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fakes.fake_slack import FakeSlack, ResponseUrlRecorder


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def recorder() -> AsyncIterator[ResponseUrlRecorder]:
    async with ResponseUrlRecorder() as rec:
        yield rec
