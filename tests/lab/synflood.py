"""Real SYN floods on demand, between two network namespaces the lab creates and deletes.

Namespace A sends raw SYNs from a spoofed source nothing answers (192.0.2.99 / 2001:db8::99); the
listener in namespace B has a backlog of 1, so its request queue is full after a couple of SYNs
and the kernel logs `Possible SYN flooding on port ADDR:PORT. Sending cookies.` (or `Dropping
request.` with net.ipv4.tcp_syncookies=0, set per namespace). Nothing leaves the namespaces.

The kernel prints that line once per listening socket, through the global net_ratelimit that
other tests' floods share; `syn_flood()` therefore retries with a fresh listener when the line
was suppressed. Counters of an ongoing flood: `SynFlood.netstat()` (TcpExt of namespace B, read
with `ip netns exec B cat /proc/net/netstat`), or /proc/<listener_pid>/net/netstat.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from lab._procs import PYTHON, helper_path, spawn, stop, wait_line
from lab.kmsg import KmsgTail, last_seq

Family = Literal["ipv4", "ipv6"]


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def netns_exec(ns: str, *argv: str, check: bool = True) -> str:
    """Run a command inside namespace `ns` and return its stdout."""
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"in {ns}: {' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


def _mac(ns: str, dev: str) -> str:
    """The MAC address of `dev` in `ns` (ip netns exec mounts that namespace's /sys)."""
    return netns_exec(ns, "cat", f"/sys/class/net/{dev}/address").strip()


def parse_tcpext(text: str) -> dict[str, int]:
    """The TcpExt counters of a /proc/net/netstat text (header line, then values line)."""
    lines = [ln.split() for ln in text.splitlines() if ln.startswith("TcpExt:")]
    if len(lines) < 2:
        return {}
    return {k: int(v) for k, v in zip(lines[0][1:], lines[1][1:], strict=False)}


@dataclass(frozen=True)
class NetnsPair:
    """Two namespaces joined by a veth pair; A sends, B listens."""

    sender_ns: str
    listener_ns: str
    sender_if: str
    listener_if: str
    sender_v4: str = "192.0.2.1"
    listener_v4: str = "192.0.2.2"
    spoofed_v4: str = "192.0.2.99"
    sender_v6: str = "2001:db8::1"
    listener_v6: str = "2001:db8::2"
    spoofed_v6: str = "2001:db8::99"

    def listener_addr(self, family: Family) -> str:
        return self.listener_v4 if family == "ipv4" else self.listener_v6

    def spoofed_addr(self, family: Family) -> str:
        return self.spoofed_v4 if family == "ipv4" else self.spoofed_v6


@contextmanager
def netns_pair(*, syncookies: int = 1, max_syn_backlog: int = 16) -> Iterator[NetnsPair]:
    """Create `kbtest-<id>-a` and `-b`, a veth pair, addresses, and B's TCP sysctls.

    Both namespaces (and with them the veth pair) are deleted on exit, whatever happened.
    """
    tag = uuid.uuid4().hex[:8]
    pair = NetnsPair(f"kbtest-{tag}-a", f"kbtest-{tag}-b", f"kb{tag}a", f"kb{tag}b")
    made: list[str] = []
    try:
        for ns in (pair.sender_ns, pair.listener_ns):
            _ip("netns", "add", ns)
            made.append(ns)
        _ip("link", "add", pair.sender_if, "netns", pair.sender_ns, "type", "veth",
            "peer", "name", pair.listener_if, "netns", pair.listener_ns)  # fmt: skip
        for ns, dev, v4, v6 in (
            (pair.sender_ns, pair.sender_if, pair.sender_v4, pair.sender_v6),
            (pair.listener_ns, pair.listener_if, pair.listener_v4, pair.listener_v6),
        ):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{v4}/24", "dev", dev)
            _ip("-n", ns, "-6", "addr", "add", f"{v6}/64", "dev", dev, "nodad")
            _ip("-n", ns, "link", "set", dev, "up")
        # Static neighbour entries: no ARP/ND round trip to wait for (a fresh veth's first
        # solicitations can be lost while the link comes up, stalling the first SYNs ~1 s).
        for ns, dev, peer_ns, peer_dev, v4, v6 in (
            (pair.sender_ns, pair.sender_if, pair.listener_ns, pair.listener_if,
             pair.listener_v4, pair.listener_v6),
            (pair.listener_ns, pair.listener_if, pair.sender_ns, pair.sender_if,
             pair.sender_v4, pair.sender_v6),
        ):  # fmt: skip
            mac = _mac(peer_ns, peer_dev)
            for addr in (v4, v6):
                _ip("-n", ns, "neigh", "replace", addr, "lladdr", mac, "dev", dev,
                    "nud", "permanent")  # fmt: skip
        for setting in (
            f"net.ipv4.tcp_syncookies={syncookies}",
            f"net.ipv4.tcp_max_syn_backlog={max_syn_backlog}",
        ):
            netns_exec(pair.listener_ns, "sysctl", "-q", "-w", setting)
        yield pair
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@dataclass
class SynFlood:
    """A listener under (or about to be under) a SYN flood; see `running_syn_flood()`."""

    pair: NetnsPair
    family: Family
    listen_addr: str
    port: int
    syncookies: int
    listener_pid: int
    seq_before: int
    """Every record about this flood has a /dev/kmsg sequence number greater than this."""
    sent: int = 0
    _tail: KmsgTail = field(default_factory=KmsgTail, repr=False)
    _sender: subprocess.Popen[str] | None = field(default=None, repr=False)

    @property
    def netns(self) -> str:
        """The listener's namespace (for `ip netns exec`)."""
        return self.pair.listener_ns

    def _sender_argv(self, count: int, rate: float) -> list[str]:
        return ["ip", "netns", "exec", self.pair.sender_ns, PYTHON, "-S",
                helper_path("_synsend.py"), "--family", self.family,
                "--src", self.pair.spoofed_addr(self.family), "--dst", self.listen_addr,
                "--port", str(self.port), "--count", str(count), "--rate", str(rate)]  # fmt: skip

    def send(self, count: int = 200, rate: float = 0.0, timeout: float = 30.0) -> int:
        """Send `count` spoofed SYNs now (blocking); returns how many were sent."""
        proc = spawn(self._sender_argv(count, rate))
        try:
            line = wait_line(proc, "sent ", timeout)
        finally:
            stop(proc)
        n = int(line.split()[1])
        self.sent += n
        return n

    def start_sending(self, rate: float = 200.0) -> None:
        """Keep sending SYNs at `rate` per second in the background until `stop_sending()`."""
        if self._sender is not None:
            raise RuntimeError("already sending")
        self._sender = spawn(self._sender_argv(0, rate))
        wait_line(self._sender, "ready", 10.0)

    def stop_sending(self) -> int:
        """Stop the background sender; returns how many SYNs it sent."""
        proc, self._sender = self._sender, None
        if proc is None:
            return 0
        os.kill(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=5.0)
        except subprocess.TimeoutExpired:
            out = ""
        stop(proc)
        n = next((int(ln.split()[1]) for ln in out.splitlines() if ln.startswith("sent ")), 0)
        self.sent += n
        return n

    def netstat(self) -> dict[str, int]:
        """TcpExt counters of the listener's namespace (SyncookiesSent, ListenOverflows...)."""
        return parse_tcpext(netns_exec(self.netns, "cat", "/proc/net/netstat"))

    def kernel_line_pattern(self) -> str:
        shown = self.listen_addr if self.family == "ipv4" else f"[{self.listen_addr}]"
        return f"Possible SYN flooding on port {shown}:{self.port}."

    def kernel_lines(self) -> list[str]:
        """Every /dev/kmsg message about this listener read so far (the kernel prints one)."""
        self._tail.poll()
        pattern = self.kernel_line_pattern()
        return [m for m in self._tail.messages() if pattern in m]

    def wait_kernel_line(self, timeout: float = 5.0) -> str | None:
        """The kernel's `Possible SYN flooding on port ADDR:PORT...` message, once it appears."""
        pattern = self.kernel_line_pattern()
        rec = self._tail.wait_for(lambda r: pattern in r.message, timeout=timeout)
        return rec.message if rec else None


@contextmanager
def running_syn_flood(
    *, family: Family = "ipv4", syncookies: int = 1, port: int | None = None, backlog: int = 1
) -> Iterator[SynFlood]:
    """Namespaces plus a listener that never accepts; send with `.send()` / `.start_sending()`.

    Everything (sender, listener, namespaces) is stopped and deleted on exit.
    """
    with netns_pair(syncookies=syncookies) as pair:
        addr = pair.listener_addr(family)
        seq_before = last_seq()
        tail = KmsgTail()
        listener = spawn(
            ["ip", "netns", "exec", pair.listener_ns, PYTHON, "-S", helper_path("_listener.py"),
             "--family", family, "--addr", addr, "--port", str(port or 0),
             "--backlog", str(backlog)]
        )  # fmt: skip
        flood: SynFlood | None = None
        try:
            bound = int(wait_line(listener, "ready", 10.0).split()[1])
            flood = SynFlood(pair, family, addr, bound, syncookies, listener.pid, seq_before,
                             _tail=tail)  # fmt: skip
            yield flood
        finally:
            if flood is not None:
                flood.stop_sending()
            stop(listener)
            tail.close()


@dataclass
class SynFloodResult:
    family: Family
    listen_addr: str
    port: int
    syncookies: int
    netns: str
    """The listener's namespace; deleted by the time you get this."""
    sent: int
    kernel_line: str | None
    seq_before: int
    netstat: dict[str, int]
    """TcpExt counters of the listener's namespace right after the flood."""
    attempts: int = 1


def syn_flood(
    *,
    family: Family = "ipv4",
    syncookies: int = 1,
    port: int | None = None,
    count: int = 200,
    timeout: float = 5.0,
    attempts: int = 3,
) -> SynFloodResult:
    """Flood a fresh listener with `count` spoofed SYNs and wait for the kernel's line about it.

    If the line does not come within `timeout` (net_ratelimit suppressed it), try again with a
    new listener, up to `attempts` times; `kernel_line` is None only if all were suppressed.
    """
    result: SynFloodResult | None = None
    for attempt in range(1, attempts + 1):
        with running_syn_flood(family=family, syncookies=syncookies, port=port) as flood:
            flood.send(count)
            line = flood.wait_kernel_line(timeout)
            result = SynFloodResult(family, flood.listen_addr, flood.port, syncookies,
                                    flood.netns, flood.sent, line, flood.seq_before,
                                    flood.netstat(), attempt)  # fmt: skip
        if line is not None:
            break
    assert result is not None
    return result
