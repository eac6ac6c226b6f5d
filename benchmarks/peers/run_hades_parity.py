"""jaxbc's HaDES against the official implementation (FLAIROx/behaviour-distillation).

    git clone <behaviour-distillation> /tmp/bd_official
    python -m venv /tmp/hades_official_venv
    /tmp/hades_official_venv/bin/pip install -r benchmarks/peers/requirements-hades-official.txt
    python benchmarks/peers/run_hades_parity.py --scale cpu      # HaDES-F; cpu-r: HaDES-R; smoke

For every (env, variant, seed) of the scale, both sides run HaDES with the paper's settings
for that env family (the official side replays the stored paper run's config, see
``hades_official.py``; jaxbc uses ``hades_preset`` + the paper's strategy options), scaled
only in population and generations. Each side's per-generation population-mean fitness is
collected; the results give, per generation, the mean over seeds with a 95% bootstrap CI
(``jaxbc.stats``) for each side, and the paired difference (jaxbc - official, paired on seed
index) with its 95% CI at generations 5, 10, 20 and 40 (those that exist).

Resumable: each (side, env, variant, seed) writes its own JSON under ``--work-dir`` and is
skipped when that exists; jaxbc runs also checkpoint every ``chunk`` generations. ``--side``
runs one side only; ``--report-only`` rewrites the results from what is there. Writes
``benchmarks/results/peers/hades_parity[_<scale>].{json,md,csv}`` and one plot per env.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import jax
import numpy as np

from jaxbc import envs as jenvs
from jaxbc import studies
from jaxbc.hades import HadesConfig, hades_preset, make_strategy, solution_template
from jaxbc.hades.run import run_hades
from jaxbc.hades.strategies import paper_strategy_options
from jaxbc.io import atomic_write_json, command_line, enable_compilation_cache, machine_description
from jaxbc.stats import paired_difference

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "benchmarks" / "results" / "peers"
OFFICIAL_SCRIPT = Path(__file__).resolve().parent / "hades_official.py"
REPORT_GENERATIONS = (5, 10, 20, 40)
SIDES = ("official", "jaxbc")


@dataclass(frozen=True)
class Task:
    env_id: str  # jaxbc's env id
    official_env: str  # the official scripts' --env
    dataset_size: int
    strategy: str  # jaxbc's evosax 0.3 name of the paper's strategy
    normalization: str  # the stored paper runs' observation normalisation
    variants: tuple[str, ...]
    population: int
    generations: int
    seeds: tuple[int, ...]
    # on top of hades_preset: the official code run on one device scores MinAtar by each env's
    # last finished episode ("last"; the preset's "recent" is what the stored multi-GPU runs hold)
    jaxbc_overrides: tuple[tuple[str, object], ...] = ()


def paper_tasks(
    variant: str, breakout: tuple[int, int], hopper: tuple[int, int], seeds: tuple[int, ...]
) -> tuple[Task, ...]:
    """The two stored paper runs compared, each as (population, generations): Breakout-MinAtar
    D=16 (SNES, constant moments; one device's "last" fitness, see NOTES) and hopper D=64
    (Open_ES, running moments)."""
    return (
        Task("Breakout-MinAtar", "Breakout-MinAtar", 16, "SNES", "constant", (variant,), *breakout, seeds, (("fitness_episodes", "last"),)),
        Task("brax/hopper", "hopper", 64, "Open_ES", "running", (variant,), *hopper, seeds),
    )  # fmt: skip


SCALES: dict[str, tuple[Task, ...]] = {
    # plumbing: a couple of tiny generations per side
    "smoke": paper_tasks("F", (8, 2), (4, 1), (0, 1)),
    # what a 2-core CPU shared with other jobs (load ~10-20) fits in about an hour per side
    "cpu": paper_tasks("F", (16, 20), (16, 5), (0, 1, 2)),
    # HaDES-R at the cpu scale's settings: two fresh inits per generation, so about twice as long
    "cpu-r": paper_tasks("R", (16, 20), (16, 5), (0, 1, 2)),
}
CHUNK = 5  # jaxbc checkpoint interval (generations)
# how the two sides' runs relate, read from both codes (recorded with the results)
NOTES = (
    "Equal: policy MLP 2x512 (MinAtar ReLU categorical, Brax tanh Gaussian with a "
    "state-independent log-std), BC steps, Adam lr, grad clipping (Brax 0.5, MinAtar none), "
    "eval envs and 1,024 rollout steps, actions sampled in the fitness rollouts, one "
    "evaluation key shared by the whole population, ES and its paper options (MinAtar SNES "
    "sigma 0.5 with temperature-20 rank weights; Brax OpenES sigma 0.03, Adam lr 0.05 b1 0.99, "
    "raw fitness), HaDES-F: one policy init for every member and generation.",
    "Breakout D: the official code evolves 16 states but labels and trains on 3 * (16 // 3) = "
    "15 of them; jaxbc's preset evolves those 15.",
    "Fitness: MinAtar, each env's last finished episode at step 1,024 (0 if none), mean over "
    "the 8 envs (the official code on one device; jaxbc fitness_episodes='last'); Brax, the "
    "mean of every episode finished in the window on both sides.",
    "Observation normalisation, (obs - mean) / sqrt(var + 1e-8) on both sides: MinAtar "
    "constant moments {constant_moments}; Brax running moments of the fitness "
    "rollout's envs, restarted at (0, 1, count 1e-4) at every member's rollout reset on both.",
    "Brax episodes after the first start: official, the env's first start state again "
    "(brax's AutoResetWrapper); jaxbc, {restart}.",
    "Different by construction: the two ES implementations (evosax 0.1.4 against 0.3.2), "
    "PRNG streams, and HaDES-F's fixed init (official: {official_init}; jaxbc: drawn from "
    "each seed's key). Seeds are paired by index only.",
)
OFFICIAL_INIT = {"stored": "PRNGKey(420) for every seed", "run-seed": "PRNGKey(seed)"}
CONSTANT_MOMENTS = {
    "own": "made the same way from different runs (official: the repository's "
    "normalize_params/*.npy; jaxbc: jaxbc/envs/obs_stats, the final statistics of a PPO run's "
    "running normaliser; the largest per-cell gaps are under the notes)",
    "official": "the same on both sides: the official repository's normalize_params/*.npy "
    "(jaxbc --jaxbc-moments official, a diagnostic arm; jaxbc's presets use its own)",
}
BRAX_RESTART = {
    "fresh": "a fresh reset (jaxbc's default)",
    "first": "the env's first start state, as the official (jaxbc --jaxbc-restart first, "
    "env option restart='first')",
}


@dataclass(frozen=True)
class Arm:
    """What a diagnostic arm changes from the plain comparison (the defaults): jaxbc's
    constant moments (``--jaxbc-moments``), the official HaDES-F init (``--official-init``)
    and where jaxbc's Brax envs go after an episode (``--jaxbc-restart``)."""

    moments: str = "own"
    init: str = "stored"
    restart: str = "fresh"

    def official_moments(self, task: Task) -> bool:
        """jaxbc runs ``task`` on the official constant moments."""
        return self.moments == "official" and task.normalization == "constant"

    def restart_first(self, task: Task) -> bool:
        """jaxbc's envs of ``task`` restart at their first start state."""
        return self.restart == "first" and task.env_id.startswith("brax/")

    def suffix(self) -> str:
        """The results files' name suffix of this arm."""
        return (
            ("_official-moments" if self.moments == "official" else "")
            + ("_official-init-per-seed" if self.init == "run-seed" else "")
            + ("_restart-first" if self.restart == "first" else "")
        )


def notes(arm: Arm) -> list[str]:
    """How the two sides' runs relate in this arm."""
    return [
        n.format(
            official_init=OFFICIAL_INIT[arm.init],
            constant_moments=CONSTANT_MOMENTS[arm.moments],
            restart=BRAX_RESTART[arm.restart],
        )
        for n in NOTES
    ]


def tag(side: str, task: Task, variant: str, seed: int, arm: Arm = Arm()) -> str:
    """A run's file stem; the runs an arm changes (jaxbc on the official constant moments or
    restarting Brax episodes at the first start state, official HaDES-F with a per-seed init)
    are their own runs."""
    if side == "jaxbc" and arm.official_moments(task):
        side = "jaxbc-official-moments"
    if side == "jaxbc" and arm.restart_first(task):
        side = "jaxbc-restart-first"
    if side == "official" and arm.init == "run-seed" and variant == "F":
        side = "official-init-per-seed"
    return f"{side}_{task.official_env}_{variant}_s{seed}"


def official_moments(args, task: Task) -> Path:
    """The official repository's constant moments for ``task`` as an ``obs_stats`` file (the
    ``.npy`` files hold flat observations; C order, as the official code flattens them)."""
    out = args.work_dir / "official_moments" / f"{task.official_env}.npz"
    shape = jenvs.make(task.env_id).observation_shape
    params = args.official_repo / "normalize_params"
    moments = {k: np.load(params / f"{k}_{task.official_env}.npy").reshape(shape) for k in ("mean", "var")}  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **moments)
    return out


