"""A FleetQueries stand-in for Slack edge tests, and sample events taken from the corpus.

The events below copy the numbers of real captures in tests/fixtures/corpus (named beside each)
so renderers are exercised with the shapes the kernel really prints. `corpus_events()` runs a
corpus file through the real scan pipeline when it is available.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from kernbot.bot.ports import (
    AgentInfo,
    DmesgAnswer,
    FleetRow,
    FleetSummary,
    OomHostAnswer,
    Silence,
    SynHostAnswer,
    TopAnswer,
    UnknownHost,
)
from kernbot.core.events import (
    Advice,
    Event,
    Kubernetes,
    Memcg,
    OomKillEvent,
    SynFloodEvent,
    Task,
    Trigger,
    Victim,
)
from kernbot.core.wire import Listener, ProcInfo

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "corpus"
RHEL8_K8S = "oom-rhel8-4.18.0-147-k8s-systemd-docker-cgv1-memcg.txt"
RHEL8_MEMCG = (
    "/kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-podd63c4bbe_5f18_11ec_bdcd_d094668d7dd6.slice/"
    "docker-083afd1a06b8b612ab5d974e12200d7fd1d35be6a44f0e368179399ef6c6e84d.scope"
)


def corpus_lines(name: str) -> list[str]:
    return (CORPUS / name).read_text(encoding="utf-8", errors="replace").splitlines()


def corpus_events(name: str) -> list[Event]:
    """The real pipeline's events for a corpus file (ImportError until the pipeline lands)."""
    from kernbot.core.detector import detect
    from kernbot.core.formats.reader import read_lines

    return list(detect(read_lines(corpus_lines(name))))


def sample_oom(**changes: Any) -> OomKillEvent:
    """The RHEL 8 / Kubernetes memcg kill of `java` pid 7093 (corpus: RHEL8_K8S)."""
    event = OomKillEvent(
        id="4b1f0c7e-rhel8:20148497",
        time="2021-12-20T09:14:03+00:00",
        host="k8s-node-17",
        constraint="CONSTRAINT_MEMCG",
        trigger=Trigger(
            comm="java",
            pid=7093,
            gfp_mask="0x6200ca(GFP_HIGHUSER_MOVABLE)",
            order=0,
            oom_score_adj=916,
        ),
        victim=Victim(
            pid=7093,
            comm="java",
            uid=0,
            total_vm_kb=11451920,
            anon_rss_kb=1968776,
            file_rss_kb=0,
            shmem_rss_kb=16356,
            oom_score_adj=916,
            oom_score=1974,
        ),
        memcg=Memcg(
            oom_path=RHEL8_MEMCG,
            task_path=RHEL8_MEMCG,
            usage_kb=32461120,
            limit_kb=33554432,
            failcnt=0,
        ),
        kubernetes=Kubernetes(
            pod_uid="d63c4bbe-5f18-11ec-bdcd-d094668d7dd6",
            container_id="083afd1a06b8b612ab5d974e12200d7fd1d35be6a44f0e368179399ef6c6e84d",
            qos="burstable",
            namespace="payments",
            pod="ledger-7d9f8-x2k4q",
            container="ledger",
        ),
        tasks=[
            Task(
                pid=7093,
                uid=0,
                tgid=7093,
                total_vm_kb=11451920,
                rss_kb=1985132,
                oom_score_adj=916,
                name="java",
            ),
            Task(
                pid=6921,
                uid=0,
                tgid=6921,
                total_vm_kb=1032,
                rss_kb=4,
                oom_score_adj=-998,
                name="pause",
            ),
        ],
        advice=[
            Advice(
                title="Raise the container's memory limit or cut its heap",
                why="The container hit its cgroup limit (32 GiB) with a 31 GiB JVM.",
                commands=[
                    "kubectl -n payments describe pod ledger-7d9f8-x2k4q",
                    "kubectl -n payments top pod ledger-7d9f8-x2k4q --containers",
                ],
            )
        ],
        lines=corpus_lines(RHEL8_K8S)[:5],
    )
    return event.model_copy(update=changes)


