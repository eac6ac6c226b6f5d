"""Same-machine speed comparison of two commits: ``benchmarks/speed.py`` of each, interleaved.

    python benchmarks/speed_ab.py --base 3ef199a --rounds 2 --out benchmarks/results/speed_ab.json

These 2-core machines differ from one another by up to 3x and drift 10-20% within hours,
so a figure from another day says little about a regression. This script checks out
``--base`` (and ``--head``, default the working tree) into temporary git worktrees, runs each
commit's own ``benchmarks/speed.py --json`` in its own process, alternating A, B, A, B, ...
for ``--rounds`` rounds, and reports every run, each figure's best over the rounds, and the
ratio head / base per figure (throughputs: > 1 is faster; times: < 1 is faster).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import tyro

from jaxbc.io import atomic_write_json, command_line, machine_description

ROOT = Path(__file__).resolve().parent.parent
TIMES = ("compile_s", "dagger_10_iters_s", "dagger_compile_s", "hades_gen_s", "hades_compile_s")


def run_speed(tree: Path, steps: int, repeats: int) -> dict:
    """One ``speed.py --json`` run of the code in ``tree`` (its last stdout line)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "benchmarks/speed.py", "--json", "--steps", str(steps)]
    cmd += ["--repeats", str(repeats)]
    p = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"speed.py in {tree} failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def best(runs: list[dict]) -> dict:
    """Per figure the best over runs (highest throughput, lowest time)."""
    keys = [
        k
        for k, v in runs[0].items()
        if isinstance(v, int | float) and k not in ("steps", "members")
    ]
    return {k: (min if k in TIMES else max)(r[k] for r in runs) for k in keys}


def main(
    base: str,
    head: str | None = None,
    rounds: int = 2,
    steps: int = 2000,
    repeats: int = 3,
    out: Path | None = None,
) -> dict:
    """Args:
    base: the commit to compare against (e.g. the one before a change).
    head: the commit to measure (default: the working tree as it is).
    rounds: alternating runs per commit.
    steps: gradient steps per timed run (speed.py's ``--steps``).
    repeats: timed runs per setting inside speed.py (its best is reported).
    out: write the report (runs, bests, ratios, command, machine, date) here.
    """
    with tempfile.TemporaryDirectory() as tmp:
        trees = {}
        for name, rev in (("base", base), ("head", head)):
            if rev is None:
                trees[name] = ROOT
                continue
            path = Path(tmp) / name
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(path), rev],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            trees[name] = path
        runs: dict[str, list[dict]] = {"base": [], "head": []}
        try:
            for i in range(rounds):
                for name in ("base", "head"):
                    runs[name].append(run_speed(trees[name], steps, repeats))
                    print(f"round {i + 1} {name}: {runs[name][-1]}", file=sys.stderr, flush=True)
        finally:
            for name, rev in (("base", base), ("head", head)):
                if rev is not None:
                    subprocess.run(
                        ["git", "worktree", "remove", "--force", str(trees[name])],
                        cwd=ROOT,
                        check=False,
                        capture_output=True,
                    )
    bests = {name: best(r) for name, r in runs.items()}
    common = [k for k in bests["head"] if k in bests["base"]]
    report = {
        "command": command_line("python benchmarks/speed_ab.py"),
        "machine": machine_description(),
        "date": datetime.date.today().isoformat(),
        "base": base,
        "head": head or "working tree",
        "rounds": rounds,
        "runs": runs,
        "best": bests,
        "ratio_head_over_base": {k: bests["head"][k] / bests["base"][k] for k in common},
        "lower_is_better": [k for k in common if k in TIMES],
    }
    if out is not None:
        atomic_write_json(out, report)
    for k in common:
        print(
            f"{k}: base {bests['base'][k]} head {bests['head'][k]} ratio {report['ratio_head_over_base'][k]:.3f}"
        )
    return report


if __name__ == "__main__":
    tyro.cli(main)
