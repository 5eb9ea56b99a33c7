"""The one bearer-token check shared by the agent API, the bot's ingest API and both clients.

RFC 7235 §2.1: the auth-scheme is case-insensitive, so `bearer`, `Bearer` and `BEARER` are the
same scheme; RFC 6750 allows one or more spaces after it. The credentials are compared in
constant time (hmac.compare_digest over bytes), so response timing says nothing about how much
of a guessed token was right. A server without a token refuses everything: authentication is
never optional (`kernbot agent`/`kernbot bot` refuse to start without KERNBOT_TOKEN).
"""

from __future__ import annotations

import hmac

SCHEME = "Bearer"
HEADER = "Authorization"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="kernbot"'}
MISSING_TOKEN_HELP = (
    "KERNBOT_TOKEN is not set: agents and the bot authenticate each other with this shared "
    "secret and refuse to run without it. Set KERNBOT_TOKEN (e.g. `openssl rand -hex 32`) on the "
    "bot and every agent; `kernbot up` generates one in its state dir, and the Helm chart "
    "supplies it from `token` or `existingTokenSecret`."
)


def authorization(token: str) -> dict[str, str]:
    """The header a client sends."""
    return {HEADER: f"{SCHEME} {token}"}


def bearer_ok(header: str | None, token: str | None) -> bool:
    """True when `header` (an Authorization value) carries exactly `token`."""
    if not token or not header:
        return False
    scheme, sep, given = header.strip().partition(" ")
    if not sep or scheme.lower() != SCHEME.lower():
        return False
    return hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8")
    )
