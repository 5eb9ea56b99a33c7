"""The event contract: what `kernbot scan --json` prints and what agents post to the bot.

Field names follow ARCHITECTURE.md ("Event JSON"); extra fields are allowed and kept so an
older bot accepts a newer agent's events. Everything here is plain data; no I/O.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    model_validator,
)

from kernbot.core.bounds import (
    Bounded,
    CgroupPath,
    Comm,
    EventId,
    HostName,
    K8sName,
    Line,
    Revision,
    Time,
    bounded,
    is_wire,
)
from kernbot.core.context import OomContext, SynContext

WIRE_VERSION = 1
"""The wire MAJOR version: a receiver refuses bodies with a higher one (fields it cannot know
changed meaning); additions within a major are extra fields, which every model keeps."""
MAX_LINES = 400
"""At most this many raw lines are kept on an event (the task table of a big host is thousands)."""


class _Model(BaseModel):
    """Every field that can carry a number, a string or a container is `Bounded` (or a bounded
    string type of kernbot.core.bounds), so JSON input gets `bounded` on it; a field of a
    model type needs nothing (its own fields are checked). The check sits in the JSON branch of
    each field's schema, so the models the core builds in Python never call it."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @model_validator(mode="after")
    def _bounded_extra(self, info: ValidationInfo) -> _Model:
        if not self.__pydantic_extra__ or not is_wire(info):
            return self
        for name, value in self.__pydantic_extra__.items():
            try:
                bounded(value)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return self


_M = TypeVar("_M", bound=BaseModel)
_new = object.__new__
_set = object.__setattr__


def validated(cls: type[_M], fields: dict[str, Any], fields_set: set[str] | None = None) -> _M:
    """`cls(**fields)` without running validation: for values that Python-mode validation
    keeps exactly as they are, in one of the event models here (extra fields allowed, no
    private attributes, no `model_post_init`, no field validators but the wire-only bounds):
    what `model_construct` does, minus its Python loop over every field and its defaults.

    `fields` must hold every field, in order, each already what validation would give (an
    `int` for an int field, a comm cut by `clip_comm`, a fresh list, a model instance), and is
    kept as the model's `__dict__`; `fields_set` is what `model_fields_set` answers (every field
    when None, as when each was given to the constructor). The OOM
    event build makes its event, victim, trigger, memcg, reaper and dozen task rows so, from
    values the report's parser typed (`kernbot.core.oom.event`: validating them was half of
    building the event); `tests/test_oom_build.py` compares each with a validated one."""
    model = _new(cls)
    _set(model, "__dict__", fields)
    _set(model, "__pydantic_fields_set__", set(fields) if fields_set is None else fields_set)
    _set(model, "__pydantic_extra__", {})
    _set(model, "__pydantic_private__", None)
    return model


class Trigger(_Model):
    comm: Comm | None = None
    pid: Bounded[int | None] = None
    gfp_mask: Bounded[str | None] = None
    order: Bounded[int | None] = None
    oom_score_adj: Bounded[int | None] = None


class Victim(_Model):
    pid: Bounded[int | None] = None
    comm: Comm | None = None
    uid: Bounded[int | None] = None
    total_vm_kb: Bounded[int | None] = None
    anon_rss_kb: Bounded[int | None] = None
    file_rss_kb: Bounded[int | None] = None
    shmem_rss_kb: Bounded[int | None] = None
    pgtables_kb: Bounded[int | None] = None
    oom_score_adj: Bounded[int | None] = None
    oom_score: Bounded[int | None] = None
    """Computed like the kernel's oom_badness() on the /proc/PID/oom_score scale of that era."""
    printed_score: Bounded[int | None] = None
    """The `score N` the kernel printed (old kernels only): a memory cgroup OOM prints it on
    that cgroup's scale, not /proc's."""
    pgtables_bytes_labelled_kb: bool = False
    """The kernel printed page-table bytes under a `kB` label (5.x bug); `pgtables_kb` is fixed."""


class ProcessRef(_Model):
    """A process named by a report line beside the victim."""

    pid: Bounded[int | None] = None
    comm: Bounded[str | None] = None


