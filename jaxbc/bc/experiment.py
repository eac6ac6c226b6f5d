"""One BC experiment end to end, as ``jaxbc bc`` runs it: a dataset file -> a named method
(:mod:`jaxbc.bc.methods`; DBC pretrains its diffusion model first if none is given) ->
training with live logs -> evaluation on the dataset's env -> the saved policy and a report.

Every argument, the output paths and the log directory are checked before any work; a
diverged model is refused (nothing saved); the policy directory is written atomically.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import jax

from jaxbc import envs
from jaxbc.artifact import FILES as ARTIFACT_FILES
from jaxbc.bc.evaluation import evaluate_bc
from jaxbc.bc.methods import method_config
from jaxbc.bc.policies import PolicyConfig
from jaxbc.bc.train import BCConfig, BCResult, make_bc_train
from jaxbc.data import Dataset, load_demos
from jaxbc.diffusion import DiffusionConfig, DiffusionModel, check_continuous, make_diffusion_train
from jaxbc.diffusion import load as load_diffusion
from jaxbc.io import atomic_directory, check_output
from jaxbc.logs import ProgressLogger, check_logs, open_logs
from jaxbc.training import check_finite
from jaxbc.validation import ConfigError, check_int


def bc_config(
    dataset: Dataset,
    policy: str = "auto",
    hidden: tuple[int, ...] | None = None,
    members: int = 1,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
) -> BCConfig:
    """The dataset's stored recipe (HaDES's distilled data: full-batch BC, no z-scoring) if
    it has one, else the defaults (5000 steps, batch 256, lr 1e-3, 2x256); then the settings
    given. ``policy``: auto (categorical for discrete actions, deterministic for continuous),
    or a head that must fit the dataset's actions."""
    if policy == "categorical" and not dataset.discrete:
        raise ConfigError(
            f"policy categorical needs discrete actions; {dataset.env_id} has {dataset.action_space}",
            "policy",
        )
    if policy in ("deterministic", "gaussian") and dataset.discrete:
        raise ConfigError(
            f"policy {policy} needs continuous actions; {dataset.env_id} has "
            f"{dataset.action_space} (use categorical)",
            "policy",
        )
    base = BCConfig.from_recipe(dataset) or BCConfig(
        policy=PolicyConfig(hidden_sizes=(256, 256)), steps=5000, batch_size=256, lr=1e-3
    )
    pol = base.policy
    if hidden is not None:
        pol = dataclasses.replace(pol, hidden_sizes=tuple(hidden))
    if policy != "auto":
        pol = dataclasses.replace(pol, kind=policy)
    given = (("steps", steps), ("batch_size", batch_size), ("lr", lr))
    changes = {k: v for k, v in given if v is not None}
    if batch_size is not None and base.full_batch:
        changes["full_batch"] = False  # a minibatch size was asked for
    return dataclasses.replace(base, policy=pol, members=members, **changes)


