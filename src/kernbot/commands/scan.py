"""`kernbot scan`: explain every OOM kill and SYN flood in kernel logs, or in this host's log now.

Files are read whole (gzip detected by its magic bytes, whatever the name) and handed to the
pure core; without a file, the live kernel ring buffer is read once from /dev/kmsg, falling back
to `dmesg`. Exit status: 0 events found, 1 none, 2 an input could not be read (the others are
still scanned and their events printed).
"""

from __future__ import annotations

import argparse
import gzip
import os
import socket
import subprocess
import sys
import zlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from kernbot.errors import KernbotError

if TYPE_CHECKING:
    from kernbot.core.events import Event

GZIP_MAGIC = b"\x1f\x8b"
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


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


def _say(message: str) -> None:
    print(f"kernbot scan: {message}", file=sys.stderr, flush=True)


def _decompress(data: bytes, name: str) -> bytes:
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{name}: not a valid gzip file ({exc})") from None


def read_input(name: str, stdin: BinaryIO | None = None) -> tuple[bytes, int]:
    """The bytes of one input (`-` is stdin), decompressed when gzip, and the year it is from.

    Syslog and `journalctl -o short` stamps carry no year; a file's modification time is the
    best guess of it (stdin: this year).
    """
    try:
        if name == "-":
            stream = stdin if stdin is not None else sys.stdin.buffer
            data = stream.read()
            shown = "<stdin>"
            year = datetime.now().year
        else:
            path = Path(name)
            data = path.read_bytes()
            shown = name
            year = datetime.fromtimestamp(path.stat().st_mtime).year
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise InputError(f"{name}: cannot read: {why}") from None
    return _decompress(data, shown), year


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


def _print(events: Sequence[Event], as_json: bool) -> None:
    out = sys.stdout
    if as_json:
        out.write("".join(ev.model_dump_json() + "\n" for ev in events))
    else:
        from kernbot.render_text import render_event

        out.write("".join(render_event(ev) + "\n\n" for ev in events))
    out.flush()


def run(args: argparse.Namespace) -> int:
    """Scan the files (or the live log); `kernbot.cli` turns a reader leaving early into 141."""
    from kernbot.core.prefilter import detect_bytes

    host: str | None = args.host
    files: list[str] = list(args.files)
    events: list[Event] = []
    failed = False
    if not files:
        try:
            events = _scan_live(host or socket.gethostname())
        except InputError as exc:
            _say(str(exc))
            return 2
        _print(events, args.json)
    for name in files:
        try:
            data, year = read_input(name)
        except InputError as exc:
            _say(str(exc))
            failed = True
            continue
        found = detect_bytes(data, host=host, year=year)
        _print(found, args.json)
        events.extend(found)
    if not args.json:
        from kernbot.render_text import render_summary

        print(render_summary(events), flush=True)
    if failed:
        return 2
    return 0 if events else 1
