"""Benchmark `kernbot scan --json` on a 1,000,000-line mixed kernel log, as a user runs it.

Writes realistic dmesg noise with real corpus reports and SYN flood lines planted at known
places, runs the real command as a subprocess (whole-process time: interpreter start, imports,
reading, detection, JSON output), checks that every planted event came out, and prints lines/s
and the child's peak RSS.

    python bench/scan_bench.py [--lines N] [--keep DIR] [--case noise|oom-loop|both]

Two cases (issue 11): `noise`, a normal host (ordinary noise, a report now and then), and
`oom-loop`, a node in an OOM loop (the lines are almost all memcg OOM reports back to back, each
with its own victim pid, kill line and reaper line). Figures are printed as wall time and as CPU
time (user+sys) of the child, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "corpus"
PLANTED = (
    "oom-ubuntu-5.13-sysrq-global.txt",
    "oom-6.x-k8s-systemd-containerd-cgv2-memcg-grep.txt",
    "oom-arch-6.1.1-global.txt",
    "oom-4.20.12-x86-global-no-oomkill-line.txt",
    "oom-rhel8-4.18.0-147-k8s-systemd-docker-cgv1-memcg.txt",
    "oom-ubuntu-4.15.0-63-k8s-cgroupfs-cgv1-memcg-syslog.txt",
    "oom-proxmox-5.15-cgv2-lxc-docker-memcg.txt",
    "syn-6.2plus-addr-ipv4-printk-caller.txt",
    "syn-3.17to6.1-request_sock_TCPv6-dropping-dmesgT-ru-locale.txt",
    "syn-6.2plus-addr-ipv4-any-email-wrapped.txt",
    "syn-3.5to3.16-or-el7-TCP-TCP-port-only-dmesg.txt",
)
NOISE = (
    "e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
    "IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready",
    'audit: type=1400 audit({t}:{n}): apparmor="STATUS" operation="profile_replace" '
    'profile="unconfined" name="/usr/bin/man" pid={n} comm="apparmor_parser"',
    "EXT4-fs (sda1): mounted filesystem with ordered data mode. Opts: (null)",
    "docker0: port 1(veth{n:x}) entered forwarding state",
    "br-4f1c2a: port 2(veth{n:x}) entered disabled state",
    "device veth{n:x} left promiscuous mode",
    "usb 1-1: new high-speed USB device number {n} using xhci_hcd",
    "[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56 SRC=203.0.113.{b} DST=192.0.2.10 LEN=40 "
    "TOS=0x00 PREC=0x00 TTL=244 ID={n} PROTO=TCP SPT={p} DPT=23 WINDOW=1024 RES=0x00 SYN URGP=0",
    "nf_conntrack: nf_conntrack: table full, dropping packet",
    "systemd-journald[342]: Data hash table of /run/log/journal/x/system.journal has a fill "
    "level at 75.0 (1-2 of 3), suggesting rotation.",
    "kauditd_printk_skb: {b} callbacks suppressed",
    "perf: interrupt took too long (2503 > 2500), lowering kernel.perf_event_max_sample_rate",
    "TCP: eth0: Driver has suspect GRO implementation, TCP performance may be compromised.",
    "overlayfs: upperdir is in-use as upperdir/workdir of another mount, accessing files from "
    "both mounts will result in undefined behavior.",
    "process 'usr/bin/node' started with executable stack",
    "cgroup: fork rejected by pids controller in /kubepods.slice/kubepods-burstable.slice",
    "blk_update_request: I/O error, dev fd0, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio 0",
    "Memory usage of php-fpm pool www is normal",
    "workqueue: vmstat_shepherd hogged CPU for >10000us 4 times, consider switching to WQ_UNBOUND",
)


def write_log(path: Path, total: int, seed: int = 7) -> list[tuple[int, str]]:
    """The mixed log; returns (line number, corpus file) of each planted file.

    Written in batches so this process stays small: a child's peak RSS as reported by
    getrusage() starts from its parent's size at fork.
    """
    rng = random.Random(seed)
    chunks = [(name, (CORPUS / name).read_text().splitlines()) for name in PLANTED]
    planted_lines = sum(len(lines) for _, lines in chunks)
    gap = (total - planted_lines) // (len(chunks) + 1)
    where: list[tuple[int, str]] = []
    written = 0
    usec = 5_000_000

    def noise(count: int) -> str:
        nonlocal usec
        batch = []
        for _ in range(count):
            usec += rng.randrange(1, 2_000_000)
            msg = rng.choice(NOISE).format(
                n=rng.randrange(100, 99999),
                t=usec // 1_000_000,
                b=rng.randrange(1, 254),
                p=rng.randrange(1024, 65535),
            )
            batch.append(f"[{usec // 1_000_000:5d}.{usec % 1_000_000:06d}] {msg}\n")
        return "".join(batch)

    with path.open("w") as out:
        for name, lines in [*chunks, ("", [])]:
            remaining = gap if name else total - written
            while remaining > 0:
                step = min(remaining, 50_000)
                out.write(noise(step))
                written += step
                remaining -= step
            if name:
                where.append((written + 1, name))
                out.write("".join(line + "\n" for line in lines))
                written += len(lines)
    return where


LOOP_TEMPLATE = "oom-proxmox-5.15-cgv2-lxc-docker-memcg.txt"
LOOP_PREFIX = "[Di Aug 12 03:54:03 2025] "
LOOP_VICTIM = "3902942"
LOOP_TABLE_ROWS = 12


def loop_template() -> list[str]:
    """One real memcg report (Proxmox 5.15, cgroup v2) as messages, the task table shortened."""
    out: list[str] = []
    rows = 0
    for line in (CORPUS / LOOP_TEMPLATE).read_text().splitlines():
        msg = line[len(LOOP_PREFIX) :] if line.startswith(LOOP_PREFIX) else "\0" + line.lstrip()
        if msg.startswith("[") and "]" in msg and LOOP_VICTIM not in msg:
            rows += 1
            if rows > LOOP_TABLE_ROWS:
                continue
        out.append(msg)
    return out


LOOP_VARIES = (
    ("PID: 3923954 ", "PID: {trigger} "),
    ("failcnt 83420", "failcnt {failcnt}"),
    ("anon 31154200576", "anon {anon}"),
    ("pgfault 61533557290", "pgfault {pgfault}"),
    ("pgscan 314913254", "pgscan {pgscan}"),
    ("pgsteal 199641295", "pgsteal {pgsteal}"),
    (" 3195335 ", " {rss} "),
    ("anon-rss:12625252kB", "anon-rss:{anon_rss}kB"),
)
"""What differs from one report of a real OOM loop to the next besides the victim's pid: the
task that hit the limit, the failure count, memory.stat's counters, the victim's size. A loop
of identical reports would let a cache of parsed lines look faster than it is on a real node."""


def _loop_report(template: list[str], kill: int) -> list[str]:
    wobble = kill % 89
    values = {
        "trigger": 5_000_000 + kill,
        "failcnt": 83420 + kill,
        "anon": 31154200576 - wobble * 4096,
        "pgfault": 61533557290 + kill * 1013,
        "pgscan": 314913254 + kill * 31,
        "pgsteal": 199641295 + kill * 17,
        "rss": 3195335 - wobble,
        "anon_rss": 12625252 - wobble * 4,
    }
    out = []
    for msg in template:
        text = msg
        for old, new in LOOP_VARIES:
            if old in text:
                text = text.replace(old, new.format(**values))
        out.append(text.replace(LOOP_VICTIM, str(4_000_000 + kill)))
    return out


def write_oom_loop(path: Path, total: int) -> int:
    """A log of back-to-back memcg OOM reports (`[mono] msg`, indented continuations); returns
    how many reports (kills) it holds. Each report has its own victim pid, its own numbers
    (`LOOP_VARIES`) and a reaper line."""
    template = loop_template()
    kills = 0
    usec = 1_000_000
    written = 0
    with path.open("w") as out:
        while written < total:
            pid = str(4_000_000 + kills)
            batch = []
            for msg in _loop_report(template, kills):
                if msg.startswith("\0"):
                    batch.append(" " * 15 + msg[1:] + "\n")
                    continue
                usec += 37
                stamp = f"[{usec // 1_000_000:5d}.{usec % 1_000_000:06d}] "
                batch.append(stamp + msg + "\n")
            usec += 40_000
            batch.append(
                f"[{usec // 1_000_000:5d}.{usec % 1_000_000:06d}] oom_reaper: reaped process "
                f"{pid} (php-fpm), now anon-rss:0kB, file-rss:0kB, shmem-rss:156088kB\n"
            )
            usec += 500_000
            batch = batch[: total - written]
            out.write("".join(batch))
            written += len(batch)
            kills += 1 if len(batch) == len(template) + 1 else 0
    return kills


def signature(ev: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies a planted event independent of where it sits in the file."""
    victim = ev.get("victim") or {}
    return (
        ev["kind"],
        victim.get("pid"),
        victim.get("comm"),
        ev.get("port"),
        ev.get("addr"),
        ev.get("action"),
        ev.get("mono_usec"),
        ev.get("time"),
    )


