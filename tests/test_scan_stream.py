"""`kernbot scan` streams: events leave as they become final, memory stays flat on any input.

Each bounded input runs a real `python -m kernbot scan` process and checks its peak RSS (VmHWM
in /proc/PID/status, sampled while it runs: a high-water mark, so the last sample holds the peak
so far; `wait4`'s ru_maxrss would start from this test process's size at fork) against a ceiling:
a line that never ends, a gzip bomb, and hundreds of MB of log fed through a pipe, not stored.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
RSS_CEILING_MIB = 150
MIB = 1 << 20

REPORT = [
    "[{s:5d}.{u:06d}] app invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
    "[{s:5d}.{u:06d}] CPU: 1 PID: {pid} Comm: app Not tainted 6.8.0-45-generic #45-Ubuntu",
    "[{s:5d}.{u:06d}] memory: usage 102400kB, limit 102400kB, failcnt 12",
    "[{s:5d}.{u:06d}] swap: usage 0kB, limit 0kB, failcnt 0",
    "[{s:5d}.{u:06d}] Memory cgroup stats for /system.slice/app.service:",
    "[{s:5d}.{u:06d}] Tasks state (memory values in pages):",
    "[{s:5d}.{u:06d}] [  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem "
    "pgtables_bytes swapents oom_score_adj name",
    "[{s:5d}.{u:06d}] [{pid:7d}]     0 {pid:5d}    30000    25000    24900      100         0 "
    "  262144        0             0 app",
    "[{s:5d}.{u:06d}] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
    "mems_allowed=0,oom_memcg=/system.slice/app.service,task_memcg=/system.slice/app.service,"
    "task=app,pid={pid},uid=0",
    "[{s:5d}.{u:06d}] Memory cgroup out of memory: Killed process {pid} (app) total-vm:120000kB, "
    "anon-rss:99600kB, file-rss:400kB, shmem-rss:0kB, UID:0 pgtables:256kB oom_score_adj:0",
    "[{s:5d}.{u:06d}] oom_reaper: reaped process {pid} (app), now anon-rss:0kB, file-rss:0kB, "
    "shmem-rss:0kB",
]
NOISE = "[{s:5d}.{u:06d}] e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx"


def report(pid: int, usec: int) -> str:
    out = []
    for i, line in enumerate(REPORT):
        t = usec + i * 10
        out.append(line.format(s=t // 1_000_000, u=t % 1_000_000, pid=pid) + "\n")
    return "".join(out)


def argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "kernbot", "scan", *args]


def run_measured(
    args: list[str], feed: Callable[[], Iterator[bytes]] | None = None
) -> tuple[int, bytes, str, float]:
    """Exit status, stdout, stderr and peak RSS (MiB) of one scan; `feed` writes its stdin."""
    with subprocess.Popen(
        argv(*args),
        stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        return _measured(proc, feed)


def _measured(
    proc: subprocess.Popen[bytes], feed: Callable[[], Iterator[bytes]] | None
) -> tuple[int, bytes, str, float]:
    out: list[bytes] = []
    err: list[bytes] = []
    hwm: list[int] = []
    status = Path(f"/proc/{proc.pid}/status")

    def sample() -> None:
        while proc.poll() is None:
            try:
                text = status.read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    hwm.append(int(line.split()[1]))
            time.sleep(0.02)

    readers = [
        threading.Thread(target=sample),
        threading.Thread(target=lambda: out.append(proc.stdout.read())),  # type: ignore[union-attr]
        threading.Thread(target=lambda: err.append(proc.stderr.read())),  # type: ignore[union-attr]
    ]
    for t in readers:
        t.start()
    if feed is not None:
        assert proc.stdin is not None
        try:
            for chunk in feed():
                proc.stdin.write(chunk)
        finally:
            proc.stdin.close()
    proc.wait()
    for t in readers:
        t.join(timeout=60)
    assert hwm, "the scan ended before its memory could be read"
    return proc.returncode, out[0], err[0].decode(), max(hwm) / 1024


def test_first_event_is_printed_before_the_input_ends() -> None:
    """A pipe held open (as `journalctl -kf | kernbot scan --json -`): the event comes out."""
    with subprocess.Popen(
        argv("--json", "-"), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(report(4242, 5_000_000).encode())
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready, "no event while the pipe is still open"
            event = json.loads(proc.stdout.readline())
            assert event["victim"]["pid"] == 4242 and event["killed"] is True
            assert event["reaper"]["pid"] == 4242
            assert proc.poll() is None  # still reading: the input has not ended
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)
        assert proc.returncode == 0
        assert proc.stdout.read() == b""  # the same event is not printed twice


def test_human_output_prints_each_event_as_it_completes() -> None:
    """The same without --json: the human block of the first kill is on stdout while the pipe is
    still open, the second follows when its report completes, the summary only at the end."""
    with subprocess.Popen(argv("-"), stdin=subprocess.PIPE, stdout=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        fd = proc.stdout.fileno()

        def read_until(needle: bytes, seen: bytes) -> bytes:
            deadline = time.monotonic() + 30
            while needle not in seen and time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], 1)
                if ready:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    seen += chunk
            return seen

        try:
            proc.stdin.write(report(4242, 5_000_000).encode())
            proc.stdin.flush()
            out = read_until(b"(pid 4242)", b"")
            assert b"(pid 4242)" in out, out
            assert proc.poll() is None  # still reading: the input has not ended
            assert b"(pid 4343)" not in out
            proc.stdin.write(report(4343, 9_000_000).encode())
            proc.stdin.flush()
            out = read_until(b"(pid 4343)", out)
            assert b"(pid 4343)" in out and proc.poll() is None, out
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)
        rest = proc.stdout.read()
        assert proc.returncode == 0
        assert b"(pid 4242)" not in rest and b"(pid 4343)" not in rest  # each printed once
        assert b"Found 2 OOM kills" not in out  # the summary waits for the end of the input
        assert b"Found 2 OOM kills (app)." in rest, rest


def test_json_head_returns_at_once_on_a_long_log(tmp_path: Path) -> None:
    """`| head -1` on a big log: the first event leaves long before the end of the file."""
    log = tmp_path / "loop.log"
    with log.open("w") as f:
        for i in range(20_000):
            f.write(report(10_000 + i, 5_000_000 + i * 1_000_000))
    start = time.monotonic()
    with subprocess.Popen(
        argv("--json", str(log)), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as proc:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        took = time.monotonic() - start
        proc.stdout.close()
        proc.wait(timeout=120)
    assert first["victim"]["pid"] == 10_000
    assert proc.returncode in (0, 1, 141, -13)
    full = subprocess.run(argv("--json", str(log)), capture_output=True, timeout=300, check=True)
    assert len(full.stdout.splitlines()) == 20_000
    assert took < 30


def test_a_line_that_never_ends_is_cut_and_memory_stays_flat() -> None:
    """`/dev/zero` as a user would try it, bounded here to 400 MB of one line through a pipe."""

    def zeros() -> Iterator[bytes]:
        block = b"\0" * MIB
        for _ in range(400):
            yield block
        yield b"\n" + report(77, 9_000_000).encode()

    code, out, err, peak = run_measured(["--json", "-"], zeros)
    assert peak < RSS_CEILING_MIB, f"peak RSS {peak:.0f} MiB"
    assert code == 0, err
    assert "1 line(s) longer than 65536 bytes were cut" in err
    (event,) = [json.loads(line) for line in out.splitlines()]
    assert event["victim"]["pid"] == 77  # the report after the endless line is still found


def test_gzip_bomb_is_inflated_a_piece_at_a_time(tmp_path: Path) -> None:
    """A small .gz that expands to 600 MB of log: flat memory, the report inside found."""
    bomb = tmp_path / "bomb.log.gz"
    noise = "".join(NOISE.format(s=1, u=i % 1_000_000) + "\n" for i in range(10_000)).encode()
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    with bomb.open("wb") as f:
        f.write(packer.compress(report(55, 1_000_000).encode()))
        for _ in range(600 * MIB // len(noise)):
            f.write(packer.compress(noise))
        f.write(packer.compress(report(56, 9_000_000).encode()))
        f.write(packer.flush())
    assert bomb.stat().st_size < 20 * MIB
    code, out, err, peak = run_measured(["--json", str(bomb)])
    assert peak < RSS_CEILING_MIB, f"peak RSS {peak:.0f} MiB"
    assert code == 0, err
    pids = [json.loads(line)["victim"]["pid"] for line in out.splitlines()]
    assert pids == [55, 56]


def test_hundreds_of_mb_of_log_through_a_pipe(tmp_path: Path) -> None:
    """300 MB of kernel log, never stored: noise with OOM reports throughout. Every kill is
    printed once and memory stays under the ceiling (events are not kept to the end)."""
    noise = "".join(NOISE.format(s=2, u=i) + "\n" for i in range(20_000)).encode()
    rounds = 300 * MIB // len(noise)

    def log() -> Iterator[bytes]:
        for i in range(rounds):
            yield noise
            yield "".join(
                report(100_000 + i * 10 + k, 10_000_000 + (i * 10 + k) * 1_000_000)
                for k in range(10)
            ).encode()

    code, out, err, peak = run_measured(["-"], log)
    assert peak < RSS_CEILING_MIB, f"peak RSS {peak:.0f} MiB"
    assert code == 0, err
    text = out.decode()
    assert text.rstrip().endswith(f"Found {rounds * 10} OOM kills (app).")
