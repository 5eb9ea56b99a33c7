"""Kills the log never showed: /proc/vmstat `oom_kill` counts every OOM kill of this boot, even
when the ring buffer overwrote the report or printk rate-limited it away.

The agent counts the kills it saw in the log; when vmstat stays ahead for two samples in a row (the
counter is bumped just before the kernel prints `Killed process`), the difference becomes one
event marked `missing_from_log`. Pure logic: the caller reads vmstat and passes `now`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from kernbot.core.events import OomKillEvent


class OomReconciler:
    def __init__(self, host: str, boot_id: str | None, accounted: int | None) -> None:
        self.host = host
        self.boot_id = boot_id
        self.accounted = accounted
        """vmstat value matched by log events so far; None until the first sample."""
        self.seen_since_start = 0
        self._suspect: int | None = None
        self._initial = accounted is None
        """True until the first deficit check settles: kills before the agent's first start."""

    def saw_kills(self, n: int) -> None:
        self.seen_since_start += n
        if self.accounted is not None:
            self.accounted += n

    def check(self, vmstat: int | None, now: float, busy: bool) -> OomKillEvent | None:
        """`busy`: a report is being assembled, so a deficit may just be in flight."""
        if vmstat is None:
            return None
        if self.accounted is None:
            # first start: whatever the backlog showed is what was seen; the rest is suspect
            self.accounted = self.seen_since_start
        # more kills in the log than vmstat counted (another boot's log): never go negative
        self.accounted = min(self.accounted, vmstat)
        deficit = vmstat - self.accounted
        if deficit <= 0 or busy:
            self._suspect = None
            self._initial = self._initial and busy
            return None
        if self._suspect != vmstat:
            self._suspect = vmstat
            return None
        self._suspect = None
        self.accounted = vmstat
        ev = OomKillEvent(
            id=f"{self.boot_id}:vmstat-oom-kill:{vmstat}",
            time=datetime.fromtimestamp(now, UTC).isoformat(),
            host=self.host,
            boot_id=self.boot_id,
            complete=False,
            missing_from_log=True,
        )
        ev.context.missing_kills = deficit
        ev.context.vmstat_oom_kill = vmstat
        if self._initial:
            ev.context.before_first_start = True
        self._initial = False
        ev.lines = [
            f"/proc/vmstat oom_kill reached {vmstat}: {deficit} OOM kill(s) not seen in the "
            "kernel log (ring buffer overrun or printk rate limiting)"
        ]
        return ev