def scan(
    *files: Path, keep: bool = True
) -> tuple[list[dict[str, Any]], float, float, float, int, str]:
    """Events, wall s, CPU s (user+sys), peak RSS MiB, exit status and stderr of one process.

    `os.wait4` gives the resource usage of that one child (getrusage(RUSAGE_CHILDREN) would
    report the largest child so far, whichever case it ran). A child's peak RSS starts from this
    process's size at fork, so events are parsed (`keep`) only after the timed runs.
    """
    argv = [sys.executable, "-m", "kernbot", "scan", "--json", *map(str, files)]
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        events = [json.loads(line) for line in out if line.startswith(b"{")] if keep else []
        stderr = err.read().decode("utf-8", "replace")
    cpu = usage.ru_utime + usage.ru_stime
    return events, elapsed, cpu, usage.ru_maxrss / 1024, proc.returncode, stderr


def _report(name: str, lines: int, size_mb: float, runs: list[Any]) -> None:
    elapsed = min(r[1] for r in runs)
    cpu = min(r[2] for r in runs)
    peak = max(r[3] for r in runs)
    print(f"[{name}] log: {lines:,} lines, {size_mb:.1f} MB")
    print(
        f"[{name}] whole process, best of {len(runs)}: {elapsed:.3f} s wall = "
        f"{lines / elapsed:,.0f} lines/s; {cpu:.3f} s CPU (user+sys) = "
        f"{lines / cpu:,.0f} lines/CPU-s; peak RSS {peak:.1f} MiB"
    )