def own_moments_digest(task: Task, arm: Arm) -> str | None:
    """sha256 of the package's constant moments that jaxbc's runs of ``task`` read in ``arm``
    (None: they read none), so that runs made on other moments are never imported."""
    if task.normalization != "constant" or arm.official_moments(task):
        return None
    return hashlib.sha256(jenvs.obs_stats_path(task.env_id).read_bytes()).hexdigest()


def moments_gap(args, task: Task) -> dict[str, float]:
    """How far jaxbc's constant moments are from the official ones: the largest per-cell
    gaps, and the range of official / jaxbc standard deviations over the cells that vary on
    both sides (a rarely visited cell's z-score scales with 1 / its std)."""
    mine = np.load(jenvs.obs_stats_path(task.env_id))
    theirs = np.load(official_moments(args, task))
    both = (mine["var"] > 1e-6) & (theirs["var"] > 1e-6)
    ratio = np.sqrt(theirs["var"][both] / mine["var"][both])
    return {
        **{f"max_abs_{k}_difference": float(np.abs(mine[k] - theirs[k]).max()) for k in ("mean", "var")},
        "std_ratio_min": float(ratio.min()),
        "std_ratio_max": float(ratio.max()),
    }  # fmt: skip


def has_obs_normalization() -> bool:
    return "obs_normalization" in {f.name for f in dataclasses.fields(HadesConfig)}


