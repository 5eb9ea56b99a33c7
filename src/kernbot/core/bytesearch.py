"""Where fixed words occur in a log's bytes: libc's memmem(3), or `bytes.find` without it.

memmem is two to three times faster than `bytes.find` for the short words the scan looks for
(`kernbot.core.prefilter`'s keywords, `kernbot.core.blocks`' plain-line words).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import cast


def _libc_memmem() -> Callable[..., int | None] | None:
    try:
        fn = ctypes.CDLL(None).memmem
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    return cast(Callable[..., int | None], fn)


MEMMEM = _libc_memmem()


def base_address(data: bytes) -> int:
    """The address of `data`'s first byte (bytes are immutable: memmem reads them in place)."""
    return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0


def find_all(
    data: bytes, words: tuple[bytes, ...], start: int, end: int, *, use_libc: bool = True
) -> list[int]:
    """Sorted offsets of every occurrence of each of `words` within `data[start:end]`
    (`use_libc=False`: with `bytes.find` only, the reference the tests compare with)."""
    hits: list[int] = []
    memmem = MEMMEM if use_libc else None
    if memmem is None or not data:
        find = data.find
        for word in words:
            at = find(word, start, end)
            while at >= 0:
                hits.append(at)
                at = find(word, at + 1, end)
    else:
        base = base_address(data)
        for word in words:
            off = start
            size = len(word)
            while (hit := memmem(base + off, end - off, word, size)) is not None:
                off = hit - base
                hits.append(off)
                off += 1
    hits.sort()
    return hits
