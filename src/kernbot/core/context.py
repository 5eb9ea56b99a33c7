"""What the agent learns on the host around an event: typed, so writer and readers agree.

The agent's enricher, the SYN episode tracker and the kill reconciler write these; the advice
rules and the alert document read them. JSON keys are those the agent has always sent (so a
`/proc/meminfo` key keeps its kernel spelling); unknown keys from newer agents are kept.
Plain data, no I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kernbot.core.bounds import Comm


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


WHO_IS_NEXT = 5
"""How many processes "who is next" (`OomContext.top_oom_score`) holds: the agent reads this many
and the alert shows them all (issue 11: ten were stored and sent for five shown)."""


class ProcInfo(_Model):
    """One live process as /proc shows it (who is next: the highest oom_score now)."""

    pid: int
    comm: Comm
    oom_score: int | None = None
    """/proc/PID/oom_score: the host-wide (/proc) scale, not a memory cgroup's."""
    oom_score_adj: int | None = None
    rss_kb: int | None = None
    cgroup: str | None = None
    """The memory cgroup path (v1 `memory` line, else the v2 one), as /proc/PID/cgroup shows it."""
    pod_uid: str | None = None
    container_id: str | None = None
    namespace: str | None = None
    pod: str | None = None
    container: str | None = None


class Listener(_Model):
    """A TCP listening socket with its owner and queues."""

    family: str
    addr: str
    port: int
    pid: int | None = None
    comm: str | None = None
    accept_queue: int | None = None
    """Current accept queue length (ss Recv-Q on a listener)."""
    backlog: int | None = None
    """The listen() backlog (ss Send-Q on a listener)."""
    syn_recv: int | None = None
    """Half-open connections (SYN_RECV request socks) for this port."""


class HostMemory(_Model):
    """/proc/meminfo at enrichment time, in kB, under the kernel's own key names."""

    MemTotal: int | None = None
    MemFree: int | None = None
    MemAvailable: int | None = None
    SwapTotal: int | None = None
    SwapFree: int | None = None
    Shmem: int | None = None
    Slab: int | None = None
    SUnreclaim: int | None = None


class PsiLine(_Model):
    """One line of /proc/pressure/memory: share of time stalled (percent) over 10/60/300 s."""

    avg10: float | None = None
    avg60: float | None = None
    avg300: float | None = None
    total: int | None = None
    """Total stall time in microseconds since boot."""


class Psi(_Model):
    """/proc/pressure/memory: `some` (at least one task stalled), `full` (all stalled)."""

    some: PsiLine | None = None
    full: PsiLine | None = None


class _Context(_Model):
    sysctls: dict[str, int] = Field(default_factory=dict)
    """The sysctls that shaped the event (`vm.panic_on_oom`, `net.ipv4.tcp_syncookies`...)."""
    enrich_errors: list[str] = Field(default_factory=list)
    """`what: error` for each host read that failed; the event went out without it."""


class Recurrence(_Model):
    """The same pod or cgroup killed again and again at the same usage (across kills)."""

    kills: int
    """Kills at this level within the window, this one included."""
    interval_s: float
    """Median time between them."""
    usage_kb: int | None = None
    limit_kb: int | None = None
    since: float
    """Epoch seconds of the first of them."""
    key: str
    """`pod:<uid>` or `cgroup:<path>`."""
    text: str
    """`grows to its limit every ~N min (K kills at X MiB): ...`."""


class OomContext(_Context):
    """Live host context of an OOM kill."""

    meminfo: HostMemory | None = None
    psi: Psi | None = None
    top_oom_score: list[ProcInfo] | None = None
    """Who is next: the `WHO_IS_NEXT` processes with the highest /proc oom_score right after the
    kill."""
    oom_kill_total: int | None = None
    """/proc/vmstat oom_kill: kills since boot."""
    kills_24h: int | None = None
    """OOM kills the agent saw in the last 24 h in the same memory cgroup (all, when unknown)."""
    pod_source: str | None = None
    """Where the pod names came from, as a phrase (`names from the Kubernetes API`)."""
    missing_kills: int | None = None
    """Reconciliation: kills counted by /proc/vmstat but absent from the kernel log."""
    vmstat_oom_kill: int | None = None
    before_first_start: bool = False
    """Reconciliation: the missing kills happened before the agent first started."""
    recurrence: Recurrence | None = None
    """Across kills (agent history, else the bot's store): the pattern this kill repeats."""


class SynContext(_Context):
    """Live host context of a SYN flood episode."""

    source: Literal["kernel", "counters"] | None = None
    """What opened the episode: the kernel's message, or the TcpExt counters alone."""
    listener: Listener | None = None
    counters: dict[str, int] = Field(default_factory=dict)
    """TcpExt counters at enrichment time."""
    counter_rates: dict[str, float] = Field(default_factory=dict)
    """TcpExt counters per second over the last sample."""
    peak_rates: dict[str, float] = Field(default_factory=dict)
    mean_rates: dict[str, float] = Field(default_factory=dict)
    started: str | None = None
    """ISO 8601 time the episode started."""
    ended: str | None = None
    duration_s: float | None = None
    verdict: str | None = None
    """Short code (`attack`, `legitimate`, `unknown`) the advice rules read."""
    verdict_text: str | None = None
    """The verdict as a sentence."""
