"""The agent's pipeline alone, in this process: scan_bench's OOM-loop log cut into file batches
and fed to a `Pipeline` made as the agent makes it (deferred build, diagnosis in `finish`, the
history and the outbox on real SQLite files in a temporary directory), timed with the process's
CPU clock. A benchmark (issue 11), not a test: it prints CPU seconds, events and lines.

It has what `bench/agent_bench.py` lacks for comparing two versions of the code: no event loop,
no HTTP, no other process, so the same code gives the same figure to a few per cent. It lacks
what the real agent has (the bot, the event loop, the periodic jobs): the target is measured by
agent_bench.

    python bench/pipeline_bench.py [--lines 100000] [--batch-bytes 112000] [--enrich] [--ship]
        [--profile]

`--batch-bytes`: bytes a batch (the agent reads a file growing at 10,000 OOM-report lines/s
every 200 ms: ~112,000 bytes); `--enrich`: the agent's `Enrich` stage over this host's /proc;
`--ship`: drain the outbox after each batch as the shipper would (peek and ack, no HTTP);
`--profile`: cProfile the run, 40 entries by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from scan_bench import compile_bytecode, write_oom_loop  # noqa: E402


class _Clock:
    """A fixed clock: every event is judged live."""

    def wall(self) -> float:
        return 1.7e9

    def mono(self) -> float:
        return 1000.0


def _chunks(data: bytes, size: int) -> list[tuple[int, bytes]]:
    """`data` cut after the first line end past every `size` bytes: (offset, bytes) each."""
    chunks: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos + size)
        end = len(data) if end < 0 else end + 1
        chunks.append((pos, data[pos:end]))
        pos = end
    return chunks


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--batch-bytes", type=int, default=112_000)
    ap.add_argument("--enrich", action="store_true")
    ap.add_argument("--ship", action="store_true")
    ap.add_argument("--profile", action="store_true")
    return ap.parse_args()


def main() -> int:
    args = _args()
    compile_bytecode()

    from kernbot.agent.enrich import Enricher
    from kernbot.agent.history import History, RecentLines
    from kernbot.agent.metrics import AgentMetrics
    from kernbot.agent.outbox import Outbox
    from kernbot.agent.pipeline import Pipeline
    from kernbot.agent.pods import PodResolver
    from kernbot.agent.position import Position
    from kernbot.agent.proc import ProcReader
    from kernbot.agent.sources import Batch
    from kernbot.agent.stages import Advise, Enrich, Stage
    from kernbot.core.deferred import Deferred
    from kernbot.core.detector import Detector, diagnose
    from kernbot.core.events import Event
    from kernbot.core.formats.reader import LineReader

    with tempfile.TemporaryDirectory(prefix="kernbot-pipeline-bench-") as tmp:
        d = Path(tmp)
        write_oom_loop(d / "loop.log", args.lines)
        chunks = _chunks((d / "loop.log").read_bytes(), args.batch_bytes)
        stages: list[Stage] = []
        if args.enrich:
            pods = PodResolver(d / "no-pods", False, None)
            stages.append(Enrich(Enricher(ProcReader(Path("/proc")), pods)))
        stages.append(Advise())
        deferred: list[Event | Deferred] = []
        outbox = Outbox(d / "outbox.db", history=d / "history.db")
        pipeline = Pipeline(
            detector=Detector(host="h", boot_id="b", advise=False, diagnose=False, defer=deferred),
            deferred=deferred,
            finish=diagnose,
            outbox=outbox,
            history=History(d / "history.db", outbox=d / "outbox.db"),
            recent=RecentLines(),
            metrics=AgentMetrics(),
            stages=stages,
            boot_id="b",
            clock=_Clock(),
            history_max_age_s=1e12,
        )
        reader = LineReader()
        gc.collect()
        gc.freeze()

        def run() -> None:
            for start, chunk in chunks:
                batch = Batch()
                batch.place = lambda end: Position("file", inode=1, offset=end)
                batch.data, batch.start, batch.reader = chunk, start, reader
                pipeline.feed(batch)
                if args.ship:
                    while items := outbox.peek(100):
                        outbox.ack(items)

        t0 = time.process_time()
        if args.profile:
            prof = cProfile.Profile()
            prof.runcall(run)
            pstats.Stats(prof).sort_stats("tottime").print_stats(40)
        else:
            run()
        took = time.process_time() - t0
        events = sum(pipeline.stats.events.values())
        print(
            f"pipeline: {took:.3f} s CPU for {pipeline.stats.records_read} lines in "
            f"{len(chunks)} batches, {events} events ({took / max(events, 1) * 1e6:.0f} us an "
            f"event){' with enrichment' if args.enrich else ''}{', shipped' if args.ship else ''}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
