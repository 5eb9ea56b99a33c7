"""Pod names for a cgroup's pod UID and container ID: what the team calls the thing that died.

The kernel only knows cgroup paths, which carry a pod UID and a container ID but no names. The
kubelet's log layout has the names and is readable on every node without credentials:

    /var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log
    /var/log/containers/<pod>_<namespace>_<container>-<container id>.log -> ../pods/...

So: the pod directory is matched by UID; the container by the /var/log/containers link that ends
in the container ID, else (docker) by the `<restart>.log` symlink whose target names the ID, else
the only container, else the container whose log was written last — a guess, said so in
`name_source` (`pod-logs-guess`). When the logs do not answer and the agent is allowed to, the
Kubernetes API is asked (`kubernetes-api`); that path is async (aiohttp).
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kernbot.core.events import Kubernetes
from kernbot.errors import KernbotError
from kernbot.hostport import url_host

log = logging.getLogger(__name__)

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True, slots=True)
class PodNames:
    namespace: str
    pod: str
    containers: dict[str, str] = field(default_factory=dict)
    """container ID (no `containerd://` prefix) -> container name."""


class KubernetesApiError(KernbotError):
    """The API server did not answer usefully (network, TLS, auth, a body that is not a pod
    list); the alert goes out without names."""


class KubernetesApi(Protocol):
    async def pod_by_uid(self, uid: str) -> PodNames | None:
        """The pod's names, None when no pod on this node has the UID; `KubernetesApiError`
        when the API cannot say."""


class InClusterKubernetesApi:
    """Lists the pods of this node (`spec.nodeName`) with the pod's service account token."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        node_name: str | None = None,
        ca_file: Path | None = None,
        timeout_s: float = 3.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.node_name = node_name
        self.ca_file = ca_file
        self.timeout_s = timeout_s

    @classmethod
    def from_environment(cls, node_name: str | None = None) -> InClusterKubernetesApi:
        """From KUBERNETES_SERVICE_HOST/PORT and the mounted service account (in a pod)."""
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        token = (SERVICE_ACCOUNT / "token").read_text().strip()
        return cls(
            f"https://{url_host(host)}:{port}",
            token,
            node_name=node_name,
            ca_file=SERVICE_ACCOUNT / "ca.crt",
        )

    async def pod_by_uid(self, uid: str) -> PodNames | None:
        import aiohttp

        params = {"fieldSelector": f"spec.nodeName={self.node_name}"} if self.node_name else {}
        ssl_ctx: ssl.SSLContext | bool = True
        if self.ca_file is not None:
            ssl_ctx = ssl.create_default_context(cafile=str(self.ca_file))
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(
                    f"{self.base_url}/api/v1/pods", params=params, headers=headers, ssl=ssl_ctx
                ) as resp,
            ):
                resp.raise_for_status()
                body = json.loads(await resp.text())
            return pod_names_from_list(body, uid)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, AttributeError) as exc:
            raise KubernetesApiError(f"{self.base_url}: {type(exc).__name__}: {exc}") from exc


def pod_names_from_list(body: dict[str, Any], uid: str) -> PodNames | None:
    for item in body.get("items") or []:
        meta = item.get("metadata") or {}
        if meta.get("uid") != uid:
            continue
        status = item.get("status") or {}
        containers: dict[str, str] = {}
        for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
            for cs in status.get(key) or []:
                cid = str(cs.get("containerID") or "").partition("://")[2]
                if cid and cs.get("name"):
                    containers[cid] = str(cs["name"])
        return PodNames(str(meta.get("namespace")), str(meta.get("name")), containers)
    return None


def _pod_dir(pod_log_dir: Path, uid: str) -> tuple[Path, str, str] | None:
    """(dir, namespace, pod) for the pod with this UID; names are DNS labels, so `_` splits."""
    try:
        entries = list(pod_log_dir.iterdir())
    except OSError:
        return None
    for entry in entries:
        parts = entry.name.split("_")
        if len(parts) == 3 and parts[2] == uid and entry.is_dir():
            return entry, parts[0], parts[1]
    return None


def _newest_mtime(container_dir: Path) -> float:
    try:
        return max((f.stat().st_mtime for f in container_dir.iterdir()), default=0.0)
    except OSError:
        return 0.0