def jaxbc_config(task: Task, variant: str) -> HadesConfig:
    """The preset's D: MinAtar's is ``n * (D // n)``, the states the official code trains on
    (15 of Breakout's 16), so ``task.dataset_size`` is not passed."""
    extra = {"obs_normalization": task.normalization} if has_obs_normalization() else {}
    return hades_preset(task.env_id, variant=variant, **extra, **dict(task.jaxbc_overrides))


def run_official(task: Task, variant: str, seed: int, args, path: Path) -> None:
    cmd = [
        str(args.peer_python),
        str(OFFICIAL_SCRIPT),
        "--official-repo", str(args.official_repo),
        "--env", task.official_env,
        "--variant", variant,
        "--popsize", str(task.population),
        "--generations", str(task.generations),
        "--seed", str(seed),
        "--fixed-init", args.arm.init,
        "--out", str(path),
    ]  # fmt: skip
    log = path.with_suffix(".log")
    print(f"official {path.stem}: {' '.join(cmd)} (log {log})", flush=True)
    with open(log, "w") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT)


def run_jaxbc(task: Task, variant: str, seed: int, args, path: Path) -> None:
    cfg = jaxbc_config(task, variant)
    if args.arm.official_moments(task):
        obs_stats = (("obs_stats", str(official_moments(args, task))),)
        cfg = dataclasses.replace(cfg, env_options=cfg.env_options + obs_stats)
    if args.arm.restart_first(task):
        cfg = dataclasses.replace(cfg, env_options=cfg.env_options + (("restart", "first"),))
    options = paper_strategy_options(task.strategy, task.population)
    es = make_strategy(task.strategy, task.population, solution_template(cfg), **options)
    print(f"jaxbc {path.stem}", flush=True)
    t0 = time.time()
    res = run_hades(
        cfg,
        es,
        jax.random.key(seed),
        task.generations,
        checkpoint_dir=args.work_dir / "checkpoints" / path.stem,
        checkpoint_every=CHUNK,
        resume=True,
        progress=True,
    )
    h = res.history
    atomic_write_json(
        path,
        {
            "side": "jaxbc",
            "env": task.env_id,
            "variant": variant,
            "seed": seed,
            "popsize": task.population,
            "generations": task.generations,
            "mean": [float(x) for x in h["mean"]],
            "best": [float(x) for x in h["best"]],
            "seconds": float(h["run_seconds"][-1]) if len(h["run_seconds"]) else time.time() - t0,
            "config": cfg.to_dict(),
            "strategy": task.strategy,
            "strategy_options": {
                k: (np.asarray(v).tolist() if hasattr(v, "shape") else str(v))
                for k, v in options.items()
            },
            "obs_normalization": cfg.to_dict().get("obs_normalization", "not a HadesConfig field"),
        },
    )


