"""`kernbot scan`: explain every OOM kill and SYN flood in kernel logs, or in this host's log now.

Files and stdin are streamed: read in chunks (gzip detected by its magic bytes, whatever the
name, and inflated a bounded piece at a time), pushed through the pure core's `ByteScanner`, and
each event is printed as soon as it is final, so memory stays flat on any input (/dev/zero, a
gzip bomb, a log of many GB) and `kernbot scan --json | head -1` returns at once. When a pipe
pauses (`journalctl -kf | kernbot scan -`), what is known so far is printed; a later revision of
the same event is then printed again with a higher `revision`. The summary at the end counts.
Without a file, the live kernel ring buffer is read once from /dev/kmsg, falling back to `dmesg`.
Exit status: 0 events found, 1 none, 2 an input could not be read (the others are still scanned
and their events printed).
"""

from __future__ import annotations

import argparse
import gc
import os
import select
import socket
import subprocess
import sys
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from kernbot.errors import KernbotError
from kernbot.logsafe import logsafe

if TYPE_CHECKING:
    from kernbot.core.events import Event
    from kernbot.core.prefilter import ByteScanner

from kernbot.core.formats.reader import FORCED_FORMATS

GZIP_MAGIC = b"\x1f\x8b"
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
KMSG_BUFSIZE = 16384
READ_CHUNK = 4 << 20
"""Bytes read (or inflated) at a time: the unit of memory the scan holds."""
GC_THRESHOLD = 50_000
"""Allocations between the collector's young-generation runs during a scan (`_few_collections`)."""
IDLE_S = 1.0
"""A pipe silent this long: print what is known so far instead of waiting for more."""
HELD_EVENTS = 1000
"""Events held back waiting to be final, at most (memory bound; see `Releaser`)."""
NO_LOG_ACCESS = (
    "cannot read the kernel log: {why}. Run as root, give the process CAP_SYSLOG, "
    "or allow everyone with `sysctl -w kernel.dmesg_restrict=0`."
)


