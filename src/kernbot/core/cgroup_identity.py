"""Who owns a cgroup: Kubernetes pod/container, a plain container, an LXC guest or a systemd unit.

The OOM report names cgroups only by path (`task_memcg=`, `Task in … killed as a result of limit
of …`), and those paths are the one link between a kernel kill and the workload a team knows. The
path shape depends on the cgroup driver (cgroupfs or systemd), the container runtime and nesting
(kind/minikube nodes run inside docker, Proxmox LXC guests run docker inside), so this module reads
every known shape. Pure string parsing: no /proc, no API calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from kernbot.core.events import ContainerOwner, Kubernetes

_HEX64 = r"[0-9a-f]{64}"
_UID_DASH = re.compile(r"^pod([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
_UID_SYSTEMD = re.compile(
    r"^kubepods(?:-(?:burstable|besteffort))?-pod"
    r"([0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12})\.slice$"
)
_SCOPE = re.compile(rf"^(docker|cri-containerd|crio|libpod|containerd)-({_HEX64})\.scope$")
_BARE_ID = re.compile(rf"^(?:(docker|cri-containerd|crio|libpod)-)?({_HEX64})$")
_RUNTIME_BY_PREFIX = {
    "docker": "docker",
    "cri-containerd": "containerd",
    "containerd": "containerd",
    "crio": "cri-o",
    "libpod": "podman",
}


@dataclass(frozen=True, slots=True)
class Container:
    """A non-Kubernetes owner of a cgroup: a container, an LXC guest or a systemd unit."""

    kind: str
    """`container`, `lxc`, `systemd-unit`, `user-session` or `root`."""
    runtime: str | None = None
    container_id: str | None = None
    lxc_id: str | None = None
    unit: str | None = None

    def owner(self) -> ContainerOwner:
        """As the event field `container`."""
        return ContainerOwner(
            kind=self.kind,
            runtime=self.runtime,
            container_id=self.container_id,
            lxc_id=self.lxc_id,
            unit=self.unit,
        )


def _parts(cgroup_path: str) -> list[str]:
    return [p for p in cgroup_path.strip().split("/") if p]


def _container_of(part: str) -> tuple[str | None, str | None]:
    """(runtime, full id) when one path component names a container."""
    m = _SCOPE.match(part)
    if m:
        return _RUNTIME_BY_PREFIX[m.group(1)], m.group(2)
    m = _BARE_ID.match(part)
    if m:
        return (_RUNTIME_BY_PREFIX[m.group(1)] if m.group(1) else None), m.group(2)
    return None, None


def identify(cgroup_path: str) -> Kubernetes | None:
    """Pod UID, container ID, QoS class and runtime of a Kubernetes cgroup path, or None.

    Accepts cgroupfs (`/kubepods/burstable/pod<uid>/<id>`) and systemd
    (`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope`)
    drivers, cgroup v1 and v2, and nested prefixes (`/docker/<node>/kubepods/…` in kind/minikube).
    QoS is `guaranteed` when the pod sits directly under kubepods (no burstable/besteffort level).
    """
    parts = _parts(cgroup_path)
    start = next(
        (i for i, p in enumerate(parts) if p in ("kubepods", "kubepods.slice")),
        None,
    )
    if start is None:
        return None
    qos: Literal["guaranteed", "burstable", "besteffort"] = "guaranteed"
    pod_uid: str | None = None
    container_id: str | None = None
    runtime: str | None = None
    for part in parts[start + 1 :]:
        if part in ("burstable", "kubepods-burstable.slice"):
            qos = "burstable"
            continue
        if part in ("besteffort", "kubepods-besteffort.slice"):
            qos = "besteffort"
            continue
        if pod_uid is None:
            m = _UID_DASH.match(part)
            if m:
                pod_uid = m.group(1)
                continue
            m = _UID_SYSTEMD.match(part)
            if m:
                pod_uid = m.group(1).replace("_", "-")
                continue
        if pod_uid is not None and container_id is None:
            runtime, container_id = _container_of(part)
    if pod_uid is None:
        return None
    return Kubernetes(
        pod_uid=pod_uid,
        container_id=container_id,
        qos=qos,
        runtime=runtime,
    )


def identify_container(cgroup_path: str) -> Container | None:
    """The non-Kubernetes owner of a cgroup path, or None when the path says nothing useful.

    Shapes: `/docker/<id>` (cgroupfs), `/system.slice/docker-<id>.scope` (systemd),
    `…/libpod-<id>.scope` (podman), `/lxc/<ctid>/…` or `/lxc.payload.<name>/…` (LXC; a container
    inside the guest is reported as the container with `lxc_id` set),
    `/system.slice/<unit>.service`,
    `/user.slice/…/session-N.scope`, and `/` (root).
    """
    parts = _parts(cgroup_path)
    if not parts:
        return Container(kind="root") if cgroup_path.strip() == "/" else None
    lxc_id: str | None = None
    if parts[0] == "lxc" and len(parts) > 1:
        lxc_id = parts[1]
    elif parts[0].startswith("lxc.payload."):
        lxc_id = parts[0].removeprefix("lxc.payload.")
    for i, part in enumerate(parts):
        runtime, cid = _container_of(part)
        if cid is not None:
            if runtime is None and i > 0 and parts[i - 1] == "docker":
                runtime = "docker"
            if runtime is None and i > 0 and parts[i - 1] == "libpod_parent":
                runtime = "podman"
            return Container(kind="container", runtime=runtime, container_id=cid, lxc_id=lxc_id)
    if lxc_id is not None:
        return Container(kind="lxc", runtime="lxc", lxc_id=lxc_id)
    last = parts[-1]
    if last.endswith(".service"):
        return Container(kind="systemd-unit", unit=last)
    if re.match(r"^session-[^/]+\.scope$", last) or parts[0] == "user.slice":
        return Container(kind="user-session", unit=last)
    return None