class PodResolver:
    def __init__(
        self,
        pod_log_dir: Path = Path("/var/log/pods"),
        use_kubernetes_api: bool = False,
        api: KubernetesApi | None = None,
    ) -> None:
        self.pod_log_dir = pod_log_dir
        self.use_kubernetes_api = use_kubernetes_api
        self.api = api
        self._api_cache: dict[str, PodNames | None] = {}

    def resolve(self, k8s: Kubernetes) -> Kubernetes:
        """Fill namespace/pod/container from the kubelet's log directories (no network), or from
        what the Kubernetes API already answered for this pod."""
        if k8s.pod_uid is None or (k8s.pod and k8s.container):
            return k8s
        local = k8s
        found = _pod_dir(self.pod_log_dir, k8s.pod_uid)
        if found is not None:
            pod_dir, namespace, pod = found
            container, source = self._container(pod_dir, namespace, pod, k8s.container_id)
            local = k8s.model_copy(
                update={
                    "namespace": namespace,
                    "pod": pod,
                    "container": container,
                    "name_source": source,
                }
            )
        cached = self._api_cache.get(k8s.pod_uid)
        if local.name_source != "pod-logs" and cached is not None:
            return _with_api_names(local, cached, k8s.container_id)
        return local

    def wants_api(self, k8s: Kubernetes | None) -> bool:
        """True when the logs gave no sure answer and the Kubernetes API may be asked."""
        return (
            k8s is not None
            and k8s.pod_uid is not None
            and self.use_kubernetes_api
            and self.api is not None
            and k8s.name_source not in ("pod-logs", "kubernetes-api")
        )

    async def resolve_async(self, k8s: Kubernetes) -> Kubernetes:
        """`resolve`, then the Kubernetes API when allowed and the logs gave no sure answer."""
        local = self.resolve(k8s)
        if not self.wants_api(local) or k8s.pod_uid is None:
            return local
        names = await self._from_api(k8s.pod_uid)
        if names is None:
            return local
        return _with_api_names(local, names, k8s.container_id)

    async def _from_api(self, uid: str) -> PodNames | None:
        if uid in self._api_cache:
            return self._api_cache[uid]
        assert self.api is not None
        try:
            names = await self.api.pod_by_uid(uid)
        except KubernetesApiError as exc:  # not cached: the next event asks again
            log.warning("no pod names from the Kubernetes API: %s", exc)
            return None
        self._api_cache[uid] = names
        return names

    def _container(
        self, pod_dir: Path, namespace: str, pod: str, container_id: str | None
    ) -> tuple[str | None, str]:
        try:
            containers = sorted(p for p in pod_dir.iterdir() if p.is_dir())
        except OSError:
            containers = []
        if container_id:
            links = self.pod_log_dir.parent / "containers"
            prefix = f"{pod}_{namespace}_"
            suffix = f"-{container_id}.log"
            try:
                for name in os.listdir(links):
                    if name.startswith(prefix) and name.endswith(suffix):
                        return name[len(prefix) : -len(suffix)], "pod-logs"
            except OSError:
                pass
            for cdir in containers:
                for log in cdir.glob("*.log"):
                    if log.is_symlink() and container_id in os.readlink(log):
                        return cdir.name, "pod-logs"
        if len(containers) == 1:
            return containers[0].name, "pod-logs"
        if not containers:
            return None, "pod-logs"
        newest = max(containers, key=_newest_mtime)
        return newest.name, "pod-logs-guess"


def _with_api_names(local: Kubernetes, names: PodNames, container_id: str | None) -> Kubernetes:
    container = names.containers.get(container_id or "")
    return local.model_copy(
        update={
            "namespace": names.namespace,
            "pod": names.pod,
            "container": container or local.container,
            "name_source": "kubernetes-api",
        }
    )


def describe_source(k8s: Kubernetes | None) -> str | None:
    """One sentence for humans about where the pod names came from."""
    if k8s is None or k8s.pod_uid is None:
        return None
    return {
        "pod-logs": "names from the kubelet's pod log directories",
        "pod-logs-guess": "pod from the kubelet's log directories; container guessed "
        "(the one whose log was written last)",
        "kubernetes-api": "names from the Kubernetes API",
    }.get(k8s.name_source or "", "pod UID only: no pod log directory or API answer for it")
