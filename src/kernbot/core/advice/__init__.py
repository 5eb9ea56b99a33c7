"""What a senior SRE would tell you to do next, computed from an event's own numbers.

Pure rules: the event (and, when the agent has it, live host context) in, a list of `Advice`
out. One rule set per event kind (`RULES`): `advice_oom` (with `advice_memcg`) and `advice_syn`.
Commands are meant to be copy-pasted, so every value that came from kernel text (a comm, a
cgroup path, a unit name) is shell-quoted: a process may be named `$(reboot)`.

Host context read here (`event.context`, kernbot.core.context; the agent fills it, `kernbot
scan` has none): `kills_24h` for OOM kills; `counter_rates`/`peak_rates` (TcpExt per second),
`sysctls`, `listener` and `verdict` (`attack`, `legitimate`, `unknown`; without it the cookie
return ratio decides the same way) for SYN floods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kernbot.core.advice.oom import advise_oom
from kernbot.core.advice.syn import advise_syn
from kernbot.core.events import Advice, Event

Rules = Callable[[Any], list[Advice]]

RULES: dict[str, Rules] = {
    "oom_kill": advise_oom,
    "syn_flood": advise_syn,
}
"""Event kind -> its advice rules; a new detector registers its kind here."""


def advise(event: Event) -> list[Advice]:
    """Advice for one event, from its report and the host context the agent added."""
    rules = RULES.get(event.kind)
    return rules(event) if rules is not None else []
