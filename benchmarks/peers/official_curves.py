"""The official HaDES runs' stored learning curves (FLAIROx/behaviour-distillation) as a CSV.

    python benchmarks/peers/official_curves.py --official-repo /path/to/behaviour-distillation

The official repository stores every run as ``results/ICLR/**/seed<k>/data_final.pkl``: a
pickle of ``{"state", "fitness_over_gen", "max_fitness_over_gen", "fitness", "config",
"es_config"}`` where ``fitness_over_gen[g]`` is the population-mean fitness of generation
``g`` (0-based: the population sampled after ``g`` ES updates) and ``max_fitness_over_gen[g]``
its best member. The pickles hold evosax 0.1 ``EvoState`` objects and jax arrays; they are
read here with ``pickle`` and numpy only (unknown classes become plain records, jax arrays
numpy arrays), so neither evosax nor jax is needed.

Writes ``hades_official_stored.csv`` (one row per run and generation: env, D, variant,
greedy_act, seed, run, generation, pop_mean, pop_max) and ``hades_official_stored.json``
(the command, the repository commit, every file read with its size and SHA-256, each run's
settings from its stored config, stored files that could not be read, and the population
mean at a few generations) under ``--out-dir``.

By default the paper's main runs of ``--env`` (Breakout-MinAtar and hopper): MinAtar
``minatar/virtual_batch_norm/{distill,overfit}`` (2000 generations, greedy and sampled
actions) and Brax ``brax/no_virtual_batch_norm/{distill,overfit}`` (D=64) plus
``brax/distill`` (D=4); ``--all-groups`` adds the 5000-generation, half-width and D-sweep
groups. "distill" runs are HaDES-R (``OVERFIT=False``), "overfit" runs HaDES-F.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import pickle
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

MAIN_GROUPS = (
    "minatar/virtual_batch_norm/distill/",
    "minatar/virtual_batch_norm/overfit/",
    "brax/no_virtual_batch_norm/distill/",
    "brax/no_virtual_batch_norm/overfit/",
    "brax/distill/",
)
SUMMARY_GENERATIONS = (0, 5, 10, 20, 40, 100, 200, 500, 1000, 1999)
CSV_HEADER = (
    "env",
    "D",
    "variant",
    "greedy_act",
    "seed",
    "run",
    "generation",
    "pop_mean",
    "pop_max",
)


class _Record:
    """Stand-in for a class the pickle names but this process lacks (evosax's EvoState)."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.args, self.fields = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.fields = state if isinstance(state, dict) else {"state": state}


def _reconstruct_jax_array(fun, args, arr_state, aval_state):
    """jax's ``_reconstruct_array`` without jax: the numpy array inside."""
    del aval_state
    arr = fun(*args)
    arr.__setstate__(arr_state)
    return arr


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "numpy" or module.startswith("numpy."):
            return super().find_class(module, name)
        if module.startswith("jax") and name == "_reconstruct_array":
            return _reconstruct_jax_array
        return type(name, (_Record,), {"__module__": module})


def load_run(path: Path) -> dict:
    with open(path, "rb") as f:
        return _Unpickler(f).load()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _git(repo: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout


def _obs_normalization(config: dict) -> str:
    if config.get("CONST_NORMALIZE_OBS"):
        return "constant"
    if config.get("NORMALIZE_OBS"):
        return "running"
    return "none"


def run_settings(rel: str, data: dict) -> dict:
    """One run's identity and curve-shaping settings, read from its stored config."""
    c, e = data["config"], data["es_config"]
    return {
        "path": rel,
        "group": rel.split("/seed")[0],
        "env": c["ENV_NAME"],
        "D": int(e["dataset_size"]),
        "variant": "F" if c.get("OVERFIT") else "R",
        "greedy_act": bool(c.get("GREEDY_ACT", False)),
        "seed": int(c["SEED"]),
        "strategy": e.get("strategy", "OpenES"),
        "popsize": int(e["popsize"]),
        "generations": len(data["fitness_over_gen"]),
        "rollouts_per_candidate": int(e["rollouts_per_candidate"]),
        "overfit_seed": int(c["OVERFIT_SEED"]) if c.get("OVERFIT") else None,
        "sigma_init": float(e["sigma_init"]),
        "lrate_init": float(e["lrate_init"]),
        "temperature": float(e["temperature"]) if "temperature" in e else None,
        "inner_steps": int(c["UPDATE_EPOCHS"]),
        "inner_lr": float(c["LR"]),
        "width": int(c.get("WIDTH", 0)),
        "activation": c.get("ACTIVATION"),
        "num_envs": int(c["NUM_ENVS"]),
        "num_steps": int(c["NUM_STEPS"]),
        "obs_normalization": _obs_normalization(c),
        "normalize_reward": bool(c.get("NORMALIZE_REWARD", False)),
    }


def select(rel: str, envs: tuple[str, ...], all_groups: bool) -> bool:
    """HaDES runs (not the policy-ES baselines, not MNIST) of ``envs`` in the chosen groups."""
    inner = rel.removeprefix("results/ICLR/")
    if "/distill/" not in f"/{inner}" and "/overfit/" not in f"/{inner}":
        return False
    if not any(f"/{env}/" in f"/{inner}" for env in envs):
        return False
    return all_groups or inner.startswith(MAIN_GROUPS)


def summarize(runs: list[dict], curves: list[np.ndarray]) -> list[dict]:
    """Population mean at SUMMARY_GENERATIONS per (env, D, variant, greedy_act, group):
    the mean over seeds and each seed's value."""
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(runs):
        groups.setdefault((r["env"], r["D"], r["variant"], r["greedy_act"], r["group"]), []).append(
            i
        )
    out = []
    for (env, d, variant, greedy, group), idx in sorted(groups.items()):
        at = {}
        for g in SUMMARY_GENERATIONS:
            vals = [float(curves[i][g]) for i in idx if g < len(curves[i])]
            if len(vals) == len(idx):
                at[str(g)] = {"mean": float(np.mean(vals)), "per_seed": vals}
        out.append(
            {
                "env": env,
                "D": d,
                "variant": variant,
                "greedy_act": greedy,
                "group": group,
                "seeds": [runs[i]["seed"] for i in idx],
                "pop_mean_at_generation": at,
            }
        )
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--official-repo", type=Path, required=True, help="checkout of behaviour-distillation"
    )
    p.add_argument("--env", action="append", help="ENV_NAME to include (repeatable)")
    p.add_argument(
        "--all-groups", action="store_true", help="also 5k-generation, half-width, D-sweep runs"
    )
    p.add_argument("--out-dir", type=Path, default=Path("benchmarks/results/peers"))
    args = p.parse_args(argv)
    envs = tuple(args.env or ("Breakout-MinAtar", "hopper"))
    repo = args.official_repo.resolve()

    listed = _git(repo, "ls-files", "results/ICLR")
    stored = sorted(
        line for line in (listed or "").splitlines() if line.endswith("/data_final.pkl")
    ) or sorted(str(q.relative_to(repo)) for q in repo.glob("results/ICLR/**/data_final.pkl"))
    chosen = [rel for rel in stored if select(rel, envs, args.all_groups)]

    runs, curves, maxima, files, unreadable = [], [], [], [], []
    for rel in chosen:
        path = repo / rel
        if not path.is_file():
            unreadable.append({"path": rel, "reason": "listed by git but absent from the checkout"})
            continue
        try:
            data = load_run(path)
        except Exception as exc:  # a truncated or foreign file: report it, keep the rest
            unreadable.append({"path": rel, "reason": f"{type(exc).__name__}: {exc}"})
            continue
        runs.append(run_settings(rel, data))
        curves.append(np.asarray(data["fitness_over_gen"], dtype=np.float64))
        maxima.append(np.asarray(data["max_fitness_over_gen"], dtype=np.float64))
        files.append({"path": rel, "bytes": path.stat().st_size, "sha256": _sha256(path)})

    args.out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = args.out_dir / "hades_official_stored.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_HEADER)
        for i, (r, mean, best) in enumerate(zip(runs, curves, maxima, strict=True)):
            for g, (m, b) in enumerate(zip(mean, best, strict=True)):
                ident = (r["env"], r["D"], r["variant"], int(r["greedy_act"]), r["seed"], i)
                w.writerow([*ident, g, f"{m:.6g}", f"{b:.6g}"])

    commit = _git(repo, "rev-parse", "HEAD")
    meta = {
        "command": " ".join(
            [
                "python",
                "benchmarks/peers/official_curves.py",
                *(shlex.quote(a) for a in sys.argv[1:]),
            ]
        ),
        "official_repo_commit": commit.strip() if commit else None,
        "machine": f"CPU ({os.cpu_count()} cores, {platform.machine()})",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "envs": list(envs),
        "all_groups": args.all_groups,
        "generation_index": "0-based: generation g is the population sampled after g ES updates",
        "csv": csv_path.name,
        "csv_columns": {
            "run": "index into runs",
            "pop_mean": "fitness_over_gen[g]: population-mean fitness",
            "pop_max": "max_fitness_over_gen[g]: best member's fitness",
            "greedy_act": "1: argmax actions in the fitness rollouts, 0: sampled",
        },
        "runs": runs,
        "files": files,
        "unreadable": unreadable,
        "summary": summarize(runs, curves),
    }
    json_path = csv_path.with_suffix(".json")
    json_path.write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{len(runs)} runs, {sum(len(c) for c in curves)} rows -> {csv_path}, {json_path}")
    if unreadable:
        print(f"{len(unreadable)} stored files could not be read (listed in the .json)")
    for s in meta["summary"]:
        at = s["pop_mean_at_generation"]
        cells = "  ".join(f"g{g}={v['mean']:.2f}" for g, v in at.items())
        print(
            f"{s['env']} D={s['D']} {s['variant']} greedy={int(s['greedy_act'])} [{s['group']}]: {cells}"
        )


if __name__ == "__main__":
    main()
