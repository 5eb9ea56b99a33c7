"""The Helm chart, rendered by real Helm (helm-python-sdk bundles Helm's Go SDK), linted with
--strict, and every manifest validated against the Kubernetes schemas (kubernetes-validate)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")
kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")

CHART = Path(__file__).resolve().parent.parent / "helm" / "kernbot"
KUBE_VERSION = "1.30.0"

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "slack-http-ingress": {
        "slack": {"botToken": "xoxb-1", "signingSecret": "s", "channel": "C123"},
        "ingress": {"enabled": True, "host": "kernbot.example.com", "className": "nginx"},
    },
    "socket-mode": {
        "slack": {"botToken": "xoxb-1", "signingSecret": "s", "appToken": "xapp-1", "channel": "C1"}
    },
    "postgresql-replicas": {
        "bot": {"replicas": 2, "databaseUrl": "postgresql+psycopg://u:p@pg:5432/kernbot"},
        "serviceMonitor": {"enabled": True},
    },
    "existing-secrets": {
        "slack": {"existingSecret": "my-slack", "channel": "C1"},
        "existingTokenSecret": "my-token",
        "bot": {"databaseUrlSecret": "my-db", "replicas": 3},
    },
    "journal-unprivileged": {"agent": {"source": "journal", "kubernetesApi": True}},
}


def _render(values: dict[str, Any]) -> list[dict[str, Any]]:
    chart = helm.Chart.load(str(CHART))
    out = chart.render(values, name="kb", namespace="monitoring", is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in out.items():
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_lint_strict_is_clean() -> None:
    report = helm.lint(str(CHART), strict=True, kube_version=f"v{KUBE_VERSION}")
    errors = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert errors == []


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_manifest_validates_against_kubernetes_schemas(variant: str) -> None:
    docs = _render(VARIANTS[variant])
    assert docs
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":  # a CRD: no upstream schema to check against
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kv.validate(doc, KUBE_VERSION, strict=True)


def test_default_agent_is_privileged_kmsg_with_everything_else_locked_down() -> None:
    docs = _render({})
    (ds,) = _by_kind(docs, "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e for e in c["env"]}
    assert env["KERNBOT_SOURCE"]["value"] == "kmsg"
    assert env["KERNBOT_PROC_ROOT"]["value"] == "/host/proc"
    assert env["KERNBOT_NET_PID"]["value"] == "1"
    assert env["KERNBOT_CGROUP_ROOT"]["value"] == "/host/sys/fs/cgroup"
    assert env["KERNBOT_HOSTNAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env["KERNBOT_ADVERTISE_URL"]["value"] == "http://$(POD_IP):9101"
    assert env["KERNBOT_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "kb-kernbot-token"
    assert c["securityContext"]["privileged"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["hostNetwork"] is False
    assert pod["priorityClassName"] == "system-node-critical"
    assert {"operator": "Exists"} in pod["tolerations"]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    for ro in ("kmsg", "proc", "pod-logs", "cgroup"):
        assert mounts[ro]["readOnly"] is True
    assert mounts["cgroup"]["mountPath"] == "/host/sys/fs/cgroup"
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["cgroup"]["hostPath"] == {"path": "/sys/fs/cgroup", "type": "Directory"}
    assert vols["kmsg"]["hostPath"] == {"path": "/dev/kmsg", "type": "CharDevice"}
    assert vols["state"]["hostPath"]["path"] == "/var/lib/kernbot"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["resources"]["limits"]["memory"]


def test_journal_mode_is_not_privileged_and_mounts_the_journal_read_only() -> None:
    (ds,) = _by_kind(_render({"agent": {"source": "journal"}}), "DaemonSet")
    (c,) = ds["spec"]["template"]["spec"]["containers"]
    assert c["securityContext"]["privileged"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["KERNBOT_SOURCE"] == "journal:/host/var/log/journal"
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert "kmsg" not in mounts
    assert mounts["journal"]["readOnly"] is True


def test_bot_runs_non_root_read_only_with_a_pvc_and_generated_token() -> None:
    docs = _render({"slack": {"botToken": "xoxb-1", "signingSecret": "s", "channel": "C1"}})
    (dep,) = _by_kind(docs, "Deployment")
    spec = dep["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    (c,) = spec["containers"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e for e in c["env"]}
    assert env["SLACK_BOT_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "kb-kernbot-slack"
    assert "SLACK_APP_TOKEN" not in env
    assert _by_kind(docs, "PersistentVolumeClaim")
    secrets = {s["metadata"]["name"]: s for s in _by_kind(docs, "Secret")}
    assert len(secrets["kb-kernbot-token"]["data"]["token"]) >= 48
    (np,) = _by_kind(docs, "NetworkPolicy")
    peer = np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert peer["app.kubernetes.io/component"] == "bot"


def test_existing_secrets_are_referenced_not_created() -> None:
    docs = _render(VARIANTS["existing-secrets"])
    assert _by_kind(docs, "Secret") == []
    (dep,) = _by_kind(docs, "Deployment")
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SLACK_BOT_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "my-slack"
    assert env["KERNBOT_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "my-token"
    assert env["KERNBOT_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "my-db"
    assert _by_kind(docs, "PersistentVolumeClaim") == []


def test_replicas_without_postgresql_are_refused() -> None:
    with pytest.raises(helm.HelmError, match="needs PostgreSQL"):
        _render({"bot": {"replicas": 2}})


def test_schema_rejects_an_unknown_agent_source() -> None:
    chart = helm.Chart.load(str(CHART))
    with pytest.raises(helm.HelmError, match="kmsg"):
        chart.validate_schema({"agent": {"source": "syslog"}})