def bc_experiment(
    dataset: Dataset | str | Path,
    method: str = "bc",
    members: int | None = None,
    tau: float | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    hidden: tuple[int, ...] | None = None,
    policy: str = "auto",
    episodes: int | None = None,
    seed: int = 0,
    eval_episodes: int = 20,
    out: str | Path | None = None,
    force: bool = False,
    diffusion: DiffusionModel | str | Path | None = None,
    lambda_dm: float | None = None,
    diffusion_steps: int | None = None,
    progress: bool = True,
    log_dir: str | Path | None = None,
    wandb_project: str | None = None,
) -> tuple[BCResult, dict]:
    """Train ``method`` (bc, ensemble, swarm, dbc: :func:`~jaxbc.bc.methods.method_config`)
    on ``dataset`` (the first ``episodes`` episodes), evaluate it over ``eval_episodes``
    episodes of the dataset's env and save it to ``out`` (not overwritten without ``force``).

    dbc trains one policy with ``diffusion`` (a model or a directory saved by
    :func:`jaxbc.diffusion.save`), or first pretrains one for ``diffusion_steps`` (default
    10000) on the dataset. The scaled return is against a real expert only (the zoo's, or the
    dataset's if it holds expert demonstrations), else ``None``. ``progress``: a bar on
    stderr; ``log_dir`` / ``wandb_project``: live metrics every 1% of the steps.

    Returns the trained result and a report (returns, action differences, losses, timings).
    """
    m = method_config(method, members, tau, lambda_dm)
    for name, value in (("diffusion", diffusion), ("diffusion_steps", diffusion_steps)):
        if value is not None and method != "dbc":
            raise ConfigError(f"{name} applies to method dbc only, not {method}", name)
    if diffusion is not None and diffusion_steps is not None:
        raise ConfigError(
            "diffusion_steps trains a new diffusion model, so it does not apply with diffusion",
            "diffusion_steps",
        )
    check_int("seed", seed, 0)
    check_int("eval_episodes", eval_episodes, 1)
    ds = load_demos(dataset, episodes)
    cfg = bc_config(ds, policy, hidden, m.members, steps, batch_size, lr)
    model = None
    if method == "dbc":
        check_continuous(ds)
        model = load_diffusion(diffusion) if isinstance(diffusion, str | Path) else diffusion
        if model is not None and model.env_id and model.env_id != ds.env_id:
            where = f" {str(diffusion)!r}" if isinstance(diffusion, str | Path) else ""
            raise ConfigError(
                f"diffusion{where} was trained on {model.env_id}, not on {ds.env_id}", "diffusion"
            )
        diff_cfg = DiffusionConfig(steps=10_000 if diffusion_steps is None else diffusion_steps)
    check_output(out, force, files=ARTIFACT_FILES)
    check_logs(log_dir, wandb_project, force)
    env = envs.make(ds.env_id, **dict(ds.env_options))
    ds.check_env(env)  # a dataset whose metadata was edited to another env is refused here

    t0 = time.time()
    k_train, k_eval = jax.random.split(jax.random.key(seed))
    if method == "dbc" and model is None:
        k_train, k_diff = jax.random.split(k_train)
        if progress:
            print(f"training a diffusion model for {diff_cfg.steps} steps first", file=sys.stderr)
        model = jax.jit(make_diffusion_train(diff_cfg))(k_diff, ds)
        check_finite(model.params, "diffusion pretraining")
    # the bar and logs are fed from inside the compiled scan every 1% of the steps; no
    # progress and no logs add nothing to the program
    bar = ProgressLogger(cfg.steps, f"bc {method}") if progress else None
    with open_logs(log_dir, wandb_project, {"method": method, **cfg.to_dict()}, bar) as logger:
        every = max(1, cfg.steps // 100)
        report = {"progress": logger.log, "progress_every": every} if logger else {}

        def train(key, data, model):  # the model is an argument, not a compiled-in constant
            return make_bc_train(cfg, m.loss(model), **report)(key, data)

        if progress:
            print(
                f"training {method} ({m.members} member(s)) for {cfg.steps} steps on {ds.size} transitions",
                file=sys.stderr,
            )
        result = jax.block_until_ready(jax.jit(train)(k_train, ds, model))
    train_s = time.time() - t0
    check_finite(result.params["net"], f"{method} training")
    ev = evaluate_bc(result, k_eval, eval_episodes, dataset=ds, env=env)
    if out:
        with atomic_directory(out) as tmp:
            result.save(tmp)
    res = {
        "env": ds.env_id,
        "method": method,
        "members": m.members,
        "tau": m.tau,
        "steps": cfg.steps,
        "demo_episodes": ds.num_episodes,
        "transitions": ds.size,
        "seed": seed,
        "final_loss": float(result.metrics["bc_loss"][-1]),
        "train_time_s": round(train_s, 2),
        **ev,
        **({"out": str(out)} if out else {}),
        **({"log_dir": str(log_dir)} if log_dir else {}),
    }
    if method == "dbc":
        res.update(lambda_dm=m.lambda_dm, final_dm_loss=float(result.metrics["dm_loss"][-1]))
    return result, res
