"""The Why line and the accounting bar, on real corpus reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernbot.core.detector import detect
from kernbot.core.events import OomKillEvent
from kernbot.core.formats.reader import read_lines
from kernbot.core.oom.why import WIDTH, accounting_bar, bar_segments, why_line

CORPUS = Path(__file__).parent / "fixtures" / "corpus"


def _event(name: str) -> OomKillEvent:
    with (CORPUS / name).open(encoding="utf-8", errors="replace") as fh:
        return next(e for e in detect(read_lines(fh)) if isinstance(e, OomKillEvent))


@pytest.mark.parametrize(
    ("name", "why"),
    [
        (
            "oom-rhel8-4.18.0-147-k8s-systemd-docker-cgv1-memcg.txt",
            "Why: the cgroup hit its memory+swap limit (34.0 GiB); shmem/tmpfs held "
            "26.7 GiB (86%), which killing does not free.",
        ),
        (
            "oom-el7-3.10.0-514-vendor-patched-k8s-cgroupfs-memcg-hybrid-oomkill-line.txt",
            "Why: the cgroup hit its 3.0 GiB limit; kernel memory held 3.0 GiB (100%).",
        ),
        (
            "oom-6.11-qemu-stressng-global.txt",
            "Why: stress-ng-vm (pid 116) alone held 7.6 GiB (98%).",
        ),
        (
            "oom-ubuntu-5.13-sysrq-global.txt",
            "Why: a manual OOM (SysRq-f): no allocation failed, nothing ran out.",
        ),
        (
            "oom-el7-3.10-killed-process-UID-variant-fragment.txt",
            "Why: not judged: not in the report: Mem-Info (free, anon, page cache, shmem, slab).",
        ),
    ],
)
def test_why_line(name: str, why: str) -> None:
    assert why_line(_event(name)) == why


def test_bar_of_a_shmem_filled_cgroup() -> None:
    ev = _event("oom-rhel8-4.18.0-147-k8s-systemd-docker-cgv1-memcg.txt")
    bar = accounting_bar(ev)
    assert bar == (
        "[██▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒·] █ anon 12%, ▒ shmem 83%, ▪ other 1%, · free 3% (of 32.0 GiB limit)"
    )


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("oom-*.txt")))
def test_bar_always_fills_its_width_and_the_total(name: str) -> None:
    ev = _event(name)
    segs = bar_segments(ev)
    bar = accounting_bar(ev)
    if not segs:
        assert bar is None
        return
    assert bar is not None
    cells = bar[1 : bar.index("]")]
    assert len(cells) == WIDTH
    # The parts add up to the total: the accounting leaves nothing out and counts nothing twice.
    assert ev.accounting is not None
    total = ev.accounting.total_kb
    assert sum(kb for _, _, kb, _ in segs) == total
