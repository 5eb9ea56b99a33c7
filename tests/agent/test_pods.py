"""PodResolver on kubelet-shaped log trees; its API fallback against a real local HTTP server."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kernbot.agent.pods import InClusterKubernetesApi, PodResolver, describe_source
from kernbot.core.events import Kubernetes

UID = "0f1c2d3e-1111-2222-3333-444455556666"
APP_ID = "3b8f5a1c9d2e4f60718293a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e"
SIDECAR_ID = "aa11bb22cc33dd44ee55ff6600778899aabbccddeeff00112233445566778899"


def make_pod(log_root: Path, containers: dict[str, str | None]) -> Path:
    """/var/log/pods/shop_web-7d9f_<uid>/<name>/0.log; a value is a docker symlink target."""
    pod_dir = log_root / "pods" / f"shop_web-7d9f_{UID}"
    for name, target in containers.items():
        (pod_dir / name).mkdir(parents=True)
        log = pod_dir / name / "0.log"
        if target is None:
            log.write_text("{}\n")
        else:
            log.symlink_to(target)
    return log_root / "pods"


def k8s(container_id: str | None = APP_ID) -> Kubernetes:
    return Kubernetes(pod_uid=UID, container_id=container_id, qos="burstable")


def test_containerd_layout_matched_by_var_log_containers_link(tmp_path: Path) -> None:
    pods = make_pod(tmp_path, {"app": None, "istio-proxy": None})
    links = tmp_path / "containers"
    links.mkdir()
    (links / f"web-7d9f_shop_app-{APP_ID}.log").symlink_to(pods / f"shop_web-7d9f_{UID}/app/0.log")
    (links / f"web-7d9f_shop_istio-proxy-{SIDECAR_ID}.log").symlink_to("/nowhere")
    got = PodResolver(pods).resolve(k8s())
    assert (got.namespace, got.pod, got.container, got.name_source) == (
        "shop",
        "web-7d9f",
        "app",
        "pod-logs",
    )
    assert got.qos == "burstable" and got.container_id == APP_ID
    sidecar = PodResolver(pods).resolve(k8s(SIDECAR_ID))
    assert sidecar.container == "istio-proxy"  # a container name with a dash still splits right


def test_docker_layout_matched_by_log_symlink_target(tmp_path: Path) -> None:
    pods = make_pod(
        tmp_path,
        {
            "app": f"/var/lib/docker/containers/{APP_ID}/{APP_ID}-json.log",
            "sidecar": f"/var/lib/docker/containers/{SIDECAR_ID}/{SIDECAR_ID}-json.log",
        },
    )
    got = PodResolver(pods).resolve(k8s(SIDECAR_ID))
    assert (got.container, got.name_source) == ("sidecar", "pod-logs")


def test_containerd_without_links_guesses_the_most_recently_written(tmp_path: Path) -> None:
    pods = make_pod(tmp_path, {"app": None, "sidecar": None})
    old = pods / f"shop_web-7d9f_{UID}" / "sidecar" / "0.log"
    os.utime(old, (1_000_000, 1_000_000))
    got = PodResolver(pods).resolve(k8s())
    assert (got.container, got.name_source) == ("app", "pod-logs-guess")
    assert "guessed" in (describe_source(got) or "")


def test_single_container_is_certain_and_unknown_uid_is_left_alone(tmp_path: Path) -> None:
    pods = make_pod(tmp_path, {"only": None})
    got = PodResolver(pods).resolve(k8s(None))
    assert (got.pod, got.container, got.name_source) == ("web-7d9f", "only", "pod-logs")
    other = Kubernetes(pod_uid="11111111-2222-3333-4444-555555555555")
    assert PodResolver(pods).resolve(other) == other
    assert PodResolver(tmp_path / "missing").resolve(k8s()) == k8s()
    assert describe_source(other) == "pod UID only: no pod log directory or API answer for it"
    assert describe_source(None) is None


# ---- Kubernetes API fallback, against a real aiohttp server on loopback

POD_LIST: dict[str, Any] = {
    "kind": "PodList",
    "items": [
        {"metadata": {"uid": "someone-else", "namespace": "x", "name": "y"}, "status": {}},
        {
            "metadata": {"uid": UID, "namespace": "shop", "name": "web-7d9f"},
            "status": {
                "containerStatuses": [
                    {"name": "app", "containerID": f"containerd://{APP_ID}"},
                    {"name": "sidecar", "containerID": f"containerd://{SIDECAR_ID}"},
                ]
            },
        },
    ],
}


class FakeApiServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.url = ""
        self.pod_list: dict[str, Any] = POD_LIST

    async def pods(self, request: web.Request) -> web.Response:
        self.requests.append(
            {"auth": request.headers.get("Authorization", ""), **dict(request.query)}
        )
        if request.headers.get("Authorization") != "Bearer sa-token":
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        return web.json_response(self.pod_list)


@pytest.fixture
async def api_server() -> AsyncIterator[FakeApiServer]:
    fake = FakeApiServer()
    app = web.Application()
    app.router.add_get("/api/v1/pods", fake.pods)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


async def test_api_fallback_names_the_pod(tmp_path: Path, api_server: FakeApiServer) -> None:
    api = InClusterKubernetesApi(api_server.url, "sa-token", node_name="node-1")
    resolver = PodResolver(tmp_path / "pods", use_kubernetes_api=True, api=api)
    got = await resolver.resolve_async(k8s(SIDECAR_ID))
    assert (got.namespace, got.pod, got.container, got.name_source) == (
        "shop",
        "web-7d9f",
        "sidecar",
        "kubernetes-api",
    )
    assert api_server.requests == [
        {"auth": "Bearer sa-token", "fieldSelector": "spec.nodeName=node-1"}
    ]
    await resolver.resolve_async(k8s(APP_ID))
    assert len(api_server.requests) == 1  # cached per pod UID


async def test_api_not_asked_when_logs_are_sure_or_not_allowed(
    tmp_path: Path, api_server: FakeApiServer
) -> None:
    pods = make_pod(tmp_path, {"only": None})
    api = InClusterKubernetesApi(api_server.url, "sa-token")
    sure = await PodResolver(pods, use_kubernetes_api=True, api=api).resolve_async(k8s())
    assert sure.name_source == "pod-logs"
    off = await PodResolver(tmp_path / "none", api=api).resolve_async(k8s())
    assert off.pod is None
    assert api_server.requests == []


async def test_api_errors_leave_the_identity_as_it_was(
    tmp_path: Path, api_server: FakeApiServer
) -> None:
    denied = InClusterKubernetesApi(api_server.url, "wrong-token")
    got = await PodResolver(tmp_path, use_kubernetes_api=True, api=denied).resolve_async(k8s())
    assert got == k8s()
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    dead = InClusterKubernetesApi(f"http://127.0.0.1:{dead_port}", "t", timeout_s=1.0)
    got = await PodResolver(tmp_path, use_kubernetes_api=True, api=dead).resolve_async(k8s())
    assert got == k8s()


CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "corpus"
CORPUS_POD_UID = "94eb36cd-29e1-478b-b365-4cb5dfc7d6fb"
CORPUS_CID = "46b3e0a4df44b752b841aecca454e6e78995d567912a84950390bae6f6777a63"


async def test_agent_ships_api_pod_names_as_the_next_revision(
    tmp_path: Path, api_server: FakeApiServer
) -> None:
    """The alert leaves at once with the pod UID; the names the Kubernetes API gives follow as
    the next revision of the same event, never held up by the API and never a second event."""
    from agent_harness import SNAPSHOT_BOOT_ID, make_agent

    from kernbot.core.detector import detect
    from kernbot.core.events import OomKillEvent
    from kernbot.core.formats.reader import read_lines

    api_server.pod_list = {
        "kind": "PodList",
        "items": [
            {
                "metadata": {"uid": CORPUS_POD_UID, "namespace": "shop", "name": "api-5c7b"},
                "status": {
                    "containerStatuses": [
                        {"name": "node-app", "containerID": f"containerd://{CORPUS_CID}"}
                    ]
                },
            }
        ],
    }
    api = InClusterKubernetesApi(api_server.url, "sa-token", node_name="node-1")
    h = make_agent(tmp_path / "state", kubernetes_api=api)
    lines = (CORPUS / "oom-6.x-k8s-systemd-containerd-cgv2-memcg-grep.txt").read_text()
    await h.agent.start()
    try:
        h.sources.current.push(lines.splitlines())
        for _ in range(250):
            bodies = [b for b in h.outbox.puts if b["kind"] == "oom_kill"]
            if bodies and bodies[-1]["kubernetes"].get("pod"):
                break
            await asyncio.sleep(0.02)
        (named,) = [q for q in h.outbox.peek(100) if q.body["kind"] == "oom_kill"]
    finally:
        await h.agent.stop()
    # The outbox keeps only the newest unsent revision of an event: the detector's own last
    # revision came without names, the API's names came as one revision after it.
    (plain,) = detect(read_lines(lines.splitlines()), host="node-1", boot_id=SNAPSHOT_BOOT_ID)
    assert isinstance(plain, OomKillEvent)
    assert plain.kubernetes is not None and plain.kubernetes.pod is None
    assert named.event_id == plain.id
    assert named.revision == plain.revision + 1
    k8s_named = named.body["kubernetes"]
    assert (k8s_named["namespace"], k8s_named["pod"], k8s_named["container"]) == (
        "shop", "api-5c7b", "node-app",
    )  # fmt: skip
    assert k8s_named["name_source"] == "kubernetes-api"
    assert named.body["context"]["pod_source"] == "names from the Kubernetes API"
    assert [r["fieldSelector"] for r in api_server.requests] == ["spec.nodeName=node-1"]
