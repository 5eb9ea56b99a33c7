"""The root of every error kernbot raises on purpose (ARCHITECTURE.md, "Errors").

`except KernbotError` catches what kernbot means to report: the message names the problem and,
where there is one, the fix. Errors of the libraries underneath (aiohttp, SQLAlchemy, OSError
from /proc and devices) are translated into a subclass where they leave a module that talks to
them (the Kubernetes API client, the bot's database, the /dev/kmsg reader), so callers never
catch a dependency's exception types.
"""

from __future__ import annotations


class KernbotError(Exception):
    """Something kernbot can explain; `str()` is the explanation for a human."""
