"""Advice for a SYN flood: cookies off, spoofed SYNs or real clients, and what cookies cost.

The TcpExt counters tell the two floods apart: SYN cookies sent but never returned mean
spoofed sources (filter upstream); cookies that come back mean real clients and a listen backlog
too small for them (raise it). Without counters both readings are offered, the check first.
"""

from __future__ import annotations

from kernbot.core.context import SynContext
from kernbot.core.events import Advice, SynFloodEvent

SPOOFED_MAX_RETURN = 0.1
"""Fewer than this share of SYN cookies coming back: the SYNs are spoofed (an attack)."""
REAL_MIN_RETURN = 0.5
"""At least this share coming back: real clients complete handshakes; the backlog is too small."""


def _rate(ctx: SynContext, key: str) -> float | None:
    """The episode's peak rate when the agent tracked one (an ended flood's current rates are
    all zero), else the last sampled rate."""
    if key in ctx.peak_rates:
        return ctx.peak_rates[key]
    return ctx.counter_rates.get(key)


def _listen_spec(ev: SynFloodEvent) -> str:
    if ev.port is None:
        return "the flooded listener"
    if ev.addr and ev.family == "ipv6":
        return f"[{ev.addr}]:{ev.port}"
    if ev.addr:
        return f"{ev.addr}:{ev.port}"
    return f"port {ev.port}"


def advise_syn(ev: SynFloodEvent) -> list[Advice]:
    """Cookies off first (critical), then by verdict: filter, or raise the backlog."""
    out: list[Advice] = []
    port = ev.port  # None when the counters opened the episode and no listener stood out
    where = _listen_spec(ev)
    if ev.action == "drop":
        out.append(
            Advice(
                title="SYN cookies are off: the kernel is dropping connection attempts",
                why=f"The SYN queue of {where} is full and net.ipv4.tcp_syncookies is 0, so new "
                "clients (real ones too) are turned away. Turn SYN cookies on.",
                commands=[
                    "sysctl -w net.ipv4.tcp_syncookies=1",
                    "echo 'net.ipv4.tcp_syncookies = 1' > /etc/sysctl.d/90-syncookies.conf",
                ],
                severity="critical",
            )
        )
    ctx = ev.context
    sent = _rate(ctx, "SyncookiesSent")
    recv = _rate(ctx, "SyncookiesRecv")
    verdict = ctx.verdict
    if verdict is None and sent is not None and recv is not None and sent >= 1:
        if recv < SPOOFED_MAX_RETURN * sent:
            verdict = "attack"
        elif recv >= REAL_MIN_RETURN * sent:
            verdict = "legitimate"
    counters = (
        f" Cookies sent {sent:.0f}/s, received back {recv:.0f}/s."
        if sent is not None and recv is not None
        else ""
    )
    check = Advice(
        title="Are real clients completing handshakes?",
        why="Compare SYN cookies sent with cookies received back: few received means spoofed "
        "SYNs (an attack); most received means real clients and a listen backlog too small.",
        commands=[
            "nstat -az TcpExtSyncookiesSent TcpExtSyncookiesRecv TcpExtSyncookiesFailed "
            "TcpExtListenOverflows TcpExtListenDrops",
            f"ss -ltnp 'sport = :{port}'" if port is not None else "ss -ltnp",
        ],
        severity="info",
    )
    firewall = Advice(
        title=f"Rate-limit SYNs to port {port} upstream"
        if port is not None
        else "Rate-limit SYNs upstream",
        why=(
            "Most cookies never come back, so the SYNs are spoofed: filter them before they "
            "reach the socket (load balancer, cloud firewall, or SYNPROXY on this host)."
            if verdict == "attack"
            else "If the check above shows spoofed SYNs (few handshakes complete), filter them "
            "before they reach the socket (load balancer, cloud firewall, or SYNPROXY on this "
            "host)."
        )
        + counters
        + ("" if port is not None else " The kernel did not name the port: find it first."),
        commands=[]
        if port is None
        else [
            f"iptables -I INPUT -p tcp --syn --dport {port} -m hashlimit "
            f"--hashlimit-name syn{port} --hashlimit-mode srcip --hashlimit-above 50/second "
            "--hashlimit-burst 100 -j DROP",
            f"nft add rule inet filter input 'tcp dport {port} tcp flags syn "
            "meter synflood { ip saddr limit rate over 50/second burst 100 packets } drop'",
            f"iptables -t raw -I PREROUTING -p tcp --syn --dport {port} -j CT --notrack",
            f"iptables -I INPUT -p tcp --dport {port} -m conntrack --ctstate INVALID,UNTRACKED "
            "-j SYNPROXY --sack-perm --timestamp --wscale 7 --mss 1460",
            "sysctl -w net.netfilter.nf_conntrack_tcp_loose=0",
        ],
        severity="critical" if verdict == "attack" else "warning",
    )
    listener = ctx.listener
    lwho = ""
    if listener is not None and listener.comm:
        pid = f", pid {listener.pid}" if listener.pid is not None else ""
        lwho = f" ({listener.comm}{pid})"
        if listener.backlog is not None:
            queue = listener.accept_queue
            lwho += f", listen backlog {listener.backlog}"
            lwho += f" with {queue} waiting to be accepted" if queue is not None else ""
        if listener.syn_recv is not None:
            lwho += f", {listener.syn_recv} half-open"
    sysctls = ctx.sysctls
    parts = [
        f"{k} = {sysctls[k]}"
        for k in ("net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog")
        if k in sysctls
    ]
    now = (" Now: " + ", ".join(parts) + ".") if parts else ""
    backlog = Advice(
        title=f"Give {where} a bigger backlog",
        why=(
            f"Real clients are filling the SYN/accept queue of the listener{lwho}"
            if verdict == "legitimate"
            else f"If most handshakes complete, real clients are filling the SYN/accept queue of "
            f"the listener{lwho}"
        )
        + ": raise the kernel limits and the backlog the application passes to listen() (nginx "
        "`listen … backlog=`, Java `backlog`, gunicorn `--backlog`)." + now + counters,
        commands=[
            "sysctl net.core.somaxconn net.ipv4.tcp_max_syn_backlog",
            "sysctl -w net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=8192",
            "printf 'net.core.somaxconn = 4096\\nnet.ipv4.tcp_max_syn_backlog = 8192\\n' "
            "> /etc/sysctl.d/90-backlog.conf",
        ],
        severity="critical" if verdict == "legitimate" else "warning",
    )
    if verdict == "attack":
        out += [firewall, check]
    elif verdict == "legitimate":
        out += [backlog, check]
    else:
        out += [check, firewall, backlog]
    if ev.action == "cookies":
        out.append(
            Advice(
                title="SYN cookies drop TCP options",
                why="Connections accepted through a cookie lose window scaling (and SACK/"
                "timestamps unless tcp_timestamps is on), so they can be slow on long links. "
                "Fine during an attack; a sign to fix the backlog if real clients trigger it.",
                commands=["sysctl net.ipv4.tcp_syncookies net.ipv4.tcp_timestamps"],
                severity="info",
            )
        )
    return out
