"""One DAgger experiment end to end, as ``jaxbc dagger`` runs it: an expert (zoo id or
directory) -> demonstrations -> the compiled DAgger loop with live logs -> per-iteration
returns and scaled returns, and the final learner saved atomically."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import numpy as np

from jaxbc.artifact import FILES as ARTIFACT_FILES
from jaxbc.bc import BCConfig, PolicyConfig, method_config
from jaxbc.bc.evaluation import reference_returns
from jaxbc.dagger.core import DAggerConfig, DAggerResult, make_dagger
from jaxbc.data import collect
from jaxbc.experts import teacher
from jaxbc.io import atomic_directory, check_output
from jaxbc.logs import check_logs, open_logs
from jaxbc.rollout import scaled_return
from jaxbc.training import check_finite
from jaxbc.validation import ConfigError, check_int

DAGGER_METHODS = ("bc", "ensemble", "swarm")


def dagger_experiment(
    env: str,
    iterations: int = 10,
    steps_per_iteration: int = 2000,
    demo_episodes: int = 1,
    expert: str | Path | None = None,
    method: str = "bc",
    members: int | None = None,
    tau: float | None = None,
    beta: str = "linear",
    beta0: float = 1.0,
    beta_decay: float | None = None,
    gate_threshold: float | None = None,
    bc_steps: int = 1000,
    batch_size: int = 256,
    hidden: tuple[int, ...] = (256, 256),
    num_envs: int = 16,
    warm_start: bool = False,
    eval_episodes: int = 10,
    seed: int = 0,
    out: str | Path | None = None,
    force: bool = False,
    log_dir: str | Path | None = None,
    wandb_project: str | None = None,
) -> tuple[DAggerResult, dict]:
    """DAgger on ``env`` with ``expert`` (an expert directory or zoo id; default the zoo
    expert of ``env``) as the teacher, starting from ``demo_episodes`` expert episodes; the
    learner is ``method`` (bc, ensemble or swarm: :func:`~jaxbc.bc.method_config`). The
    other arguments are :class:`DAggerConfig`'s (``beta`` its schedule, ``beta_decay``
    default 0.5 for the exponential one only; ``gate_threshold`` needs an ensemble).

    Scaled returns are against the teacher's own recorded returns when ``expert`` is given,
    else the zoo's. ``out``: save the final learner there (not overwritten without
    ``force``); ``log_dir`` / ``wandb_project``: each iteration's metrics live.
    Returns the loop's result and a report with one row per iteration (0: plain BC)."""
    m = method_config(method, members, tau, methods=DAGGER_METHODS)
    if beta_decay is not None and beta != "exponential":
        raise ConfigError(f"beta_decay applies to beta exponential only, not {beta}", "beta_decay")
    if gate_threshold is not None and m.members < 2:
        raise ConfigError(
            "gate_threshold needs an ensemble learner (method ensemble or swarm)", "gate_threshold"
        )
    check_int("demo_episodes", demo_episodes, 1)
    check_int("seed", seed, 0)
    cfg = DAggerConfig(
        bc=BCConfig(
            policy=PolicyConfig(hidden_sizes=tuple(hidden)),
            members=m.members,
            steps=bc_steps,
            batch_size=batch_size,
        ),
        iterations=iterations,
        steps_per_iteration=steps_per_iteration,
        num_envs=num_envs,
        beta_schedule=beta,
        beta0=beta0,
        beta_decay=0.5 if beta_decay is None else beta_decay,
        warm_start=warm_start,
        gate_threshold=gate_threshold,
        eval_episodes=eval_episodes,
    )
    check_output(out, force, files=ARTIFACT_FILES)
    check_logs(log_dir, wandb_project, force)
    ex = teacher(env, expert)
    e = ex.make_env()
    k_demo, k_run = jax.random.split(jax.random.key(seed))
    data = collect(ex, e, demo_episodes, k_demo)
    print(
        f"DAgger on {env}: {iterations} iterations x {steps_per_iteration} steps (compiling...)",
        file=sys.stderr,
    )
    t0 = time.time()
    config_log = {"env": env, "method": method, "tau": m.tau, "seed": seed}
    with open_logs(log_dir, wandb_project, config_log) as logger:
        run = make_dagger(cfg, m.loss(), env=e, progress=logger.log if logger else None)
        res = jax.device_get(jax.jit(run)(k_run, ex, data))
    wall = time.time() - t0
    check_finite(res.learner.params["net"], "DAgger's learner")
    if expert is not None and "mean_return" in ex.meta and "random_return" in ex.meta:
        expert_ret, random_ret = float(ex.meta["mean_return"]), float(ex.meta["random_return"])
    else:
        expert_ret, random_ret = reference_returns(env)
    rows = [
        {
            "iteration": k,
            "return": float(res.returns[k]),
            "scaled_return": scaled_return(float(res.returns[k]), random_ret, expert_ret),
            "dataset_size": int(res.dataset_size[k]),
            "expert_queries": int(res.expert_queries[k]),
            "train_loss": float(res.train_loss[k]),
            "beta": float(res.beta[k]),
        }
        for k in range(iterations + 1)
    ]
    if out:
        with atomic_directory(out) as tmp:
            res.learner.save(tmp)
    report = {
        "env": env,
        "expert": str(expert) if expert is not None else f"zoo:{env}",
        "method": method,
        "members": m.members,
        "tau": m.tau,
        "gated": gate_threshold is not None,
        "iterations": rows,
        "returns": [r["return"] for r in rows],
        "final_return": rows[-1]["return"],
        "final_scaled_return": rows[-1]["scaled_return"],
        "bc_return": rows[0]["return"],
        "total_expert_queries": int(np.sum(res.expert_queries)),
        "expert_return": expert_ret,
        "random_return": random_ret,
        "wall_time_s": round(wall, 1),
        "seed": seed,
        **({"out": str(out)} if out else {}),
        **({"log_dir": str(log_dir)} if log_dir else {}),
    }
    return res, report
