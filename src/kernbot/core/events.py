"""The event contract: what `kernbot scan --json` prints and what agents post to the bot.

Field names follow ARCHITECTURE.md ("Event JSON"); extra fields are allowed and kept so an
older bot accepts a newer agent's events. Everything here is plain data; no I/O.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

WIRE_VERSION = 1
MAX_LINES = 400
"""At most this many raw lines are kept on an event (the task table of a big host is thousands)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Trigger(_Model):
    comm: str | None = None
    pid: int | None = None
    gfp_mask: str | None = None
    order: int | None = None
    oom_score_adj: int | None = None


class Victim(_Model):
    pid: int | None = None
    comm: str | None = None
    uid: int | None = None
    total_vm_kb: int | None = None
    anon_rss_kb: int | None = None
    file_rss_kb: int | None = None
    shmem_rss_kb: int | None = None
    pgtables_kb: int | None = None
    oom_score_adj: int | None = None
    oom_score: int | None = None
    """Computed like the kernel's oom_badness() on the /proc/PID/oom_score scale of that era."""
    printed_score: int | None = None
    """The `score N` the kernel printed (old kernels only)."""


class Memcg(_Model):
    oom_path: str | None = None
    task_path: str | None = None
    usage_kb: int | None = None
    limit_kb: int | None = None
    """None when the kernel printed the 'unlimited' value."""
    failcnt: int | None = None
    swap_usage_kb: int | None = None
    swap_limit_kb: int | None = None


class Kubernetes(_Model):
    pod_uid: str | None = None
    container_id: str | None = None
    qos: Literal["guaranteed", "burstable", "besteffort"] | None = None
    runtime: str | None = None
    namespace: str | None = None
    pod: str | None = None
    container: str | None = None
    name_source: str | None = None
    """Where namespace/pod/container came from (`pod-logs`, `kubernetes-api`), when known."""


class Task(_Model):
    """One row of the kernel's task table (memory values converted to kB)."""

    pid: int
    uid: int | None = None
    tgid: int | None = None
    total_vm_kb: int | None = None
    rss_kb: int | None = None
    pgtables_kb: int | None = None
    swapents_kb: int | None = None
    oom_score_adj: int | None = None
    name: str = ""
    oom_score: int | None = None


class MemInfo(_Model):
    """Totals from a global OOM's Mem-Info / show_mem, in kB."""

    total_ram_kb: int | None = None
    free_kb: int | None = None
    total_swap_kb: int | None = None
    free_swap_kb: int | None = None
    reserved_kb: int | None = None


class Reaper(_Model):
    pid: int | None = None
    comm: str | None = None
    reaped: bool = True
    anon_rss_kb: int | None = None
    file_rss_kb: int | None = None
    shmem_rss_kb: int | None = None


class Advice(_Model):
    """A suggested fix: data, rendered by Slack and the CLI alike."""

    title: str
    why: str
    commands: list[str] = Field(default_factory=list)
    severity: Literal["info", "warning", "critical"] = "warning"


class _EventBase(_Model):
    version: int = WIRE_VERSION
    id: str | None = None
    """Idempotency key: `boot_id:seq` when both are known, else a stable hash of the first line."""
    revision: int = 0
    """Live assembly posts an event early and later updates it under the same id; higher wins."""
    time: str | None = None
    """ISO 8601 wall time when known."""
    mono_usec: int | None = None
    host: str | None = None
    boot_id: str | None = None
    seq: int | None = None
    lines: list[str] = Field(default_factory=list)
    advice: list[Advice] = Field(default_factory=list)
    context: dict[str, Any] = Field(default_factory=dict)
    """Live host context added by the agent (meminfo, PSI, top oom_scores, listener,
    counters...)."""


class OomKillEvent(_EventBase):
    kind: Literal["oom_kill"] = "oom_kill"
    constraint: str | None = None
    """CONSTRAINT_MEMCG / CONSTRAINT_NONE / ... as printed; derived (`CONSTRAINT_MEMCG`) on old
    kernels."""
    global_oom: bool = False
    trigger: Trigger = Field(default_factory=Trigger)
    victim: Victim = Field(default_factory=Victim)
    memcg: Memcg | None = None
    kubernetes: Kubernetes | None = None
    meminfo: MemInfo | None = None
    tasks: list[Task] = Field(default_factory=list)
    reaper: Reaper | None = None
    panic: bool = False
    """panic_on_oom: the kernel panicked instead of killing."""
    group_kill: bool = False
    """memory.oom.group: the whole cgroup was killed."""
    group_victims: list[Victim] = Field(default_factory=list)
    complete: bool = True
    """False when the report was truncated (no kill line seen, or flushed on timeout)."""
    totalpages: int | None = None
    kernel_era: str | None = None
    """Which score formula applied: `5.9+`, `2.6.36-5.8`, `pre-2.6.36`."""
    missing_from_log: bool = False
    """Counted in /proc/vmstat oom_kill but the log lines were lost (agent reconciliation)."""
    killed: bool = True
    """False when the report shows no kill (a header without a kill line: truncated, panic, or
    the victim was already exiting): not counted as a kill."""
    report_suppressed: bool = False
    """Only the kill line was printed: past 10 reports in 5 s the kernel prints `oom_kill_process:
    N callbacks suppressed` and, for each further kill, just this line (or the log lost the
    rest). The fields are what that line proves."""


class SynFloodEvent(_EventBase):
    kind: Literal["syn_flood"] = "syn_flood"
    family: Literal["ipv4", "ipv6"] = "ipv4"
    addr: str | None = None
    port: int | None = None
    action: Literal["cookies", "drop"] = "cookies"
    proto: str | None = None
    """What the kernel printed as the proto: `TCP`, `TCPv6`, `request_sock_TCP`,
    `request_sock_subflow_v4`..."""
    episode: Literal["start", "ongoing", "ended"] | None = None
    """Set by the agent when it tracks the flood through the TcpExt counters."""


Event = Annotated[OomKillEvent | SynFloodEvent, Field(discriminator="kind")]


class EventEnvelope(BaseModel):
    """Parses one event of either kind."""

    event: Event