def sample_syn(**changes: Any) -> SynFloodEvent:
    """`request_sock_TCP: Possible SYN flooding on port 127.0.0.1:23456. Sending cookies.`
    (corpus: syn-6.2plus-addr-ipv4-printk-caller.txt) with the agent's context added."""
    event = SynFloodEvent(
        id="9e0c-syn:601",
        time="2023-03-02T10:00:01+00:00",
        host="edge-3",
        family="ipv4",
        addr="127.0.0.1",
        port=23456,
        action="cookies",
        proto="request_sock_TCP",
        episode="ongoing",
        context={
            "listener": {
                "family": "ipv4",
                "addr": "127.0.0.1",
                "port": 23456,
                "pid": 4242,
                "comm": "nginx",
                "accept_queue": 0,
                "backlog": 511,
                "syn_recv": 256,
            },
            "counter_rates": {
                "SyncookiesSent": 1875.0,
                "SyncookiesRecv": 3.5,
                "ListenOverflows": 0.0,
            },
            "sysctls": {"net.ipv4.tcp_syncookies": 1, "net.ipv4.tcp_max_syn_backlog": 256},
            "peak_rates": {"SyncookiesSent": 2210.0, "SyncookiesRecv": 4.0},
            "verdict": "attack",
            "verdict_text": "spoofed SYNs: many cookies sent, few returned (an attack)",
            "started": "2023-03-02T09:58:40+00:00",
            "duration_s": 81.0,
        },
        advice=[
            Advice(
                title="Check the firewall and upstream DDoS protection",
                why="Cookies sent vastly outnumber cookies received.",
                commands=["ss -ltn 'sport = :23456'", "nstat -az TcpExtSyncookiesSent"],
            )
        ],
    )
    return event.model_copy(update=changes)


class FakeFleet:
    """FleetQueries with canned answers; records every call in `calls`."""

    def __init__(self, hosts: list[str] | None = None, down: set[str] | None = None) -> None:
        self.host_names = hosts or ["k8s-node-17", "k8s-node-18", "edge-3"]
        self.down = down or set()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.silences: list[Silence] = []

    def _known(self, host: str) -> None:
        if host not in self.host_names:
            raise UnknownHost(host, difflib.get_close_matches(host, self.host_names, n=3))

    def _reach(self, host: str) -> dict[str, Any]:
        if host in self.down:
            return {"agent_reachable": False, "agent_error": "timeout after 3s", "from_store": True}
        return {"agent_reachable": True}

    async def hosts(self) -> list[AgentInfo]:
        self.calls.append(("hosts", ()))
        return [
            AgentInfo(
                host=h,
                kernel="4.18.0-147.el8.x86_64",
                last_seen="2021-12-20T09:15:00Z",
                stale=h in self.down,
                source="kmsg",
            )
            for h in self.host_names
        ]

    async def oom_host(self, host: str) -> OomHostAnswer:
        self.calls.append(("oom_host", (host,)))
        self._known(host)
        return OomHostAnswer(
            host=host,
            events=[sample_oom(host=host)],
            **self._reach(host),
            top=[
                ProcInfo(
                    pid=7093,
                    comm="java",
                    oom_score=1974,
                    oom_score_adj=916,
                    rss_kb=1985132,
                    namespace="payments",
                    pod="ledger-7d9f8-x2k4q",
                )
            ],
            meminfo={"MemTotal": 65807564, "MemAvailable": 2101132},
            psi={"some": {"avg10": 12.5}, "full": {"avg10": 3.1}},
        )

    async def oom_fleet(self, since_s: float = 86400.0) -> FleetSummary:
        self.calls.append(("oom_fleet", (since_s,)))
        rows = [
            FleetRow(
                host="k8s-node-17",
                namespace="payments",
                pod="ledger-7d9f8-x2k4q",
                victim="java",
                kills=3,
            )
        ]
        return FleetSummary(
            since="2021-12-19T09:15:00Z",
            total_kills=3,
            by_host=rows,
            repeat_offenders=rows,
            syn_floods=1,
        )

    async def syn_host(self, host: str) -> SynHostAnswer:
        self.calls.append(("syn_host", (host,)))
        self._known(host)
        syn = sample_syn(host=host)
        return SynHostAnswer(
            host=host,
            events=[syn],
            **self._reach(host),
            listeners=[Listener.model_validate(syn.context.listener)],
            counter_rates=syn.context.counter_rates,
            sysctls=syn.context.sysctls,
        )

    async def top(self, host: str, n: int = 10) -> TopAnswer:
        self.calls.append(("top", (host, n)))
        self._known(host)
        procs = [ProcInfo(pid=7093, comm="java", oom_score=1974, oom_score_adj=916, rss_kb=1985132)]
        return TopAnswer(host=host, processes=procs, **self._reach(host))

    async def dmesg(self, host: str, grep: str | None, lines: int = 50) -> DmesgAnswer:
        self.calls.append(("dmesg", (host, grep, lines)))
        self._known(host)
        found = [ln for ln in corpus_lines(RHEL8_K8S) if grep is None or grep in ln]
        return DmesgAnswer(
            host=host, lines=found[-lines:], truncated=len(found) > lines, **self._reach(host)
        )

    async def silence(self, target: str, duration_s: float, by: str | None) -> Silence:
        self.calls.append(("silence", (target, duration_s, by)))
        s = Silence(target=target, until=f"+{duration_s:.0f}s", by=by)
        self.silences.append(s)
        return s
