"""`kernbot scan` as a user runs it: a real `python -m kernbot` process; files, stdin, exits."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
K8S = CORPUS / "oom-6.x-k8s-systemd-containerd-cgv2-memcg-grep.txt"
SYN = CORPUS / "syn-6.2plus-addr-ipv6-any-and-mptcp.txt"
OOM_CONTRACT = {"kind", "time", "host", "boot_id", "seq", "constraint", "trigger", "victim"}
OOM_CONTRACT |= {"memcg", "kubernetes", "tasks", "lines", "id", "revision", "advice", "version"}
SYN_CONTRACT = {"kind", "time", "host", "boot_id", "seq", "family", "addr", "port", "action"}
SYN_CONTRACT |= {"proto", "lines", "id", "advice", "version"}


def scan(
    *args: str | Path, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "kernbot", "scan", *map(str, args)]
    raw = subprocess.run(
        argv,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
        env=env,
    )
    proc = subprocess.CompletedProcess(
        raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode()
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def events(proc: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_json_one_event_per_line_with_contract_fields() -> None:
    proc = scan("--json", "--host", "node-7", K8S, SYN)
    assert proc.returncode == 0, proc.stderr
    evs = events(proc)
    assert [e["kind"] for e in evs] == ["oom_kill", "syn_flood", "syn_flood"]
    oom, syn = evs[0], evs[1]
    assert oom.keys() >= OOM_CONTRACT and syn.keys() >= SYN_CONTRACT
    assert oom["host"] == syn["host"] == "node-7"
    victim = oom["victim"]
    assert isinstance(victim, dict)
    assert (victim["pid"], victim["comm"], victim["oom_score_adj"]) == (22609, "node", 969)
    assert oom["memcg"] == {**oom["memcg"], "limit_kb": 4194304, "usage_kb": 4194304}  # type: ignore[dict-item]
    assert (syn["family"], syn["addr"], syn["port"], syn["action"]) == (
        "ipv6",
        "::",
        20002,
        "cookies",
    )
    assert oom["advice"] and syn["advice"]


def test_human_summary() -> None:
    proc = scan(K8S, SYN)
    assert proc.returncode == 0
    out = proc.stdout
    assert "OOM kill" in out and "node (pid 22609), uid 0" in out
    assert "4.0 GiB used of 4.0 GiB" in out
    assert "Listener: [::]:20002 (ipv6, proto request_sock_TCPv6)" in out
    assert "$ kubectl get pods -A" in out
    assert out.rstrip().endswith("Found 1 OOM kill (node) and 2 SYN flood messages (port 20002).")


def test_no_events_exits_1(tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.log"
    quiet.write_text("[    1.000000] Linux version 6.1.0\n[    2.000000] eth0: link up\n")
    proc = scan(quiet)
    assert proc.returncode == 1
    assert proc.stdout.strip() == "No OOM kills or SYN floods found."
    assert scan("--json", quiet).stdout == ""


def test_gzip_by_name_and_by_magic_and_stdin(tmp_path: Path) -> None:
    gz = tmp_path / "kern.log.1.gz"
    gz.write_bytes(gzip.compress(K8S.read_bytes()))
    disguised = tmp_path / "kern.log.1"
    disguised.write_bytes(gzip.compress(SYN.read_bytes()))
    evs = events(scan("--json", gz, disguised))
    assert [e["kind"] for e in evs] == ["oom_kill", "syn_flood", "syn_flood"]
    piped = scan("--json", "-", stdin=gzip.compress(SYN.read_bytes()))
    assert [e["port"] for e in events(piped)] == [20002, 20002]
    plain = scan("--json", "-", stdin=K8S.read_bytes())
    assert plain.returncode == 0 and len(events(plain)) == 1


def test_errors_name_the_file_and_the_others_still_scan(tmp_path: Path) -> None:
    bad_gz = tmp_path / "broken.gz"
    bad_gz.write_bytes(gzip.compress(K8S.read_bytes())[:40])
    missing = tmp_path / "nope.log"
    proc = scan("--json", missing, bad_gz, tmp_path, SYN)
    assert proc.returncode == 2
    assert [e["kind"] for e in events(proc)] == ["syn_flood", "syn_flood"]
    err = proc.stderr.splitlines()
    assert len(err) == 3, proc.stderr
    assert err[0].startswith(f"kernbot scan: {missing}: cannot read: No such file or directory")
    assert err[1].startswith(f"kernbot scan: {bad_gz}: not a valid gzip file")
    assert err[2] == f"kernbot scan: {tmp_path}: cannot read: Is a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    locked = tmp_path / "locked.log"
    locked.write_text("x\n")
    locked.chmod(0)
    proc = scan(locked)
    assert proc.returncode == 2 and "Permission denied" in proc.stderr


def test_hostile_process_names_are_escaped_on_the_terminal_and_verbatim_in_json(
    tmp_path: Path,
) -> None:
    comm = "\x1b]0;pwn\x07<!ch>"
    log = tmp_path / "hostile.log"
    log.write_text(
        f"[  100.000000] Out of memory: Killed process 4242 ({comm}) total-vm:1000kB, "
        "anon-rss:900kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:8kB oom_score_adj:1000\n"
        "[  100.100000] TCP: request_sock_TCP: Possible SYN flooding on port 9\x1b[2J. "
        "Sending cookies.\n"
    )
    human = scan(log)
    assert human.returncode == 0
    assert "\x1b" not in human.stdout and "\x07" not in human.stdout
    assert "\\x1b]0;pwn\\x07<!ch> (pid 4242), uid 0" in human.stdout
    (ev,) = events(scan("--json", log))
    assert ev["victim"]["comm"] == comm  # type: ignore[index]


def test_every_corpus_file_scans_without_error() -> None:
    files = sorted(CORPUS.glob("*.txt"))
    proc = scan("--json", *files)
    assert proc.returncode == 0 and proc.stderr == ""
    assert len(events(proc)) >= len(files)


def _no_syslog_cap() -> list[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and util-linux setpriv to drop CAP_SYSLOG")
    restrict = Path("/proc/sys/kernel/dmesg_restrict")
    if not restrict.exists() or restrict.read_text().strip() != "1":
        pytest.skip("kernel.dmesg_restrict=0: /dev/kmsg is readable without CAP_SYSLOG")
    return [setpriv, "--bounding-set", "-syslog", "--inh-caps", "-syslog"]


def test_live_log_without_access_names_the_fix(tmp_path: Path) -> None:
    argv = [*_no_syslog_cap(), sys.executable, "-m", "kernbot", "scan"]
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ.get('PATH', '')}"}
    fake = tmp_path / "dmesg"
    fake.write_text(
        "#!/bin/sh\necho 'dmesg: read kernel buffer failed: Operation not permitted' >&2\nexit 1\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert proc.returncode == 2
    assert "/dev/kmsg: Operation not permitted; reading `dmesg` instead" in proc.stderr
    assert "CAP_SYSLOG" in proc.stderr and "kernel.dmesg_restrict=0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_live_log_falls_back_to_dmesg(tmp_path: Path) -> None:
    argv = [*_no_syslog_cap(), sys.executable, "-m", "kernbot", "scan", "--json"]
    fake = tmp_path / "dmesg"
    fake.write_text(f"#!/bin/sh\nexec cat {SYN}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ.get('PATH', '')}"}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "reading `dmesg` instead" in proc.stderr
    assert [json.loads(x)["port"] for x in proc.stdout.splitlines()] == [20002, 20002]


@pytest.mark.root
def test_live_kmsg_read(root_kernel: None) -> None:
    proc = scan("--json")
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stderr == "" or "overwritten" in proc.stderr
    for ev in events(proc):
        assert ev["boot_id"] and ev["seq"] is not None and ev["host"]


def test_reader_leaving_early_is_not_a_traceback() -> None:
    files = [str(p) for p in sorted(CORPUS.glob("*.txt"))] * 20
    argv = [sys.executable, "-m", "kernbot", "scan", *files]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.read(100)
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 141
    assert err == ""


@pytest.mark.parametrize("command", ["scan", "agent", "bot", "up", "doctor"])
def test_help_says_what_the_command_does_its_settings_and_exit_codes(command: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kernbot", command, "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    out = proc.stdout
    assert "exit codes: 0 " in out
    if command in ("agent", "bot", "up"):
        assert "settings (environment" in out and "KERNBOT_TOKEN" in out
        assert "KERNBOT_LISTEN (default" in out
    if command in ("bot", "up"):
        assert "SLACK_BOT_TOKEN" in out
