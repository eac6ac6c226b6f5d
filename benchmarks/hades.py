"""The HaDES study: distil envs into a few synthetic (state, action) pairs, then check how
well the distilled data teaches policies (and, with --transfer, other architectures).

    python benchmarks/hades.py --scale smoke             # seconds (CI)
    python benchmarks/hades.py --scale cpu --transfer    # CartPole D=4, Breakout D=16
    python benchmarks/hades.py --scale families --resume # every family, 3 seeds, in pieces
    python benchmarks/hades.py --scale families --report-only  # its report again, runs nothing
    python benchmarks/hades.py --scale families --report-only --out-dir NEW --baseline OLD  # + after - before
    python benchmarks/hades.py --scale paper --memory --envs brax/hopper  # planned memory only
    python benchmarks/hades.py --scale paper --transfer  # GPU: the paper's settings (days)

Every job runs through ``run_hades`` (chunks of generations, one compiled scan each); the
best and mean distilled datasets are then re-evaluated from fresh policy inits ("new
inits") and, for HaDES-F, from the evolution's fixed init. Writes hades.{json,csv,md},
fitness curves, pictures and ``.npz`` files of the distilled data (and hades_transfer.*)
to ``--out-dir``. The scales and readings: docs/results/hades.md and hades_families.md.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxbc import distributed, studies
from jaxbc import envs as jenvs
from jaxbc.bc.evaluation import reference_returns
from jaxbc.data import save_dataset
from jaxbc.experts.expert import ZOO_DIR, zoo_name
from jaxbc.hades import (
    HadesConfig,
    distilled_data,
    distilled_dataset,
    hades_preset,
    make_hades,
    make_strategy,
    plot_dataset,
    run_hades,
    run_seconds,
    save_curves,
    solution_template,
)
from jaxbc.hades.strategies import paper_strategy_options
from jaxbc.io import atomic_write_csv, command_line, enable_compilation_cache
from jaxbc.rollout import random_return, scaled_return


@dataclass(frozen=True)
class Job:
    env_id: str
    dataset_size: int | None  # None: the preset's (MinAtar: n * (16 // n), the paper's D=16)
    strategy: str
    population: int
    generations: int
    variants: tuple[str, ...] = ("F", "R")
    config: dict = field(default_factory=dict)  # HadesConfig overrides on top of hades_preset
    hidden: tuple[int, ...] | None = None
    env_options: tuple[tuple[str, Any], ...] = ()
    strategy_options: dict = field(default_factory=dict)  # on top of the paper's options
    paper_strategy: bool = True  # start from the paper's strategy options (else evosax's defaults)


@dataclass(frozen=True)
class Scale:
    jobs: tuple[Job, ...]
    seeds: int
    chunk: int  # generations per compiled scan / checkpoint
    eval_episodes: int  # episodes per policy in the final evaluation
    eval_inits: int  # fresh policy inits in the final evaluation
    transfer_policies: tuple[
        tuple[str, tuple[int, ...], str, float], ...
    ]  # (name, hidden, activation, lr)


_TRANSFER_SMALL = (
    ("same", (), "", 0.0),  # the distillation's own architecture (empty = unchanged)
    ("narrow 1x32 relu", (32,), "relu", 0.0),
    ("wide 2x256 relu", (256, 256), "relu", 0.0),
    ("deep 3x64 tanh", (64, 64, 64), "tanh", 0.0),
    ("2x64 gelu lr/3", (64, 64), "gelu", 0.01),
    ("2x64 relu lr 1e-3", (64, 64), "relu", 1e-3),
)
_TRANSFER_PAPER = (
    ("same", (), "", 0.0),
    ("1x256", (256,), "", 0.0),
    ("2x256", (256, 256), "", 0.0),
    ("3x512", (512, 512, 512), "", 0.0),
    ("2x1024", (1024, 1024), "", 0.0),
    ("2x512 relu", (512, 512), "relu", 0.0),
    ("2x512 tanh", (512, 512), "tanh", 0.0),
    ("2x512 lr/3", (512, 512), "", -3.0),  # negative lr: divide the distillation's lr by it
)
_BRAX = ("brax/hopper", "brax/walker2d", "brax/halfcheetah", "brax/ant", "brax/humanoid")
_MINATAR = ("Breakout-MinAtar", "SpaceInvaders-MinAtar", "Asterix-MinAtar")

_MINATAR_CPU = dict(hidden=(64, 64), paper_strategy=False, strategy_options={"sigma": 0.1})
SCALES = {
    "smoke": Scale(
        jobs=(
            Job("CartPole-v1", 4, "SNES", 8, 2, config=dict(inner_steps=10, num_envs=2), hidden=(16,), env_options=(("max_steps_in_episode", 50),)),
            Job("Breakout-MinAtar", 3, "SNES", 8, 2, hidden=(16,), config=dict(inner_steps=5, num_envs=2, eval_steps=30)),
        ),
        seeds=1, chunk=2, eval_episodes=2, eval_inits=2,
        transfer_policies=(("same", (), "", 0.0), ("1x8 tanh", (8,), "tanh", 0.0)),
    ),
    "cpu": Scale(
        jobs=(
            Job("CartPole-v1", 4, "SNES", 64, 150, hidden=(64, 64), config=dict(inner_steps=64, num_envs=4)),
            # the paper's fitness (every episode in the window) and SNES with evosax's own
            # rank weights at sigma 0.1: at population 64 the paper's softmax weights (top ~3
            # members) and sigma 0.5 stalled at a return of ~1 (see the README)
            Job("Breakout-MinAtar", 16, "SNES", 64, 800, **_MINATAR_CPU, config=dict(inner_steps=64, num_envs=4, eval_steps=500)),
        ),
        seeds=1, chunk=25, eval_episodes=32, eval_inits=4, transfer_policies=_TRANSFER_SMALL,
    ),
    # every family HaDES claims, at what the 2-core CPU affords. MinAtar: the Breakout recipe
    # found by benchmarks/hades_sweep.py (one seed, one env), fixed for every game and seed;
    # Freeway's window (2,500 steps) lets its episodes end. Brax: the paper's Open_ES recipe
    # (no CPU recipe search), tiny policies, one env per fitness over a 500-step window (the
    # paper: whole 1,000-step episodes), 40 generations: sized from the study's own first job
    # (population-16 hopper HaDES-F: 3.2 s per generation on a shared CPU; the compile, ~1-5
    # min per program, is paid once per (env, D, variant) thanks to the persistent cache), so
    # that Brax takes about an hour.
    "families": Scale(
        jobs=tuple(
            Job(e, d, "Open_ES", 16, 40, hidden=(32, 32), config=dict(num_envs=1, eval_steps=500, inner_steps=100))
            for e in ("brax/hopper", "brax/walker2d") for d in (64, 4)
        ) + tuple(
            Job(e, 16, "SNES", 64, 150, **_MINATAR_CPU, config=dict(inner_steps=64, num_envs=4, eval_steps=500))
            for e in _MINATAR
        ) + (Job("Freeway-MinAtar", 16, "SNES", 64, 100, **_MINATAR_CPU, config=dict(inner_steps=64, num_envs=2, eval_steps=2500)),),
        seeds=3, chunk=10, eval_episodes=16, eval_inits=4, transfer_policies=_TRANSFER_SMALL,
    ),
    "paper": Scale(
        jobs=tuple(Job(e, 64, "Open_ES", 2048, 2000) for e in _BRAX)
        + tuple(Job(e, 4, "Open_ES", 2048, 2000) for e in ("brax/hopper", "brax/walker2d"))
        + tuple(Job(e, None, "SNES", 2048, 2000) for e in _MINATAR),
        seeds=3, chunk=50, eval_episodes=64, eval_inits=8, transfer_policies=_TRANSFER_PAPER,
    ),
}  # fmt: skip

# HaDES paper, population mean at the end (3 seeds; D=4 without a variant): for the report.
# MinAtar's D=16 labels n * (16 // n) states: a run at hades_preset's D finds the D=16 row
PAPER_RESULTS = {
    ("brax/hopper", 64): {"R": 1787, "F": 1837},
    ("brax/walker2d", 64): {"R": 2438, "F": 2722},
    ("brax/halfcheetah", 64): {"R": 3318, "F": 3628},
    ("brax/humanoid", 64): {"R": 1715, "F": 4563},
    ("brax/ant", 64): {"R": 267, "F": 1193},
    ("brax/hopper", 4): {"any": 1535},
    ("brax/walker2d", 4): {"any": 1312},
    ("Breakout-MinAtar", 16): {"R": 7.5, "F": 14.0},
    ("SpaceInvaders-MinAtar", 16): {"R": 18.6, "F": 31.6},
    ("Asterix-MinAtar", 16): {"R": 4.0, "F": 6.6},
}


def _paper(env_id: str, dataset_size: int, variant: str) -> float | None:
    if jenvs.family_of(env_id) == "minatar" and dataset_size == hades_preset(env_id).dataset_size:
        dataset_size = 16
    res = PAPER_RESULTS.get((env_id, dataset_size), {})
    return res.get(variant, res.get("any"))


def strategy_options(job: Job) -> dict:
    base = paper_strategy_options(job.strategy, job.population) if job.paper_strategy else {}
    return {**base, **job.strategy_options}


def job_config(job: Job, variant: str) -> HadesConfig:
    cfg = hades_preset(job.env_id, dataset_size=job.dataset_size, variant=variant,
                       env_options=job.env_options, **job.config)  # fmt: skip
    if job.hidden is None:
        return cfg
    return dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, hidden_sizes=job.hidden))


def ablate(jobs: list[Job], overrides: dict[str, Any]) -> list[Job]:
    """``jobs`` with ``overrides`` (HadesConfig fields) on top of every job's preset: an
    ablation of one preset setting, paired on seeds with a folder of the presets' runs
    through ``--baseline``."""
    return [dataclasses.replace(j, config={**j.config, **overrides}) for j in jobs]


def references(env_id: str, env_options: tuple, key: jax.Array) -> tuple[float | None, float]:
    """(expert, random) returns: the zoo's metadata (unmodified envs only), else a measured
    random return and no expert."""
    meta = ZOO_DIR / zoo_name(env_id) / "artifact.json"
    if not env_options and meta.exists():
        return reference_returns(env_id)
    return None, float(random_return(jenvs.make(env_id, **dict(env_options)), key, 32).mean_return)


_EVALUATORS: dict = {}


def evaluate_data(
    config: HadesConfig, strategy, data: dict, key: jax.Array, episodes: int, inits: int, fixed_init=None
) -> float:  # fmt: skip
    """Mean return of policies trained on ``data`` from ``inits`` fresh inits, or from
    ``fixed_init`` (repeated ``inits`` times with different rollout keys: the same program)."""
    # the fitness program does not depend on the variant: one compiled evaluator per config
    # whole first episodes (up to the env's time limit), whatever the evolution's fitness window
    cfg = dataclasses.replace(config, num_envs=episodes, num_devices=1, variant="R", num_inits=inits,
                              eval_steps=None, fitness_episodes="first")  # fmt: skip
    if cfg not in _EVALUATORS:
        ev = make_hades(cfg, strategy)
        _EVALUATORS[cfg] = (ev, jax.jit(ev.fitness))
    ev, fitness = _EVALUATORS[cfg]
    k_init, k_eval = jax.random.split(key)
    if fixed_init is not None:
        stacked = jax.tree.map(lambda x: jnp.repeat(x[None], inits, 0), fixed_init)
    else:
        stacked = jax.vmap(ev.policy.init)(jax.random.split(k_init, inits))
    return float(fitness(data, stacked, k_eval))


def device_peak_gib() -> float | None:
    """Peak memory in use on the first device so far (GPU/TPU report it; the CPU does not: None)."""
    stats = jax.local_devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 1024**3


def scaled(ret: float, expert: float | None, rnd: float) -> float | None:
    return None if expert is None else float(scaled_return(ret, rnd, expert))


def _describe(options: dict) -> dict:
    """Options as stable JSON (objects by type: their numbers are in the params digest or
    fixed by the job definition)."""
    return {
        k: v if isinstance(v, (bool, int, float, str)) else type(v).__name__
        for k, v in sorted(options.items())
    }


def job_tag(job: Job, variant: str, seed: int) -> str:
    return f"{zoo_name(job.env_id)}_D{job.dataset_size}_{variant}_s{seed}"


def run_job(
    job: Job, variant: str, seed: int, sc: Scale, out_dir: Path, resume: bool = False
) -> tuple[dict, list[dict], dict]:
    cfg = job_config(job, variant)
    options = strategy_options(job)
    es = make_strategy(job.strategy, job.population, solution_template(cfg), **options)
    tag = job_tag(job, variant, seed)
    t0 = time.time()
    res = run_hades(
        cfg, es, jax.random.key(seed), job.generations,
        checkpoint_dir=out_dir / "hades_checkpoints" / tag if resume else None,
        checkpoint_every=sc.chunk, resume=resume, progress=True,
        settings={"strategy_options": _describe(options)},
    )  # fmt: skip
    # the whole run's seconds across resumes (older checkpoints did not keep them: this process's)
    wall = run_seconds(res.history) or time.time() - t0
    h = res.history
    k_best, k_mean, k_fixed, k_ref = jax.random.split(jax.random.key(10_000 + seed), 4)
    best, mean = (distilled_data(res.hades, res.state, w) for w in ("best", "mean"))
    evaluate = partial(evaluate_data, cfg, es, episodes=sc.eval_episodes, inits=sc.eval_inits)
    ret_best, ret_mean = evaluate(best, k_best), evaluate(mean, k_mean)
    fixed = res.state.fixed_init
    ret_fixed = evaluate(mean, k_fixed, fixed_init=fixed) if variant == "F" else None
    expert, rnd = references(job.env_id, job.env_options, k_ref)
    ds = distilled_dataset(res.hades, res.state, "mean", fitness=ret_mean)
    studies.write(save_dataset, ds, out_dir / "hades_datasets" / f"{tag}.npz")
    what = f"HaDES-{variant} {job.env_id}"
    studies.write(save_curves, h, out_dir / f"hades_curves_{tag}.csv", out_dir / f"hades_curves_{tag}.png",
                  title=f"{what} D={job.dataset_size}")  # fmt: skip
    studies.write(plot_dataset, ds, out_dir / f"hades_data_{tag}.png",
                  title=f"{what}: {job.dataset_size} states (mean, return {ret_mean:.1f})")  # fmt: skip
    row = {
        "env": job.env_id, "env_options": [list(kv) for kv in job.env_options], "variant": variant,
        "dataset_size": job.dataset_size, "strategy": job.strategy, "population": job.population,
        "generations": job.generations, "seed": seed, "hidden": list(cfg.policy.hidden_sizes),
        "inner_steps": cfg.inner_steps, "final_population_mean": float(h["mean"][-1]),
        "final_population_best": float(h["best"][-1]), "first_population_mean": float(h["mean"][0]),
        "best_fitness": float(res.state.best_fitness), "return_best_data_new_inits": ret_best,
        "return_mean_data_new_inits": ret_mean, "return_mean_data_fixed_init": ret_fixed,
        "expert_return": expert, "random_return": rnd,
        "scaled_final_population_mean": scaled(float(h["mean"][-1]), expert, rnd),
        "scaled_mean_data_new_inits": scaled(ret_mean, expert, rnd),
        "scaled_mean_data_fixed_init": None if ret_fixed is None else scaled(ret_fixed, expert, rnd),
        "paper_population_mean": _paper(job.env_id, job.dataset_size, variant),
        "wall_time_s": round(wall, 1), "dataset": str(out_dir / "hades_datasets" / f"{tag}.npz"),
        "device": str(jax.devices()[0].device_kind), "device_peak_gib": device_peak_gib(),
    }  # fmt: skip
    curves = [
        {"env": job.env_id, "variant": variant, "dataset_size": job.dataset_size, "seed": seed,
         "generation": int(g), "best": float(b), "mean": float(m), "std": float(s)}
        for g, b, m, s in zip(h["generation"], h["best"], h["mean"], h["std"], strict=True)
    ]  # fmt: skip
    studies.log(
        f"{tag}: population mean {h['mean'][0]:.1f} -> {h['mean'][-1]:.1f}, mean data "
        f"(new inits) {ret_mean:.1f}, {wall:.0f} s"
    )
    return row, curves, {"config": cfg, "strategy": es, "data": mean, "expert": expert, "random": rnd}  # fmt: skip


def transfer_rows_for(job: Job, variant: str, seed: int, ctx: dict, sc: Scale) -> list[dict]:
    """Train other architectures / learning rates on the distilled (mean) dataset."""
    cfg: HadesConfig = ctx["config"]
    rows = []
    for name, hidden, act, lr in sc.transfer_policies:
        policy = dataclasses.replace(
            cfg.policy,
            hidden_sizes=tuple(hidden) or cfg.policy.hidden_sizes,
            activation=act or cfg.policy.activation,
        )
        inner_lr = cfg.inner_lr / -lr if lr < 0 else (lr or cfg.inner_lr)
        tcfg = dataclasses.replace(cfg, policy=policy, inner_lr=inner_lr)
        key = jax.random.key(20_000 + seed)
        ret = evaluate_data(
            tcfg, ctx["strategy"], ctx["data"], key, sc.eval_episodes, sc.eval_inits
        )
        rows.append({
            "env": job.env_id, "variant": variant, "dataset_size": job.dataset_size, "seed": seed,
            "policy": name, "hidden": list(policy.hidden_sizes), "activation": policy.activation,
            "lr": inner_lr, "return": ret, "scaled_return": scaled(ret, ctx["expert"], ctx["random"]),
        })  # fmt: skip
    return rows


def _paper_cell(group: dict) -> str:
    """The paper's population mean and, in brackets, the same on our scale."""
    paper = group["paper_population_mean"]
    return (
        "–" if paper is None else f"{studies.fmt(paper)} ({studies.fmt(group.get('paper_scaled'))})"
    )


