"""ProcReader: the one object that reads live host facts, from an injected proc root.

The root is injected (`/proc`, `/host/proc` in a pod, or a captured snapshot in tests) in the
style of prometheus client_python. `net_pid` points the network reads at the namespace of that
process (`<root>/<pid>/net/...`), which is how a netns-local SYN flood is observed. Every method
returns an empty/None value when its file is missing rather than raising: enrichment is best effort.
"""

from __future__ import annotations

from pathlib import Path

from kernbot.agent.proc import netns, sock_diag
from kernbot.agent.proc.meminfo import parse_meminfo
from kernbot.agent.proc.netstat import parse_netstat
from kernbot.agent.proc.processes import Identify, read_process, top_by_oom_score
from kernbot.agent.proc.psi import parse_psi
from kernbot.agent.proc.sockets import (
    TCP_LISTEN,
    TcpRow,
    parse_tcp_table,
    socket_owners,
    syn_recv_per_listener,
)
from kernbot.agent.proc.sysctls import VM_SYSCTLS, read_sysctls
from kernbot.agent.proc.vmstat import oom_kill_count
from kernbot.core.cgroup_identity import identify as identify_cgroup
from kernbot.core.context import Listener, ProcInfo, Psi


class ProcReader:
    def __init__(
        self,
        root: Path = Path("/proc"),
        net_pid: int | None = None,
        *,
        identify: Identify | None = None,
        use_sock_diag: bool | None = None,
    ) -> None:
        """`use_sock_diag`: ask netlink for listen backlogs; None = when `root` is a live procfs."""
        self.root = root
        self.net_pid = net_pid
        self._identify = identify if identify is not None else identify_cgroup
        net_base = root / str(net_pid) if net_pid is not None else root / "self"
        self._ns_path = net_base / "ns" / "net"
        self._use_sock_diag = self._ns_path.exists() if use_sock_diag is None else use_sock_diag

    def _text(self, rel: str) -> str | None:
        try:
            return (self.root / rel).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def _net_text(self, name: str) -> str | None:
        base = self.root / str(self.net_pid) if self.net_pid is not None else self.root
        try:
            return (base / "net" / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def meminfo(self) -> dict[str, int]:
        text = self._text("meminfo")
        return parse_meminfo(text) if text else {}

    def psi_memory(self) -> Psi:
        text = self._text("pressure/memory")
        return Psi.model_validate(parse_psi(text) if text else {})

    def top_by_oom_score(self, n: int = 10) -> list[ProcInfo]:
        return top_by_oom_score(self.root, n, self._identify)

    def process(self, pid: int) -> ProcInfo | None:
        return read_process(self.root, pid, self._identify)

    def vmstat_oom_kill(self) -> int | None:
        text = self._text("vmstat")
        return oom_kill_count(text) if text else None

    def tcpext(self) -> dict[str, int]:
        text = self._net_text("netstat")
        return parse_netstat(text).get("TcpExt", {}) if text else {}

    def net_sysctls(self) -> dict[str, int]:
        """`net.ipv4.tcp_syncookies`, `net.ipv4.tcp_max_syn_backlog`, `net.core.somaxconn`,
        `net.ipv4.tcp_synack_retries` of the namespace being read."""
        if self.net_pid is None:
            return read_sysctls(self.root)
        try:
            return netns.run_in_netns(self._ns_path, lambda: read_sysctls(self.root))
        except OSError:
            return {}

    def vm_sysctls(self) -> dict[str, int]:
        """`vm.overcommit_memory`, `vm.panic_on_oom`, `vm.oom_kill_allocating_task`."""
        return read_sysctls(self.root, VM_SYSCTLS)

    def _tcp_rows(self) -> list[TcpRow]:
        rows: list[TcpRow] = []
        for name, family in (("tcp", "ipv4"), ("tcp6", "ipv6")):
            text = self._net_text(name)
            if text:
                rows.extend(parse_tcp_table(text, family))
        return rows

    def _listen_queues(self) -> dict[int, tuple[int, int]]:
        if not self._use_sock_diag:
            return {}
        try:
            return netns.run_in_netns(self._ns_path, sock_diag.listen_queues)
        except OSError:
            return {}

    def listeners(self) -> list[Listener]:
        """Every TCP listener with its owner, queue lengths and half-open connection count."""
        rows = self._tcp_rows()
        listening = [r for r in rows if r.state == TCP_LISTEN]
        syn_recv = syn_recv_per_listener(listening, rows)
        owners = socket_owners(self.root, {r.inode for r in listening if r.inode})
        queues = self._listen_queues()
        out: list[Listener] = []
        for r in listening:
            pid = owners.get(r.inode)
            comm = self._text(f"{pid}/comm") if pid is not None else None
            queue = queues.get(r.inode)
            out.append(
                Listener(
                    family=r.family,
                    addr=r.addr,
                    port=r.port,
                    pid=pid,
                    comm=comm.removesuffix("\n") if comm is not None else None,
                    accept_queue=r.rx_queue,
                    backlog=queue[1] if queue is not None else None,
                    syn_recv=syn_recv.get(r.inode, 0),
                )
            )
        out.sort(key=lambda ls: (ls.port, ls.family, ls.addr))
        return out

    def kernel_release(self) -> str | None:
        text = self._text("sys/kernel/osrelease")
        return text.strip() or None if text else None

    def boot_id(self) -> str | None:
        text = self._text("sys/kernel/random/boot_id")
        return text.strip() or None if text else None

    def uptime_s(self) -> float | None:
        text = self._text("uptime")
        try:
            return float(text.split()[0]) if text else None
        except (ValueError, IndexError):
            return None
