"""Shared fixtures: the kernel lab's (tests/lab/fixtures.py) and the fake Slack's
(tests/fakes/fake_slack.py), importable by every test file."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fakes.fake_slack import FakeSlack, ResponseUrlRecorder
from lab.fixtures import (
    journald_running,
    netns_ready,
    real_oom,
    root_kernel,
    rsyslog_kern_log,
)

__all__ = ["journald_running", "netns_ready", "real_oom", "root_kernel", "rsyslog_kern_log"]


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    """The fake Slack Web API, a real server on loopback."""
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def recorder() -> AsyncIterator[ResponseUrlRecorder]:
    """Records what the bot posts to a slash command's response_url."""
    async with ResponseUrlRecorder() as rec:
        yield rec
