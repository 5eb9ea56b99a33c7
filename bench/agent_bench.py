"""Benchmark of the real agent process (not a test): idle cost, cost under a busy log, latency.

Run as root on a test machine: `python bench/agent_bench.py [--idle-s 60] [--load-s 10]
[--kills 10] [--risk-s 60 --cgroups 500]`. Prints idle RSS/CPU, CPU while a followed log file gets
10,000 lines/s, the kernel record -> bot HTTP latency of real memcg OOM kills (p50/p99), and what
OOM-risk sampling costs with 500 real memory cgroups (made here, each with a limit, a tenth of
them with a process using memory). Targets: idle RSS <= 40 MiB, idle CPU <= 0.5 % of a core,
loaded CPU <= 25 %, latency p50 100 ms / p99 500 ms, OOM-risk sampling every 5 s <= 1 % of a core
and <= 5 MiB of RSS more than the same agent with sampling off.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "agent"))

from agent_process import AgentProcess  # noqa: E402

from fakes.fake_bot import FakeBot  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of this one process (not its children), from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_text(pid: int) -> str:
    """VmRSS with its split: anonymous (the heap: Python objects) and file-backed (libraries)."""
    return (
        f"RSS {rss_mib(pid):.1f} MiB (anon {rss_mib(pid, 'RssAnon'):.1f}, "
        f"file {rss_mib(pid, 'RssFile'):.1f})"
    )


async def started(bot: FakeBot, state: Path, env: dict[str, str]) -> AgentProcess:
    agent = AgentProcess(state, bot.url, {"KERNBOT_HEARTBEAT_INTERVAL_S": "30", **env})
    agent.start()
    await asyncio.to_thread(agent.wait_serving)
    await asyncio.sleep(3.0)  # first start: the backlog
    return agent


async def idle(bot: FakeBot, tmp: Path, seconds: float, spec: str = "kmsg") -> None:
    """`kmsg` sees whatever the machine's kernel prints meanwhile (counted: other builds' OOM
    kills are real work); a quiet `file:` log shows the agent's own timers alone."""
    env = {}
    if spec.startswith("file"):
        quiet = tmp / "quiet.log"
        quiet.write_text("")
        env["KERNBOT_SOURCE"] = f"file:{quiet}"
    agent = await started(bot, tmp / f"idle-{spec}", env)
    assert agent.proc is not None
    pid = agent.proc.pid
    read0 = (await agent.get("/v1/status"))["records_read"]
    c0, t0 = cpu_s(pid), time.monotonic()
    await asyncio.sleep(seconds)
    cpu = (cpu_s(pid) - c0) / (time.monotonic() - t0) * 100
    read = (await agent.get("/v1/status"))["records_read"] - read0
    print(
        f"idle ({seconds:.0f} s, {spec}): {rss_text(pid)}, CPU {cpu:.2f} % of a core, "
        f"{read} kernel records read meanwhile"
    )
    agent.terminate()


def report_lines(count: int) -> list[str]:
    """`count` lines of back-to-back memcg OOM reports (scan_bench's OOM-loop log)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from scan_bench import write_oom_loop

    with tempfile.TemporaryDirectory(prefix="kernbot-bench-") as d:
        path = Path(d) / "loop.log"
        write_oom_loop(path, count)
        return path.read_text().splitlines(keepends=True)


async def loaded(bot: FakeBot, tmp: Path, seconds: float, rate: int, kind: str) -> None:
    log = tmp / f"kern-{kind}.log"
    log.write_text("")
    agent = await started(bot, tmp / f"load-{kind}", {"KERNBOT_SOURCE": f"file:{log}"})
    assert agent.proc is not None
    pid = agent.proc.pid
    filler = "[ 1234.567890] eth0: link is busy, nothing to see here (bench filler line)\n"
    total = int(seconds * rate) + rate
    lines = report_lines(total) if kind == "reports" else [filler] * total
    events0 = len(bot.events)
    c0, t0 = cpu_s(pid), time.monotonic()
    written = 0
    with open(log, "a") as f:  # noqa: ASYNC230 - the writer is the load, not the agent
        while (elapsed := time.monotonic() - t0) < seconds:
            due = min(int(elapsed * rate), total) - written
            if due > 0:
                f.write("".join(lines[written : written + due]))
                f.flush()
                written += due
            await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)
    took = time.monotonic() - t0
    cpu = (cpu_s(pid) - c0) / took * 100
    status = await agent.get("/v1/status")
    shipped = len(bot.events) - events0
    print(
        f"loaded with {kind} ({rate}/s for {seconds:.0f} s, file source): CPU {cpu:.1f} % of a "
        f"core, {rss_text(pid)}, records read {status['records_read']} of {written}, "
        f"{shipped} events at the bot"
    )
    agent.terminate()


async def latency(bot: FakeBot, tmp: Path, kills: int) -> None:
    from lab.memcg import memcg_oom

    agent = await started(bot, tmp / "lat", {})
    lat: list[float] = []
    for _ in range(kills):
        r = await asyncio.to_thread(memcg_oom)
        ts = next(rec.ts_usec for rec in r.records if rec.message == r.kill_line) / 1e6

        def mine(e: dict[str, object], pid: int = r.victim_pid) -> bool:
            victim = e.get("victim")
            return isinstance(victim, dict) and victim.get("pid") == pid

        got = await bot.wait_for(mine, timeout=10)
        if got:
            lat.append((float(got[0]["_received"]) - ts) * 1000)
    lat.sort()
    p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
    print(
        f"latency kill line -> bot ({len(lat)} real memcg OOM kills): "
        f"p50 {statistics.median(lat):.0f} ms, p99 {p99:.0f} ms, max {lat[-1]:.0f} ms"
    )
    agent.terminate()


def _make_cgroups(n: int) -> tuple[Path, list[subprocess.Popen[bytes]]]:
    """`n` v1/v2 memory cgroups with a 256 MiB limit under one parent; every tenth instead has
    a 40 MiB limit and a process holding ~20 MiB in it, so its usage is real and past half its
    limit (the sampler reads more files and fits the growth of such "hot" cgroups)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from lab.privileges import memory_cgroup_root

    found = memory_cgroup_root()
    if found is None:
        raise SystemExit("no memory cgroup hierarchy: run as root on a cgroup v1/v2 machine")
    root, version = found
    parent = Path(root) / f"kernbot-bench-{os.getpid()}"
    parent.mkdir()
    if version == 2:
        (Path(root) / "cgroup.subtree_control").write_text("+memory")
        (parent / "cgroup.subtree_control").write_text("+memory")
    limit_file = "memory.max" if version == 2 else "memory.limit_in_bytes"
    holders: list[subprocess.Popen[bytes]] = []
    hold = (
        "import os, sys; open(sys.argv[1], 'w').write(str(os.getpid())); "
        "b = bytearray(20 << 20); b[::4096] = b'1' * (len(b) // 4096); sys.stdin.read()"
    )
    for i in range(n):
        cg = parent / f"cg-{i:04d}"
        cg.mkdir()
        hot = i % 10 == 0
        (cg / limit_file).write_text(str((40 if hot else 256) << 20))
        if hot:
            procs = str(cg / "cgroup.procs")
            holders.append(
                subprocess.Popen([sys.executable, "-S", "-c", hold, procs], stdin=subprocess.PIPE)
            )
    return parent, holders


