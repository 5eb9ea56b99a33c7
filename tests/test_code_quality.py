"""ruff and mypy (strict on the package, relaxed on the tests) are part of the suite: a lint or
type error fails CI like a bug does."""

from __future__ import annotations

import os
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


def test_mypy_clean_on_package_and_tests() -> None:
    """scripts/typecheck: `mypy --strict src/kernbot`, then the tests, relaxed."""
    env = {**os.environ, "PYTHON": sys.executable}
    res = subprocess.run(
        ["bash", "scripts/typecheck"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]
