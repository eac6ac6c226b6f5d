"""``jaxbc hades``: distil an env into a few synthetic (state, action) pairs."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Literal

from jaxbc.cli_output import (
    ForceFlag,
    JsonFlag,
    atomic_directory,
    check_directory,
    check_logs,
    check_output,
    emit,
    open_logs,
    reject,
)
from jaxbc.validation import check_float, check_int

OUTPUT_FILES = ("distilled.npz", "curves.csv", "curves.png", "distilled.png", "result.json")


def hades(
    env: str,
    dataset_size: int | None = None,
    strategy: str = "SNES",
    population: int = 64,
    generations: int = 50,
    variant: Literal["F", "R"] = "F",
    inits: int | None = None,
    sigma: float | None = None,
    checkpoint_dir: Path | None = None,
    checkpoint_every: int = 10,
    resume: bool = False,
    allow_config_change: bool = False,
    out: Path | None = None,
    force: ForceFlag = False,
    seed: int = 0,
    inner_steps: int | None = None,
    hidden: tuple[int, ...] | None = None,
    eval_envs: int | None = None,
    eval_steps: int | None = None,
    fitness_episodes: Literal["first", "all"] | None = None,
    fitness_shaping: Literal["default", "raw", "centered_ranks", "z_score"] = "default",
    log_dir: Path | None = None,
    wandb_project: str | None = None,
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    distributed: bool = False,
    distributed_timeout: int = 300,
    json: JsonFlag = False,
) -> None:
    """HaDES behaviour distillation: evolve a synthetic dataset whose BC-trained policy
    scores well, then save it as a dataset file that `jaxbc bc` can train on.

    Args:
        env: environment id (see `jaxbc envs`).
        dataset_size: synthetic (state, action) pairs D (default: the preset's: 4 classic
            control, 16 MinAtar, 64 Brax; discrete actions need D >= the number of actions).
        strategy: any evosax algorithm name (SNES, Open_ES, CMA_ES, PGPE, SimpleGA, ...).
        population: ES population size, >= 2 (a multiple of the device count).
        generations: ES generations.
        variant: F (one fixed policy init) or R (fresh inits every generation).
        inits: policy inits per generation, variant R only (default 2).
        sigma: search std > 0 (default: the paper's for SNES 0.5 and Open_ES 0.03, else evosax's).
        checkpoint_dir: save resumable checkpoints here after every chunk (it records the
            run's config, strategy, population and seed).
        checkpoint_every: generations per chunk (one compiled scan; checkpoint after each).
        resume: continue from the newest checkpoint in checkpoint_dir (same settings).
        allow_config_change: with --resume, continue although the settings differ from the
            checkpointed run's; the change is recorded (result.json config_changes).
        out: output directory (default runs/hades/<env>); existing outputs there are not
            overwritten without --force.
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
        log_dir: write each generation's best/mean/std fitness after every chunk to
            DIR/metrics.csv and TensorBoard event files in DIR; an existing metrics.csv is
            not overwritten without --force (with --resume it is continued).
        wandb_project: also log them to this Weights & Biases project (needs the extra "wandb").
        coordinator_address: multi-process run: HOST:PORT of process 0's coordinator (with
            --num-processes and --process-id; every process runs the same command).
        num_processes: multi-process run: the number of processes.
        process_id: multi-process run: this process's index, 0 to num_processes - 1. Only
            process 0 writes checkpoints, outputs and logs.
        distributed: multi-process run with the coordinates read from the cluster (SLURM,
            TPU pod, MPI, Kubernetes), as jax.distributed.initialize() detects them.
        distributed_timeout: seconds to wait for the coordinator and the other processes.
    """
    from jaxbc.distributed import initialize

    if distributed_timeout != 300 and not (distributed or coordinator_address or num_processes):
        reject("--distributed-timeout", "applies only to a multi-process run")
    layout = initialize(  # before anything touches JAX's devices
        coordinator_address, num_processes, process_id, distributed, distributed_timeout
    )
    if inits is not None and variant != "R":
        reject(
            "--inits",
            f"applies to --variant R only (HaDES-F trains from one fixed init), not {variant}",
        )
    if resume and checkpoint_dir is None:
        reject("--resume", "needs --checkpoint-dir (the directory to resume from)")
    if allow_config_change and not resume:
        reject("--allow-config-change", "applies only with --resume")
    check_int("--population", population, 2)
    check_int("--generations", generations, 1)
    check_int("--checkpoint-every", checkpoint_every, 1)
    check_int("--seed", seed, 0)
    if population % layout.global_devices:
        reject(
            "--population",
            f"{population} is not a multiple of the {layout.global_devices} devices it is split "
            f"over ({layout.num_processes} process(es) x {layout.local_devices} local device(s))",
        )
    check_float("--sigma", sigma, 0.0, lo_open=True, allow_none=True)
    import jax

    from jaxbc.data import save_dataset
    from jaxbc.experts.expert import zoo_name
    from jaxbc.hades.core import hades_preset, solution_template
    from jaxbc.hades.outputs import distilled_dataset, plot_dataset, save_curves
    from jaxbc.hades.run import run_hades, run_seconds
    from jaxbc.hades.strategies import make_strategy, paper_strategy_options
    from jaxbc.io import atomic_write_json, command_line, machine_description

    overrides: dict = {"variant": variant}  # flags left out keep the preset's values
    if dataset_size is not None:
        overrides["dataset_size"] = dataset_size
    if inits is not None:
        overrides["num_inits"] = inits
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
    check_output(out, force, files=OUTPUT_FILES)
    check_directory(checkpoint_dir, "--checkpoint-dir")
    check_logs(log_dir, wandb_project, force, append=resume)
    dataset_size = config.dataset_size
    t0 = time.time()
    print(
        f"HaDES-{variant} on {env}: D={dataset_size}, {strategy} population {population}, {generations} generations",
        file=sys.stderr,
    )
    cli_settings = {
        "strategy": strategy,
        "sigma": sigma,
        "fitness_shaping": fitness_shaping,
        "seed": seed,
    }
    primary = layout.process_id == 0  # the only process that writes outputs and logs
    logger = (
        open_logs(log_dir, wandb_project, {**config.to_dict(), **cli_settings}, append=resume)
        if primary
        else None
    )
    try:
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
            settings={"cli": cli_settings},
            logger=logger,
        )
    finally:
        if logger is not None:
            logger.close()
    wall = run_seconds(result.history) or time.time() - t0  # across resumes where known
    ds = distilled_dataset(result.hades, result.state, "best")
    path = out / "distilled.npz"
    h = result.history
    res = {
        "env": env,
        "variant": variant,
        "strategy": strategy,
        "population": population,
        "dataset_size": dataset_size,
        "fitness_shaping": fitness_shaping,
        "generations": int(h["generation"][-1]) if len(h["generation"]) else 0,
        "final_best": float(h["best"][-1]) if len(h["best"]) else None,
        "final_mean": float(h["mean"][-1]) if len(h["mean"]) else None,
        "best_fitness": float(result.state.best_fitness),
        "resumed_from": result.resumed_from,
        "seed": seed,
        "wall_time_s": round(wall, 2),
        "command": command_line(),
        "machine": machine_description(),
        "processes": layout.to_dict(),
        "dataset": str(path),
        "curves": str(out / "curves.csv"),
        "out": str(out),
        "config": config.to_dict(),
        "config_changes": list(result.config_changes),
        **({"log_dir": str(log_dir)} if log_dir else {}),
    }
    if not primary:
        emit(res, json, f"process {layout.process_id}: done (process 0 writes the outputs)")
        return
    with atomic_directory(out) as tmp:
        save_dataset(ds, tmp / "distilled.npz")
        save_curves(
            result.history, tmp / "curves.csv", tmp / "curves.png", title=f"HaDES-{variant} {env}"
        )
        plot_dataset(ds, tmp / "distilled.png")
        atomic_write_json(tmp / "result.json", res)
    emit(
        res,
        json,
        f"HaDES-{variant} {env}: final population mean {res['final_mean']:.2f}, best {res['final_best']:.2f} "
        f"(best ever {res['best_fitness']:.2f}); distilled dataset {path}",
    )