class ContainerOwner(_Model):
    """A non-Kubernetes owner of the cgroup: a container, an LXC guest or a systemd unit."""

    kind: Bounded[str]
    """`container`, `lxc`, `systemd-unit`, `user-session` or `root`."""
    runtime: Bounded[str | None] = None
    container_id: Bounded[str | None] = None
    lxc_id: Bounded[str | None] = None
    unit: Bounded[str | None] = None


class Memcg(_Model):
    oom_path: CgroupPath | None = None
    task_path: CgroupPath | None = None
    usage_kb: Bounded[int | None] = None
    limit_kb: Bounded[int | None] = None
    """None when the kernel printed the 'unlimited' value."""
    failcnt: Bounded[int | None] = None
    swap_usage_kb: Bounded[int | None] = None
    swap_limit_kb: Bounded[int | None] = None
    memsw_usage_kb: Bounded[int | None] = None
    """cgroup v1 memory+swap counter."""
    memsw_limit_kb: Bounded[int | None] = None
    memsw_failcnt: Bounded[int | None] = None


class Kubernetes(_Model):
    pod_uid: Bounded[str | None] = None
    container_id: Bounded[str | None] = None
    qos: Literal["guaranteed", "burstable", "besteffort"] | None = None
    runtime: Bounded[str | None] = None
    namespace: K8sName | None = None
    pod: K8sName | None = None
    container: K8sName | None = None
    name_source: Bounded[str | None] = None
    """Where namespace/pod/container came from (`pod-logs`, `kubernetes-api`), when known."""


class Task(_Model):
    """One row of the kernel's task table (memory values converted to kB)."""

    pid: Bounded[int]
    uid: Bounded[int | None] = None
    tgid: Bounded[int | None] = None
    total_vm_kb: Bounded[int | None] = None
    rss_kb: Bounded[int | None] = None
    pgtables_kb: Bounded[int | None] = None
    swapents_kb: Bounded[int | None] = None
    oom_score_adj: Bounded[int | None] = None
    name: Comm = ""
    oom_score: Bounded[int | None] = None


class MemInfo(_Model):
    """Totals from a global OOM's Mem-Info / show_mem, in kB."""

    total_ram_kb: Bounded[int | None] = None
    free_kb: Bounded[int | None] = None
    total_swap_kb: Bounded[int | None] = None
    free_swap_kb: Bounded[int | None] = None
    reserved_kb: Bounded[int | None] = None


class Reaper(_Model):
    pid: Bounded[int | None] = None
    comm: Comm | None = None
    reaped: bool = True
    anon_rss_kb: Bounded[int | None] = None
    file_rss_kb: Bounded[int | None] = None
    shmem_rss_kb: Bounded[int | None] = None


class Advice(_Model):
    """A suggested fix: data, rendered by Slack and the CLI alike."""

    title: Bounded[str]
    why: Bounded[str]
    commands: Bounded[list[str]] = Field(default_factory=list)
    severity: Literal["info", "warning", "critical"] = "warning"


class Finding(_Model):
    """One likely cause of an OOM kill (ARCHITECTURE.md: `diagnosis`), most likely first."""

    cause: Bounded[str]
    """A code (`memcg_limit`, `one_process`, `slab`...); codes are added, never renamed."""
    summary: Bounded[str]
    """One sentence with the numbers."""
    evidence: Bounded[dict[str, JsonValue]] = Field(default_factory=dict)
    """The numbers (kB unless named otherwise) and where in the report they came from:
    `lines` holds indices into the event's `lines`."""


