"""What a senior SRE would tell you to do next, computed from an event's own numbers.

Pure rules: the event (and, when the agent has it, live host context) in, a list of `Advice`
out. One rule set per event kind (`RULES`): `advice_oom` (with `advice_memcg`) and `advice_syn`.
Commands are meant to be copy-pasted, so every value that came from kernel text (a comm, a
cgroup path, a unit name) is shell-quoted: a process may be named `$(reboot)`.

Context keys read here (all optional; the agent fills them, `kernbot scan` has none):

* `kills_24h` (int): OOM kills on this host (same cgroup when known) in the last 24 hours.
* `counter_rates` (dict[str, float]): TcpExt counter rates per second, keyed by the
  /proc/net/netstat name: `SyncookiesSent`, `SyncookiesRecv`, `SyncookiesFailed`,
  `ListenOverflows`, `ListenDrops`, `TCPReqQFullDoCookies`, `TCPReqQFullDrop`.
* `sysctls` (dict[str, str|int]): e.g. `net.core.somaxconn`, `net.ipv4.tcp_max_syn_backlog`,
  `net.ipv4.tcp_syncookies`, `vm.overcommit_memory`, `vm.panic_on_oom`.
* `listener` (dict, wire.Listener): the socket that flooded: `comm`, `pid`, `backlog` (Send-Q of
  `ss -ltn`), `accept_queue` (Recv-Q), `syn_recv` (half-open connections).
* `verdict` (str): the agent's reading of the counters: `attack` (spoofed SYNs), `legitimate`
  (real clients, backlog too small) or `unknown`. Without it, the cookie return ratio in
  `counter_rates` decides the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kernbot.core.advice.oom import advise_oom
from kernbot.core.advice.risk import advise_risk
from kernbot.core.advice.syn import advise_syn
from kernbot.core.events import Advice, Event

Rules = Callable[[Any, Mapping[str, Any]], list[Advice]]

RULES: dict[str, Rules] = {
    "oom_kill": advise_oom,
    "syn_flood": advise_syn,
    "oom_risk": advise_risk,
}
"""Event kind -> its advice rules; a new detector registers its kind here."""


def advise(event: Event, context: Mapping[str, Any] | None = None) -> list[Advice]:
    """Advice for one event; `context` defaults to the event's own `context` dict."""
    ctx: Mapping[str, Any] = context if context is not None else event.context
    rules = RULES.get(event.kind)
    return rules(event, ctx) if rules is not None else []