def bench_noise(tmp: Path, lines: int, runs: int) -> bool:
    log = tmp / "mixed-kern.log"
    where = write_log(log, lines)
    expected: dict[tuple[Any, ...], str] = {}
    for _, name in where:
        for ev in scan(CORPUS / name)[0]:
            expected[signature(ev)] = name
    results = [scan(log, keep=False) for _ in range(runs)]
    events, _, _, _, code, stderr = scan(log)
    if code != 0:
        print(f"scan failed (exit {code}): {stderr[-2000:]}", file=sys.stderr)
        return False
    found = {signature(ev) for ev in events}
    missing = [(sig, name) for sig, name in expected.items() if sig not in found]
    _report("noise", lines, log.stat().st_size / 1e6, results)
    print(f"[noise] events: {len(events)} found, {len(expected)} planted, {len(missing)} missing")
    for sig, name in missing:
        print(f"MISSING from {name}: {sig}", file=sys.stderr)
    return not missing


def bench_oom_loop(tmp: Path, lines: int, runs: int) -> bool:
    log = tmp / "oom-loop.log"
    kills = write_oom_loop(log, lines)
    results = [scan(log, keep=False) for _ in range(runs)]
    events, _, _, _, code, stderr = scan(log)
    if code != 0:
        print(f"scan failed (exit {code}): {stderr[-2000:]}", file=sys.stderr)
        return False
    got = {
        ev["victim"]["pid"]
        for ev in events
        if ev.get("complete") and ev.get("reaper") and ev["victim"]["pid"] == ev["reaper"]["pid"]
    }
    want = {4_000_000 + i for i in range(kills)}
    missing = sorted(want - got)
    _report("oom-loop", lines, log.stat().st_size / 1e6, results)
    print(
        f"[oom-loop] events: {len(events)} found, {kills} planted kills, {len(missing)} missing "
        "(a kill counts when its event has the victim pid, the kill line and its reaper line)"
    )
    if missing:
        print(f"MISSING victims (first 10): {missing[:10]}", file=sys.stderr)
    return not missing


def compile_bytecode() -> None:
    """Compile kernbot's modules first, as `pip install` and the image do: a checkout run with
    PYTHONDONTWRITEBYTECODE=1 (this machine sets it) would compile every module it imports again
    in every timed process, ~0.2 s of the OOM-loop case that no installed kernbot pays."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("kernbot")
    assert spec is not None and spec.origin is not None
    compileall.compile_dir(Path(spec.origin).parent, quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="write the logs here and keep them")
    parser.add_argument("--runs", type=int, default=3, help="best of N runs (shared machines)")
    parser.add_argument("--case", choices=("noise", "oom-loop", "both"), default="both")
    args = parser.parse_args()
    compile_bytecode()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        if args.case in ("noise", "both"):
            ok &= bench_noise(where, args.lines, args.runs)
        if args.case in ("oom-loop", "both"):
            ok &= bench_oom_loop(where, args.lines, args.runs)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
