"""Only the kernel speaks for the kernel.

Anything allowed to write /dev/kmsg (root, a privileged pod) can put text in the kernel log,
e.g. node-problem-detector's e2e test writes `Memory cgroup out of memory: Kill process 1012
(heapster) score 1035 or sacrifice child` there. The kernel stores such a record with the
facility the writer gave in a `<N>` prefix, `user` (1) when it gave none or asked for `kern`
(kernel/printk/printk.c devkmsg_write: user space may not log as LOG_KERN), while the kernel's own
records have facility `kern` (0). journald keeps every /dev/kmsg record with
`_TRANSPORT=kernel`, forged ones too, so there the check is on `SYSLOG_FACILITY`. A record from
user space is never an event: the sources count it (`kernbot_agent_records_not_kernel`) and log
the first one with what it looked like.
"""

from __future__ import annotations

import logging

from kernbot.logsafe import logsafe

KERN = 0
log = logging.getLogger(__name__)


def kmsg_facility(raw: str) -> int | None:
    """The facility of a raw /dev/kmsg record (`PRI,SEQ,...;`: PRI = facility * 8 + level)."""
    head = raw.partition(",")[0]
    try:
        return int(head) >> 3
    except ValueError:
        return None


def journal_facility(entry: dict[str, object]) -> int | None:
    """`SYSLOG_FACILITY` of a journal entry (journald sets it from the kmsg prefix)."""
    value = entry.get("SYSLOG_FACILITY")
    if value is None:
        return None
    try:
        return int(str(value))
    except ValueError:
        return -1  # unreadable: not provably the kernel's


class NotKernelLog:
    """Logs the first record from user space (once per source), with what it said."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.logged = False

    def seen(self, facility: int, text: str) -> None:
        if self.logged:
            return
        self.logged = True
        log.warning(
            "%s: ignoring a record user space wrote into the kernel log (syslog facility %d, "
            "not kern): %s — such records are never events; counted in "
            "kernbot_agent_records_not_kernel (logged once)",
            self.source,
            facility,
            logsafe(text, 300),
        )