SUMMARY_METRICS = (
    "first_population_mean",
    "final_population_mean",
    "return_mean_data_new_inits",
    "return_mean_data_fixed_init",
    "scaled_mean_data_new_inits",
    "scaled_mean_data_fixed_init",
)


def summarize(rows: list[dict]) -> list[dict]:
    """Per (env, D, variant): mean and 95% CI over seeds of the population mean and of the
    distilled data's (scaled) returns."""
    keys = ("env", "dataset_size", "variant")
    out = studies.group_stats(rows, keys, SUMMARY_METRICS, ci=True)
    for item, rs in zip(out, studies.groups(rows, keys).values(), strict=True):
        del item["n"]
        item["seeds"] = sorted(r["seed"] for r in rs)
        for k in (
            "generations",
            "population",
            "random_return",
            "expert_return",
            "paper_population_mean",
        ):
            item[k] = rs[0][k]
        # the paper's result on our scale (its population mean, our random and expert)
        paper = rs[0]["paper_population_mean"]
        item["paper_scaled"] = (
            None if paper is None else scaled(paper, rs[0]["expert_return"], rs[0]["random_return"])
        )
    return out  # fmt: skip


ARMS = {
    "HaDES-F, new inits": ({"variant": "F"}, "scaled_mean_data_new_inits"),
    "HaDES-R, new inits": ({"variant": "R"}, "scaled_mean_data_new_inits"),
    "HaDES-F, fixed init": ({"variant": "F"}, "scaled_mean_data_fixed_init"),
}


