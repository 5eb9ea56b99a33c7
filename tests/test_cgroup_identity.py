# ruff: noqa: E501  (real kernel lines and cgroup paths are longer than 100 characters)
"""cgroup path → owner, with the real path shapes from PROVENANCE.md "Real path shapes"."""

from __future__ import annotations

import pytest

from kernbot.core.cgroup_identity import Container, identify, identify_container

UID = "28fcb1a0-a45c-44e7-b9bf-e3b9360bedba"
UID_ = UID.replace("-", "_")
CID = "3e5e5eab87df615f4777e6f7f261a7fb62f4a7ee5bc3e25e3a5b5223ccd368fe"

K8S = [
    # cgroupfs driver (v1 and v2 print the same)
    (f"/kubepods/burstable/pod{UID}/{CID}", UID, CID, "burstable", None),
    (f"/kubepods/besteffort/pod{UID}/{CID}", UID, CID, "besteffort", None),
    (f"/kubepods/pod{UID}/{CID}", UID, CID, "guaranteed", None),
    (f"/kubepods/burstable/pod{UID}", UID, None, "burstable", None),
    # systemd driver, every runtime
    (
        f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/docker-{CID}.scope",
        UID,
        CID,
        "burstable",
        "docker",
    ),
    (
        f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/cri-containerd-{CID}.scope",
        UID,
        CID,
        "besteffort",
        "containerd",
    ),
    (f"/kubepods.slice/kubepods-pod{UID_}.slice/crio-{CID}.scope", UID, CID, "guaranteed", "cri-o"),
    (f"/kubepods.slice/kubepods-pod{UID_}.slice", UID, None, "guaranteed", None),
    # nested kind/minikube node inside docker
    (f"/docker/{'a' * 64}/kubepods/burstable/pod{UID}/{CID}", UID, CID, "burstable", None),
    (
        f"/system.slice/docker-{'b' * 64}.scope/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{CID}.scope",
        UID,
        CID,
        "guaranteed",
        "containerd",
    ),
]


@pytest.mark.parametrize(("path", "uid", "cid", "qos", "runtime"), K8S)
def test_identify_kubernetes(
    path: str, uid: str, cid: str | None, qos: str, runtime: str | None
) -> None:
    k = identify(path)
    assert k is not None
    assert (k.pod_uid, k.container_id, k.qos, k.runtime) == (uid, cid, qos, runtime)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "",
        f"/docker/{CID}",
        "/system.slice/sshd.service",
        "/kubepods",
        "/kubepods.slice/kubepods-burstable.slice",
        "/kubepods/burstable/podnot-a-uid/x",
        "/user.slice/user-1000.slice/session-3.scope",
        "<!channel> *bold* a b/c",
    ],
)
def test_identify_not_kubernetes(path: str) -> None:
    assert identify(path) is None


CONTAINERS = [
    (f"/docker/{CID}", Container("container", "docker", CID)),
    (f"/system.slice/docker-{CID}.scope", Container("container", "docker", CID)),
    (
        f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{CID}.scope",
        Container("container", "podman", CID),
    ),
    (f"/machine.slice/libpod-{CID}.scope/container", Container("container", "podman", CID)),
    (
        f"/lxc/39004/ns/system.slice/docker-{CID}.scope",
        Container("container", "docker", CID, lxc_id="39004"),
    ),
    ("/lxc/39004", Container("lxc", "lxc", lxc_id="39004")),
    ("/lxc.payload.web1/system.slice", Container("lxc", "lxc", lxc_id="web1")),
    (
        "/system.slice/unattended-upgrades.service",
        Container("systemd-unit", unit="unattended-upgrades.service"),
    ),
    (
        "/user.slice/user-504.slice/session-2.scope",
        Container("user-session", unit="session-2.scope"),
    ),
    ("/", Container("root")),
]


@pytest.mark.parametrize(("path", "want"), CONTAINERS)
def test_identify_container(path: str, want: Container) -> None:
    assert identify_container(path) == want


@pytest.mark.parametrize("path", ["", "/init.scope/x/y", "relative"])
def test_identify_container_unknown(path: str) -> None:
    assert identify_container(path) is None
