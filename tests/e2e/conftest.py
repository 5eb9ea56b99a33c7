"""Fixtures of the end-to-end tests: the kernbot subprocesses a test started (killed by pid at
teardown if a test left one running). The fake Slack and the response_url recorder come from
tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_processes import KernbotProcess


@pytest.fixture
def procs() -> Iterator[list[KernbotProcess]]:
    made: list[KernbotProcess] = []
    yield made
    for p in made:
        p.cleanup()
