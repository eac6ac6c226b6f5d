"""One HaDES experiment end to end, as ``jaxbc hades`` runs it: the env family's preset with
the settings given -> an evosax strategy -> the resumable run with live logs -> the distilled
dataset, its curves and plots and a ``result.json`` written atomically into one directory."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from pathlib import Path

import jax

from jaxbc import distributed
from jaxbc.data import save_dataset
from jaxbc.experts.expert import zoo_name
from jaxbc.hades.core import hades_preset, solution_template
from jaxbc.hades.outputs import distilled_dataset, plot_dataset, save_curves
from jaxbc.hades.run import HadesRun, run_hades, run_seconds
from jaxbc.hades.strategies import make_strategy, paper_strategy_options
from jaxbc.io import (
    atomic_directory,
    atomic_write_json,
    check_directory,
    check_output,
    machine_description,
)
from jaxbc.logs import check_logs, open_logs
from jaxbc.validation import ConfigError, check_float, check_int

OUTPUT_FILES = ("distilled.npz", "curves.csv", "curves.png", "distilled.png", "result.json")


def hades_experiment(
    env: str,
    dataset_size: int | None = None,
    strategy: str = "SNES",
    population: int = 64,
    generations: int = 50,
    variant: str = "F",
    inits: int | None = None,
    sigma: float | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 10,
    resume: bool = False,
    allow_config_change: bool = False,
    out: str | Path | None = None,
    force: bool = False,
    seed: int = 0,
    inner_steps: int | None = None,
    hidden: tuple[int, ...] | None = None,
    eval_envs: int | None = None,
    eval_steps: int | None = None,
    fitness_episodes: str | None = None,
    eval_actions: str | None = None,
    obs_normalization: str | None = None,
    fitness_shaping: str = "default",
    log_dir: str | Path | None = None,
    wandb_project: str | None = None,
    command: str | None = None,
) -> tuple[HadesRun, dict]:
    """Distil ``env`` with HaDES-``variant`` and write :data:`OUTPUT_FILES` into ``out``
    (default ``runs/hades/<env>``; existing outputs are not overwritten without ``force``).

    Settings left ``None`` keep :func:`~jaxbc.hades.hades_preset`'s (``inits``: variant R's
    ``num_inits``; ``eval_envs``: ``num_envs``; ``eval_actions`` greedy/sampled:
    ``deterministic_eval``); ``sigma`` and ``fitness_shaping`` default to the paper's for
    SNES and Open_ES (:func:`~jaxbc.hades.paper_strategy_options`). Checkpoints, resuming
    and ``allow_config_change`` as in :func:`~jaxbc.hades.run_hades`; ``log_dir`` /
    ``wandb_project``: each generation's fitness live. ``command`` is recorded in
    ``result.json`` with the machine and wall time. Returns the run and that report."""
    if inits is not None and variant != "R":
        raise ConfigError(
            f"inits applies to variant R only (HaDES-F trains from one fixed init), not {variant}",
            "inits",
        )
    if resume and checkpoint_dir is None:
        raise ConfigError(
            "resume needs a checkpoint_dir (--checkpoint-dir) to resume from", "resume"
        )
    if allow_config_change and not resume:
        raise ConfigError(
            "allow_config_change applies only with resume=True (--resume)", "allow_config_change"
        )
    check_int("population", population, 2)
    check_int("generations", generations, 1)
    check_int("checkpoint_every", checkpoint_every, 1)
    check_int("seed", seed, 0)
    check_float("sigma", sigma, 0.0, lo_open=True, allow_none=True)
    processes = distributed.layout()
    if population % processes.global_devices:
        raise ConfigError(
            f"population {population} is not a multiple of the {processes.global_devices} "
            f"devices it is split over ({processes.num_processes} process(es) x "
            f"{processes.local_devices} local device(s))",
            "population",
        )
    primary = processes.process_id == 0  # the one process that reads and writes files
    settings = {  # flags left out keep the preset's values
        "dataset_size": dataset_size,
        "num_inits": inits,
        "inner_steps": inner_steps,
        "num_envs": eval_envs,
        "eval_steps": eval_steps,
        "fitness_episodes": fitness_episodes,
        "deterministic_eval": None if eval_actions is None else eval_actions == "greedy",
        "obs_normalization": obs_normalization,
    }
    overrides = {k: v for k, v in settings.items() if v is not None}
    config = hades_preset(env, variant=variant, **overrides)
    if hidden is not None:
        config = dataclasses.replace(
            config, policy=dataclasses.replace(config.policy, hidden_sizes=tuple(hidden))
        )
    options = paper_strategy_options(strategy, population)
    if sigma is not None:
        options["sigma"] = sigma
    if fitness_shaping != "default":
        options["fitness_shaping"] = fitness_shaping
    es = make_strategy(strategy, population, solution_template(config), **options)
    out = Path(out or Path("runs/hades") / zoo_name(env))
    if primary:
        check_output(out, force, files=OUTPUT_FILES)
        check_directory(checkpoint_dir, "checkpoint_dir")
        check_logs(log_dir, wandb_project, force, append=resume)
    t0 = time.time()
    print(
        f"HaDES-{variant} on {env}: D={config.dataset_size}, {strategy} population {population}, "
        f"{generations} generations",
        file=sys.stderr,
    )
    # recorded in the checkpoint directory under "cli" (the key resumed runs compare)
    run_options = {
        "strategy": strategy,
        "sigma": sigma,
        "fitness_shaping": fitness_shaping,
        "seed": seed,
    }
    log_config = {**config.to_dict(), **run_options}
    logs = (
        open_logs(log_dir, wandb_project, log_config, append=resume)
        if primary
        else contextlib.nullcontext(None)
    )
    with logs as logger:
        result = run_hades(
            config,
            es,
            jax.random.key(seed),
            generations,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every,
            resume=resume,
            progress=True,
            allow_config_change=allow_config_change,
            settings={"cli": run_options},
            logger=logger,
        )
    wall = run_seconds(result.history) or time.time() - t0  # across resumes where known
    ds = distilled_dataset(result.hades, result.state, "best")
    h = result.history
    report = {
        "env": env,
        "variant": variant,
        "strategy": strategy,
        "population": population,
        "dataset_size": config.dataset_size,
        "fitness_shaping": fitness_shaping,
        "generations": int(h["generation"][-1]) if len(h["generation"]) else 0,
        "final_best": float(h["best"][-1]) if len(h["best"]) else None,
        "final_mean": float(h["mean"][-1]) if len(h["mean"]) else None,
        "best_fitness": float(result.state.best_fitness),
        "resumed_from": result.resumed_from,
        "seed": seed,
        "wall_time_s": round(wall, 2),
        "command": command,
        "machine": machine_description(),
        "processes": processes.to_dict(),
        "dataset": str(out / "distilled.npz"),
        "curves": str(out / "curves.csv"),
        "out": str(out),
        "config": config.to_dict(),
        "config_changes": list(result.config_changes),
        **({"log_dir": str(log_dir)} if log_dir else {}),
    }
    if not primary:
        return result, report
    with atomic_directory(out) as tmp:
        save_dataset(ds, tmp / "distilled.npz")
        save_curves(h, tmp / "curves.csv", tmp / "curves.png", title=f"HaDES-{variant} {env}")
        plot_dataset(ds, tmp / "distilled.png")
        atomic_write_json(tmp / "result.json", report)
    return result, report
