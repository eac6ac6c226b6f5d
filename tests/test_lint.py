"""Code habits as tests, so the README's one test command also lints, checks the
formatting and type-checks."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_check():
    pytest.importorskip("ruff", reason="install the dev extra: pip install -e '.[dev]'")
    p = run("ruff", "check", ".")
    assert p.returncode == 0, p.stdout + p.stderr


def test_ruff_format():
    pytest.importorskip("ruff", reason="install the dev extra: pip install -e '.[dev]'")
    p = run("ruff", "format", "--check", ".")
    assert p.returncode == 0, p.stdout + p.stderr


def test_mypy():
    pytest.importorskip("mypy", reason="install the dev extra: pip install -e '.[dev]'")
    p = run("mypy")  # files and settings: [tool.mypy] in pyproject.toml
    assert p.returncode == 0, p.stdout + p.stderr
