"""``jaxbc hades``: distil an env into a few synthetic (state, action) pairs. The command
parses its flags, runs :func:`jaxbc.hades.hades_experiment` and prints its report."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from jaxbc.cli_output import ForceFlag, JsonFlag, emit, library_args, reject
from jaxbc.distributed import ProcessLayout, initialize, is_primary

# the flags of `jaxbc hades` that place this process in a multi-process run (the benchmark
# scripts take them too, through jaxbc.studies)
PROCESS_FLAGS = (
    "coordinator_address",
    "num_processes",
    "process_id",
    "distributed",
    "distributed_timeout",
)


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
    fitness_episodes: Literal["first", "all", "last", "recent"] | None = None,
    eval_actions: Literal["greedy", "sampled"] | None = None,
    obs_normalization: Literal["none", "constant", "running"] | None = None,
    fitness_shaping: Literal[
        "default", "raw", "centered_ranks", "z_score", "ordinal_weights"
    ] = "default",
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
            control, 64 Brax, and for MinAtar the n * (16 // n) states the official D=16
            trains on, e.g. 15 for Breakout; discrete actions need D >= the number of actions).
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
        fitness_episodes: first (each env's first episode), all (every episode ending in
            the eval_steps window; less noisy for short episodes), last (each env's last
            finished episode) or recent (each env's most recently finished episode, averaged
            over the window's steps). Default: the preset's (Brax all, MinAtar recent).
        eval_actions: greedy (mode/mean) or sampled actions in the fitness rollouts.
            Default: the preset's (sampled for Brax and MinAtar, as the official code).
        obs_normalization: none, constant (the package's per-env moments) or running (the
            fitness rollout's moments so far); the synthetic states live in that space.
            Default: the preset's (MinAtar constant, Brax running, else none).
        fitness_shaping: default (the paper's for SNES/Open_ES, else the algorithm's own),
            raw, centered_ranks, z_score or ordinal_weights (the algorithm's rank weights by
            ordinal rank, ties broken by population order: the paper's SNES default).
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
    args = library_args(locals(), *PROCESS_FLAGS)
    # before anything touches JAX's devices
    join_processes(coordinator_address, num_processes, process_id, distributed, distributed_timeout)
    from jaxbc.hades.experiment import hades_experiment
    from jaxbc.io import command_line

    _, res = hades_experiment(**args, command=command_line())
    if not is_primary():
        emit(res, json, "HaDES: done on this process (process 0 writes the outputs)")
        return
    emit(
        res,
        json,
        f"HaDES-{variant} {env}: final population mean {res['final_mean']:.2f}, best {res['final_best']:.2f} "
        f"(best ever {res['best_fitness']:.2f}); distilled dataset {res['dataset']}",
    )


def join_processes(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    distributed: bool = False,
    distributed_timeout: int = 300,
) -> ProcessLayout:
    """Join the multi-process run that the process flags describe (none: one process;
    :func:`jaxbc.distributed.initialize`, before anything touches JAX's devices)."""
    if distributed_timeout != 300 and not (distributed or coordinator_address or num_processes):
        reject("--distributed-timeout", "applies only to a multi-process run")
    return initialize(
        coordinator_address, num_processes, process_id, distributed, distributed_timeout
    )
