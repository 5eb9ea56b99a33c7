"""A real systemd-journald of the test's own, storing the kernel log in a folder the test mounts.

The chart's journal mode mounts the host's journal folder read-only; here that folder is
`<tmp>/log/journal`. journald has no option for its storage path, so it runs in a private mount
namespace where the test's folder is bind-mounted over /var/log and a tmpfs over /run: its
sockets and runtime files cannot meet the lab's shared journald (tests/lab/logdaemons.py) or the
host's, and nothing outside the namespace changes. Run under /tmp/kernbot-kernel.lock
(scripts/image-test holds it). Stopped by its pid at the end.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lab._procs import stop

JOURNALD = "/lib/systemd/systemd-journald"


def _has_kernel_entries(journal_dir: Path) -> bool:
    argv = ["journalctl", "-D", str(journal_dir), "-k", "-n", "1", "-q", "--no-pager"]
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    return res.returncode == 0 and bool(res.stdout.strip())


@contextmanager
def private_journald(base: Path, timeout: float = 20.0) -> Iterator[Path]:
    """Yield the journal folder (`base/log/journal`) once it holds kernel messages."""
    for need in (JOURNALD, "unshare", "journalctl"):
        if shutil.which(need) is None and not Path(need).exists():
            pytest.skip(f"{need} is not installed (apt-get install systemd util-linux)")
    log_dir = base / "log"
    journal = log_dir / "journal"
    journal.mkdir(parents=True)
    conf = base / "journald.conf"
    conf.write_text("[Journal]\nStorage=persistent\nReadKMsg=yes\nSyncIntervalSec=1s\n")
    script = (
        "set -e; mount -t tmpfs -o mode=755 tmpfs /run; "
        f"mount --bind {log_dir} /var/log; "
        f"mount --bind {conf} /etc/systemd/journald.conf; "
        # Storage=persistent writes to /var/log/journal once flushed: this flag says it was
        "mkdir -p /run/systemd/journal; touch /run/systemd/journal/flushed; "
        f"exec {JOURNALD}"
    )
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + timeout
        while not _has_kernel_entries(journal):
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise AssertionError(f"journald exited {proc.returncode}: {err[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"journald wrote no kernel messages to {journal}")
            time.sleep(0.5)
        yield journal
    finally:
        stop(proc, signal.SIGTERM)