class MemoryAccounting(_Model):
    """Where the memory went, from the report alone (`kernbot.core.oom.accounting`), in kB."""

    scope: Literal["memcg", "host"]
    """`memcg`: the total is the cgroup's limit; `host`: the total is RAM."""
    total_kb: Bounded[int | None] = None
    usage_kb: Bounded[int | None] = None
    parts_kb: Bounded[dict[str, int]] = Field(default_factory=dict)
    """anon, page_cache, shmem, slab_unreclaimable, slab_reclaimable, kernel_stack,
    page_tables, hugepages, kernel_other, unevictable, free, unaccounted: each kB once."""
    dirty_writeback_kb: Bounded[int | None] = None
    hugepages_free_kb: Bounded[int | None] = None
    swap_used_kb: Bounded[int | None] = None
    swap_total_kb: Bounded[int | None] = None
    tasks_rss_kb: Bounded[int] = 0
    lines: Bounded[dict[str, list[int]]] = Field(default_factory=dict)
    """Part -> indices into the event's `lines` its number came from."""
    not_in_report: Bounded[list[str]] = Field(default_factory=list)


class _EventBase(_Model):
    version: Bounded[int] = WIRE_VERSION
    id: EventId | None = None
    """Idempotency key: `boot_id:seq` when both are known, else a stable hash of the first line."""
    revision: Revision = 0
    """Live assembly posts an event early and later updates it under the same id; higher wins."""
    time: Time | None = None
    """ISO 8601 wall time when known."""
    mono_usec: Bounded[int | None] = None
    host: HostName | None = None
    boot_id: Bounded[str | None] = None
    seq: Bounded[int | None] = None
    lines: Bounded[Annotated[list[Line], Field(max_length=MAX_LINES)]] = Field(default_factory=list)
    advice: Bounded[list[Advice]] = Field(default_factory=list)
    history: bool = False
    """Read from the log's past (before the agent started, or too old): kept, never alerted."""
    test: bool = False
    """Sent by `kernbot doctor --test-alert` through agent, bot and Slack: nothing was killed."""

    @model_validator(mode="before")
    @classmethod
    def _history_from_context(cls, data: Any) -> Any:
        """Agents before the typed contract sent the history flag as `context.history`."""
        if isinstance(data, dict) and "history" not in data:
            ctx = data.get("context")
            if isinstance(ctx, dict) and ctx.get("history") is True:
                data = {**data, "history": True}
        return data


class OomKillEvent(_EventBase):
    kind: Literal["oom_kill"] = "oom_kill"
    constraint: Bounded[str | None] = None
    """CONSTRAINT_MEMCG / CONSTRAINT_NONE / ... as printed; derived (`CONSTRAINT_MEMCG`) on old
    kernels."""
    global_oom: bool = False
    trigger: Trigger = Field(default_factory=Trigger)
    victim: Victim = Field(default_factory=Victim)
    memcg: Memcg | None = None
    kubernetes: Kubernetes | None = None
    meminfo: MemInfo | None = None
    tasks: Bounded[list[Task]] = Field(default_factory=list)
    reaper: Reaper | None = None
    panic: bool = False
    """panic_on_oom: the kernel panicked instead of killing."""
    group_kill: bool = False
    """memory.oom.group: the whole cgroup was killed."""
    group_victims: Bounded[list[Victim]] = Field(default_factory=list)
    complete: bool = True
    """False when the report was truncated (no kill line seen, or flushed on timeout)."""
    totalpages: Bounded[int | None] = None
    kernel_era: Bounded[str | None] = None
    """Which score formula applied: `5.9+`, `2.6.36-5.8`, `pre-2.6.36`."""
    missing_from_log: bool = False
    """Counted in /proc/vmstat oom_kill but the log lines were lost (agent reconciliation)."""
    exiting_victims: Bounded[list[ProcessRef]] = Field(default_factory=list)
    """`OOM victim ... is already exiting`: the kernel waited instead of killing another."""
    mm_pinned_by: ProcessRef | None = None
    """The victim's memory is shared with this process, so it could not be reaped yet."""
    sysrq: bool = False
    """Triggered by hand (SysRq-f / `echo f > /proc/sysrq-trigger`), not by a shortage."""
    sysrq_ignored: Bounded[str | None] = None
    """Why the kernel ignored a manual OOM request, as printed."""
    lines_omitted: Bounded[int] = 0
    """Lines of the report dropped beyond MAX_LINES."""
    group_path: Bounded[str | None] = None
    """memory.oom.group: the cgroup whose tasks were all killed."""
    container: ContainerOwner | None = None
    """The cgroup's owner when it is not a Kubernetes pod."""
    diagnosis: Bounded[list[Finding]] = Field(default_factory=list)
    """Likely causes, most likely first (ARCHITECTURE.md, "Event JSON")."""
    diagnosis_gaps: Bounded[list[str]] = Field(default_factory=list)
    """What the diagnosis could not judge, and why (a section missing from the report)."""
    accounting: MemoryAccounting | None = None
    """Where the memory went, from the report (`kernbot.core.oom.accounting`)."""
    context: OomContext = Field(default_factory=OomContext)
    """Live host context added by the agent."""
    risk_id: Bounded[str | None] = None
    """The `oom_risk` episode that warned about this cgroup before the kill, when there was one."""
    risk_started: Bounded[str | None] = None
    """ISO time that episode started (the warning came this long before the kill)."""
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
    addr: Bounded[str | None] = None
    port: Bounded[int | None] = None
    action: Literal["cookies", "drop"] = "cookies"
    proto: Bounded[str | None] = None
    """What the kernel printed as the proto: `TCP`, `TCPv6`, `request_sock_TCP`,
    `request_sock_subflow_v4`..."""
    episode: Literal["start", "ongoing", "ended"] | None = None
    """Set by the agent when it tracks the flood through the TcpExt counters."""
    context: SynContext = Field(default_factory=SynContext)
    """Live host context added by the agent."""


