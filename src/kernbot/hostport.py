"""`HOST:PORT` and `[V6]:PORT`, the form of every listen setting (KERNBOT_LISTEN,
KERNBOT_AGENT_LISTEN), parsed in one place; and the URL host form back (brackets for IPv6)."""

from __future__ import annotations

from kernbot.errors import KernbotError


class HostPortError(KernbotError, ValueError):
    """Not `HOST:PORT`; the message quotes what was given."""


def parse_host_port(text: str, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """(host without brackets, port 0..65535); an empty host is `default_host` (all addresses)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        raise HostPortError(f"expected HOST:PORT (got {text!r})")
    if host.startswith("[") != host.endswith("]"):
        raise HostPortError(f"expected [IPV6]:PORT (got {text!r})")
    bracketed = host.startswith("[")
    host = host[1:-1] if bracketed else host
    if ":" in host and not bracketed:
        raise HostPortError(f"an IPv6 address needs brackets: [{host}]:{port_text} (got {text!r})")
    try:
        port = int(port_text)
    except ValueError:
        raise HostPortError(f"expected HOST:PORT with a numeric port (got {text!r})") from None
    if not 0 <= port <= 65535:
        raise HostPortError(f"port out of range 0..65535 (got {text!r})")
    return host or default_host, port


def url_host(host: str) -> str:
    """The host as it goes into a URL: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host else host
