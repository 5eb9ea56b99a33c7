"""What the agent's cost cuts must not change: a quiet SYN sample skips the listener walk only
when that sample could not have used it."""

from __future__ import annotations

from kernbot.agent.syn_episodes import COUNTERS, SynEpisodeTracker
from kernbot.wire import Listener

T0 = 1_700_000_000.0
LISTENER = Listener(family="ipv4", addr="0.0.0.0", port=443, pid=42, comm="<!channel>", syn_recv=9)


def counters(**kw: int) -> dict[str, int]:
    base = dict.fromkeys(COUNTERS, 0)
    base.update(kw)
    return base


def test_quiet_samples_need_no_listeners_and_a_flood_does() -> None:
    t = SynEpisodeTracker(host="h", boot_id="b", quiet_after_s=30)
    assert t.needs_context(T0, counters())  # nothing to compare with yet
    assert t.sample(T0, counters(), [LISTENER], {"net.ipv4.tcp_syncookies": 1}) == []
    # below min_rate (1/s): quiet, and a sample with the old context emits nothing either
    assert not t.needs_context(T0 + 10, counters(ListenDrops=5))
    assert t.sample(T0 + 10, counters(ListenDrops=5), *t.context) == []
    # a flood: fresh context needed, and the episode names the listener it was given
    flood = counters(ListenDrops=5, SyncookiesSent=5000)
    assert t.needs_context(T0 + 20, flood)
    (ev,) = t.sample(T0 + 20, flood, [LISTENER], {"net.ipv4.tcp_syncookies": 1})
    assert ev.port == 443 and ev.context["listener"]["comm"] == "<!channel>"
    # while an episode is open every sample needs the context (to end or update it)
    assert t.needs_context(T0 + 30, flood)
