"""``jaxbc hades``: distil an env into a few synthetic (state, action) pairs."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Literal

from jaxbc.cli_output import JsonFlag, emit


def hades(
    env: str,
    dataset_size: int = 4,
    strategy: str = "SNES",
    population: int = 64,
    generations: int = 50,
    variant: Literal["F", "R"] = "F",
    inits: int = 2,
    sigma: float | None = None,
    checkpoint_dir: Path | None = None,
    checkpoint_every: int = 10,
    resume: bool = False,
    out: Path | None = None,
    seed: int = 0,
    inner_steps: int | None = None,
    hidden: tuple[int, ...] | None = None,
    eval_envs: int | None = None,
    eval_steps: int | None = None,
    fitness_episodes: Literal["first", "all"] | None = None,
    fitness_shaping: Literal["default", "raw", "centered_ranks", "z_score"] = "default",
    json: JsonFlag = False,
) -> None:
    """HaDES behaviour distillation: evolve a synthetic dataset whose BC-trained policy
    scores well, then save it as a dataset file that `jaxbc bc` can train on.

    Args:
        env: environment id (see `jaxbc envs`).
        dataset_size: synthetic (state, action) pairs D.
        strategy: any evosax algorithm name (SNES, Open_ES, CMA_ES, PGPE, SimpleGA, ...).
        population: ES population size (a multiple of the device count).
        generations: ES generations.
        variant: F (one fixed policy init) or R (fresh inits every generation).
        inits: policy inits per generation for variant R.
        sigma: search std (default: the paper's for SNES 0.5 and Open_ES 0.03, else evosax's).
        checkpoint_dir: save resumable checkpoints here after every chunk.
        checkpoint_every: generations per chunk (one compiled scan; checkpoint after each).
        resume: continue from the newest checkpoint in checkpoint_dir.
        out: output directory (default runs/hades/<env>).
        seed: PRNG seed.
        inner_steps: BC steps of the inner loop (default: the env family's preset).
        hidden: policy hidden widths (default: the preset's).
        eval_envs: envs per fitness evaluation (default: the preset's).
        eval_steps: rollout steps per fitness evaluation (default: the env's episode limit).
        fitness_episodes: first (each env's first episode) or all (every episode ending in
            the eval_steps window; the paper's, less noisy for short episodes). Default: the
            preset's.
        fitness_shaping: default (the paper's for SNES/Open_ES, else the algorithm's own),
            raw, centered_ranks or z_score.
    """
    import jax

    from jaxbc.data import save_dataset
    from jaxbc.experts.expert import zoo_name
    from jaxbc.hades.core import hades_preset, solution_template
    from jaxbc.hades.outputs import distilled_dataset, plot_dataset, save_curves
    from jaxbc.hades.run import run_hades
    from jaxbc.hades.strategies import make_strategy, paper_strategy_options
    from jaxbc.io import atomic_write_json

    overrides: dict = {"dataset_size": dataset_size, "variant": variant, "num_inits": inits}
    if inner_steps is not None:
        overrides["inner_steps"] = inner_steps
    if eval_envs is not None:
        overrides["num_envs"] = eval_envs
    if eval_steps is not None:
        overrides["eval_steps"] = eval_steps
    if fitness_episodes is not None:
        overrides["fitness_episodes"] = fitness_episodes
    config = hades_preset(env, **overrides)
    if hidden is not None:
        config = dataclasses.replace(config, policy=dataclasses.replace(config.policy, hidden_sizes=tuple(hidden)))
    options = paper_strategy_options(strategy, population)
    if sigma is not None:
        options["sigma"] = sigma
    if fitness_shaping != "default":
        options["fitness_shaping"] = fitness_shaping
    es = make_strategy(strategy, population, solution_template(config), **options)
    out = out or Path("runs/hades") / zoo_name(env)
    t0 = time.time()
    print(f"HaDES-{variant} on {env}: D={dataset_size}, {strategy} population {population}, {generations} generations", file=sys.stderr)
    result = run_hades(
        config, es, jax.random.key(seed), generations, checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every, resume=resume, progress=True,
    )
    wall = time.time() - t0
    ds = distilled_dataset(result.hades, result.state, "best")
    path = save_dataset(ds, Path(out) / "distilled.npz")
    save_curves(result.history, Path(out) / "curves.csv", Path(out) / "curves.png", title=f"HaDES-{variant} {env}")
    plot_dataset(ds, Path(out) / "distilled.png")
    h = result.history
    res = {
        "env": env, "variant": variant, "strategy": strategy, "population": population,
        "dataset_size": dataset_size, "fitness_shaping": fitness_shaping, "generations": int(h["generation"][-1]) if len(h["generation"]) else 0,
        "final_best": float(h["best"][-1]) if len(h["best"]) else None,
        "final_mean": float(h["mean"][-1]) if len(h["mean"]) else None,
        "best_fitness": float(result.state.best_fitness),
        "resumed_from": result.resumed_from, "seed": seed, "wall_time_s": round(wall, 2),
        "dataset": str(path), "curves": str(Path(out) / "curves.csv"), "out": str(out),
        "config": config.to_dict(),
    }
    atomic_write_json(Path(out) / "result.json", res)
    emit(res, json, f"HaDES-{variant} {env}: final population mean {res['final_mean']:.2f}, best {res['final_best']:.2f} "
          f"(best ever {res['best_fitness']:.2f}); distilled dataset {path}")
