"""The default test suite on this interpreter and its jax, recorded with the versions.

    python benchmarks/tested_versions.py --out benchmarks/results/tested_py312_jax012.json

Runs ``python -m pytest -q --junitxml <out with .xml>`` (the README's test command) and
writes ``out``: the Python, jax and dependency versions, the command, the machine, the wall
time and pytest's counts read from the JUnit XML. Exits with pytest's status.

``tested_py312_jax012``: Python 3.12.1, ``pip install -e ".[dev]"`` and then
``pip install jax==0.12.0.1 jaxlib==0.12.0.1`` (gymnax 1.0.1 declares ``jax<0.12``, so the
first install resolves jax 0.11.2).
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

import tyro

from jaxbc.io import atomic_write_json, command_line, machine_description

PACKAGES = (
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "chex",
    "distrax",
    "evosax",
    "gymnax",
    "brax",
    "mujoco",
    "mujoco-mjx",
    "orbax-checkpoint",
    "numpy",
    "scipy",
    "ml_dtypes",
    "tyro",
    "pytest",
)


def counts(junit: Path) -> dict[str, int]:
    """``tests``/``passed``/``failed``/``errors``/``skipped`` summed over the XML's suites."""
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors")}
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    passed = total["tests"] - total["failures"] - total["errors"] - skipped
    return {
        "tests": total["tests"],
        "passed": passed,
        "failed": total["failures"],
        "errors": total["errors"],
        "skipped": skipped,
    }


def main(out: Path) -> int:
    """Args:
    out: the JSON to write; the JUnit XML goes beside it (same name, ``.xml``).
    """
    junit = out.with_suffix(".xml")
    pytest_cmd = [sys.executable, "-m", "pytest", "-q", f"--junitxml={junit}"]
    t0 = time.perf_counter()
    rc = subprocess.run(pytest_cmd, cwd=Path(__file__).resolve().parent.parent).returncode
    record = {
        "command": command_line("python benchmarks/tested_versions.py"),
        "pytest_command": "python -m pytest -q",
        "machine": machine_description(),
        "python": platform.python_version(),
        "versions": {p: metadata.version(p) for p in PACKAGES},
        "pytest_exit_code": rc,
        **counts(junit),
        "wall_time_s": round(time.perf_counter() - t0, 1),
        "date": time.strftime("%Y-%m-%d"),
    }
    atomic_write_json(out, record)
    print(record, file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(tyro.cli(main))
