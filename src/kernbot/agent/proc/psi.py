"""/proc/pressure/memory (PSI): whether tasks were stalling on memory before the kill.

A kernel without CONFIG_PSI (or booted with psi=0) has no file, or one that fails to read with
EOPNOTSUPP; both give `{}` so callers need not care.
"""

from __future__ import annotations

from typing import Any


def parse_psi(text: str) -> dict[str, Any]:
    """`some avg10=0.00 avg60=0.00 avg300=0.00 total=0` -> {"some": {"avg10": 0.0, ...}}."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        kind, _, rest = line.strip().partition(" ")
        if kind not in ("some", "full"):
            continue
        values: dict[str, float | int] = {}
        for item in rest.split():
            name, sep, raw = item.partition("=")
            if not sep:
                continue
            try:
                values[name] = int(raw) if name == "total" else float(raw)
            except ValueError:
                continue
        out[kind] = values
    return out
