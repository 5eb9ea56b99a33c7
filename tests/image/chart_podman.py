"""The Helm chart's pod specs, rendered by real Helm, translated to `podman run` flags in code.

The image test must run the containers with the chart's own settings, not a retyped copy: the
user, securityContext, env (Secrets and fieldRefs resolved from the same rendering), volumes,
resources and probes all come from the rendered Deployment/DaemonSet. The only departures are
those a single machine without a cluster forces, each named where it is made:
- host network, every listener moved from 0.0.0.0 to 127.0.0.1 (loopback only on a shared
  machine; ports come from the chart values the test chooses);
- the bot's Service name in KERNBOT_BOT_URL becomes 127.0.0.1 (no cluster DNS);
- fieldRefs: spec.nodeName is the test's host name, status.podIP is 127.0.0.1;
- emptyDir is a tmpfs of its sizeLimit; a PersistentVolumeClaim is a directory the test made.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parent.parent.parent / "helm" / "kernbot"
RELEASE = "kb"


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every manifest of `helm template` for these values (helm-python-sdk, Helm's Go SDK)."""
    import helm_python as helm

    chart = helm.Chart.load(str(CHART))
    out = chart.render(values, name=RELEASE, namespace="kernbot-test", is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in out.items():
        if not path.endswith("NOTES.txt"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


@dataclass
class Container:
    """One container of a rendered workload, as `podman run` arguments."""

    name: str
    flags: list[str]
    args: list[str]
    env: dict[str, str]
    uid: int
    port: int
    probe_paths: list[str]
    security: dict[str, Any]
    mounts: dict[str, str] = field(default_factory=dict)
    """mountPath -> host path (or `tmpfs`), for the test's own checks."""


_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _secret(docs: list[dict[str, Any]], name: str, key: str) -> str:
    for d in docs:
        if d["kind"] == "Secret" and d["metadata"]["name"] == name:
            if key in d.get("stringData", {}):
                return str(d["stringData"][key])
            return base64.b64decode(d["data"][key]).decode()
    raise KeyError(f"Secret {name}/{key} not in the rendering")


def _mem_bytes(q: str) -> int:
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 1000, "M": 10**6, "G": 10**9}
    for suffix, mult in units.items():
        if q.endswith(suffix):
            return int(float(q[: -len(suffix)]) * mult)
    return int(q)


def _cpus(q: str) -> str:
    return str(int(q[:-1]) / 1000) if q.endswith("m") else q


def container(
    docs: list[dict[str, Any]],
    kind: str,
    *,
    node_name: str,
    claims: dict[str, Path],
) -> Container:
    """The single container of the chart's `kind` workload (Deployment or DaemonSet)."""
    (work,) = [d for d in docs if d["kind"] == kind]
    pod = work["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    pod_sc = pod.get("securityContext", {})
    sc = c.get("securityContext", {})
    flags: list[str] = ["--network", "host"]  # see the module doc: loopback only

    uid = int(sc.get("runAsUser", pod_sc.get("runAsUser", 0)))
    gid = int(sc.get("runAsGroup", pod_sc.get("runAsGroup", 0)))
    if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) and uid == 0:
        raise AssertionError(f"{kind}: runAsNonRoot with uid 0")
    flags += ["--user", f"{uid}:{gid}"]
    fs_group = pod_sc.get("fsGroup")
    if fs_group is not None:
        flags += ["--group-add", str(fs_group)]
    if sc.get("privileged"):
        flags.append("--privileged")
    caps = sc.get("capabilities", {})
    for cap in caps.get("drop", []):
        flags += ["--cap-drop", cap.lower()]
    for cap in caps.get("add", []):
        flags += ["--cap-add", cap.lower()]
    if sc.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    if sc.get("readOnlyRootFilesystem"):
        # podman would add tmpfs on /tmp, /run, /var/tmp: the chart gets only what it mounts
        flags += ["--read-only", "--read-only-tmpfs=false"]
    seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
    if seccomp not in (None, "RuntimeDefault"):
        raise AssertionError(f"{kind}: seccompProfile {seccomp} not translated")

    limits = c.get("resources", {}).get("limits", {})
    if "memory" in limits:
        flags += ["--memory", str(_mem_bytes(limits["memory"]))]
    if "cpu" in limits:
        flags += ["--cpus", _cpus(str(limits["cpu"]))]

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts: dict[str, str] = {}
    for m in c.get("volumeMounts", []):
        vol = volumes[m["name"]]
        ro = ":ro" if m.get("readOnly") else ""
        target = m["mountPath"]
        if "hostPath" in vol:
            host = vol["hostPath"]["path"]
            if vol["hostPath"].get("type") == "DirectoryOrCreate":
                Path(host).mkdir(parents=True, exist_ok=True)
            flags += ["-v", f"{host}:{target}{ro}"]
            mounts[target] = host
        elif "emptyDir" in vol:
            size = vol["emptyDir"].get("sizeLimit")
            opt = f",tmpfs-size={_mem_bytes(size)}" if size else ""
            flags += ["--mount", f"type=tmpfs,destination={target},tmpfs-mode=1777{opt}"]
            mounts[target] = "tmpfs"
        elif "persistentVolumeClaim" in vol:
            host_dir = claims[vol["persistentVolumeClaim"]["claimName"]]
            flags += ["-v", f"{host_dir}:{target}{ro}"]
            mounts[target] = str(host_dir)
        else:
            raise AssertionError(f"{kind}: volume {vol} not translated")

    env: dict[str, str] = {}
    for e in c.get("env", []):
        if "value" in e:
            value = _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), str(e["value"]))
        else:
            ref = e["valueFrom"]
            if "secretKeyRef" in ref:
                value = _secret(docs, ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"])
            elif ref.get("fieldRef", {}).get("fieldPath") == "spec.nodeName":
                value = node_name
            elif ref.get("fieldRef", {}).get("fieldPath") == "status.podIP":
                value = "127.0.0.1"
            else:
                raise AssertionError(f"{kind}: env {e} not translated")
        env[e["name"]] = value
    # loopback only, no cluster DNS (module doc)
    if "KERNBOT_LISTEN" in env:
        env["KERNBOT_LISTEN"] = env["KERNBOT_LISTEN"].replace("0.0.0.0:", "127.0.0.1:")
    if "KERNBOT_BOT_URL" in env:
        env["KERNBOT_BOT_URL"] = re.sub(r"//[^:/]+", "//127.0.0.1", env["KERNBOT_BOT_URL"])
    for k, v in env.items():
        flags += ["-e", f"{k}={v}"]

    ports = {p["name"]: int(p["containerPort"]) for p in c.get("ports", [])}
    probes = [c[p]["httpGet"] for p in ("livenessProbe", "readinessProbe") if p in c]
    probe_ports = {ports.get(p["port"], p["port"]) for p in probes}
    (port,) = probe_ports
    return Container(
        name=c["name"],
        flags=flags,
        args=list(c.get("args", [])),
        env=env,
        uid=uid,
        port=int(port),
        probe_paths=sorted({p["path"] for p in probes}),
        security=sc | {"pod": pod_sc},
        mounts=mounts,
    )
