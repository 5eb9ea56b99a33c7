"""Which kernel printed a report, as far as the score formulas care, read from its shape.

oom_badness() changed three times (PROVENANCE.md section 4, `kernbot.core.oom.score`); a
report rarely names its kernel version (only the stack header does, when it was kept), so the
era is inferred from the line shapes each kernel printed: the task table's columns, the header's
`oom_adj`, the kill line's fields, Mem-Info keys.
"""

from __future__ import annotations

from kernbot.core.oom.report_state import ReportState
from kernbot.core.oom.score import ERA_ANCIENT, ERA_NEW, ERA_OLD


def kernel_era(r: ReportState) -> str | None:
    """Which oom_badness() formula the kernel that printed this report used, from its shape."""
    if r.stack and r.stack.version:
        v = r.stack.version
        return ERA_NEW if v >= (5, 9, 0) else ERA_OLD if v >= (2, 6, 36) else ERA_ANCIENT
    style = r.layout.style if r.layout else None
    if style == "pre-2.6.36" or (
        r.header and r.header.oom_adj is not None and r.header.oom_score_adj is None
    ):
        return ERA_ANCIENT
    if (r.stack and r.stack.style == "CPU-UID:") or style == "6.8+":
        return ERA_NEW
    if "sec_pagetables" in r.meminfo_flags:
        return ERA_NEW
    old_signs = (
        r.kill_process is not None,
        r.cpuset is not None,
        r.task_path is not None and r.oom_kill is None,
        style in ("2.6.36-3.7", "3.8-3.19", "4.0-4.14"),
        "unstable" in r.meminfo_flags,
        r.stack is not None and r.stack.style == "Pid:",
        r.header is not None and (r.header.has_nodemask or r.header.oom_adj is not None),
        r.killed is not None and r.killed.uid is None and r.killed.total_vm_kb is not None,
        r.killed is not None and r.killed.pgtables_kb is None and r.killed.total_vm_kb is not None,
    )
    if any(old_signs):
        return ERA_OLD
    return ERA_NEW if r.evidence else None


def normalised_3x(r: ReportState) -> bool:
    """2.6.36-3.7 normalised points to 1000 before adding the adj (the header had `oom_adj`)."""
    if r.stack and r.stack.version:
        return (2, 6, 36) <= r.stack.version < (3, 8, 0)
    if r.layout is not None and r.layout.style == "2.6.36-3.7":
        return True
    return r.header is not None and r.header.oom_adj is not None


def root_bonus_era(r: ReportState) -> bool:
    """Kernels that took 3 % (or 30 points) off the score of CAP_SYS_ADMIN tasks."""
    if r.stack and r.stack.version:
        return (3, 14, 0) <= r.stack.version < (4, 17, 0) or (
            (2, 6, 36) <= r.stack.version < (3, 8, 0)
        )
    return r.layout is not None and r.layout.style in ("2.6.36-3.7", "3.8-3.19", "4.0-4.14")
