"""The log daemons of the lab, and SYN floods explained from what those daemons wrote.

journald and rsyslogd are how most people read kernel messages; the lab starts them only when
none runs (one /proc/kmsg reader, one journald per machine). These tests check the lab's sharing
rules and that `kernbot scan` finds a real flood in `journalctl -k -o json` and in kern.log.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lab.logdaemons import find_process, journald, rsyslog
from lab.scan import run_scan, syn_events_for
from lab.synflood import syn_flood
from lab.waiting import poll_until

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]


def journal_json() -> list[dict[str, object]]:
    argv = ["journalctl", "-k", "--no-pager", "-o", "json"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_nested_users_share_one_rsyslogd(root_kernel: None) -> None:
    with rsyslog() as outer, rsyslog() as inner:
        assert outer == inner
        pid = find_process("rsyslogd")
        assert pid is not None
        assert os.path.exists(outer)


def test_journald_stores_the_kernel_flood_line_with_kernel_transport(
    journald_running: None, netns_ready: None, tmp_path: Path
) -> None:
    flood = syn_flood(family="ipv6", syncookies=1)
    assert flood.kernel_line is not None
    needle = f"]:{flood.port}. Sending cookies."

    def stored() -> list[dict[str, object]]:
        return [e for e in journal_json() if needle in str(e.get("MESSAGE", ""))]

    assert poll_until(lambda: bool(stored()), 15), f"journald never stored {needle!r}"
    entry = stored()[0]
    assert entry["_TRANSPORT"] == "kernel"
    log = tmp_path / "journal.json"
    log.write_text(subprocess.run(
        ["journalctl", "-k", "--no-pager", "-o", "json"], capture_output=True, text=True,
        check=True).stdout)  # fmt: skip
    run = run_scan(str(log))
    assert run.returncode == 0, run.explain()
    (event,) = syn_events_for(run, flood.port, flood.listen_addr)
    assert event["family"] == "ipv6" and event["action"] == "cookies"


@pytest.mark.parametrize("syncookies", [1, 0])
def test_rsyslog_kern_log_flood_found_by_scan(
    rsyslog_kern_log: str, netns_ready: None, tmp_path: Path, syncookies: int
) -> None:
    flood = syn_flood(family="ipv4", syncookies=syncookies)
    assert flood.kernel_line is not None
    needle = f"{flood.listen_addr}:{flood.port}."
    kern_log = Path(rsyslog_kern_log)
    assert poll_until(lambda: needle in kern_log.read_text(errors="replace"), 15)
    copy = tmp_path / "kern.log"
    copy.write_text(kern_log.read_text(errors="replace"))
    run = run_scan(str(copy))
    assert run.returncode == 0, run.explain()
    (event,) = syn_events_for(run, flood.port, flood.listen_addr)
    assert event["action"] == ("cookies" if syncookies else "drop")
    assert event["family"] == "ipv4"


def test_journald_context_reuses_a_running_journald(root_kernel: None) -> None:
    with journald() as first, journald() as second:
        assert first == second
        assert find_process("systemd-journal") == first
