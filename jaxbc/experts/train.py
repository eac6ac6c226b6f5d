"""Driver for expert training: chunks of jitted PPO updates, a progress bar, checkpoints.

The compiled core is :func:`jaxbc.experts.ppo.make_ppo`; this module is the edge that
talks to the terminal and the file system.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import jax
import numpy as np

from jaxbc.experts.expert import Expert, expert_from_ppo
from jaxbc.experts.ppo import PPOConfig, make_ppo
from jaxbc.io import machine_description
from jaxbc.logs import Logger
from jaxbc.resumable import run_chunks
from jaxbc.rollout import evaluate, random_return
from jaxbc.validation import check_int


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
) -> Expert:
    """Train a PPO expert, evaluate it, and (if ``out``) save it with its metadata.

    With ``checkpoint_dir`` the PPO state is checkpointed after every chunk; ``resume=True``
    continues from the newest checkpoint and ends with the same state as an unbroken run.
    A checkpoint directory records the run's config and seed: resuming with other ones is
    refused unless ``allow_config_change`` (then the change is recorded in the expert's
    metadata, ``config_changes``), and a fresh run (no ``resume``) refuses a directory that
    already holds checkpoints.

    ``logger`` (:mod:`jaxbc.logs`) gets every update's metrics from inside the compiled
    chunks (``jax.debug.callback``); the caller closes it.
    """
    config.validate()
    check_int("seed", seed, 0)
    check_int("eval_episodes", eval_episodes, 1)
    check_int("num_chunks", num_chunks, 1)
    if resume and not checkpoint_dir:
        raise ValueError(
            "resume=True (--resume) needs a checkpoint_dir (--checkpoint-dir) to resume from"
        )
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
    state, done, resumed_from, changes = (
        driven.state,
        driven.done,
        driven.resumed_from,
        driven.changes,
    )
    last_return = last_returns[0]
    if logger is not None:
        jax.effects_barrier()  # every update's callback has run
    train_time = time.time() - t0

    if not all(
        bool(np.isfinite(np.asarray(x)).all()) for x in jax.tree.leaves(state.train_state.params)
    ):
        raise FloatingPointError(
            f"PPO on {config.env_id} diverged: the parameters are NaN/inf after {done} updates "
            f"(lr {config.lr}); nothing was saved"
        )
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
    expert = Expert(expert.config, expert.params, meta)
    if out:
        expert.save(out)
    return expert
