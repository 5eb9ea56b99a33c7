"""The one way every alert, answer and diagnosis writes a size (so they cannot disagree)."""

from __future__ import annotations


def size(kb: int | None) -> str:
    """kB (the kernel's kB are KiB) as one binary unit everywhere: `512 KiB`, `1.5 GiB`."""
    if kb is None:
        return ""
    value, unit = float(kb), "KiB"
    for next_unit in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, next_unit
    return f"{value:.0f} {unit}" if unit == "KiB" else f"{value:.1f} {unit}"
