"""ruff and mypy --strict are part of the suite: a lint or type error fails CI like a bug does."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_ruff_clean() -> None:
    if shutil.which("ruff") is None and _run(sys.executable, "-m", "ruff", "--version").returncode:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    res = _run(sys.executable, "-m", "ruff", "check", "src", "tests", "bench")
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_strict_clean() -> None:
    res = _run(sys.executable, "-m", "mypy", "--strict", "src/kernbot")
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]
