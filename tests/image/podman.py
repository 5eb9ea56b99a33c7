"""Containers of the image under test, started with podman and always removed.

Every container gets a unique name; `Podman.cleanup()` removes each one this test started (by
that name, never by a pattern). Host paths the containers write to are the test's tmp dirs.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from typing import Any

IMAGE_ENV = "KERNBOT_TEST_IMAGE"


def podman(
    *args: str, timeout: float = 120.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and res.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {res.returncode}\n{res.stderr}")
    return res


@dataclass
class Podman:
    image: str
    started: list[str] = field(default_factory=list)

    def run(self, role: str, flags: list[str], args: list[str]) -> str:
        """`podman run -d` with these flags; returns the container's name."""
        name = f"kernbot-image-test-{role}-{uuid.uuid4().hex[:8]}"
        self.started.append(name)
        # podman schedules HEALTHCHECKs with systemd timers; there is no systemd here, so the
        # test runs the image's HEALTHCHECK itself (`podman healthcheck run`).
        podman("run", "-d", "--name", name, "--health-interval=disable", *flags, self.image, *args)
        return name

    def exec(self, name: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return podman("exec", name, *argv, timeout=timeout, check=False)

    def logs(self, name: str) -> str:
        res = podman("logs", name, check=False)
        return res.stdout + res.stderr

    def inspect(self, name: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(podman("inspect", name).stdout)
        return data[0]

    def running(self, name: str) -> bool:
        return bool(self.inspect(name)["State"]["Running"])

    def healthcheck(self, name: str) -> subprocess.CompletedProcess[str]:
        return podman("healthcheck", "run", name, check=False, timeout=30)

    def rss_kb(self, name: str) -> int:
        """VmRSS of the container's main process, read from the host's /proc."""
        pid = int(self.inspect(name)["State"]["Pid"])
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def cgroup_memory_bytes(self, name: str) -> int | None:
        """The container cgroup's memory usage (v1 memory.usage_in_bytes or v2 memory.current)."""
        pid = int(self.inspect(name)["State"]["Pid"])
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
        for line in lines:
            _, ctrls, path = line.split(":", 2)
            if "memory" in ctrls.split(","):
                p = f"/sys/fs/cgroup/memory{path}/memory.usage_in_bytes"
                if os.path.exists(p):
                    with open(p) as f:
                        return int(f.read())
            if ctrls == "":
                for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
                    p = f"{base}{path}/memory.current"
                    if os.path.exists(p):
                        with open(p) as f:
                            return int(f.read())
        return None

    def cleanup(self) -> None:
        for name in self.started:
            podman("rm", "-f", "-t", "2", name, check=False, timeout=60)
