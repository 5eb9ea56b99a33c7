"""The log daemons users read kernel messages through: systemd-journald and Debian's rsyslogd.

`kernbot scan` must understand `journalctl -k` output and /var/log/kern.log, so the tests need a
journald that reads /dev/kmsg and an rsyslogd whose imklog writes a kern.log. There is no init
system here, so the lab starts them by hand, but only when none runs: one journald per machine,
and only ONE reader of /proc/kmsg may exist (it consumes messages), so a running rsyslogd is
reused rather than joined by a second one.

Several test processes may use them at once. A lock file serialises "is one running? start
one", every user holds a shared lock while using it, and the process that started a daemon stops
it (by pid) at the end only if no one else holds the lock; otherwise it is left for them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from lab._procs import stop
from lab.privileges import require_program

LOCK_DIR = "/tmp"
SYSTEM_KERN_LOG = "/var/log/kern.log"


def find_process(comm: str) -> int | None:
    """Pid of a running process whose comm is `comm` (a /proc scan; nothing is signalled)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() == comm:
                    return int(entry)
        except OSError:
            continue
    return None


@dataclass
class _Held:
    pid: int
    proc: subprocess.Popen[bytes] | None
    count: int = 1


_HELD: dict[str, _Held] = {}
"""Daemons this test process is using: nested uses in one process share one lock."""
_LEFT_RUNNING: list[subprocess.Popen[bytes]] = []
"""Daemons we started that another test process still uses: kept referenced (not reaped by
the garbage collector mid-test, which would warn) until this process exits."""


@contextmanager
def _shared_daemon(
    name: str,
    find: Callable[[], int | None],
    start: Callable[[], subprocess.Popen[bytes]],
    on_stopped: Callable[[], None] = lambda: None,
) -> Iterator[tuple[int, bool]]:
    """Yield (pid, started_here) of a daemon shared between test processes (see module doc).

    Two lock files: `start` is held exclusively only while checking for / starting the daemon;
    `users` is held shared by every user process for as long as it uses the daemon. At the end
    the starter stops it only if it can upgrade its `users` lock, i.e. no other process is using
    it. Within one process, nested uses are counted and share the outermost use's lock.
    """
    held = _HELD.get(name)
    if held is not None:
        held.count += 1
        try:
            yield held.pid, False  # the outermost use started it (or found it)
        finally:
            held.count -= 1
        return
    base = os.path.join(LOCK_DIR, f"kernbot-lab-{name}")
    users = os.open(f"{base}.users.lock", os.O_RDWR | os.O_CREAT)
    proc: subprocess.Popen[bytes] | None = None
    try:
        fcntl.flock(users, fcntl.LOCK_SH)
        starting = os.open(f"{base}.start.lock", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(starting, fcntl.LOCK_EX)
            pid = find()
            if pid is None:
                proc = start()
                pid = proc.pid
        finally:
            os.close(starting)
        _HELD[name] = _Held(pid=pid, proc=proc)
        yield pid, proc is not None
    finally:
        _HELD.pop(name, None)
        if proc is not None:
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                alone = True
            except BlockingIOError:
                alone = False
            if alone:
                stop(proc)
                on_stopped()
            else:
                _LEFT_RUNNING.append(proc)
        os.close(users)


def _wait(
    check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"{what}: the daemon exited with {proc.returncode}: {err[-2000:]}")
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"{what}: not ready after {timeout}s")
        time.sleep(0.1)


def _journal_has_kernel_messages() -> bool:
    argv = ["journalctl", "-k", "--no-pager", "-n", "1", "-q"]
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    return out.returncode == 0 and bool(out.stdout.strip())


@contextmanager
def journald(timeout: float = 15.0) -> Iterator[int]:
    """A systemd-journald reading /dev/kmsg, so `journalctl -k` works; yields its pid.

    Reuses a running one; otherwise starts `/lib/systemd/systemd-journald` (its default config
    reads the kernel log) and waits until `journalctl -k` shows kernel messages.
    """
    binary = require_program("systemd-journald", "journalctl -k tests")
    require_program("journalctl", "journalctl -k tests")

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [binary], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _wait(_journal_has_kernel_messages, timeout, "systemd-journald", proc)
        return proc

    with _shared_daemon("journald", lambda: find_process("systemd-journal"), start) as (pid, _):
        yield pid


RSYSLOG_CONF = """\
global(workDirectory="{dir}")
module(load="imklog" PermitNonKernelFacility="on")
kern.* action(type="omfile" file="{log}")
user.* action(type="omfile" file="{dir}/ready.log")
"""
"""kern.log gets the kernel's records. Records that root writes to /dev/kmsg arrive with the user
facility, so ready.log shows that imklog is reading the ring buffer on a quiet machine."""


@contextmanager
def rsyslog(timeout: float = 15.0) -> Iterator[str]:
    """An rsyslogd writing kernel messages (imklog) to a kern.log; yields that file's path.

    A running system rsyslogd is reused with its /var/log/kern.log (Debian's default rule
    `kern.* -/var/log/kern.log`); a lab-started one (from another test process) with its file;
    otherwise one is started with a config of our own in a temporary directory (`-f`, `-i`).
    """
    binary = require_program("rsyslogd", "kern.log tests; apt-get install rsyslog")
    state = os.path.join(LOCK_DIR, "kernbot-lab-rsyslog.path")
    workdir = tempfile.mkdtemp(prefix="kernbot-lab-rsyslog-")
    ours = os.path.join(workdir, "kern.log")

    def start() -> subprocess.Popen[bytes]:
        conf = os.path.join(workdir, "rsyslog.conf")
        with open(conf, "w") as f:
            f.write(RSYSLOG_CONF.format(dir=workdir, log=ours))
        argv = [binary, "-n", "-f", conf, "-i", os.path.join(workdir, "rsyslogd.pid")]
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

        open(ours, "a").close()  # rsyslogd appends; the file exists before any kernel message

        def ready() -> bool:
            if os.path.exists(os.path.join(workdir, "ready.log")):
                return True
            with contextlib.suppress(OSError), open("/dev/kmsg", "w") as kmsg:
                kmsg.write("<6>kernbot-lab: rsyslogd readiness check\n")
            return False

        _wait(ready, timeout, "rsyslogd", proc)
        with open(state, "w") as f:
            f.write(f"{proc.pid} {ours}\n")
        return proc

    def cleanup() -> None:
        shutil.rmtree(workdir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(state)

    daemon = _shared_daemon("rsyslog", lambda: find_process("rsyslogd"), start, cleanup)
    with daemon as (pid, started):
        if not started:
            shutil.rmtree(workdir, ignore_errors=True)
        path = ours if started else _path_of_running(pid, state)
        if not os.path.exists(path):
            pytest.skip(f"rsyslogd (pid {pid}) runs but {path} does not exist")
        yield path


def _path_of_running(pid: int, state: str) -> str:
    """The kern.log of a running rsyslogd: the lab's record of it, else the system one."""
    try:
        with open(state) as f:
            recorded_pid, path = f.read().split(maxsplit=1)
        if int(recorded_pid) == pid:
            return path.strip()
    except (OSError, ValueError):
        pass
    return SYSTEM_KERN_LOG