class InputError(KernbotError):
    """An input that cannot be read; the message names it and says why."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="kernel logs (dmesg, kern.log, journalctl -k, /dev/kmsg records; .gz too); "
        "`-` for stdin; none: read this host's kernel log now",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per event per line")
    parser.add_argument("--host", metavar="NAME", help="host name to put on events")
    parser.add_argument(
        "--format",
        metavar="NAME",
        default="auto",
        choices=FORCED_FORMATS,
        help="force the input format when detection is wrong: " + ", ".join(FORCED_FORMATS),
    )


def _say(message: str) -> None:
    print(f"kernbot scan: {message}", file=sys.stderr, flush=True)


def _raw_chunks(fd: int, name: str, idle_s: float | None) -> Iterator[bytes]:
    """Chunks of one file descriptor; b"" each time a pipe stays silent for `idle_s`."""
    while True:
        if idle_s is not None:
            ready, _, _ = select.select([fd], [], [], idle_s)
            if not ready:
                yield b""
                continue
        try:
            chunk = os.read(fd, READ_CHUNK)
        except OSError as exc:
            raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None
        if not chunk:
            return
        yield chunk


def _inflate(chunks: Iterator[bytes], name: str) -> Iterator[bytes]:
    """Gzip members (one after another, as `cat a.gz b.gz` makes) inflated a chunk at a time:
    a small file that expands to gigabytes never exists whole in memory."""
    inflater = zlib.decompressobj(wbits=31)
    started = False  # bytes of the current member were fed
    try:
        for chunk in chunks:
            if not chunk:
                yield chunk
                continue
            data = chunk
            while data:
                started = True
                out = inflater.decompress(data, READ_CHUNK)
                if out:
                    yield out
                data = inflater.unconsumed_tail
                if inflater.eof:
                    data = inflater.unused_data
                    inflater = zlib.decompressobj(wbits=31)
                    started = False
        if started:
            raise InputError(f"{name}: not a valid gzip file (it ends before its last member)")
    except zlib.error as exc:
        raise InputError(f"{name}: not a valid gzip file ({exc})") from None


def input_chunks(fd: int, name: str, *, idle_s: float | None = None) -> Iterator[bytes]:
    """The bytes of one input in chunks, inflated when it starts with the gzip magic."""
    raw = _raw_chunks(fd, name, idle_s)
    first = b""
    for first in raw:
        if first:
            break
        yield first
    if not first:
        return
    if first.startswith(GZIP_MAGIC) or (len(first) == 1 and first == GZIP_MAGIC[:1]):
        yield from _inflate(_prepend(first, raw), name)
    else:
        yield from _prepend(first, raw)


def reversed_chunks(fd: int, name: str) -> Iterator[bytes]:
    """A regular file's lines last to first, a chunk at a time (a newest-first export read in
    log order); memory stays one chunk and one line."""
    try:
        end = os.lseek(fd, 0, os.SEEK_END)
        carry = b""
        while end > 0:
            start = max(0, end - READ_CHUNK)
            block = os.pread(fd, end - start, start) + carry
            end = start
            if end > 0:
                cut = block.find(b"\n")
                if cut < 0 and len(block) < 1 << 20:
                    carry = block
                    continue
                carry, block = block[: cut + 1], block[cut + 1 :]
            lines = block.rstrip(b"\n").split(b"\n")
            lines.reverse()
            yield b"\n".join(lines) + b"\n"
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def open_input(name: str, stdin: BinaryIO | None = None) -> tuple[int, str, int, bool]:
    """(fd, shown name, year, is a pipe) of one input (`-` is stdin).

    Syslog and `journalctl -o short` stamps carry no year; a file's modification time is the
    best guess of it (stdin and pipes: this year).
    """
    if name == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        fd, shown = stream.fileno(), "<stdin>"
    else:
        shown = logsafe(name, 300)  # a file name may hold a newline or a terminal escape
        try:
            fd = os.open(name, os.O_RDONLY)
        except OSError as exc:
            raise InputError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    st = os.fstat(fd)
    regular = st.st_mode & 0o170000 == 0o100000
    year = datetime.fromtimestamp(st.st_mtime).year if regular else datetime.now().year
    if os.path.isdir(name) and name != "-":
        os.close(fd)
        raise InputError(f"{shown}: cannot read: Is a directory")
    return fd, shown, year, not regular


def _boot_id() -> str | None:
    try:
        return Path(BOOT_ID_PATH).read_text().strip() or None
    except OSError:
        return None


def read_kmsg_once(path: Path | None = None) -> tuple[list[bytes], int]:
    """Every record now in the ring buffer as raw /dev/kmsg lines, and how many times records
    were overwritten while we read; `KmsgUnreadable` (with the fix) when it cannot be read."""
    from kernbot.agent.sources.kmsg import KMSG_PATH, open_kmsg, read_ready

    fd = open_kmsg(path or KMSG_PATH)
    records: list[bytes] = []
    lost = 0
    try:
        while True:
            ready = read_ready(fd, limit=4096)
            records.extend(ready.records)
            lost += ready.overwritten
            if ready.caught_up:
                break
    finally:
        os.close(fd)
    return records, lost


def _scan_kmsg(host: str | None) -> list[Event]:
    from kernbot.core.detector import detect
    from kernbot.core.formats.reader import parse_kmsg_record

    boot_id = _boot_id()
    records, lost = read_kmsg_once()
    if lost:
        _say(f"kernel log records were overwritten {lost} time(s) while reading /dev/kmsg")
    parsed = (
        rec
        for raw in records
        for rec in parse_kmsg_record(raw.decode("utf-8", "replace"), boot_id=boot_id)
    )
    return detect(parsed, host=host, boot_id=boot_id)


def _scan_live(host: str | None) -> list[Event]:
    """This host's kernel log: /dev/kmsg, else `dmesg`, else InputError naming the fix."""
    from kernbot.agent.sources.kmsg import KmsgUnreadable

    try:
        return _scan_kmsg(host)
    except KmsgUnreadable as exc:
        denied = exc
    _say(f"cannot read {denied.path}: {denied.why}; reading `dmesg` instead")
    try:
        proc = subprocess.run(["dmesg"], capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"{denied} (`dmesg` failed too: {exc})") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip() or f"exit {proc.returncode}"
        raise InputError(f"{denied} (`dmesg` failed too: {err})")
    from kernbot.core.prefilter import detect_bytes

    return detect_bytes(proc.stdout, host=host, year=datetime.now().year)