def import_runs(results: Path, tasks: tuple[Task, ...], args) -> int:
    """Per-run JSONs in the work dir from a committed results file's per-seed curves (its
    ``per_seed`` mean and best curves, its recorded versions and settings), so that more
    seeds, or another arm on one side, extend a finished study without re-running the rest.
    A side run with other arm settings (``--official-init``, ``--jaxbc-*``) is not
    imported; a run already in the work dir is kept. Returns how many runs were written."""
    saved = json.loads(results.read_text())
    meta, written = saved["meta"], 0
    # a side is imported only where its runs are this command's: the same arm settings
    sides = [side for side, same in (
        ("official", meta.get("official_fixed_init", "stored") == args.arm.init),
        ("jaxbc", (meta.get("jaxbc_constant_moments", "own"), meta.get("jaxbc_restart", "fresh")) == (args.arm.moments, args.arm.restart)),
    ) if same]  # fmt: skip
    by_name = {(t.env_id, v): t for t in tasks for v in t.variants}
    for group in saved["groups"]:
        task = by_name.get((group["env"], group["variant"]))
        if task is None or (group["population"], group["generations"]) != (task.population, task.generations):  # fmt: skip
            raise SystemExit(
                f"error: {results} holds {group['env']} HaDES-{group['variant']} at population "
                f"{group['population']} x {group['generations']} generations, not a task of "
                f"--scale {args.scale}"
            )
        settings = meta.get("official_settings", {}).get(
            f"{task.official_env}_{group['variant']}", {}
        )
        digests = meta.get("jaxbc_moments_sha256", {})
        for side in sides:
            if side == "jaxbc" and digests.get(task.env_id) != own_moments_digest(task, args.arm):
                continue  # jaxbc's runs on constant moments other than the package's now
            for seed, run in group["per_seed"][side].items():
                path = args.work_dir / "runs" / f"{tag(side, task, group['variant'], int(seed), args.arm)}.json"  # fmt: skip
                if path.exists():
                    continue
                record = {
                    "side": side, "env": task.official_env if side == "official" else task.env_id,
                    "variant": group["variant"], "seed": int(seed), "popsize": group["population"],
                    "generations": group["generations"], **run, "imported_from": str(results),
                }  # fmt: skip
                if side == "official":
                    record |= {"argstring": settings.get("argstring"), "stored_settings_from": settings.get("from"),
                               "versions": meta.get("official_versions"), "python": meta.get("official_python")}  # fmt: skip
                elif group["jaxbc_dataset_size"]:
                    record["config"] = {"dataset_size": group["jaxbc_dataset_size"][0]}
                atomic_write_json(path, record)
                written += 1
    return written


def load_runs(
    work_dir: Path, task: Task, variant: str, arm: Arm = Arm()
) -> dict[str, dict[int, dict]]:
    runs: dict[str, dict[int, dict]] = {s: {} for s in SIDES}
    for side in SIDES:
        for seed in task.seeds:
            p = work_dir / "runs" / f"{tag(side, task, variant, seed, arm)}.json"
            if p.exists():
                runs[side][seed] = json.loads(p.read_text())
    return runs


