"""The ``jaxbc`` command line (tyro). With ``--json`` the last stdout line is one JSON object
(on failure ``{"error": {"type": ..., "message": ...}}``, exit status 2); progress bars and
logs go to stderr.

Every command checks its arguments, flags that would have no effect, and its output paths
before any work starts, and writes its outputs atomically only when the run succeeded."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

import tyro

from jaxbc.artifact import FILES as ARTIFACT_FILES
from jaxbc.cli_minari import export_minari, import_minari
from jaxbc.cli_output import (
    ForceFlag,
    JsonFlag,
    UsageError,
    atomic_directory,
    check_directory,
    check_logs,
    check_output,
    open_logs,
    reject,
)
from jaxbc.cli_output import emit as _emit
from jaxbc.cli_output import table as _table
from jaxbc.hades.cli import hades
from jaxbc.validation import check_float, check_int


def envs(json: JsonFlag = False) -> None:
    """List the known environment ids per family."""
    from jaxbc.envs import list_envs

    families = {k: list(v) for k, v in list_envs().items()}
    text = "\n".join(f"{fam}:\n  " + "\n  ".join(ids) for fam, ids in families.items())
    _emit(families, json, text)


def experts(json: JsonFlag = False) -> None:
    """List the experts committed in the package with their measured returns."""
    from jaxbc.experts import zoo_table

    rows = zoo_table()
    cols = [
        "env",
        "mean_return",
        "std_return",
        "random_return",
        "env_steps",
        "wall_time_s",
        "machine",
    ]
    _emit({"experts": rows}, json, _table(rows, cols))


def train_expert(
    env: str,
    out: Path | None = None,
    steps: int | None = None,
    seed: int = 0,
    num_envs: int | None = None,
    lr: float | None = None,
    backend: str | None = None,
    eval_episodes: int = 100,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    allow_config_change: bool = False,
    force: ForceFlag = False,
    log_dir: Path | None = None,
    wandb_project: str | None = None,
    json: JsonFlag = False,
) -> None:
    """Train a PPO expert with the env's preset recipe (overrides optional) and save it.

    Args:
        env: environment id (see `jaxbc envs`).
        out: output directory (default runs/experts/<env>); an existing expert there is not
            overwritten without --force.
        steps: total environment steps (default: the preset's).
        seed: PRNG seed.
        num_envs: parallel environments (default: the preset's).
        lr: learning rate (default: the preset's).
        backend: Brax backend (positional, spring, generalized, mjx).
        eval_episodes: episodes for the final deterministic evaluation.
        checkpoint_dir: save resumable checkpoints here after every chunk (it records the
            run's config and seed).
        resume: continue from the newest checkpoint in checkpoint_dir (same config and seed).
        allow_config_change: with --resume, continue although the config or seed differ from
            the checkpointed run's; the change is recorded in the expert's artifact.json (config_changes).
        log_dir: write every PPO update's metrics (episode_return, pg_loss, v_loss, entropy,
            approx_kl, ...) live to DIR/metrics.csv and TensorBoard event files in DIR, and
            the final evaluation as eval_return; an existing metrics.csv is not overwritten
            without --force (with --resume it is continued).
        wandb_project: also log them to this Weights & Biases project (needs the extra "wandb").
    """
    from jaxbc.envs import BRAX_BACKENDS
    from jaxbc.experts import preset
    from jaxbc.experts import train_expert as run
    from jaxbc.experts.expert import zoo_name
    from jaxbc.io import command_line

    if resume and checkpoint_dir is None:
        reject("--resume", "needs --checkpoint-dir (the directory to resume from)")
    if allow_config_change and not resume:
        reject("--allow-config-change", "applies only with --resume")
    check_int("--seed", seed, 0)
    check_int("--eval-episodes", eval_episodes, 1)
    overrides: dict[str, Any] = {}
    if steps is not None:
        overrides["total_timesteps"] = steps
    if num_envs is not None:
        overrides["num_envs"] = num_envs
    if lr is not None:
        overrides["lr"] = lr
    if backend is not None:
        if not env.startswith("brax/"):
            reject("--backend", f"applies only to Brax envs, not {env}")
        if backend not in BRAX_BACKENDS:
            reject("--backend", f"must be one of {', '.join(BRAX_BACKENDS)}; got {backend!r}")
        overrides["env_options"] = (("backend", backend),)
    config = preset(env, **overrides)
    out = out or Path("runs/experts") / zoo_name(env)
    check_output(out, force, files=ARTIFACT_FILES)
    check_directory(checkpoint_dir, "--checkpoint-dir")
    check_logs(log_dir, wandb_project, force, append=resume)
    command = command_line()
    logger = open_logs(log_dir, wandb_project, {**config.to_dict(), "seed": seed}, append=resume)
    try:
        expert = run(
            config,
            seed=seed,
            out=None,
            eval_episodes=eval_episodes,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            command=command,
            allow_config_change=allow_config_change,
            logger=logger,
        )
    finally:
        if logger is not None:
            logger.close()
    with atomic_directory(out) as tmp:
        expert.save(tmp)
    m = expert.meta
    result = {
        "env": env,
        "out": str(out),
        **{
            k: m[k]
            for k in ("mean_return", "std_return", "random_return", "env_steps", "wall_time_s")
        },
    }
    if "config_changes" in m:
        result["config_changes"] = m["config_changes"]
    if log_dir is not None:
        result["log_dir"] = str(log_dir)
    _emit(
        result,
        json,
        f"saved expert to {out}: return {m['mean_return']:.2f} +- {m['std_return']:.2f} "
        f"(random {m['random_return']:.2f}) after {m['env_steps']} steps in {m['wall_time_s']} s",
    )


def evaluate(
    expert: str | None = None,
    policy: Path | None = None,
    episodes: int = 100,
    seed: int = 0,
    stochastic: bool = False,
    video: Path | None = None,
    video_steps: int | None = None,
    json: JsonFlag = False,
) -> None:
    """Evaluate an expert (zoo env id or directory) or a saved BC / ensemble / Swarm / DBC
    policy (`jaxbc bc --out DIR`, `jaxbc dagger --out DIR`) over complete episodes.

    Args:
        expert: a zoo env id (e.g. CartPole-v1) or an expert directory.
        policy: a policy directory saved by `jaxbc bc --out` or `jaxbc dagger --out`.
        episodes: number of complete episodes.
        seed: PRNG seed.
        stochastic: sample actions instead of taking the mode/mean.
        video: also render one rollout to this file (.mp4 or .gif; needs the extra "video").
        video_steps: env steps in the video (default: the env's time limit); one frame more.
    """
    if (expert is None) == (policy is None):
        raise UsageError("evaluate needs exactly one of --expert ENV_OR_DIR and --policy DIR")
    check_int("--episodes", episodes, 1)
    check_int("--seed", seed, 0)
    if video is not None:
        from jaxbc.video import require_video  # before MuJoCo is imported: headless OpenGL for Brax

        try:
            require_video(video)
        except ImportError as e:
            raise UsageError(str(e)) from None
        check_int("--video-steps", video_steps, 1, allow_none=True)
    import jax

    from jaxbc.rollout import evaluate as run

    if expert is not None:
        from jaxbc.experts import load_expert

        ex = load_expert(expert)
        env = ex.make_env()
        env_id, policy_fn, params = ex.env_id, ex.policy_fn(not stochastic, env), ex.params
        what = {"expert": str(expert)}
    else:
        from jaxbc.bc import load_policy

        pol = load_policy(policy)  # an edited artifact.json raises ArtifactError (exit 2)
        if stochastic and pol.policy.kind == "deterministic":
            reject(
                "--stochastic",
                f"does not apply: the policy in {str(policy)!r} has a deterministic head (nothing to sample)",
            )
        env = pol.make_env()
        env_id, policy_fn, params = pol.env_id, pol.policy_fn(not stochastic), pol.params
        what = {"policy_dir": str(policy), "members": pol.config.members}
    ev = run(env, policy_fn, params, jax.random.key(seed), episodes)
    result = {
        "env": env_id,
        **what,
        "mean_return": float(ev.mean_return),
        "std_return": float(ev.std_return),
        "episodes": episodes,
        "policy": "stochastic" if stochastic else "deterministic",
        "seed": seed,
    }
    if video is not None:
        from jaxbc.video import render_rollout

        steps = video_steps or env.max_episode_steps
        render_rollout(env, policy_fn, params, jax.random.key(seed), video, steps)
        result.update(video=str(video), video_frames=steps + 1)
    _emit(
        result,
        json,
        f"{env_id}: {result['mean_return']:.2f} +- {result['std_return']:.2f} over {episodes} episodes",
    )


def collect(
    env: str,
    episodes: int,
    out: Path,
    expert: str | None = None,
    seed: int = 0,
    stochastic: bool = False,
    backend: str | None = None,
    force: ForceFlag = False,
    json: JsonFlag = False,
) -> None:
    """Collect expert demonstrations into a dataset file (.npz).

    Args:
        env: environment id.
        episodes: number of complete episodes.
        out: output file (.npz); an existing file is not overwritten without --force.
        expert: expert directory or zoo id (default: the zoo expert of env).
        seed: PRNG seed.
        stochastic: sample expert actions instead of taking the mode/mean.
        backend: Brax backend (default: the one the expert was trained on).
    """
    check_int("--episodes", episodes, 1)
    check_int("--seed", seed, 0)
    if backend is not None and not env.startswith("brax/"):
        reject("--backend", f"applies only to Brax envs, not {env}")
    check_output(out, force)
    import jax

    from jaxbc import envs as envs_mod
    from jaxbc.data import collect as run
    from jaxbc.data import save_dataset
    from jaxbc.experts import load_expert

    ex = load_expert(expert or env)
    if ex.env_id != env:
        raise UsageError(f"--expert {expert!r} was trained on {ex.env_id}, not on --env {env}")
    options = dict(ex.config.env_options)
    if backend is not None:
        options["backend"] = backend
    e = envs_mod.make(env, **options)
    ds = run(ex, e, episodes, jax.random.key(seed), deterministic=not stochastic)
    path = save_dataset(ds, out)
    result = {
        "env": env,
        "out": str(path),
        "episodes": ds.num_episodes,
        "transitions": ds.size,
        "mean_return": float(ds.episode_returns.mean()),
        "std_return": float(ds.episode_returns.std()),
    }
    _emit(
        result,
        json,
        f"wrote {ds.size} transitions ({ds.num_episodes} episodes, mean return "
        f"{result['mean_return']:.2f}) to {path}",
    )


def quickstart(
    env: str = "CartPole-v1",
    demo_episodes: int = 4,
    bc_steps: int = 2000,
    eval_episodes: int = 50,
    seed: int = 0,
    json: JsonFlag = False,
) -> None:
    """The main demo: zoo expert -> demonstrations -> BC -> returns of expert, random, BC."""
    check_int("--demo-episodes", demo_episodes, 1)
    check_int("--bc-steps", bc_steps, 1)
    check_int("--eval-episodes", eval_episodes, 1)
    check_int("--seed", seed, 0)
    from jaxbc.quickstart import quickstart as run

    result = run(env, demo_episodes, bc_steps, eval_episodes, seed)
    text = (
        f"{env}: {result['demo_episodes']} expert episodes ({result['demo_transitions']} transitions), "
        f"BC {result['bc_steps']} steps, evaluated over {result['eval_episodes']} episodes\n\n"
        + _table(result["results"], ["policy", "mean_return", "std_return", "scaled_return"])
        + f"\n\ndone in {result['wall_time_s']} s"
    )
    _emit(result, json, text)


def _load_demos(dataset: Path, episodes: int | None):
    """Load a dataset (first ``episodes`` episodes); asking for more than it has is an error."""
    from jaxbc.data import load_dataset

    ds = load_dataset(dataset)
    if episodes is not None:
        if episodes > ds.num_episodes:
            raise UsageError(
                f"--episodes {episodes}, but dataset {str(dataset)!r} has only {ds.num_episodes} episode(s)"
            )
        if episodes < ds.num_episodes:
            ds = ds.first_episodes(episodes)
    return ds


def _check_finite(tree, what: str) -> None:
    """Refuse to save or report a diverged model."""
    import jax
    import numpy as np

    bad = sum(
        int((~np.isfinite(np.asarray(x))).sum())
        for x in jax.tree.leaves(tree)
        if np.issubdtype(np.asarray(x).dtype, np.floating)
    )
    if bad:
        raise FloatingPointError(
            f"{what} diverged: {bad} NaN/inf parameter value(s); nothing was saved (try a lower --lr)"
        )


def diffusion(
    dataset: Path,
    out: Path,
    steps: int = 10_000,
    hidden: int = 1024,
    blocks: int = 3,
    timesteps: int = 1000,
    schedule: Literal["sigmoid", "linear", "cosine"] = "sigmoid",
    batch_size: int = 128,
    lr: float = 1e-3,
    episodes: int | None = None,
    seed: int = 0,
    force: ForceFlag = False,
    json: JsonFlag = False,
) -> None:
    """Pretrain DBC's diffusion model of expert (state, action) pairs and save it.

    Args:
        dataset: dataset file (.npz) with continuous actions.
        out: output directory (a diffusion artifact: artifact.json + params.msgpack); pass it to `jaxbc bc --method dbc --diffusion`.
        steps: gradient steps.
        hidden: noise-net width (the paper uses 1024; 128 suffices for small tasks).
        blocks: number of (Linear + step embedding -> ReLU) blocks.
        timesteps: diffusion steps T.
        schedule: beta schedule.
        batch_size: minibatch size.
        lr: Adam learning rate.
        episodes: use only the first N demonstration episodes (default: all).
        seed: PRNG seed.
    """
    import time

    check_int("--seed", seed, 0)
    check_int("--episodes", episodes, 1, allow_none=True)
    from jaxbc.diffusion import DiffusionConfig, check_continuous, make_diffusion_train, save

    cfg = DiffusionConfig(
        T=timesteps,
        schedule=schedule,
        hidden=hidden,
        blocks=blocks,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
    )
    check_output(out, force, files=ARTIFACT_FILES)
    import jax

    ds = _load_demos(dataset, episodes)
    check_continuous(ds)
    t0 = time.time()
    print(
        f"training a diffusion model (T={timesteps}, width {hidden}) for {steps} steps on {ds.size} transitions",
        file=sys.stderr,
    )
    model = jax.jit(make_diffusion_train(cfg))(jax.random.key(seed), ds)
    jax.block_until_ready(model.params)
    train_s = time.time() - t0
    _check_finite(model.params, "diffusion training")
    with atomic_directory(out) as tmp:
        save(model, tmp)
    losses = model.losses
    res = {
        "env": ds.env_id,
        "out": str(out),
        "steps": steps,
        "hidden": hidden,
        "blocks": blocks,
        "timesteps": timesteps,
        "schedule": schedule,
        "demo_episodes": ds.num_episodes,
        "transitions": ds.size,
        "seed": seed,
        "final_loss": float(losses[-1]),
        "final_loss_mean": float(losses[-max(1, steps // 10) :].mean()),
        "train_time_s": round(train_s, 2),
    }
    _emit(
        res,
        json,
        f"saved diffusion model to {out}: final loss {res['final_loss']:.4f} "
        f"(mean of last 10% {res['final_loss_mean']:.4f}) after {steps} steps in {res['train_time_s']} s",
    )


def bc(
    dataset: Path,
    method: Literal["bc", "ensemble", "swarm", "dbc"] = "bc",
    members: int | None = None,
    tau: float | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    hidden: tuple[int, ...] | None = None,
    policy: Literal["auto", "deterministic", "gaussian", "categorical"] = "auto",
    episodes: int | None = None,
    seed: int = 0,
    eval_episodes: int = 20,
    out: Path | None = None,
    force: ForceFlag = False,
    diffusion: Path | None = None,
    lambda_dm: float | None = None,
    diffusion_steps: int | None = None,
    progress: bool = True,
    log_dir: Path | None = None,
    wandb_project: str | None = None,
    json: JsonFlag = False,
) -> None:
    """Train BC / ensemble BC / Swarm BC / DBC on a dataset and evaluate on the dataset's env.

    DBC here trains one policy (members=1, tau=0); Swarm BC + DBC and DBC ensembles are
    available from Python: ``make_bc_train(config, partial(dbc_loss, diffusion=m, tau=...))``.
    The scaled return is computed against a real expert only (the zoo's, or the dataset's if
    it holds expert demonstrations); for other datasets (HaDES) it is null. A dataset that
    stores a training recipe (HaDES's distilled data: its inner loop's full-batch BC, no
    z-scoring) is trained with it by default; the flags given override its fields.

    Args:
        dataset: dataset file (.npz) from `jaxbc collect` or `jaxbc hades`.
        method: bc (one policy), ensemble (N independent members), swarm (N members + tau penalty),
            dbc (one policy, BC + lambda_dm * diffusion-model loss; continuous actions only).
        members: ensemble size for ensemble/swarm (default 8; >= 2).
        tau: Swarm BC hidden-feature alignment weight (swarm only; default 0.25).
        steps: gradient steps (default 5000, or the dataset's recipe).
        batch_size: minibatch size (default 256, or the dataset's recipe).
        lr: Adam learning rate (default 1e-3, or the dataset's recipe).
        hidden: hidden layer widths (default 256 256, or the dataset's recipe).
        policy: policy head (auto: categorical for discrete, deterministic for continuous).
        episodes: use only the first N demonstration episodes (default: all).
        seed: PRNG seed.
        eval_episodes: evaluation episodes.
        out: save the trained policy to this directory (`jaxbc evaluate --policy DIR` reads it).
        diffusion: (dbc) a diffusion model saved by `jaxbc diffusion`; default: train one on the dataset first.
        lambda_dm: (dbc) weight of the diffusion-model loss (default 0.2).
        diffusion_steps: (dbc, without --diffusion) pretraining steps of the diffusion model (default 10000).
        progress: show a progress bar of the training steps on stderr (--no-progress: none).
        log_dir: write live training metrics (loss, bc_loss, ...) every 1% of the steps to
            DIR/metrics.csv and TensorBoard event files in DIR (`tensorboard --logdir DIR`);
            an existing metrics.csv is not overwritten without --force.
        wandb_project: also log them to this Weights & Biases project (needs the extra "wandb").
    """
    # flags that would have no effect: refused before anything runs
    if members is not None and method in ("bc", "dbc"):
        reject(
            "--members",
            f"applies to --method ensemble or swarm; --method {method} trains one policy",
        )
    if tau is not None and method != "swarm":
        reject("--tau", f"applies to --method swarm only, not {method}")
    for flag, value in (
        ("--diffusion", diffusion),
        ("--lambda-dm", lambda_dm),
        ("--diffusion-steps", diffusion_steps),
    ):
        if value is not None and method != "dbc":
            reject(flag, f"applies to --method dbc only, not {method}")
    if diffusion is not None and diffusion_steps is not None:
        reject(
            "--diffusion-steps",
            "trains a new diffusion model, so it does not apply with --diffusion",
        )
    n_members = 1 if method in ("bc", "dbc") else (8 if members is None else members)
    if method in ("ensemble", "swarm"):
        check_int("--members", n_members, 2)
    tau_used = (0.25 if tau is None else tau) if method == "swarm" else 0.0
    check_float("--tau", tau_used, 0.0)
    lambda_dm = 0.2 if lambda_dm is None else lambda_dm
    check_float("--lambda-dm", lambda_dm, 0.0)
    check_int("--episodes", episodes, 1, allow_none=True)
    check_int("--seed", seed, 0)
    check_int("--eval-episodes", eval_episodes, 1)

    import time
    from functools import partial

    from jaxbc.bc import make_bc_train, swarm_bc_loss
    from jaxbc.bc.evaluation import evaluate_bc

    ds = _load_demos(dataset, episodes)
    cfg = _bc_config(ds, policy, hidden, n_members, steps, batch_size, lr)
    steps = cfg.steps
    if method == "dbc" and diffusion is None:
        from jaxbc.diffusion import DiffusionConfig

        diff_cfg = DiffusionConfig(steps=10_000 if diffusion_steps is None else diffusion_steps)
    check_output(out, force, files=ARTIFACT_FILES)
    check_logs(log_dir, wandb_project, force)
    from jaxbc import envs as envs_mod

    env = envs_mod.make(ds.env_id, **dict(ds.env_options))
    ds.check_env(env)  # a dataset whose metadata was edited to another env is refused here
    if policy == "categorical" and not ds.discrete:
        reject("--policy categorical", f"needs discrete actions; {ds.env_id} has {ds.action_space}")
    if policy in ("deterministic", "gaussian") and ds.discrete:
        reject(
            f"--policy {policy}",
            f"needs continuous actions; {ds.env_id} has {ds.action_space} (use categorical)",
        )
    import jax

    t0 = time.time()
    k_train, k_eval = jax.random.split(jax.random.key(seed))
    base_loss = partial(swarm_bc_loss, tau=tau_used)
    extra: tuple = ()
    model = None
    if method == "dbc":
        from jaxbc.bc import dbc_loss
        from jaxbc.diffusion import check_continuous, load, make_diffusion_train

        check_continuous(ds)
        if diffusion is not None:
            model = load(diffusion)
            if model.env_id and model.env_id != ds.env_id:
                raise UsageError(
                    f"--diffusion {str(diffusion)!r} was trained on {model.env_id}, not on {ds.env_id}"
                )
        else:
            k_train, k_diff = jax.random.split(k_train)
            print(f"training a diffusion model for {diff_cfg.steps} steps first", file=sys.stderr)
            model = jax.jit(make_diffusion_train(diff_cfg))(k_diff, ds)
            _check_finite(model.params, "diffusion pretraining")
    from jaxbc.logs import ProgressLogger

    # the bar and logs are fed from inside the compiled scan every 1% of the steps;
    # --no-progress without --log-dir / --wandb-project adds nothing to the program
    bar = ProgressLogger(steps, f"bc {method}") if progress else None
    logger = open_logs(log_dir, wandb_project, {"method": method, **cfg.to_dict()}, bar)
    report = {"progress": logger.log, "progress_every": max(1, steps // 100)} if logger else {}
    train = make_bc_train(cfg, base_loss, **report)
    if method == "dbc":

        def train(
            key, data, model
        ):  # the model is an argument, not a constant baked into the program
            return make_bc_train(
                cfg, partial(dbc_loss, diffusion=model, lambda_dm=lambda_dm), **report
            )(key, data)

        extra = (model,)
    print(
        f"training {method} ({n_members} member(s)) for {steps} steps on {ds.size} transitions",
        file=sys.stderr,
    )
    try:
        result = jax.jit(train)(k_train, ds, *extra)
        jax.block_until_ready(result.params)
    finally:
        if logger is not None:
            jax.effects_barrier()  # every callback has run before the files are closed
            logger.close()
    train_s = time.time() - t0
    _check_finite(result.params["net"], f"{method} training")
    ev = evaluate_bc(result, k_eval, eval_episodes, dataset=ds, env=env)
    if out:
        with atomic_directory(out) as tmp:
            result.save(tmp)
    res = {
        "env": ds.env_id,
        "method": method,
        "members": n_members,
        "tau": tau_used,
        "steps": steps,
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
        res.update(lambda_dm=lambda_dm, final_dm_loss=float(result.metrics["dm_loss"][-1]))
    if ev["scaled_return"] is None:
        scaled = f"no scaled return (no expert for {ds.env_id}; dataset source {ev.get('dataset_source')})"
    else:
        scaled = f"scaled {ev['scaled_return']:.3f} (vs {ev['expert_return_from']})"
    _emit(
        res,
        json,
        f"{ds.env_id} {method}: return {ev['mean_return']:.2f} +- {ev['std_return']:.2f}, "
        f"{scaled}, action difference {ev['action_difference']:.4f} "
        f"(visited states {ev['action_difference_visited']:.4f}); dataset source {ev.get('dataset_source')}",
    )


def _bc_config(ds, policy: str, hidden, members: int, steps, batch_size, lr):
    """The dataset's stored recipe (if any) as the base, then the flags given; else the
    defaults (5000 steps, batch 256, lr 1e-3, 2x256)."""
    import dataclasses

    from jaxbc.bc import BCConfig, PolicyConfig

    base = BCConfig.from_recipe(ds)
    if base is None:
        base = BCConfig(
            policy=PolicyConfig(hidden_sizes=(256, 256)), steps=5000, batch_size=256, lr=1e-3
        )
    pol = base.policy
    if hidden is not None:
        pol = dataclasses.replace(pol, hidden_sizes=tuple(hidden))
    if policy != "auto":
        pol = dataclasses.replace(pol, kind=policy)
    changes = {
        k: v for k, v in (("steps", steps), ("batch_size", batch_size), ("lr", lr)) if v is not None
    }
    if batch_size is not None and base.full_batch:
        changes["full_batch"] = False  # a minibatch size was asked for
    return dataclasses.replace(base, policy=pol, members=members, **changes)


def dagger(
    env: str,
    iterations: int = 10,
    steps_per_iteration: int = 2000,
    demo_episodes: int = 1,
    expert: str | None = None,
    method: Literal["bc", "ensemble", "swarm"] = "bc",
    members: int | None = None,
    tau: float | None = None,
    beta: Literal["constant", "linear", "exponential"] = "linear",
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
    out: Path | None = None,
    force: ForceFlag = False,
    log_dir: Path | None = None,
    wandb_project: str | None = None,
    json: JsonFlag = False,
) -> None:
    """DAgger with an expert (the env's zoo expert, or --expert DIR): K iterations of mixture
    rollouts, expert labels, aggregation and retraining, all in one compiled program.

    Args:
        env: environment id.
        iterations: DAgger iterations K (iteration 0 is BC on the demonstrations).
        steps_per_iteration: env steps collected per iteration (a multiple of num_envs).
        demo_episodes: expert episodes in the initial dataset.
        expert: the teacher: an expert directory (`jaxbc train-expert --out`) or zoo id
            (default: the zoo expert of env).
        method: learner: bc (one policy), ensemble, swarm (ensemble + tau penalty).
        members: ensemble size for ensemble/swarm (default 5; >= 2).
        tau: Swarm BC weight (swarm only; default 0.25).
        beta: schedule of the probability of executing the expert's action.
        beta0: beta of iteration 1 (constant/linear/exponential), in [0, 1].
        beta_decay: exponential decay factor in (0, 1] (exponential only; default 0.5).
        gate_threshold: ensemble-gated DAgger: query the expert only where the members'
            action difference exceeds this (needs method ensemble or swarm).
        bc_steps: gradient steps per retraining.
        batch_size: BC minibatch size.
        hidden: learner MLP widths.
        num_envs: parallel envs for the rollouts.
        warm_start: retrain from the previous learner instead of from scratch.
        eval_episodes: evaluation episodes per iteration.
        seed: PRNG seed.
        out: save the final learner to this directory.
        log_dir: write each iteration's metrics (return, dataset_size, expert_queries,
            train_loss, beta, expert_action_fraction) live, from inside the compiled loop,
            to DIR/metrics.csv and TensorBoard event files in DIR; an existing metrics.csv is
            not overwritten without --force.
        wandb_project: also log them to this Weights & Biases project (needs the extra "wandb").
    """
    if members is not None and method == "bc":
        reject("--members", "applies to --method ensemble or swarm; --method bc trains one policy")
    if tau is not None and method != "swarm":
        reject("--tau", f"applies to --method swarm only, not {method}")
    if beta_decay is not None and beta != "exponential":
        reject("--beta-decay", f"applies to --beta exponential only, not {beta}")
    if gate_threshold is not None and method == "bc":
        reject("--gate-threshold", "needs an ensemble learner (--method ensemble or swarm)")
    n_members = 1 if method == "bc" else (5 if members is None else members)
    if method != "bc":
        check_int("--members", n_members, 2)
    tau_used = (0.25 if tau is None else tau) if method == "swarm" else 0.0
    check_float("--tau", tau_used, 0.0)
    check_int("--demo-episodes", demo_episodes, 1)
    check_int("--seed", seed, 0)
    import time
    from functools import partial

    from jaxbc.bc import BCConfig, PolicyConfig, swarm_bc_loss
    from jaxbc.bc.evaluation import reference_returns
    from jaxbc.dagger import DAggerConfig, make_dagger
    from jaxbc.rollout import scaled_return

    cfg = DAggerConfig(
        bc=BCConfig(
            policy=PolicyConfig(hidden_sizes=tuple(hidden)),
            members=n_members,
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
    import jax
    import numpy as np

    from jaxbc.data import collect as collect_demos
    from jaxbc.experts import load_expert

    ex = load_expert(expert or env)
    if ex.env_id != env:
        raise UsageError(f"--expert {expert!r} was trained on {ex.env_id}, not on --env {env}")
    e = ex.make_env()
    k_demo, k_run = jax.random.split(jax.random.key(seed))
    data = collect_demos(ex, e, demo_episodes, k_demo)
    loss = partial(swarm_bc_loss, tau=tau_used)
    print(
        f"DAgger on {env}: {iterations} iterations x {steps_per_iteration} steps (compiling...)",
        file=sys.stderr,
    )
    t0 = time.time()
    config_log = {"env": env, "method": method, "tau": tau_used, "seed": seed}
    logger = open_logs(log_dir, wandb_project, config_log)
    try:
        run = make_dagger(cfg, loss, env=e, progress=logger.log if logger else None)
        res = jax.device_get(jax.jit(run)(k_run, ex, data))
    finally:
        if logger is not None:
            jax.effects_barrier()
            logger.close()
    wall = time.time() - t0
    _check_finite(res.learner.params["net"], "DAgger's learner")
    if expert is not None and "mean_return" in ex.meta and "random_return" in ex.meta:
        expert_ret, random_ret = (
            float(ex.meta["mean_return"]),
            float(ex.meta["random_return"]),
        )  # the teacher's own
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
    result = {
        "env": env,
        "expert": str(expert) if expert is not None else f"zoo:{env}",
        "method": method,
        "members": n_members,
        "tau": tau_used,
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
    text = _table(
        rows, ["iteration", "return", "scaled_return", "dataset_size", "expert_queries", "beta"]
    )
    _emit(
        result,
        json,
        f"{text}\n\nfinal return {result['final_return']:.2f} (BC {result['bc_return']:.2f}, expert {expert_ret:.2f}) in {wall:.1f} s",
    )


COMMANDS = {
    "quickstart": quickstart,
    "envs": envs,
    "experts": experts,
    "train-expert": train_expert,
    "evaluate": evaluate,
    "collect": collect,
    "bc": bc,
    "dagger": dagger,
    "diffusion": diffusion,
    "hades": hades,
    "import-minari": import_minari,
    "export-minari": export_minari,
}


class _Tee:
    """Copies what is written to a stream, so tyro's parse errors can go into the JSON error."""

    def __init__(self, stream):
        self.stream, self.parts = stream, []

    def write(self, text):
        if sum(map(len, self.parts)) < 65536:  # parse errors come first; progress bars are not kept
            self.parts.append(text)
        return self.stream.write(text)

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _parse_error_message(text: str) -> str:
    """The readable lines of a tyro/argparse error box (frame characters dropped)."""
    import re

    lines = []
    for line in text.splitlines():
        line = re.sub(r"[\u2500-\u257f]|-{3,}", "", line).strip()
        if line and not line.startswith("For full helptext"):
            lines.append(line)
    return " ".join(lines) or "invalid command line"


USER_ERRORS = (
    ValueError,
    FloatingPointError,
    OSError,
)  # OSError: missing files, permissions, a full disk


def main(argv: list[str] | None = None) -> None:
    """Run ``jaxbc`` on ``argv`` (default ``sys.argv[1:]``). User errors end with one line
    ``error: ...`` on stderr (with ``--json`` also ``{"error": {...}}`` as the last stdout
    line) and exit status 2; tracebacks are for bugs only."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from jaxbc.cli_output import error_json
    from jaxbc.io import enable_compilation_cache

    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    enable_compilation_cache()
    tee = _Tee(sys.stderr)
    old_stderr, sys.stderr = sys.stderr, tee
    try:
        tyro.extras.subcommand_cli_from_dict(COMMANDS, prog="jaxbc", args=args, description=__doc__)
    except SystemExit as e:  # tyro: --help (0) or a command line it cannot parse (2)
        if e.code not in (0, None) and as_json:
            print(error_json(UsageError("x"), _parse_error_message("".join(tee.parts))))
        raise
    except USER_ERRORS as e:  # user errors: one clear line, no traceback
        sys.stderr = old_stderr
        print(f"error: {e}", file=sys.stderr)
        if as_json:
            print(error_json(e))
        raise SystemExit(2) from None
    except Exception as e:  # a bug: keep the traceback, but honour the --json contract
        if as_json:
            print(error_json(e, f"internal error: {e}"))
        raise
    finally:
        sys.stderr = old_stderr


if __name__ == "__main__":
    main()
