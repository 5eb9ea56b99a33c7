"""An event a detector has recognised but not built yet.

The OOM assembler emits a report's event again with a higher `revision` each time more of the
report arrives (the kill line, then the reaper line ~2 s later). The agent ships every revision,
so it gets each one built at once. `kernbot scan` prints only the last revision of each event, so
it asks for revisions unbuilt (`Detector(defer=...)`) and calls `build()` once per event, when no
later record can revise it: building an event (its task table scored, its models validated)
costs more than reading the ~100 lines of a typical report.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from kernbot.core.events import Event


class Deferred(ABC):
    """What `kernbot.core.prefilter.Releaser` needs to order and replace revisions, plus `build`."""

    __slots__ = ()

    kind: str
    id: str | None
    revision: int

    @abstractmethod
    def build(self) -> Event:
        """The event of this revision, exactly as the detector would have emitted it."""
