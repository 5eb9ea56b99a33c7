"""The scan fast path (`kernbot.core.prefilter.KEYWORDS`) must see every line that can start an
OOM report, or `kernbot scan` silently loses headerless fragments.

The starter kinds come from `oom_lines.REPORT_STARTERS` itself; each needs samples (every real
corpus line, plus the kernel's own format strings for shapes the corpus lacks), and every sample
must hold a keyword. A new starter kind without a sample fails here, as does a keyword removed.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from kernbot.core.formats.reader import read_lines
from kernbot.core.oom import lines as ol
from kernbot.core.prefilter import KEYWORDS

CORPUS = Path(__file__).parent / "fixtures" / "corpus"

# Format strings from mm/oom_kill.c, mm/memcontrol.c and distro kernels (PROVENANCE.md
# section 1) with values filled in, for the shapes no corpus file holds.
FORMAT_SAMPLES = [
    "Kernel panic - not syncing: out of memory. panic_on_oom is selected",
    "Kernel panic - not syncing: Out of memory: compulsory panic_on_oom is enabled",
    "Kernel panic - not syncing: Out of memory and no killable processes...",
    "Tasks in /kubepods.slice/x.slice are going to be killed due to memory.oom.group set",
    "Kill process 4470 (worker) sharing same memory",
    "Out of memory: kill process 4469 (a b/c) score 17 or a child",
    "Out of memory (oom_kill_allocating_task): Kill process 12 (x) score 0 or sacrifice child",
    "oom_reaper: unable to reap pid:4469 (<!channel>)",
    "Memory limit reached of cgroup /docker/abc",
    "Task in /docker/abc",
    "killed as a result of limit of /docker/",
    "memory+swap: usage 1024kB, limit 2048kB, failcnt 0",
    "kmem: usage 1024kB, limit 9007199254740988kB, failcnt 0",
    "Memory cgroup stats for /docker/abc: cache:0KB rss:1024KB",
    "[ pid ]   uid  tgid total_vm      rss cpu oom_adj oom_score_adj name",
    "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
    "Tasks state (memory values in pages):",
    "runc:[2:INIT] cpuset=/ mems_allowed=0",
    "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=*bold*,pid=1,uid=0",
]


def _samples() -> dict[type, list[str]]:
    by_kind: dict[type, list[str]] = defaultdict(list)
    texts = list(FORMAT_SAMPLES)
    for path in sorted(CORPUS.glob("*.txt")):
        texts += [r.text for r in read_lines(path.read_text(errors="replace").splitlines())]
    for text in texts:
        parsed = ol.parse_line(text)
        if isinstance(parsed, ol.REPORT_STARTERS):
            by_kind[type(parsed)].append(text)
    return by_kind


SAMPLES = _samples()


@pytest.mark.parametrize("kind", ol.REPORT_STARTERS, ids=lambda k: k.__name__)
def test_every_starter_kind_has_samples_and_each_holds_a_keyword(kind: type) -> None:
    samples = SAMPLES.get(kind, [])
    assert samples, f"{kind.__name__} starts reports but has no sample line here"
    needles = [k.decode() for k in KEYWORDS]
    missed = [s for s in samples if not any(n in s for n in needles)]
    assert missed == [], f"prefilter.KEYWORDS misses these {kind.__name__} lines"


def test_the_check_itself_fails_without_a_keyword() -> None:
    needles = [k.decode() for k in KEYWORDS if k != b"oom_reaper: "]
    reaper = SAMPLES[ol.ReaperLine]
    assert not all(any(n in s for n in needles) for s in reaper)


@pytest.mark.parametrize("text", FORMAT_SAMPLES)
def test_every_format_sample_is_a_starter(text: str) -> None:
    assert isinstance(ol.parse_line(text), ol.REPORT_STARTERS)