def summarize(task: Task, variant: str, runs: dict[str, dict[int, dict]]) -> dict:
    curves = {}
    for side in SIDES:
        per_gen = []
        for g in range(task.generations):
            vals = [r["mean"][g] for r in runs[side].values() if len(r["mean"]) > g]
            if vals and all(np.isfinite(vals)):
                per_gen.append({"generation": g + 1, **studies.mean_ci(vals)})
        curves[side] = per_gen
    paired = []
    seeds = sorted(set(runs["jaxbc"]) & set(runs["official"]))
    for g in REPORT_GENERATIONS:
        if g > task.generations:
            continue
        js = [runs["jaxbc"][s]["mean"][g - 1] for s in seeds]
        os_ = [runs["official"][s]["mean"][g - 1] for s in seeds]
        if not seeds:
            continue
        d, lo, hi = paired_difference(js, os_)
        paired.append({"generation": g, "seeds": seeds, "diff": d, "ci": [lo, hi]})
    # the whole curve's level: each seed's population mean averaged over every generation
    whole = [s for s in seeds if all(len(runs[side][s]["mean"]) == task.generations for side in SIDES)]  # fmt: skip
    level = None
    if whole:
        d, lo, hi = paired_difference(
            *[
                [float(np.mean(runs[side][s]["mean"])) for s in whole]
                for side in ("jaxbc", "official")
            ]
        )
        level = {"generations": task.generations, "seeds": whole, "diff": d, "ci": [lo, hi]}
    return {
        "env": task.env_id,
        "official_env": task.official_env,
        "variant": variant,
        "dataset_size": task.dataset_size,
        "jaxbc_dataset_size": sorted(
            {r["config"]["dataset_size"] for r in runs["jaxbc"].values() if "config" in r}
        ),
        "population": task.population,
        "generations": task.generations,
        "seeds": {side: sorted(runs[side]) for side in SIDES},
        "curves": curves,
        "paired_difference": paired,
        "paired_difference_over_generations": level,
        "per_seed": {
            side: {str(s): {"mean": r["mean"], "best": r["best"], "seconds": r.get("seconds")}
                   for s, r in runs[side].items()}
            for side in SIDES
        },
    }  # fmt: skip


def write_report(out: Path, meta: dict, groups: list[dict]) -> None:
    atomic_write_json(out.with_suffix(".json"), {"meta": meta, "groups": groups})
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["env", "variant", "side", "generation", "mean", "ci_lo", "ci_hi", "n"])
        for gr in groups:
            for side in SIDES:
                for c in gr["curves"][side]:
                    lo, hi = c["ci"] if c["ci"] is not None else (None, None)
                    w.writerow([gr["env"], gr["variant"], side, c["generation"], c["mean"], lo, hi, c["n"]])  # fmt: skip
    lines = [
        "# HaDES: jaxbc against the official implementation",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}  ",
        f"Official code: FLAIROx/behaviour-distillation at `{meta['official_commit']}`, "
        f"venv: {', '.join(f'{k} {v}' for k, v in (meta['official_versions'] or {}).items())}  ",
        f"jaxbc: jax {meta['jaxbc_versions']['jax']}, evosax {meta['jaxbc_versions']['evosax']}; "
        f"observation normalisation passed to jaxbc: {meta['jaxbc_obs_normalization']}; "
        f"jaxbc's constant moments: {meta.get('jaxbc_constant_moments', 'own')}; jaxbc's Brax "
        f"restart: {meta.get('jaxbc_restart', 'fresh')}; official "
        f"HaDES-F init: {OFFICIAL_INIT[meta.get('official_fixed_init', 'stored')]}  ",
        *(
            [
                f"Runs imported from {', '.join(f'`{f}`' for f in meta['imported_runs_from'])} (per-seed curves); the rest run by this command.  "
            ]
            if meta.get("imported_runs_from")
            else []
        ),
        f"Scale `{meta['scale']}`: settings of the stored paper runs, changed only in population "
        "and generations (see the per-task rows). Fitness: each side's own (population mean per "
        "generation, as its loop records it).",
        "",
        *[f"- {n}" for n in meta.get("notes", ())],
        *[
            f"- {env}: jaxbc's constant moments differ from the official ones by at most "
            f"{g['max_abs_mean_difference']:.3f} in a cell's mean and "
            f"{g['max_abs_var_difference']:.3f} in its variance; official / jaxbc standard "
            f"deviation {g['std_ratio_min']:.2f}-{g['std_ratio_max']:.2f} over the cells that "
            "vary on both sides."
            for env, g in meta.get("jaxbc_moments_gap", {}).items()
        ],
        "",
    ]
    for gr in groups:
        lines += [
            f"## {gr['env']} HaDES-{gr['variant']}, D={gr['dataset_size']}"
            + (
                f" (jaxbc {gr['jaxbc_dataset_size'][0]})"
                if gr.get("jaxbc_dataset_size", [gr["dataset_size"]]) != [gr["dataset_size"]]
                and gr.get("jaxbc_dataset_size")
                else ""
            )
            + f", population "
            f"{gr['population']}, {gr['generations']} generations",
            "",
            f"Seeds: official {gr['seeds']['official']}, jaxbc {gr['seeds']['jaxbc']}.",
            "",
            "| generation | official mean [95% CI] | jaxbc mean [95% CI] | jaxbc - official [95% CI] (paired seeds) |",
            "|---|---|---|---|",
        ]
        by_gen = {side: {c["generation"]: c for c in gr["curves"][side]} for side in SIDES}
        pd = {p["generation"]: p for p in gr["paired_difference"]}
        gens = sorted(
            {1, *[g for g in REPORT_GENERATIONS if g <= gr["generations"]], gr["generations"]}
        )
        for g in gens:
            p = pd.get(g)
            diff = (
                f"{p['diff']:.2f} [{p['ci'][0]:.2f}, {p['ci'][1]:.2f}] ({len(p['seeds'])})"
                if p and np.isfinite(p["ci"][0])
                else (f"{p['diff']:.2f} ({len(p['seeds'])})" if p else "-")
            )
            lines.append(
                f"| {g} | {studies.ci_cell(by_gen['official'].get(g))} | {studies.ci_cell(by_gen['jaxbc'].get(g))} | {diff} |"
            )
        if gr.get("paired_difference_over_generations"):
            p = gr["paired_difference_over_generations"]
            lines.append(
                f"| mean over generations 1-{gr['generations']} | - | - | "
                f"{p['diff']:.2f} [{p['ci'][0]:.2f}, {p['ci'][1]:.2f}] ({len(p['seeds'])}) |"
            )
        lines.append("")
    out.with_suffix(".md").write_text("\n".join(lines))


