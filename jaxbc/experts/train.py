"""Driver for expert training: chunks of jitted PPO updates, a progress bar, checkpoints,
live logs, and the expert saved atomically.

The compiled core is :func:`jaxbc.experts.ppo.make_ppo`; this module is the edge that
talks to the terminal and the file system.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import jax
import numpy as np

from jaxbc.artifact import FILES as ARTIFACT_FILES
from jaxbc.experts.expert import Expert, expert_from_ppo
from jaxbc.experts.ppo import PPOConfig, make_ppo
from jaxbc.io import atomic_directory, check_directory, check_output, machine_description
from jaxbc.logs import Logger, MultiLogger, check_logs, open_logs
from jaxbc.resumable import run_chunks
from jaxbc.rollout import evaluate, random_return
from jaxbc.training import check_finite
from jaxbc.validation import ConfigError, check_int


def train_expert(
    config: PPOConfig,
    seed: int = 0,
    out: str | Path | None = None,
    eval_episodes: int = 100,
    num_chunks: int = 50,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    command: str | None = None,
    allow_config_change: bool = False,
    logger: Logger | None = None,
    force: bool = False,
    log_dir: str | Path | None = None,
    wandb_project: str | None = None,
) -> Expert:
    """Train a PPO expert, evaluate it, and (if ``out``) save it with its metadata
    (atomically; an expert already there is not overwritten without ``force``).

    With ``checkpoint_dir`` the PPO state is checkpointed after every chunk; ``resume=True``
    continues from the newest checkpoint and ends with the same state as an unbroken run.
    A checkpoint directory records the run's config and seed: resuming with other ones is
    refused unless ``allow_config_change`` (then the change is recorded in the expert's
    metadata, ``config_changes``), and a fresh run (no ``resume``) refuses a directory that
    already holds checkpoints.

    ``logger`` (:mod:`jaxbc.logs`) gets every update's metrics from inside the compiled
    chunks (``jax.debug.callback``) and the final ``eval_return``; the caller closes it.
    ``log_dir`` / ``wandb_project`` add CSV + TensorBoard files there / a wandb run, opened
    and closed here (an existing ``metrics.csv`` is continued with ``resume``, else not
    overwritten without ``force``). Paths and settings are checked before any work.
    """
    config.validate()
    check_int("seed", seed, 0)
    check_int("eval_episodes", eval_episodes, 1)
    check_int("num_chunks", num_chunks, 1)
    if resume and not checkpoint_dir:
        raise ValueError(
            "resume=True (--resume) needs a checkpoint_dir (--checkpoint-dir) to resume from"
        )
    if allow_config_change and not resume:
        raise ConfigError(
            "allow_config_change applies only with resume=True (--resume)", "allow_config_change"
        )
    check_output(out, force, files=ARTIFACT_FILES)
    check_directory(checkpoint_dir, "checkpoint_dir")
    check_logs(log_dir, wandb_project, force, append=resume)
    log_config = {**config.to_dict(), "seed": seed}
    with open_logs(log_dir, wandb_project, log_config, append=resume) as files:
        sinks = [x for x in (logger, files) if x is not None]
        expert = _train(
            config,
            seed,
            eval_episodes,
            num_chunks,
            checkpoint_dir,
            resume,
            progress,
            command,
            allow_config_change,
            MultiLogger(*sinks) if sinks else None,
        )
    if out:
        with atomic_directory(out) as tmp:
            expert.save(tmp)
    return expert


def _train(
    config: PPOConfig,
    seed: int,
    eval_episodes: int,
    num_chunks: int,
    checkpoint_dir: str | Path | None,
    resume: bool,
    progress: bool,
    command: str | None,
    allow_config_change: bool,
    logger: Logger | None,
) -> Expert:
    settings = {
        "config": config.to_dict(),
        "seed": seed,
    }  # what decides the result (not the chunking)
    ppo = make_ppo(config, progress=logger.log if logger is not None else None)
    total = config.num_updates
    init = jax.jit(ppo.init)

    def run_chunk(state, length):
        return jax.lax.scan(lambda s, _: ppo.update(s), state, None, length=length)

    run_chunk = jax.jit(run_chunk, static_argnums=1)
    t0 = time.time()
    last_returns = [float("nan")]

    def on_chunk(done: int, n: int, metrics: dict, history: dict) -> dict:
        rets = np.asarray(metrics["episode_return"])
        rets = rets[~np.isnan(rets)]
        if rets.size:
            last_returns[0] = float(rets[-1])
        steps = (done + n) * config.steps_per_update
        return {"ret": f"{last_returns[0]:.1f}", "steps": f"{steps:.2e}"}

    driven = run_chunks(
        lambda: init(jax.random.key(seed)),
        total,
        max(1, math.ceil(total / num_chunks)),
        run_chunk,
        on_chunk=on_chunk,
        checkpoint_dir=checkpoint_dir or None,
        settings=settings,
        resume=resume,
        allow_config_change=allow_config_change,
        what="PPO run",
        progress=progress,
        desc=f"PPO {config.env_id}",
        unit="upd",
    )
    state, resumed_from, changes = driven.state, driven.resumed_from, driven.changes
    last_return = last_returns[0]
    if logger is not None:
        jax.effects_barrier()  # every update's callback has run
    train_time = time.time() - t0

    check_finite(state.train_state.params, f"PPO on {config.env_id} (lr {config.lr})")
    expert = expert_from_ppo(state, config)
    env = ppo.env
    k_eval, k_rand = jax.random.split(jax.random.key(seed + 10_000))
    ev = evaluate(env, expert.policy_fn(True, env), expert.params, k_eval, eval_episodes)
    rnd = random_return(env, k_rand, eval_episodes)
    if logger is not None:
        logger.log(total, {"eval_return": float(ev.mean_return)})
    meta = {
        "algorithm": "ppo",
        "seed": seed,
        "env_steps": total * config.steps_per_update,
        "wall_time_s": round(train_time, 1),
        "machine": machine_description(),
        "mean_return": float(ev.mean_return),
        "std_return": float(ev.std_return),
        "eval_episodes": eval_episodes,
        "eval_policy": "deterministic",
        "random_return": float(rnd.mean_return),
        "final_train_return": last_return if math.isfinite(last_return) else None,
        "jax_version": jax.__version__,
    }
    if command:
        meta["command"] = command
    if resumed_from:
        meta["resumed_from_update"] = resumed_from
    if changes:
        meta["config_changes"] = changes
    return Expert(expert.config, expert.params, meta)
