"""`kernbot doctor`: checks what the agent and bot need on this host and says how to fix each gap.

Each check is a small function returning a `Finding`; the exit code is the worst status
(0 ok, 1 warning, 2 failure), so it can gate a rollout or a readiness script.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from kernbot.settings import UpSettings

Status = Literal["ok", "warn", "fail", "skip"]
_RANK: dict[Status, int] = {"ok": 0, "skip": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class HostPaths:
    """Where the checks look; tests point these at temporary trees."""

    kmsg: Path = Path("/dev/kmsg")
    proc: Path = Path("/proc")
    sys_fs_cgroup: Path = Path("/sys/fs/cgroup")
    journal_dirs: tuple[Path, ...] = (Path("/var/log/journal"), Path("/run/log/journal"))
    pod_log_dir: Path = Path("/var/log/pods")


def check_kmsg(paths: HostPaths) -> Finding:
    from kernbot.agent.sources.kmsg import KmsgUnreadable, open_kmsg

    try:
        fd = open_kmsg(paths.kmsg, paths.proc)
    except KmsgUnreadable as exc:
        return Finding("kmsg", "fail", f"cannot read {exc.path}: {exc.why}", exc.fix)
    os.close(fd)
    return Finding(
        "kmsg", "ok", f"{paths.kmsg} is readable: this node can use the default kmsg mode"
    )


def check_journal(paths: HostPaths, kmsg_ok: bool) -> Finding:
    present = [d for d in paths.journal_dirs if d.is_dir() and any(d.iterdir())]
    if present:
        mode = "" if kmsg_ok else " — this node needs journal mode (agent.source=journal)"
        return Finding("journal", "ok", f"journal files in {present[0]}{mode}")
    if kmsg_ok:
        return Finding("journal", "skip", "no persistent journal; not needed in kmsg mode")
    return Finding(
        "journal",
        "fail",
        "neither /dev/kmsg nor journal files are readable",
        "enable persistent journald storage (Storage=persistent) or allow /dev/kmsg",
    )


def check_proc(paths: HostPaths) -> Finding:
    if not (paths.proc / "meminfo").is_file():
        return Finding(
            "proc",
            "fail",
            f"{paths.proc}/meminfo missing",
            "mount the host's /proc read-only and set KERNBOT_PROC_ROOT",
        )
    pids = sum(1 for p in paths.proc.iterdir() if p.name.isdigit())
    if (paths.proc / "1/comm").is_file() and pids > 1:
        init = (paths.proc / "1/comm").read_text(errors="replace").strip()
        if init in {"kernbot", "python", "python3", "pause", "tini"}:
            return Finding(
                "proc",
                "warn",
                f"{paths.proc} shows a container's own processes ({pids} pids, pid 1 is {init!r})",
                "mount the host's /proc at /host/proc and set KERNBOT_PROC_ROOT=/host/proc",
            )
    return Finding("proc", "ok", f"{paths.proc}: {pids} processes visible")


def check_cgroup(paths: HostPaths) -> Finding:
    root = paths.sys_fs_cgroup
    if (root / "cgroup.controllers").is_file():
        ctrls = (root / "cgroup.controllers").read_text().split()
        if "memory" in ctrls:
            return Finding("cgroup", "ok", "cgroup v2 with the memory controller")
        return Finding(
            "cgroup",
            "warn",
            "cgroup v2 without the memory controller",
            "memcg OOMs cannot happen; container limits are not enforced",
        )
    if (root / "memory").is_dir():
        hybrid = " (hybrid: v2 also at unified/)" if (root / "unified").is_dir() else ""
        return Finding("cgroup", "ok", f"cgroup v1 memory controller{hybrid}")
    return Finding(
        "cgroup",
        "warn",
        f"no memory cgroup found under {root}",
        "only system-wide OOMs will be seen",
    )


def check_pod_logs(paths: HostPaths, in_kubernetes: bool) -> Finding:
    d = paths.pod_log_dir
    if d.is_dir() and os.access(d, os.R_OK | os.X_OK):
        n = sum(1 for _ in d.iterdir())
        return Finding("pod-logs", "ok", f"{d}: {n} pod log directories (pod names resolvable)")
    if in_kubernetes:
        return Finding(
            "pod-logs",
            "warn",
            f"{d} not mounted: alerts will show pod UIDs, not names",
            "mount /var/log/pods read-only (the chart does) or set KERNBOT_KUBERNETES_API",
        )
    return Finding("pod-logs", "skip", "not a Kubernetes node")


def check_syncookies(paths: HostPaths) -> Finding:
    v = _read_int(paths.proc / "sys/net/ipv4/tcp_syncookies")
    if v is None:
        return Finding("syncookies", "skip", "net.ipv4.tcp_syncookies not readable")
    if v == 0:
        return Finding(
            "syncookies",
            "warn",
            "net.ipv4.tcp_syncookies=0: a SYN flood drops real clients",
            "sysctl -w net.ipv4.tcp_syncookies=1 (persist in /etc/sysctl.d/)",
        )
    if v == 2:
        return Finding(
            "syncookies",
            "warn",
            "net.ipv4.tcp_syncookies=2: cookies always on, "
            "the kernel never prints a SYN flood warning",
            "use 1 unless you mean it",
        )
    return Finding("syncookies", "ok", "net.ipv4.tcp_syncookies=1")


def check_clock(server_date: str | None) -> Finding:
    if server_date is None:
        return Finding("clock", "skip", "no server to compare the clock with")
    try:
        remote = parsedate_to_datetime(server_date).timestamp()
    except (TypeError, ValueError):
        return Finding("clock", "skip", f"unparseable Date header {server_date!r}")
    skew = time.time() - remote
    if abs(skew) > 5:
        return Finding(
            "clock",
            "warn",
            f"clock differs from the server's by {skew:+.0f} s",
            "run NTP (chrony/systemd-timesyncd): alert times and 'last 24 h' depend on it",
        )
    return Finding("clock", "ok", f"clock within {abs(skew):.1f} s of the server's")


async def check_http(settings: UpSettings, bot_url: str | None) -> list[Finding]:
    import aiohttp

    out: list[Finding] = []
    timeout = aiohttp.ClientTimeout(total=5)
    date: str | None = None
    async with aiohttp.ClientSession(timeout=timeout) as http:
        if bot_url:
            url = bot_url.rstrip("/") + "/healthz"
            try:
                async with http.get(url) as resp:
                    date = resp.headers.get("Date")
                    if resp.status == 200:
                        out.append(Finding("bot", "ok", f"{url} answers 200"))
                    else:
                        out.append(
                            Finding(
                                "bot",
                                "fail",
                                f"{url} answers {resp.status}",
                                "check the bot's logs and /healthz body",
                            )
                        )
            except (aiohttp.ClientError, TimeoutError) as exc:
                out.append(
                    Finding(
                        "bot",
                        "fail",
                        f"{url} unreachable: {exc or type(exc).__name__}",
                        "check KERNBOT_BOT_URL, the bot Service and NetworkPolicies",
                    )
                )
        else:
            out.append(Finding("bot", "skip", "KERNBOT_BOT_URL not set"))
        token = settings.slack_bot_token
        if token is not None:
            url = settings.slack_api_url.rstrip("/") + "/auth.test"
            headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
            try:
                async with http.post(url, headers=headers) as resp:
                    date = date or resp.headers.get("Date")
                    body = await resp.json(content_type=None)
                if isinstance(body, dict) and body.get("ok"):
                    who = f"{body.get('user', '?')} in {body.get('team', '?')}"
                    out.append(Finding("slack", "ok", f"auth.test ok: {who}"))
                else:
                    err = body.get("error") if isinstance(body, dict) else body
                    out.append(
                        Finding(
                            "slack",
                            "fail",
                            f"auth.test: {err}",
                            "check SLACK_BOT_TOKEN (xoxb-...) and that the app is installed",
                        )
                    )
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                out.append(
                    Finding(
                        "slack",
                        "fail",
                        f"{url} unreachable: {exc or type(exc).__name__}",
                        "check egress to Slack and KERNBOT_SLACK_API_URL",
                    )
                )
        else:
            out.append(
                Finding("slack", "skip", "SLACK_BOT_TOKEN not set: alerts go to the console")
            )
    out.append(check_clock(date))
    return out


def run_checks(settings: UpSettings, paths: HostPaths, bot_url: str | None) -> list[Finding]:
    in_k8s = "KUBERNETES_SERVICE_HOST" in os.environ
    kmsg = check_kmsg(paths)
    local: list[Callable[[], Finding]] = [
        lambda: check_journal(paths, kmsg.status == "ok"),
        lambda: check_proc(paths),
        lambda: check_cgroup(paths),
        lambda: check_pod_logs(paths, in_k8s),
        lambda: check_syncookies(paths),
    ]
    findings = [kmsg, *(f() for f in local)]
    findings.extend(asyncio.run(check_http(settings, bot_url)))
    return findings


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML settings file (as for agent/bot/up)")
    parser.add_argument("--json", action="store_true", help="one JSON object per finding")


def run(args: argparse.Namespace) -> int:
    import sys

    from kernbot.settings import SettingsError, UpSettings, load_settings

    try:
        settings = load_settings(UpSettings, args.config)
    except SettingsError as exc:
        print(f"kernbot doctor: {exc}", file=sys.stderr)
        return 2
    paths = HostPaths(proc=settings.proc_root, pod_log_dir=settings.pod_log_dir)
    findings = run_checks(settings, paths, settings.bot_url)
    for f in findings:
        if args.json:
            print(json.dumps(asdict(f)))
        else:
            mark = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL", "skip": "--  "}[f.status]
            print(f"{mark} {f.check:<11} {f.detail}")
            if f.fix and f.status in ("warn", "fail"):
                print(f"     {'':<11} fix: {f.fix}")
    return max(_RANK[f.status] for f in findings)
