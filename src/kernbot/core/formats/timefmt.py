"""Timestamps as kernel log transports print them, including `dmesg -T` in any locale.

`dmesg -T` formats its date with the reader's locale (`[Di Aug 12 …]`, `[二 9月  3 …]`, or
Russian weekday and month abbreviations), so month names are looked up in a few common languages
and, failing that, taken from a leading number (`9月`, `9월`). When nothing fits the caller still
strips the prefix; only `wall` stays None. No clock is read here: a year-less syslog date needs
the caller's year.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

_MONTH_TABLES = (
    # English, German, French, Spanish, Italian, Portuguese, Dutch, Polish, Russian (nominative
    # and genitive abbreviations), Ukrainian.
    "jan feb mar apr may jun jul aug sep oct nov dec",
    "jan feb mär apr mai jun jul aug sep okt nov dez",
    "janv févr mars avr mai juin juil août sept oct nov déc",
    "ene feb mar abr may jun jul ago sep oct nov dic",
    "gen feb mar apr mag giu lug ago set ott nov dic",
    "jan fev mar abr mai jun jul ago set out nov dez",
    "jan feb mrt apr mei jun jul aug sep okt nov dec",
    "sty lut mar kwi maj cze lip sie wrz paź lis gru",
    "янв фев мар апр май июн июл авг сен окт ноя дек",
    "янв фев мар апр мая июн июл авг сен окт ноя дек",
    "січ лют бер кві тра чер лип сер вер жов лис гру",
)


def _build_months() -> dict[str, int]:
    months: dict[str, int] = {}
    for table in _MONTH_TABLES:
        for number, name in enumerate(table.split(), start=1):
            months.setdefault(name, number)
    return months


_MONTHS = _build_months()
EN_MONTHS = {name: n for n, name in enumerate(_MONTH_TABLES[0].split(), start=1)}
"""Lower-case English abbreviations, for formats that are never localised (syslog, journald)."""


def month_number(token: str) -> int | None:
    """Month 1..12 from a (possibly localised) abbreviation, or None."""
    name = token.lower().rstrip(".")
    number = _MONTHS.get(name)
    if number is None:
        number = _MONTHS.get(name[:3])
    if number is not None:
        return number
    digits = ""
    for ch in name:
        if not ch.isdecimal():
            break
        digits += ch
    if digits and len(digits) <= 2 and 1 <= int(digits) <= 12:
        return int(digits)
    return None


_TZ_CACHE: dict[str, timezone] = {"Z": UTC, "z": UTC}


def parse_tz(text: str | None) -> timezone | None:
    """`Z`, `+01:00` or `+0100` as a fixed offset; None for an empty or odd suffix."""
    if not text:
        return None
    tz = _TZ_CACHE.get(text)
    if tz is not None:
        return tz
    digits = text[1:].replace(":", "")
    if text[0] not in "+-" or len(digits) != 4 or not digits.isdigit():
        return None
    minutes = int(digits[:2]) * 60 + int(digits[2:])
    if minutes >= 24 * 60:
        return None
    tz = timezone(timedelta(minutes=-minutes if text[0] == "-" else minutes))
    if len(_TZ_CACHE) < 256:
        _TZ_CACHE[text] = tz
    return tz


def frac_to_usec(frac: str | None) -> int:
    """Fractional-second digits (`123`, `123456`, `123456789`) as microseconds."""
    if not frac:
        return 0
    if len(frac) == 6:
        return int(frac)
    return int(frac[:6].ljust(6, "0"))


def make_wall(
    year: int | None,
    month: int | None,
    day: int | str,
    hms: tuple[str | Any, ...],
    *,
    usec: int = 0,
    tz: timezone | None = None,
) -> datetime | None:
    """A datetime from a regex's digit groups, or None when a part is unknown or out of range."""
    if year is None or month is None:
        return None
    try:
        hour, minute, second = (int(part) for part in hms)
        return datetime(year, month, int(day), hour, minute, second, usec, tzinfo=tz)
    except (ValueError, OverflowError):
        return None


def seconds_to_usec(secs: str, frac: str | None) -> int:
    """`[   30.745678]` parts as microseconds since boot."""
    return int(secs) * 1_000_000 + frac_to_usec(frac)


_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:([.,])(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})? "
)


def iso_at(line: str, pos: int = 0) -> tuple[datetime | None, int, str | None] | None:
    """An ISO 8601 date and a space at `pos`: (wall, end of match, decimal mark or None).

    The decimal mark tells `dmesg --time-format iso` (`,`) from RFC3339 syslog (`.`).
    """
    match = _ISO.match(line, pos)
    if match is None:
        return None
    wall = make_wall(
        int(match[1]),
        int(match[2]),
        match[3],
        match.group(4, 5, 6),
        usec=frac_to_usec(match[8]),
        tz=parse_tz(match[9]),
    )
    return wall, match.end(), match[7]