class Output:
    """Prints events as they come and tallies them for the summary without keeping them."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.count = 0
        self._tally: dict[tuple[str, str | int | None], int] = {}

    def events(self, events: Sequence[Event]) -> None:
        if not events:
            return
        if self.as_json:
            text = "".join(ev.model_dump_json() + "\n" for ev in events)
        else:
            from kernbot.render_text import render_event

            text = "".join(render_event(ev) + "\n\n" for ev in events)
        sys.stdout.write(text)
        sys.stdout.flush()
        self.count += len(events)
        for ev in events:
            self._count(ev)

    def _count(self, ev: Event) -> None:
        from kernbot.core.events import OomKillEvent, SynFloodEvent

        key: tuple[str, str | int | None]
        if isinstance(ev, OomKillEvent):
            if not ev.killed:
                return  # a report without a kill line is not a kill
            key = ("oom_kill", ev.victim.comm)
        elif isinstance(ev, SynFloodEvent):
            key = ("syn_flood", ev.port)
        else:
            return  # oom_risk comes from the agent's sampling, never from a log
        if key not in self._tally and len(self._tally) >= 10_000:
            key = (key[0], None)
        self._tally[key] = self._tally.get(key, 0) + 1

    def summary(self) -> str:
        """`render_summary` over one shared stand-in per (kind, name): a reference per event."""
        from kernbot.core.events import OomKillEvent, SynFloodEvent, Victim
        from kernbot.render_text import render_summary

        stand_ins: list[Event] = []
        for (kind, what), n in self._tally.items():
            if kind == "oom_kill":
                comm = what if isinstance(what, str) else None
                one: Event = OomKillEvent(victim=Victim(comm=comm))
            else:
                one = SynFloodEvent(port=what if isinstance(what, int) else None)
            stand_ins.extend([one] * n)
        return render_summary(stand_ins)


def scan_input(
    name: str, out: Output, host: str | None, stdin: BinaryIO | None = None, fmt: str | None = None
) -> None:
    """Stream one input through the scanner, printing events as they become final."""
    from kernbot.core.prefilter import ByteScanner, newest_first

    fd, shown, year, pipe = open_input(name, stdin)
    forced = None if fmt in (None, "auto") else fmt
    scanner: ByteScanner = ByteScanner(host=host, year=year, cap=HELD_EVENTS, fmt=forced)
    error: InputError | None = None
    chunks = input_chunks(fd, shown, idle_s=IDLE_S if pipe else None)
    if not pipe:
        head = os.pread(fd, READ_CHUNK, 0)
        if not head.startswith(GZIP_MAGIC) and newest_first(head, year=year, fmt=forced):
            _say(f"{shown}: newest entries first (a sorted export): reading it from its end")
            chunks = reversed_chunks(fd, shown)
    try:
        for chunk in chunks:
            out.events(scanner.feed(chunk) if chunk else scanner.idle())
    except InputError as exc:
        error = exc  # what was read so far is still scanned and printed
    finally:
        if name != "-":
            os.close(fd)
    out.events(scanner.finish())
    if scanner.cut_lines:
        _say(
            f"{shown}: {scanner.cut_lines} line(s) longer than {scanner.max_line} bytes "
            "were cut (no kernel record is that long)"
        )
    if error is not None:
        raise error


@contextmanager
def _few_collections() -> Iterator[None]:
    """The garbage collector tuned for a scan while it runs, as it was afterwards.

    A scan makes a few objects per line and keeps almost none, and what the imports made is
    never garbage; with the default threshold (700 allocations) the collector ran every few
    report lines and walked every live object each time (py-spy: ~15 % of an OOM-loop scan).
    """
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def run(args: argparse.Namespace) -> int:
    """Scan the files (or the live log); `kernbot.cli` turns a reader leaving early into 141."""
    with _few_collections():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    host: str | None = args.host
    files: list[str] = list(args.files)
    out = Output(args.json)
    failed = False
    if not files:
        try:
            out.events(_scan_live(host or socket.gethostname()))
        except InputError as exc:
            _say(str(exc))
            return 2
    for name in files:
        try:
            scan_input(name, out, host, fmt=getattr(args, "format", None))
        except InputError as exc:
            _say(str(exc))
            failed = True
    if not args.json:
        print(out.summary(), flush=True)
    if failed:
        return 2
    return 0 if out.count else 1
