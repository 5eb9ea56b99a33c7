"""A SYN flood as an episode (start, ongoing, ended) rather than one log line.

The kernel prints "Possible SYN flooding" once per listening socket, so the log alone says
nothing about how long a flood lasted or how big it got. The TcpExt counters do: the agent samples
them (every `syn_sample_interval_s`) and feeds them here. This module is pure logic: no I/O and no
clock; `now` is wall-clock Unix seconds (time.time()) passed by the caller.

Every emitted event of one episode carries the same `id` and a growing `revision`, so the bot
updates one Slack message instead of posting one per sample. The caller ships exactly what
`on_kernel_event` and `sample` return (the kernel's own event comes back as the episode start).

The counters are per network namespace, not per socket: every open episode sees the same rates.
The listener a counters-only episode is charged to is the one with the most half-open (SYN_RECV)
connections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from kernbot.core.context import Listener
from kernbot.core.events import SynFloodEvent

Phase = Literal["start", "ongoing", "ended"]

COUNTERS = (
    "SyncookiesSent",
    "SyncookiesRecv",
    "SyncookiesFailed",
    "ListenOverflows",
    "ListenDrops",
    "TCPReqQFullDoCookies",
    "TCPReqQFullDrop",
)
"""TcpExt counters whose rates are tracked (names as in /proc/net/netstat)."""

FLOOD_SIGNALS = (
    "SyncookiesSent",
    "TCPReqQFullDoCookies",
    "TCPReqQFullDrop",
    "ListenOverflows",
    "ListenDrops",
)
"""A queue is overflowing while any of these rises at `min_rate` per second or more."""

SPOOFED = "spoofed flood"
REAL_CLIENTS = "real clients, backlog too small"
INSUFFICIENT = "insufficient data"

VERDICT_CODES = {SPOOFED: "attack", REAL_CLIENTS: "legitimate", INSUFFICIENT: "unknown"}
"""The short code written to context.verdict, the vocabulary kernbot.core.advice reads; the
sentence goes to context.verdict_text."""

SIGNAL_MIN_RATE = 1.0
"""Below 1 event/s on every counter there is nothing to judge."""
SPOOFED_MAX_RETURN = 0.1
"""Fewer than 10 % of cookies coming back: the SYNs were sent from addresses that never answer."""
REAL_MIN_RETURN = 0.5
"""Half or more of the cookies come back: real clients are completing handshakes."""


def verdict(rates: dict[str, float], sysctls: dict[str, int]) -> str:
    """Read TcpExt rates (per second) as an SRE would: SPOOFED, REAL_CLIENTS or INSUFFICIENT.

    With SYN cookies (net.ipv4.tcp_syncookies != 0) and SyncookiesSent >= 1/s, the return ratio
    (SyncookiesRecv / SyncookiesSent) decides: < 0.1 spoofed, >= 0.5 real clients, in between real
    clients only if ListenOverflows >= 1/s (completed handshakes overflowing the accept queue).
    With no cookies being sent (cookies off, or the SYN queue not full): ListenOverflows >= 1/s
    means handshakes complete and the accept queue is too small (real clients); TCPReqQFullDrop
    >= 1/s without overflows means the SYN queue fills with requests nobody completes (spoofed).
    Anything else, including no rates yet, is insufficient data.
    """
    sent = rates.get("SyncookiesSent", 0.0)
    recv = rates.get("SyncookiesRecv", 0.0)
    overflows = rates.get("ListenOverflows", 0.0)
    dropped = rates.get("TCPReqQFullDrop", 0.0)
    cookies_on = sysctls.get("net.ipv4.tcp_syncookies", 1) != 0
    if cookies_on and sent >= SIGNAL_MIN_RATE:
        returned = recv / sent
        if returned < SPOOFED_MAX_RETURN:
            return SPOOFED
        if returned >= REAL_MIN_RETURN or overflows >= SIGNAL_MIN_RATE:
            return REAL_CLIENTS
        return INSUFFICIENT
    if overflows >= SIGNAL_MIN_RATE:
        return REAL_CLIENTS
    if dropped >= SIGNAL_MIN_RATE:
        return SPOOFED
    return INSUFFICIENT


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@dataclass
class _Episode:
    event: SynFloodEvent
    started: float
    last_high: float
    last_emit: float
    peak: dict[str, float] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)
    """Counter increases summed over the samples seen during the episode."""
    sampled_s: float = 0.0

    def mean_rates(self) -> dict[str, float]:
        if self.sampled_s <= 0:
            return {}
        return {k: v / self.sampled_s for k, v in self.totals.items()}


class SynEpisodeTracker:
    def __init__(
        self,
        *,
        host: str,
        boot_id: str | None,
        quiet_after_s: float = 30.0,
        min_rate: float = 1.0,
        update_every_s: float = 60.0,
    ) -> None:
        """`quiet_after_s`: rates below `min_rate` this long end an episode; `update_every_s`:
        at most one "ongoing" update per episode this often."""
        self.host = host
        self.boot_id = boot_id
        self.quiet_after_s = quiet_after_s
        self.min_rate = min_rate
        self.update_every_s = update_every_s
        self._episodes: dict[int | None, _Episode] = {}
        self._prev: tuple[float, dict[str, int]] | None = None
        self.rates: dict[str, float] = {}
        """Rates from the last two samples (what /v1/syn shows as counter_rates)."""
        self._listeners: list[Listener] = []
        self._sysctls: dict[str, int] = {}

    @property
    def open_ports(self) -> list[int | None]:
        return list(self._episodes)

    @property
    def context(self) -> tuple[list[Listener], dict[str, int]]:
        """The listeners and net sysctls last given to `sample` or `set_context`."""
        return self._listeners, self._sysctls

    def set_context(self, listeners: list[Listener], sysctls: dict[str, int]) -> None:
        self._listeners = listeners
        self._sysctls = sysctls

    def needs_context(self, now: float, counters: dict[str, int]) -> bool:
        """Whether `sample(now, counters, ...)` may open or emit an episode and so needs fresh
        listeners and sysctls. A quiet sample only updates rates; reading the listeners walks
        every process's fds (tens of ms), too dear for every quiet sample of an idle host."""
        if self._episodes or self._prev is None:
            return True
        then, prev = self._prev
        if now <= then:
            return False
        return any(
            k in counters and k in prev and (counters[k] - prev[k]) / (now - then) >= self.min_rate
            for k in FLOOD_SIGNALS
        )

    def on_kernel_event(self, ev: SynFloodEvent, now: float) -> list[SynFloodEvent]:
        """A "Possible SYN flooding" line: opens an episode for its port (or names the port of
        an episode the counters already opened). Nothing is returned for a port already open."""
        if ev.port in self._episodes:
            return []
        anonymous = self._episodes.pop(None, None)
        if anonymous is not None and ev.port is not None:
            merged = anonymous.event.model_copy(
                update={
                    "port": ev.port,
                    "addr": ev.addr,
                    "family": ev.family,
                    "action": ev.action,
                    "proto": ev.proto,
                    "seq": ev.seq,
                    "lines": list(ev.lines),
                },
                deep=True,
            )
            anonymous.event = merged
            self._episodes[ev.port] = anonymous
            return [self._emit(anonymous, "ongoing", now)]
        if anonymous is not None:
            self._episodes[None] = anonymous
            return []
        event = ev.model_copy(deep=True)
        event.host = event.host or self.host
        event.boot_id = event.boot_id or self.boot_id
        event.id = event.id or self._new_id(ev.port, now)
        event.time = event.time or _iso(now)
        event.context.source = "kernel"
        episode = _Episode(event=event, started=now, last_high=now, last_emit=now)
        self._episodes[ev.port] = episode
        return [self._emit(episode, "start", now, bump=False)]

    def sample(
        self,
        now: float,
        counters: dict[str, int],
        listeners: list[Listener],
        sysctls: dict[str, int],
    ) -> list[SynFloodEvent]:
        """One sample of the TcpExt counters; returns the episode events to ship now."""
        self.set_context(listeners, sysctls)
        prev, self._prev = self._prev, (now, dict(counters))
        if prev is None or now <= prev[0]:
            return []
        dt = now - prev[0]
        self.rates = {
            k: max(0, counters[k] - prev[1][k]) / dt
            for k in COUNTERS
            if k in counters and k in prev[1]
        }
        high = any(self.rates.get(k, 0.0) >= self.min_rate for k in FLOOD_SIGNALS)
        out: list[SynFloodEvent] = []
        if high and not self._episodes:
            out.append(self._open_from_counters(now, dt))
            return out
        for port, episode in list(self._episodes.items()):
            self._accumulate(episode, dt)
            if high:
                episode.last_high = now
                self._track_peak(episode)
                if now - episode.last_emit >= self.update_every_s:
                    out.append(self._emit(episode, "ongoing", now))
            elif now - episode.last_high >= self.quiet_after_s:
                del self._episodes[port]
                out.append(self._emit(episode, "ended", now))
        return out

    def _new_id(self, port: int | None, now: float) -> str:
        return f"{self.boot_id or self.host}:syn:{port if port is not None else 'any'}:{int(now)}"

    def _accumulate(self, episode: _Episode, dt: float) -> None:
        for k, v in self.rates.items():
            episode.totals[k] = episode.totals.get(k, 0.0) + v * dt
        episode.sampled_s += dt

    def _track_peak(self, episode: _Episode) -> None:
        for k, v in self.rates.items():
            if v > episode.peak.get(k, 0.0):
                episode.peak[k] = v

    def _open_from_counters(self, now: float, dt: float) -> SynFloodEvent:
        """The kernel printed nothing (already warned for this listener): start from counters."""
        busiest = max(self._listeners, key=lambda ls: ls.syn_recv or 0, default=None)
        if busiest is not None and not busiest.syn_recv:
            busiest = None
        port = busiest.port if busiest is not None else None
        off = self._sysctls.get("net.ipv4.tcp_syncookies") == 0
        event = SynFloodEvent(
            host=self.host,
            boot_id=self.boot_id,
            time=_iso(now),
            id=self._new_id(port, now),
            port=port,
            addr=busiest.addr if busiest is not None else None,
            family="ipv6" if busiest is not None and busiest.family == "ipv6" else "ipv4",
            action="drop" if off else "cookies",
        )
        event.context.source = "counters"
        episode = _Episode(event=event, started=now, last_high=now, last_emit=now)
        self._track_peak(episode)
        self._accumulate(episode, dt)
        self._episodes[port] = episode
        return self._emit(episode, "start", now, bump=False)

    def _listener_for(self, event: SynFloodEvent) -> Listener | None:
        for ls in self._listeners:
            if ls.port == event.port and (
                event.addr in (None, ls.addr) or ls.addr in ("::", "0.0.0.0")
            ):
                return ls.model_copy()
        return None

    def _emit(
        self, episode: _Episode, phase: Phase, now: float, *, bump: bool = True
    ) -> SynFloodEvent:
        ev = episode.event
        if bump:
            ev.revision += 1
        ev.episode = phase
        text = verdict(episode.mean_rates() or self.rates, self._sysctls)
        ctx = ev.context
        ctx.counter_rates = dict(self.rates)
        ctx.peak_rates = dict(episode.peak)
        ctx.mean_rates = {k: round(v, 3) for k, v in episode.mean_rates().items()}
        ctx.started = _iso(episode.started)
        ctx.duration_s = round(now - episode.started, 3)
        ctx.verdict = VERDICT_CODES[text]
        ctx.verdict_text = text
        if self._sysctls:
            ctx.sysctls = dict(self._sysctls)
        listener = self._listener_for(ev)
        if listener is not None:
            ctx.listener = listener
        if phase == "ended":
            ctx.ended = _iso(now)
        episode.last_emit = now
        return ev.model_copy(deep=True)
