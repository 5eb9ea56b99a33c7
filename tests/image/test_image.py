"""The real container image, run as the Helm chart runs it, on this real kernel.

scripts/image-test builds the image (podman, --format docker) and runs this module with
KERNBOT_TEST_IMAGE set; elsewhere it skips. Containers get the chart's settings from `helm
template` output (tests/image/chart_podman.py): the bot (non-root, read-only root, all
capabilities dropped, its volume), the agent in kmsg mode (privileged, read-only host mounts)
and in journal mode (unprivileged, all capabilities dropped, reading the files of a real
journald the test starts). For each: /healthz on the chart's probe port, the image's own
HEALTHCHECK, `kernbot doctor` inside, and a real memcg OOM kill reaching the bot container and
the fake Slack (on the host, loopback) with the victim's pid. Alerts are picked by victim pid:
other engineers OOM-kill processes on this machine too.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from chart_podman import Container, container, render
from journal import private_journald
from podman import IMAGE_ENV, Podman, podman

from fakes.fake_slack import FakeSlack
from kernbot.agent.proc.reader import access_findings
from lab.memcg import OomResult, memcg_oom
from lab.privileges import why_not_root_kernel

IMAGE = os.environ.get(IMAGE_ENV, "")
TOKEN = "image-test-shared-token"
SIGNING_SECRET = "image-test-signing-secret-0123456789"
CHANNEL = "C0ALERTS"  # a channel the fake Slack knows

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not IMAGE, reason=f"{IMAGE_ENV} unset: scripts/image-test builds the image"),
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pm() -> Iterator[Podman]:
    why = why_not_root_kernel()
    if why:
        pytest.skip(why)
    p = Podman(IMAGE)
    yield p
    p.cleanup()


def _values(slack: FakeSlack, tmp: Path, **agent: Any) -> dict[str, Any]:
    return {
        "token": TOKEN,
        "slack": {
            "botToken": slack.bot_token,
            "signingSecret": SIGNING_SECRET,
            "channel": CHANNEL,
            "apiUrl": slack.base_url,
        },
        "bot": {"port": _free_port()},
        "agent": {
            "port": _free_port(),
            "stateHostPath": str(tmp / "agent-state"),
            "podLogDir": str(tmp / "pods"),
            **agent,
        },
    }


async def _healthz(port: int, within_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http:
        while True:
            try:
                async with http.get(
                    f"http://127.0.0.1:{port}/healthz", headers={"Authorization": f"Bearer {TOKEN}"}
                ) as r:
                    if r.status == 200:
                        body: dict[str, Any] = await r.json()
                        return body
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"no 200 from 127.0.0.1:{port}/healthz in {within_s}s")
            await asyncio.sleep(0.3)


async def _doctor(pm: Podman, name: str) -> dict[str, dict[str, str]]:
    """`kernbot doctor --json` inside; off the event loop, which serves the fake Slack."""
    res = await asyncio.to_thread(pm.exec, name, "kernbot", "doctor", "--json")
    assert res.stdout.strip(), res.stderr
    print(f"doctor in {name} (exit {res.returncode}):\n{res.stdout}")
    return {f["check"]: f for f in map(json.loads, res.stdout.splitlines())}


def _assert_healthy(pm: Podman, name: str) -> None:
    res = pm.healthcheck(name)
    assert res.returncode == 0, f"HEALTHCHECK of {name}: {res.stdout}{res.stderr}\n{pm.logs(name)}"


async def _start_bot(pm: Podman, docs: list[dict[str, Any]], tmp: Path) -> tuple[str, Container]:
    (pvc,) = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    state = tmp / "bot-state"
    state.mkdir()
    bot = container(docs, "Deployment", node_name="unused", claims={pvc["metadata"]["name"]: state})
    os.chown(state, bot.uid, int(docs_pod(docs, "Deployment")["securityContext"]["fsGroup"]))
    name = pm.run("bot", bot.flags, bot.args)
    await _healthz(bot.port)
    return name, bot


def docs_pod(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (work,) = [d for d in docs if d["kind"] == kind]
    pod: dict[str, Any] = work["spec"]["template"]["spec"]
    return pod


def _alerts_about(slack: FakeSlack, oom: OomResult) -> list[dict[str, Any]]:
    return [
        m
        for m in slack.messages
        if f"pid {oom.victim_pid})" in str(m.get("text", ""))
        and str(m.get("text", "")).startswith("OOM kill")
    ]


async def _oom_reaches_slack(
    pm: Podman, slack: FakeSlack, host: str, names: list[str], within_s: float
) -> OomResult:
    victim = f"kbimg-{uuid.uuid4().hex[:6]}"
    oom = await asyncio.to_thread(memcg_oom, victim_comm=victim)
    t0 = time.monotonic()
    deadline = t0 + within_s
    while not _alerts_about(slack, oom) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    alerts = _alerts_about(slack, oom)
    logs = "\n".join(f"--- {n} ---\n{pm.logs(n)[-4000:]}" for n in names)
    assert alerts, f"no Slack alert for victim pid {oom.victim_pid} in {within_s}s\n{logs}"
    (alert,) = alerts
    print(f"kill -> Slack through the containers: {time.monotonic() - t0:.2f}s: {alert['text']}")
    assert alert["channel"] == CHANNEL
    assert alert["text"] == f"OOM kill on {host}: {victim} (pid {oom.victim_pid})"
    return oom


def _report_memory(pm: Podman, name: str, mode: str) -> None:
    rss = pm.rss_kb(name)
    cg = pm.cgroup_memory_bytes(name)
    cg_text = f"{cg / 2**20:.1f} MiB" if cg is not None else "n/a"
    print(f"MEMORY agent ({mode} mode): RSS {rss / 1024:.1f} MiB, container cgroup {cg_text}")


def _read_only_mounts(pm: Podman, name: str) -> set[str]:
    """Destinations the running container has mounted read-only (podman inspect)."""
    return {m["Destination"] for m in pm.inspect(name)["Mounts"] if not m.get("RW", True)}


def _host_findings() -> list[str]:
    """What root on this host may not read, as the agent with /host/proc would word it."""
    return [f.replace("/proc/", "/host/proc/") for f in access_findings(Path("/proc"), net_pid=1)]


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


def test_image_has_no_build_artefacts_and_a_healthcheck(pm: Podman) -> None:
    info = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    print(f"IMAGE SIZE {info['Size'] / 1e6:.1f} MB ({info['Size']} bytes)")
    assert info["Healthcheck"]["Test"] == ["CMD", "python", "-m", "kernbot.healthcheck"]
    assert info["Config"]["User"] == "10001"
    assert info["Config"]["Entrypoint"] == ["kernbot"]
    res = podman(
        "run", "--rm", "--network", "host", "--health-interval", "disable",
        "--entrypoint", "sh", IMAGE, "-c",
        "ls -d /wheels /src /root/.cache /etc/pip.conf /opt/kernbot/bin/pip 2>/dev/null; "
        "kernbot --version",
        check=False,
    )  # fmt: skip
    lines = res.stdout.split()
    assert lines[-2:] == ["kernbot", lines[-1]] and lines[:-2] == [], res.stdout + res.stderr


async def test_bot_and_agent_in_kmsg_mode(pm: Podman, slack: FakeSlack, tmp_path: Path) -> None:
    host = f"img-kmsg-{uuid.uuid4().hex[:6]}"
    docs = render(_values(slack, tmp_path, source="kmsg"))
    bot_name, bot = await _start_bot(pm, docs, tmp_path)

    # the bot as the chart runs it: non-root, read-only root, no capabilities, its volume
    assert bot.uid == 10001
    status = pm.exec(bot_name, "cat", "/proc/1/status").stdout
    assert "CapEff:\t0000000000000000" in status, status
    assert "Uid:\t10001" in status
    ro = pm.exec(bot_name, "touch", "/opt/kernbot/x")
    assert ro.returncode != 0 and "Read-only file system" in ro.stderr
    assert (tmp_path / "bot-state" / "kernbot.db").exists()
    _assert_healthy(pm, bot_name)
    found = await _doctor(pm, bot_name)
    assert found["slack"]["status"] == "ok", found

    agent = container(docs, "DaemonSet", node_name=host, claims={})
    assert "--privileged" in agent.flags
    assert agent.env["KERNBOT_SOURCE"] == "kmsg"
    name = pm.run("agent", agent.flags, agent.args)
    assert _read_only_mounts(pm, name) >= {"/dev/kmsg", "/host/proc", "/host/var/log/pods"}
    health = await _healthz(agent.port)
    # privileged: it reads what root on the host reads (here even root may not open pid 1's
    # ns/net: that machine's pid 1 is not ptrace-readable, so both report it)
    assert health["ok"] is True and health["findings"] == _host_findings(), health
    _assert_healthy(pm, name)
    found = await _doctor(pm, name)
    assert found["kmsg"]["status"] == "ok", found
    assert found["proc-access"]["status"] == ("warn" if _host_findings() else "ok"), found
    assert found["bot"]["status"] == "ok", found
    await asyncio.sleep(2)  # first start: the existing ring buffer becomes history

    await _oom_reaches_slack(pm, slack, host, [bot_name, name], 30.0)
    _report_memory(pm, name, "kmsg")
    assert pm.running(name) and pm.running(bot_name)


async def test_agent_in_journal_mode_reads_a_real_journald(
    pm: Podman, slack: FakeSlack, tmp_path: Path
) -> None:
    host = f"img-journal-{uuid.uuid4().hex[:6]}"
    with private_journald(tmp_path / "journald") as journal:
        docs = render(_values(slack, tmp_path, source="journal", journalPath=str(journal)))
        bot_name, _ = await _start_bot(pm, docs, tmp_path)
        agent = container(docs, "DaemonSet", node_name=host, claims={})
        assert "--privileged" not in agent.flags
        assert agent.security["capabilities"]["drop"] == ["ALL"]
        assert agent.env["KERNBOT_SOURCE"] == f"journal:/host{journal}"
        assert agent.env["KERNBOT_NET_PID"] == "1"
        name = pm.run("agent", agent.flags, agent.args)
        assert _read_only_mounts(pm, name) >= {f"/host{journal}", "/host/proc", "/etc/machine-id"}

        # all capabilities dropped: the host's pid 1 namespace and fds are findings, not a crash
        health = await _healthz(agent.port)
        assert any(f.startswith("cannot open /host/proc/1/ns/net") for f in health["findings"])
        assert set(_host_findings()) <= set(health["findings"]), health
        assert "CapEff:\t0000000000000000" in pm.exec(name, "cat", "/proc/1/status").stdout
        assert "cannot open /host/proc/1/ns/net" in pm.logs(name)
        _assert_healthy(pm, name)
        found = await _doctor(pm, name)
        assert found["journal"]["status"] == "ok", found
        assert f"/host{journal}" in found["journal"]["detail"]
        assert found["proc-access"]["status"] == "warn", found
        assert "CAP_SYS_PTRACE" in found["proc-access"]["detail"]
        assert found["kmsg"]["status"] == "skip", found  # not the source in this mode
        await asyncio.sleep(2)

        await _oom_reaches_slack(pm, slack, host, [bot_name, name], 45.0)
        _report_memory(pm, name, "journal")
        assert pm.running(name)


def test_doctor_tells_the_device_allow_list_from_dmesg_restrict(pm: Podman) -> None:
    """/dev/kmsg mounted into an unprivileged container that HAS CAP_SYSLOG: open() is EPERM from
    the device cgroup, and doctor must say so rather than blame dmesg_restrict."""
    if not os.path.exists("/dev/kmsg"):
        pytest.skip("no /dev/kmsg on this host")
    res = podman(
        "run", "--rm", "--network", "host", "--health-interval", "disable", "--user", "0:0",
        "--cap-drop", "all", "--cap-add", "syslog", "-v", "/dev/kmsg:/dev/kmsg:ro",
        IMAGE, "doctor", "--json",
        check=False,
    )  # fmt: skip
    found = {f["check"]: f for f in map(json.loads, res.stdout.splitlines())}
    print(found["kmsg"])
    assert found["kmsg"]["status"] == "fail"
    assert "device allow-list" in found["kmsg"]["detail"]
    assert "CAP_SYSLOG is present" in found["kmsg"]["detail"]
    assert "privileged" in found["kmsg"]["fix"]


def test_healthcheck_follows_a_port_set_in_the_yaml_config(pm: Podman, tmp_path: Path) -> None:
    """No KERNBOT_LISTEN: the agent's port comes from `--config`, and so must the probe's."""
    port = _free_port()
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        f"listen: 127.0.0.1:{port}\nsource: stdin\nstate_dir: /tmp/state\ntoken: {TOKEN}\n"
    )
    cfg.chmod(0o644)
    name = pm.run(
        "agent-config",
        ["--network", "host", "-v", f"{cfg}:/etc/kernbot/agent.yaml:ro", "-i"],
        ["agent", "--config", "/etc/kernbot/agent.yaml"],
    )
    asyncio.run(_healthz(port, 60.0))
    _assert_healthy(pm, name)
    podman("stop", "-t", "2", name, check=False)
    assert pm.healthcheck(name).returncode != 0