class PsiAvg10(_Model):
    """An OOM-risk sample's memory pressure: percent of the last 10 s some or all tasks stalled
    (the richer host PSI of a kill's context is kernbot.core.context.Psi)."""

    some_avg10: float | None = None
    full_avg10: float | None = None


class TopProcess(_Model):
    pid: Bounded[int]
    comm: Bounded[str] = ""
    rss_kb: Bounded[int | None] = None
    growth_kb_per_s: Bounded[float | None] = None
    """RSS growth since the episode's previous event (None on its first)."""


RiskState = Literal["start", "ongoing", "ended", "killed"]


class OomRiskEvent(_EventBase):
    """One episode of a cgroup (or the host, `cgroup` "/") running out of memory before any
    kill; updates keep the id and raise `revision` (kernbot.core.risk.episodes)."""

    kind: Literal["oom_risk"] = "oom_risk"
    state: RiskState = "start"
    cgroup: Bounded[str] = "/"
    kubernetes: Kubernetes | None = None
    container: ContainerOwner | None = None
    usage_kb: Bounded[int | None] = None
    working_set_kb: Bounded[int | None] = None
    limit_kb: Bounded[int | None] = None
    growth_kb_per_s: Bounded[float | None] = None
    eta_s: Bounded[float | None] = None
    """Seconds to the limit at the current growth; None when not growing."""
    psi: PsiAvg10 | None = None
    top: Bounded[list[TopProcess]] = Field(default_factory=list)
    kill_id: Bounded[str | None] = None
    """The `oom_kill` event that ended the episode (state `killed`)."""
    percent: Bounded[float | None] = None
    """Working set as a percentage of the limit."""
    peak_percent: Bounded[float | None] = None
    high_kb: Bounded[int | None] = None
    """cgroup v2 memory.high (the throttling threshold), when set."""
    reasons: Bounded[list[str]] = Field(default_factory=list)
    """Which thresholds the episode crossed: `percent`, `eta`, `psi`."""
    started: Bounded[str | None] = None
    """ISO time the episode started."""
    ended: Bounded[str | None] = None
    cgroup_version: Bounded[int | None] = None
    memory_events: Bounded[dict[str, int]] = Field(default_factory=dict)
    """The cgroup's own counters when the event was made: v2 memory.events (high, max, oom,
    oom_kill), v1 failcnt, under_oom, oom_kill."""


Event = Annotated[OomKillEvent | SynFloodEvent | OomRiskEvent, Field(discriminator="kind")]


class EventEnvelope(BaseModel):
    """Parses one event of either kind."""

    event: Event
