"""Shared fixtures: the kernel lab's (tests/lab/fixtures.py), importable by every test file."""

from lab.fixtures import (
    journald_running,
    netns_ready,
    real_oom,
    root_kernel,
    rsyslog_kern_log,
)

__all__ = ["journald_running", "netns_ready", "real_oom", "root_kernel", "rsyslog_kern_log"]
