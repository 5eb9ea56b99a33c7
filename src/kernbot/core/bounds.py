"""Bounds for every field that crosses the wire, taken from the kernel's own limits.

An agent (or anyone holding its token) sends these values; the bot stores them in columns of
fixed width and 64-bit integers and shows them in Slack. Without bounds a 2^63 revision or a
10^30 pid became an HTTP 500 (SQLite OverflowError) and a 3.9 MB host name was stored. Each
limit is the kernel's (or DNS's) own, with room for how the kernel prints the value:

- comm: TASK_COMM_LEN is 16 bytes with the NUL, but /dev/kmsg prints non-printable bytes as
  `\\xNN` (4 characters each), so 15 bytes may arrive as 60 characters; 64 allows that.
- host: HOST_NAME_MAX is 64 (uname's nodename), a DNS name 253; KERNBOT_HOSTNAME may be an FQDN.
  Letters, digits, `.`, `-`, `_` only: a host name is shown in Slack and logs and used as a key.
- cgroup paths: PATH_MAX 4096.
- raw lines: a /dev/kmsg read returns at most CONSOLE_EXT_LOG_MAX (8192) bytes per record; at
  most `events.MAX_LINES` lines are kept on an event.
- integers: int64 (what SQLite and PostgreSQL BIGINT store); revisions and counts are >= 0.

Any other string is capped at the kmsg record size and any other integer at int64 by
`bounded`: every event model field is `Bounded` (the check in the JSON branch of its schema,
`WireOnly`), the wire bodies run it on every field (`check_bounded`), so a violation is a 422
naming the field, never a 5xx.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import Field, GetCoreSchemaHandler, ValidationInfo
from pydantic_core import core_schema

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
TASK_COMM_LEN = 16
COMM_MAX_CHARS = 64
"""15 bytes, each possibly printed as a 4-character `\\xNN` escape."""
HOST_NAME_MAX = 253
PATH_MAX = 4096
KMSG_RECORD_MAX = 8192
"""CONSOLE_EXT_LOG_MAX: the most one /dev/kmsg read returns."""
URL_MAX = 1024
K8S_NAME_MAX = 253
"""A Kubernetes object name is at most a DNS subdomain (253)."""
ID_MAX = 255
TIME_MAX = 64
MAX_CONTAINER = 100_000
"""Most items in any list or mapping (a task table of 100k tasks is already 8+ MB)."""


def is_wire(info: ValidationInfo) -> bool:
    """Bounds guard what arrives over the wire (JSON). Models built in Python by the core from a
    log (`kernbot scan` of any file, the agent's detectors) are not refused for it: a bad line
    must never stop a scan, and the bot refuses what does not fit when it arrives."""
    return info.mode == "json"


class WireOnly:
    """A check run on JSON input only (`core_schema.json_or_python_schema`), for the reason
    `is_wire` gives: the check is in the JSON branch of the field's schema, so pydantic-core never
    calls it for a model built in Python (an OOM event has ~100 raw lines and a dozen task
    names: a Python callback each that returned at once was a fifth of building the event)."""

    __slots__ = ("check", "python")

    def __init__(
        self, check: Callable[[Any], Any], python: Callable[[Any], Any] | None = None
    ) -> None:
        self.check = check
        self.python = python
        """What a model built in Python does instead (`clip_comm`), or nothing."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        return core_schema.json_or_python_schema(
            json_schema=core_schema.no_info_after_validator_function(self.check, schema),
            python_schema=(
                schema
                if self.python is None
                else core_schema.no_info_after_validator_function(self.python, schema)
            ),
        )


def _at_most(
    limit: int, *, key: bool = False, python: Callable[[Any], Any] | None = None
) -> WireOnly:
    """A length check that, unlike StringConstraints, also accepts lone surrogates (the agent
    keeps undecodable kernel bytes as surrogate escapes). `key`: the value is stored in and
    looked up by a text column, which on PostgreSQL cannot hold NUL. `python`: what a model
    built in Python does instead (`WireOnly.python`)."""

    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"at most {limit} characters")
        if key and "\x00" in value:
            raise ValueError("contains a NUL character")
        return value

    return WireOnly(check, python)


def clip(value: str, limit: int) -> str:
    """`value` cut to `limit` characters, the cut marked with `…`."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def clip_comm(value: str) -> str:
    """A command name the core read from a log, cut to what the wire takes. The kernel never
    prints more (`COMM_MAX_CHARS`), but a garbled or glued line can put more text where a
    report's comm stands; the kill is still a kill and must not be refused by the bot (an event
    the bot refuses is dropped by the agent's shipper), so the name is cut, not the event."""
    return clip(value, COMM_MAX_CHARS)


def _host_name(value: str) -> str:
    if not value or len(value) > HOST_NAME_MAX or not _HOST_RE.fullmatch(value):
        raise ValueError(
            f"a host name: 1 to {HOST_NAME_MAX} letters, digits, '.', '-' or '_' "
            "(got something else)"
        )
    return value


_HOST_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
Revision = Count
Comm = Annotated[str, _at_most(COMM_MAX_CHARS, python=clip_comm)]
HostName = Annotated[str, WireOnly(_host_name)]
CgroupPath = Annotated[str, _at_most(PATH_MAX)]
Url = Annotated[str, _at_most(URL_MAX, key=True)]
K8sName = Annotated[str, _at_most(K8S_NAME_MAX, key=True)]
EventId = Annotated[str, _at_most(ID_MAX, key=True)]
Time = Annotated[str, _at_most(TIME_MAX, key=True)]
Line = Annotated[str, _at_most(KMSG_RECORD_MAX)]


def _check_scalar(item: object) -> None:
    if isinstance(item, bool) or item is None:
        return
    if isinstance(item, float):
        if not math.isfinite(item):
            raise ValueError("number is not finite")
    elif isinstance(item, int):
        if not INT64_MIN <= item <= INT64_MAX:
            raise ValueError("integer outside the 64-bit range")
    elif isinstance(item, str) and len(item) > KMSG_RECORD_MAX:
        raise ValueError(f"string longer than {KMSG_RECORD_MAX} characters")


def check_bounded(value: Any, info: ValidationInfo) -> Any:
    """`bounded` for JSON input (`is_wire`); a field validator of the wire bodies' fields."""
    if not is_wire(info):
        return value
    return bounded(value)


def bounded(value: Any) -> Any:
    """Raise ValueError when `value` (or anything inside it) is an integer outside int64, a
    string longer than a kmsg record, a float that is not finite (JSON cannot hold it), or a
    container of more than MAX_CONTAINER items."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple | dict):
            if len(item) > MAX_CONTAINER:
                raise ValueError(f"more than {MAX_CONTAINER} items")
            stack.extend(item.keys() if isinstance(item, dict) else item)
            if isinstance(item, dict):
                stack.extend(item.values())
        else:
            _check_scalar(item)
    return value


T = TypeVar("T")
Bounded = Annotated[T, WireOnly(bounded)]
"""A field checked by `bounded` when it arrives as JSON (the event models' fields)."""
