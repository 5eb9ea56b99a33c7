"""pytest fixtures of the kernel lab; tests/conftest.py re-exports them.

Each fixture skips (with the reason) where the lab cannot run, so tests just ask for them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.memcg import OomResult, memcg_oom
from lab.privileges import require_netns, require_root_kernel


@pytest.fixture
def root_kernel() -> None:
    """Skip unless root, /dev/kmsg and a writable memory cgroup are available."""
    require_root_kernel()


@pytest.fixture
def netns_ready() -> None:
    """Skip unless network namespaces can be created here."""
    require_netns()


@pytest.fixture
def real_oom(root_kernel: None) -> OomResult:
    """One real memcg OOM kill (victim `kb-victim`, trigger `kb-trigger`, 64 MiB limit)."""
    return memcg_oom()


@pytest.fixture(scope="module")
def journald_running() -> Iterator[None]:
    """A systemd-journald reading /dev/kmsg for the module (started only if none runs)."""
    require_root_kernel()
    from lab.logdaemons import journald

    with journald():
        yield


@pytest.fixture(scope="module")
def rsyslog_kern_log() -> Iterator[str]:
    """Path of a kern.log an rsyslogd (imklog) is writing for the module."""
    require_root_kernel()
    from lab.logdaemons import rsyslog

    with rsyslog() as path:
        yield path