def _remove_cgroups(parent: Path, holders: list[subprocess.Popen[bytes]]) -> None:
    for p in holders:
        p.kill()
        p.wait()
    for cg in sorted(parent.iterdir()):
        if cg.is_dir():
            for _ in range(50):
                try:
                    cg.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)
    parent.rmdir()


async def risk_cost(bot: FakeBot, tmp: Path, seconds: float, n: int) -> None:
    """Two agents side by side on a quiet log, OOM-risk sampling every 5 s vs off, with `n`
    limited cgroups on the host: the difference is what the sampling costs."""
    parent, holders = await asyncio.to_thread(_make_cgroups, n)
    try:
        quiet = tmp / "quiet-risk.log"
        quiet.write_text("")
        base = {"KERNBOT_SOURCE": f"file:{quiet}"}
        on = await started(bot, tmp / "risk-on", {**base, "KERNBOT_RISK_SAMPLE_INTERVAL_S": "5"})
        off = await started(bot, tmp / "risk-off", {**base, "KERNBOT_RISK_SAMPLE_INTERVAL_S": "0"})
        assert on.proc is not None and off.proc is not None
        await asyncio.sleep(10.0)  # discovery and the first samples
        pids = {"on": on.proc.pid, "off": off.proc.pid}
        c0 = {k: cpu_s(p) for k, p in pids.items()}
        t0 = time.monotonic()
        await asyncio.sleep(seconds)
        took = time.monotonic() - t0
        cpu = {k: (cpu_s(p) - c0[k]) / took * 100 for k, p in pids.items()}
        rss = {k: rss_mib(p) for k, p in pids.items()}
        busy = os.getloadavg()[0]
        watched = (await on.get("/v1/status"))["risk_cgroups"]
        print(
            f"oom-risk sampling every 5 s, {n} limited cgroups ({took:.0f} s wall): "
            f"CPU on {cpu['on']:.2f} % vs off {cpu['off']:.2f} % of a core "
            f"(+{cpu['on'] - cpu['off']:.2f} %), RSS on {rss['on']:.1f} MiB vs off "
            f"{rss['off']:.1f} MiB (+{rss['on'] - rss['off']:.1f} MiB); load average {busy:.1f}; "
            f"the agent watched {watched} cgroups"
        )
        print(f"  on:  {rss_text(pids['on'])}\n  off: {rss_text(pids['off'])}")
        on.terminate()
        off.terminate()
    finally:
        await asyncio.to_thread(_remove_cgroups, parent, holders)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle-s", type=float, default=60.0)
    ap.add_argument("--load-s", type=float, default=10.0)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--risk-s", type=float, default=60.0)
    ap.add_argument("--cgroups", type=int, default=500)
    ap.add_argument("--load", choices=("filler", "reports", "both"), default="both")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from scan_bench import compile_bytecode

    compile_bytecode()  # as installed: the agent's first report imports modules (advice, ...)
    bot = await FakeBot().start()
    try:
        with tempfile.TemporaryDirectory(prefix="kernbot-bench-") as d:
            tmp = Path(d)
            if args.idle_s > 0:
                await idle(bot, tmp, args.idle_s)
                await idle(bot, tmp, args.idle_s, "file (quiet)")
            if args.load_s > 0:
                for kind in ("filler", "reports"):
                    if args.load in (kind, "both"):
                        await loaded(bot, tmp, args.load_s, args.rate, kind)
            if args.kills > 0:
                await latency(bot, tmp, args.kills)
            if args.risk_s > 0:
                await risk_cost(bot, tmp, args.risk_s, args.cgroups)
    finally:
        await bot.stop()


if __name__ == "__main__":
    asyncio.run(main())
