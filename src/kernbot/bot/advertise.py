"""Where the bot may send the agent token: an agent's advertise address must be its own.

`/oom HOST` makes the bot call the URL the host's heartbeat advertised, with
`Authorization: Bearer <token>`, and show the answer as live from the agent. Without a check,
anyone holding the token (or able to reach the ingest API with it) could point a host at their own
server, collect the token from every caller and answer with whatever they like. So the address in
the URL must be the address the heartbeat came from, or lie inside KERNBOT_AGENT_NETWORKS (CIDRs,
for NAT and proxies). A host name in the URL is resolved and every address it resolves to must
pass. The bot also keeps a host name bound to the address that registered it until that agent is
stale (see `kernbot.bot.ingest`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from kernbot.errors import KernbotError
from kernbot.logsafe import logsafe

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], Awaitable[list[str]]]


class AdvertiseRefused(KernbotError):
    """The advertised URL may not receive the token; the message says why."""


async def resolve(name: str) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _address(text: str | None) -> IPAddress | None:
    if not text:
        return None
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def parse_networks(cidrs: Sequence[str]) -> list[IPNetwork]:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


async def check_advertise(
    url: str,
    peer: str | None,
    networks: Sequence[IPNetwork],
    resolver: Resolver = resolve,
) -> None:
    """Return when `url` points at `peer` or into `networks`; raise AdvertiseRefused otherwise."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # ValueError for a port out of range
    except ValueError as exc:
        raise AdvertiseRefused(f"advertise_url is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise AdvertiseRefused("advertise_url must be an http:// or https:// URL with a host")
    source = _address(peer)
    literal = _address(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            found = await asyncio.wait_for(resolver(host), 2.0)
        except (OSError, TimeoutError) as exc:
            raise AdvertiseRefused(
                f"advertise_url host {logsafe(host, 100)} does not resolve: {exc}"
            ) from None
        addresses = [a for a in (_address(t) for t in found) if a is not None]
        if not addresses:
            raise AdvertiseRefused(f"advertise_url host {logsafe(host, 100)} has no address")
    for addr in addresses:
        if addr == source or any(addr in net for net in networks):
            continue
        raise AdvertiseRefused(
            f"advertise_url points at {addr}, but the heartbeat came from {peer}; an agent may "
            "only advertise its own address or one inside KERNBOT_AGENT_NETWORKS"
        )