def variant_scores(rows: list[dict]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Scaled returns of the distilled data as rliable score matrices ``[seeds, tasks]``.

    Tasks are the (env, D) pairs both variants finished on the same seeds, and the seeds are
    those every such task has (at least 2), so the arms are paired. Arms: F and R from fresh
    inits (comparable) and F from its evolution's fixed init.
    """
    rows = [r for r in rows if r["scaled_mean_data_new_inits"] is not None]  # no expert, no scale
    scores, tasks = studies.score_matrix(rows, ARMS, ("env", "dataset_size"), 2, sort_tasks=True)
    return scores, [f"{e} D={d}" for e, d in tasks]


def statistics(rows: list[dict], reps: int = 10_000) -> dict | None:
    """rliable aggregates (IQM, mean, optimality gap; P(F > R) from fresh inits) over the
    tasks both variants finished, stratified bootstrap over seeds (``jaxbc.stats``)."""
    scores, tasks = variant_scores(rows)
    if not tasks:
        return None
    return studies.aggregate(scores, [("HaDES-F, new inits", "HaDES-R, new inits")], tasks, reps)


def write_report(
    out_dir: Path,
    meta: dict,
    rows: list[dict],
    transfer_rows: list[dict],
    stats: dict | None,
    comparison: dict | None = None,
) -> None:
    """hades.md: the runs, the over-seeds summary, the aggregates, the transfer table and the
    comparison with a baseline folder; ``stats``: :func:`statistics` of the rows, computed
    once by the caller."""
    lines = studies.heading(
        "HaDES behaviour distillation",
        meta,
        f"scale {meta['scale']}; seeds {sorted({r['seed'] for r in rows})}; wall time "
        f"{meta['wall_time_s']:.0f} s (HaDES runs {sum(r['wall_time_s'] for r in rows):.0f} s); "
        f"distilled data re-evaluated from {meta['eval_inits']} inits x {meta['eval_episodes']} "
        "episodes; scaled: 0 = random, 1 = zoo expert.",
    ) + [""] + studies.table(rows, {
        "env": "env", "D": "dataset_size", "variant": "variant",
        "strategy x pop": lambda r: f"{r['strategy']} x {r['population']}", "gens": "generations",
        "pop mean first -> last": lambda r: f"{r['first_population_mean']:.1f} -> {r['final_population_mean']:.1f}",
        "best fitness": "best_fitness:.1f", "mean data, new inits": "return_mean_data_new_inits:.1f",
        "mean data, fixed init": "return_mean_data_fixed_init", "scaled (new inits)": "scaled_mean_data_new_inits",
        "paper pop mean": "paper_population_mean", "wall s": "wall_time_s:.0f",
    })  # fmt: skip
    summary = summarize(rows)
    if any(len(g["seeds"]) > 1 for g in summary):
        ci = studies.ci_cell
        lines += ["", "## Over seeds: mean [95% bootstrap CI]", ""] + studies.table(summary, {
            "env": "env", "D": "dataset_size", "variant": "variant", "seeds": lambda g: len(g["seeds"]),
            "pop mean first -> last": lambda g: f"{ci(g['first_population_mean'], 1)} -> {ci(g['final_population_mean'], 1)}",
            "data, fixed init (scaled)": lambda g: ci(g["scaled_mean_data_fixed_init"]),
            "data, new inits (scaled)": lambda g: ci(g["scaled_mean_data_new_inits"]),
            "random / expert": lambda g: f"{studies.fmt(g['random_return'])} / {studies.fmt(g['expert_return'])}",
            "paper pop mean (scaled)": _paper_cell,
        })  # fmt: skip
    if stats is not None:
        lines += studies.aggregates_section(stats, "distilled data's scaled return")
        studies.profiles(variant_scores(rows)[0], out_dir / "hades_profiles.png", "HaDES: distilled data")  # fmt: skip
    if transfer_rows:
        lines += ["", "## Transfer: other policies trained on the distilled data", ""]
        lines += studies.table(transfer_rows, {
            "env": "env", "D": "dataset_size", "variant": "variant", "policy": "policy", "hidden": "hidden",
            "activation": "activation", "lr": "lr:.3g", "return": "return:.1f", "scaled": "scaled_return",
        })  # fmt: skip
    if comparison is not None:
        lines += baseline_section(comparison)
    studies.write_report(out_dir, "hades", md=lines)


def saved_runs(out_dir: Path, scale: str) -> tuple[list[dict], list[dict], list[dict]]:
    """(runs, transfer rows, curve rows) that an earlier run saved in out_dir (none: empty)."""
    if not (out_dir / "hades.json").exists():
        return [], [], []
    saved = studies.load_saved(out_dir / "hades.json", scale=scale)
    curves = studies.read_csv(out_dir / "hades.csv") if (out_dir / "hades.csv").exists() else []
    return saved["runs"], saved.get("transfer", []), curves


BASELINE_MEASURES = {
    "scaled_mean_data_fixed_init": "data, fixed init (scaled)",
    "scaled_mean_data_new_inits": "data, new inits (scaled)",
}


def against_baseline(rows: list[dict], baseline: Path, scale: str) -> dict:
    """These runs against an earlier folder's (the same study before a change), paired on
    (env, D, variant, seed): after - before of the distilled data's scaled returns, with 95%
    bootstrap CIs and each side's mean over the paired seeds."""
    before = studies.load_saved(baseline / "hades.json", scale=scale)["runs"]
    key = ("env", "dataset_size", "variant")
    old = {(*(r[k] for k in key), r["seed"]): r for r in before}
    groups: dict[tuple, list[tuple[dict, dict]]] = {}
    for r in rows:
        if (b := old.get((*(r[k] for k in key), r["seed"]))) is not None:
            groups.setdefault(tuple(r[k] for k in key), []).append((b, r))
    out = []
    for g, pairs in groups.items():
        for measure in BASELINE_MEASURES:
            pairs_m = sorted((p for p in pairs if p[0][measure] is not None and p[1][measure] is not None),
                             key=lambda p: p[1]["seed"])  # fmt: skip
            if len(pairs_m) < 2:
                continue
            b, a = ([p[i][measure] for p in pairs_m] for i in (0, 1))
            out.append({
                **dict(zip(key, g, strict=True)), "measure": measure, "seeds": [p[1]["seed"] for p in pairs_m],
                "before": studies.mean_ci(b), "after": studies.mean_ci(a), "after_minus_before": studies.paired_ci(a, b),
            })  # fmt: skip
    command = command_line("python benchmarks/hades.py")
    return {"baseline": str(baseline), "command": command, "rows": out}


def baseline_section(comparison: dict) -> list[str]:
    ci = studies.ci_cell
    head = [
        "",
        f"## Against `{comparison['baseline']}`: after - before, paired on seeds",
        "",
        f"Command: `{comparison['command']}`; mean [95% bootstrap CI] over the seeds both folders ran.",
        "",
    ]
    if not comparison["rows"]:  # e.g. a study part-way through its seeds
        return [
            *head,
            "No (env, D, variant) has 2 or more seeds in both folders yet: nothing to pair.",
        ]
    return [
        *head,
        *studies.table(comparison["rows"], {
            "env": "env", "D": "dataset_size", "variant": "variant",
            "measure": lambda r: BASELINE_MEASURES[r["measure"]], "seeds": lambda r: len(r["seeds"]),
            "before": lambda r: ci(r["before"]), "after": lambda r: ci(r["after"]),
            "after - before": lambda r: ci(r["after_minus_before"]),
            "reading": lambda r: r["after_minus_before"]["reading"],
        }),
    ]  # fmt: skip


def write_results(
    out_dir: Path,
    meta: dict,
    rows: list[dict],
    transfer_rows: list[dict],
    comparison: dict | None = None,
) -> None:
    """hades.json (runs and what derives from them: summary, statistics, ``comparison``:
    :func:`against_baseline`'s) and hades.md."""
    stats = statistics(rows)
    data = {"meta": meta, "runs": rows, "summary": summarize(rows), "statistics": stats,
            "transfer": transfer_rows, "against_baseline": comparison}  # fmt: skip
    studies.write_report(out_dir, "hades", data)
    write_report(out_dir, meta, rows, transfer_rows, stats, comparison)


def rewrite_report(out_dir: Path, scale: str, baseline: Path | None = None) -> None:
    """hades.md and hades.json's derived parts again from the saved runs (runs nothing)."""
    saved = studies.load_saved(out_dir / "hades.json", scale=scale)
    comparison = None if baseline is None else against_baseline(saved["runs"], baseline, scale)
    if comparison is not None and not comparison["rows"]:
        raise SystemExit(
            f"error: --baseline {baseline}: no (env, D, variant) has 2 or more seeds in both "
            "folders, so there is nothing to pair"
        )
    meta = {**saved["meta"], "report_command": command_line("python benchmarks/hades.py")}
    write_results(out_dir, meta, saved["runs"], saved.get("transfer", []), comparison)
    print((out_dir / "hades.md").read_text())


def write_memory_report(out_dir: Path, scale: str, rows: list[dict]) -> None:
    meta = studies.metadata("benchmarks/hades.py", None, jax_version=jax.__version__)
    lines = studies.heading(f"HaDES memory plan ({scale} scale)", meta, (
        f"jax {meta['jax_version']}; XLA's buffers (arguments + outputs + peak temporaries) for "
        "one generation of each job (HaDES-R) on one device, compiled, not run.")) + [
        "",
        *studies.table(rows, {
            "env": "env", "D": "dataset_size",
            "pop x inits x envs x steps": lambda r: f"{r['population']} x {r['inits']} x {r['num_envs']} x {r['eval_steps']}",
            "fitness episodes": "fitness_episodes", "MLP": "hidden",
            "planned GiB (temp)": lambda r: f"{r['total_gib']:.2f} ({r['temp_gib']:.2f})", "compile s": lambda r: r["compile_s"],
        }),
    ]  # fmt: skip
    studies.write_report(out_dir, f"hades_memory_{scale}", {"meta": meta, "jobs": rows}, lines)
    print("\n".join(lines))


def memory_estimate(job: Job, variant: str = "R") -> dict:
    """XLA's buffer assignment for one generation of a job, from compiling (not running)
    it for this machine's backend: argument, output and peak temporary bytes. It is what
    the compiler plans for one device; a GPU compile of the same program plans similar
    buffers but is not measured here."""
    cfg = dataclasses.replace(job_config(job, variant), num_devices=1)
    env_id, dataset_size, population = job.env_id, job.dataset_size, job.population
    options = strategy_options(job)
    es = make_strategy(job.strategy, population, solution_template(cfg), **options)
    hades = make_hades(cfg, es)
    state = jax.eval_shape(hades.init, jax.random.key(0))
    t0 = time.time()
    compiled = jax.jit(hades.scan_generations, static_argnums=1).lower(state, 1).compile()
    m = compiled.memory_analysis()
    gib = 1024**3
    row = {
        "env": env_id, "dataset_size": dataset_size, "variant": variant, "population": population,
        "inits": cfg.inits_per_generation, "num_envs": cfg.num_envs, "eval_steps": hades.eval_steps,
        "fitness_episodes": cfg.fitness_episodes, "hidden": list(cfg.policy.hidden_sizes),
        "backend": jax.default_backend(), "argument_gib": m.argument_size_in_bytes / gib,
        "output_gib": m.output_size_in_bytes / gib, "temp_gib": m.temp_size_in_bytes / gib,
        "total_gib": (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes) / gib,
        "compile_s": round(time.time() - t0, 1),
    }  # fmt: skip
    studies.log(f"{env_id} D={dataset_size} {variant} pop {population}: "
                f"{row['total_gib']:.2f} GiB planned (temp {row['temp_gib']:.2f})")  # fmt: skip
    return row


def main(
    scale: Literal["smoke", "cpu", "families", "paper"] = "cpu",
    transfer: bool = False,
    memory: bool = False,
    envs: list[str] | None = None,
    seed: int = 0,
    generations: int | None = None,
    variants: list[Literal["F", "R"]] | None = None,
    seeds: int | None = None,
    out_dir: Path | None = None,
    resume: bool = False,
    report_only: bool = False,
    baseline: Path | None = None,
    obs_normalization: Literal["none", "constant", "running"] | None = None,
    eval_actions: Literal["greedy", "sampled"] | None = None,
) -> None:
    """Run the HaDES study and write its report.

    Args:
        scale: smoke (seconds), cpu (23 min measured on 2 idle cores), paper (the paper's settings; GPU).
        transfer: also train other architectures / learning rates on each distilled dataset.
        memory: only compile one generation of each job (HaDES-R, the bigger variant) and
            report XLA's planned memory (writes hades_memory_<scale>.{json,md}); runs nothing.
        envs: only these envs.
        seed: base seed (runs use seed .. seed + seeds - 1).
        generations: run this many generations instead of the scale's (e.g. what a timed GPU job allows).
        variants: only these variants (F, R).
        seeds: this many seeds instead of the scale's.
        out_dir: where results go (default benchmarks/results; families:
            benchmarks/results/hades_families).
        resume: keep the runs already in out_dir/hades.json, continue unfinished ones from
            their checkpoints (out_dir/hades_checkpoints/<run>, saved every chunk), run the
            rest: a long study in pieces.
        report_only: run nothing: rewrite hades.md and hades.json's summary and statistics
            from the runs saved in out_dir/hades.json (after a change to the report).
        baseline: a folder of the same scale's earlier runs (e.g. before a settings change):
            the report adds after - before of the distilled data's scaled returns, paired on
            (env, D, variant, seed).
        obs_normalization: every job's observation normalisation instead of its preset's (an
            ablation; the command in the report names it).
        eval_actions: greedy or sampled fitness-rollout actions instead of the preset's (an
            ablation, as obs_normalization).
    """
    if baseline is not None and not (baseline / "hades.json").exists():
        raise SystemExit(f"error: --baseline {baseline}: no hades.json there")
    if out_dir is None:
        out_dir = Path("benchmarks/results") / ("hades_families" if scale == "families" else "")
    if report_only:
        others = {"--transfer": transfer, "--memory": memory, "--envs": envs, "--seed": seed,
                  "--generations": generations, "--variants": variants, "--seeds": seeds, "--resume": resume,
                  "--obs-normalization": obs_normalization, "--eval-actions": eval_actions}  # fmt: skip
        if used := [k for k, v in others.items() if v]:
            raise SystemExit(f"--report-only runs nothing: drop {', '.join(used)}")
        studies.write(rewrite_report, out_dir, scale, baseline)
        return
    sc = SCALES[scale]
    if seeds is not None:
        sc = dataclasses.replace(sc, seeds=seeds)
    if baseline is not None and sc.seeds < 2:
        raise SystemExit(
            f"error: --baseline pairs runs on seeds and needs 2 or more; this run has {sc.seeds} "
            "(set --seeds)"
        )
    jobs = [
        dataclasses.replace(
            j, dataset_size=j.dataset_size or hades_preset(j.env_id).dataset_size,
            generations=j.generations if generations is None else generations,
            variants=tuple(v for v in j.variants if not variants or v in variants),
        )
        for j in sc.jobs if not envs or j.env_id in envs
    ]  # fmt: skip
    jobs = [j for j in jobs if j.variants]
    if not jobs:
        raise SystemExit(
            f"no job left after --envs {envs} --variants {variants}; "
            f"jobs: {[(j.env_id, j.variants) for j in sc.jobs]}"
        )
    overrides: dict[str, Any] = {}
    if obs_normalization is not None:
        overrides["obs_normalization"] = obs_normalization
    if eval_actions is not None:
        overrides["deterministic_eval"] = eval_actions == "greedy"
    jobs = ablate(jobs, overrides)
    enable_compilation_cache()
    if memory:
        write_memory_report(out_dir, scale, [memory_estimate(j) for j in jobs])
        return
    t0 = time.time()
    rows, curves, transfer_rows = [], [], []

    def write() -> None:  # after every job: a run stopped early keeps its rows
        meta = studies.metadata(
            "benchmarks/hades.py", scale, None, time.time() - t0, seeds=sc.seeds, chunk=sc.chunk,
            eval_episodes=sc.eval_episodes, eval_inits=sc.eval_inits, jax_version=jax.__version__,
        )  # fmt: skip
        studies.write(atomic_write_csv, out_dir / "hades.csv", curves)
        if transfer_rows:
            studies.write(atomic_write_csv, out_dir / "hades_transfer.csv", transfer_rows)
        comparison = None if baseline is None else against_baseline(rows, baseline, scale)
        write_results(out_dir, meta, rows, transfer_rows, comparison)

    if resume:  # process 0 reads what an earlier run saved and sends it to the others
        rows, transfer_rows, curves = distributed.on_primary(saved_runs, out_dir, scale)
    done = {(r["env"], r["dataset_size"], r["variant"], r["seed"]) for r in rows}
    for job in jobs:
        for variant in job.variants:
            for s in range(seed, seed + sc.seeds):
                if (job.env_id, job.dataset_size, variant, s) in done:
                    continue
                row, curve, ctx = run_job(job, variant, s, sc, out_dir, resume)
                rows.append(row)
                curves += curve
                if transfer:
                    transfer_rows += transfer_rows_for(job, variant, s, ctx, sc)
                write()
    studies.show(out_dir / "hades.md")


if __name__ == "__main__":
    studies.cli(main)