def plot(out_dir: Path, suffix: str, groups: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_env: dict[str, list[dict]] = {}
    for gr in groups:
        by_env.setdefault(gr["official_env"], []).append(gr)
    for env, grs in by_env.items():
        fig, ax = plt.subplots(figsize=(6, 4))
        for gr in grs:
            for side, color in (("official", "tab:blue"), ("jaxbc", "tab:orange")):
                cs = gr["curves"][side]
                if not cs:
                    continue
                g = [c["generation"] for c in cs]
                m = [c["mean"] for c in cs]
                ls = "-" if gr["variant"] == "F" else "--"
                ax.plot(
                    g, m, ls, color=color, label=f"{side} HaDES-{gr['variant']} (n={cs[0]['n']})"
                )
                if all(c["ci"] is not None for c in cs):
                    ax.fill_between(g, [c["ci"][0] for c in cs], [c["ci"][1] for c in cs], color=color, alpha=0.2)  # fmt: skip
        ax.set_xlabel("generation")
        ax.set_ylabel("population-mean fitness")
        ax.set_title(f"HaDES {env}: mean over seeds, 95% CI")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / f"hades_parity_{env}{suffix}.png", dpi=100)
        plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="cpu")
    p.add_argument("--side", choices=("both", *SIDES), default="both")
    p.add_argument("--official-repo", type=Path, default=Path("/tmp/bd_official"))
    p.add_argument("--peer-python", type=Path, default=Path("/tmp/hades_official_venv/bin/python"))
    p.add_argument(
        "--work-dir",
        type=Path,
        help="per-run JSONs + checkpoints; default /tmp/hades_parity/<scale>",
    )
    p.add_argument("--out-dir", type=Path, default=OUT)
    p.add_argument("--report-only", action="store_true")
    p.add_argument(
        "--jaxbc-moments",
        choices=("own", "official"),
        default="own",
        help="jaxbc's constant observation moments: its own (jaxbc/envs/obs_stats) or the "
        "official repository's normalize_params/*.npy (read at run time, a diagnostic)",
    )
    p.add_argument(
        "--official-init",
        choices=("stored", "run-seed"),
        default="stored",
        help="the official HaDES-F runs' policy init: the stored runs' (PRNGKey(420) for every "
        "seed) or PRNGKey(seed), a different init per seed as jaxbc draws them (a diagnostic)",
    )
    p.add_argument(
        "--jaxbc-restart",
        choices=("fresh", "first"),
        default="fresh",
        help="where jaxbc's Brax envs go after an episode: a fresh reset (the default) or the "
        "env's first start state, as the official evaluation (a diagnostic)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        help="run seeds 0 .. N-1 instead of the scale's (more seeds: extend a study)",
    )
    p.add_argument(
        "--envs",
        nargs="+",
        help="run only these tasks' envs (jaxbc ids); the report still covers every task",
    )
    p.add_argument(
        "--import-runs",
        type=Path,
        nargs="+",
        help="committed results files of this scale: their per-seed curves become the work "
        "dir's runs (kept runs win, in the order given), so --seeds adds seeds without "
        "re-running the others and one report can combine arms run by different commands",
    )
    args = p.parse_args()
    args.work_dir = (args.work_dir or Path("/tmp/hades_parity") / args.scale).resolve()
    args.arm = Arm(args.jaxbc_moments, args.official_init, args.jaxbc_restart)
    args.official_repo = args.official_repo.resolve()
    (args.work_dir / "runs").mkdir(parents=True, exist_ok=True)
    enable_compilation_cache()
    tasks = SCALES[args.scale]
    if args.seeds is not None:
        if args.seeds < 1:
            raise SystemExit(f"error: --seeds must be >= 1, got {args.seeds}")
        tasks = tuple(dataclasses.replace(t, seeds=tuple(range(args.seeds))) for t in tasks)
    if args.envs and (unknown := set(args.envs) - {t.env_id for t in tasks}):
        raise SystemExit(f"error: --envs {sorted(unknown)}: not a task of --scale {args.scale} ({[t.env_id for t in tasks]})")  # fmt: skip
    for results in args.import_runs or ():
        n = import_runs(results, tasks, args)
        print(f"imported {n} runs from {results}", file=sys.stderr)
    sides = SIDES if args.side == "both" else (args.side,)
    if not args.report_only:
        # seed-major, so that an interrupted run has every task at the first seeds
        n_seeds = max(len(t.seeds) for t in tasks)
        for side in sides:  # the official side first: it does not depend on jaxbc
            for i in range(n_seeds):
                for task in tasks:
                    for variant in task.variants:
                        if i >= len(task.seeds) or (args.envs and task.env_id not in args.envs):
                            continue
                        seed = task.seeds[i]
                        stem = tag(side, task, variant, seed, args.arm)
                        path = args.work_dir / "runs" / f"{stem}.json"
                        if path.exists():
                            continue
                        (run_official if side == "official" else run_jaxbc)(task, variant, seed, args, path)  # fmt: skip
    groups = [
        summarize(t, v, load_runs(args.work_dir, t, v, args.arm)) for t in tasks for v in t.variants
    ]
    # this arm's official runs (a work dir can hold several arms' runs)
    official = [
        json.loads(path.read_text())
        for t in tasks
        for v in t.variants
        for seed in t.seeds
        if (path := args.work_dir / "runs" / f"{tag('official', t, v, seed, args.arm)}.json").exists()
    ]  # fmt: skip
    commit = subprocess.run(
        ["git", "-C", str(args.official_repo), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    digests = {t.env_id: d for t in tasks if (d := own_moments_digest(t, args.arm))}
    meta = {
        "command": command_line("python benchmarks/peers/run_hades_parity.py"),
        "scale": args.scale,
        "tasks": [dataclasses.asdict(t) for t in tasks],
        "machine": machine_description(),
        "official_commit": commit,
        "official_versions": official[0]["versions"] if official else None,
        "official_python": official[0]["python"] if official else None,
        "official_settings": {
            f"{r['env']}_{r['variant']}": {"argstring": r["argstring"], "from": r["stored_settings_from"]}
            for r in official
        },
        "jaxbc_versions": {k: metadata.version(k) for k in ("jax", "evosax", "flax", "gymnax", "brax")},
        "jaxbc_obs_normalization": (
            "HadesConfig.obs_normalization as stored" if has_obs_normalization()
            else "none (HadesConfig has no obs_normalization field in this tree)"
        ),
        "jaxbc_constant_moments": args.arm.moments,
        "jaxbc_moments_sha256": digests,
        "jaxbc_moments_gap": {t.env_id: moments_gap(args, t) for t in tasks if t.env_id in digests},
        "jaxbc_restart": args.arm.restart,
        "official_fixed_init": args.arm.init,
        "imported_runs_from": [str(r) for r in args.import_runs or ()],
        "report_generations": list(REPORT_GENERATIONS),
        "notes": notes(args.arm),
    }  # fmt: skip
    suffix = ("" if args.scale == "cpu" else f"_{args.scale}") + args.arm.suffix()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_report(args.out_dir / f"hades_parity{suffix}", meta, groups)
    plot(args.out_dir, suffix, groups)
    print(f"wrote {args.out_dir / f'hades_parity{suffix}'}.{{json,md,csv}}", file=sys.stderr)


if __name__ == "__main__":
    main()
