"""The ``jaxbc`` command line (tyro). With ``--json`` the last stdout line is one JSON object;
progress bars and logs go to stderr."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any, Literal

import tyro

from jaxbc.cli_minari import export_minari, import_minari
from jaxbc.cli_output import JsonFlag
from jaxbc.cli_output import emit as _emit
from jaxbc.cli_output import table as _table
from jaxbc.hades.cli import hades


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
    cols = ["env", "mean_return", "std_return", "random_return", "env_steps", "wall_time_s", "machine"]
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
    json: JsonFlag = False,
) -> None:
    """Train a PPO expert with the env's preset recipe (overrides optional) and save it.

    Args:
        env: environment id (see `jaxbc envs`).
        out: output directory (default runs/experts/<env>).
        steps: total environment steps (default: the preset's).
        seed: PRNG seed.
        num_envs: parallel environments (default: the preset's).
        lr: learning rate (default: the preset's).
        backend: Brax backend (positional, spring, generalized, mjx).
        eval_episodes: episodes for the final deterministic evaluation.
        checkpoint_dir: save resumable checkpoints here after every chunk.
        resume: continue from the newest checkpoint in checkpoint_dir.
    """
    from jaxbc.experts import preset
    from jaxbc.experts import train_expert as run
    from jaxbc.experts.expert import zoo_name

    overrides: dict[str, Any] = {}
    if steps is not None:
        overrides["total_timesteps"] = steps
    if num_envs is not None:
        overrides["num_envs"] = num_envs
    if lr is not None:
        overrides["lr"] = lr
    if backend is not None:
        if not env.startswith("brax/"):
            raise SystemExit(f"error: --backend only applies to Brax envs, not {env}")
        overrides["env_options"] = (("backend", backend),)
    config = preset(env, **overrides)
    out = out or Path("runs/experts") / zoo_name(env)
    command = "jaxbc " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    expert = run(config, seed=seed, out=out, eval_episodes=eval_episodes, checkpoint_dir=checkpoint_dir, resume=resume, command=command)
    m = expert.meta
    result = {"env": env, "out": str(out), **{k: m[k] for k in ("mean_return", "std_return", "random_return", "env_steps", "wall_time_s")}}
    _emit(result, json, f"saved expert to {out}: return {m['mean_return']:.2f} +- {m['std_return']:.2f} "
          f"(random {m['random_return']:.2f}) after {m['env_steps']} steps in {m['wall_time_s']} s")


def evaluate(
    expert: str,
    episodes: int = 100,
    seed: int = 0,
    stochastic: bool = False,
    video: Path | None = None,
    video_steps: int | None = None,
    json: JsonFlag = False,
) -> None:
    """Evaluate an expert (zoo env id or directory) over complete episodes.

    Args:
        expert: a zoo env id (e.g. CartPole-v1) or an expert directory.
        episodes: number of complete episodes.
        seed: PRNG seed.
        stochastic: sample actions instead of taking the mode/mean.
        video: also render one rollout to this file (.mp4 or .gif; needs the extra "video").
        video_steps: env steps in the video (default: the env's time limit); one frame more.
    """
    if video is not None:
        from jaxbc.video import require_video  # before MuJoCo is imported: headless OpenGL for Brax

        try:
            require_video(video)
        except ImportError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None

    import jax

    from jaxbc.experts import load_expert
    from jaxbc.rollout import evaluate as run

    ex = load_expert(expert)
    env = ex.make_env()
    ev = run(env, ex.policy_fn(not stochastic, env), ex.params, jax.random.key(seed), episodes)
    result = {
        "env": ex.env_id,
        "mean_return": float(ev.mean_return),
        "std_return": float(ev.std_return),
        "episodes": episodes,
        "policy": "stochastic" if stochastic else "deterministic",
        "seed": seed,
    }
    if video is not None:
        from jaxbc.video import render_rollout

        steps = video_steps or env.max_episode_steps
        render_rollout(env, ex.policy_fn(not stochastic, env), ex.params, jax.random.key(seed), video, steps)
        result.update(video=str(video), video_frames=steps + 1)
    _emit(result, json, f"{ex.env_id}: {result['mean_return']:.2f} +- {result['std_return']:.2f} over {episodes} episodes")


def collect(
    env: str,
    episodes: int,
    out: Path,
    expert: str | None = None,
    seed: int = 0,
    stochastic: bool = False,
    backend: str | None = None,
    json: JsonFlag = False,
) -> None:
    """Collect expert demonstrations into a dataset file (.npz).

    Args:
        env: environment id.
        episodes: number of complete episodes.
        out: output file (.npz).
        expert: expert directory or zoo id (default: the zoo expert of env).
        seed: PRNG seed.
        stochastic: sample expert actions instead of taking the mode/mean.
        backend: Brax backend (default: the one the expert was trained on).
    """
    import jax

    from jaxbc import envs as envs_mod
    from jaxbc.data import collect as run
    from jaxbc.data import save_dataset
    from jaxbc.experts import load_expert

    ex = load_expert(expert or env)
    if ex.env_id != env:
        raise SystemExit(f"error: expert {expert!r} was trained on {ex.env_id}, not {env}")
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
    _emit(result, json, f"wrote {ds.size} transitions ({ds.num_episodes} episodes, mean return "
          f"{result['mean_return']:.2f}) to {path}")


def quickstart(
    env: str = "CartPole-v1",
    demo_episodes: int = 4,
    bc_steps: int = 2000,
    eval_episodes: int = 50,
    seed: int = 0,
    json: JsonFlag = False,
) -> None:
    """The main demo: zoo expert -> demonstrations -> BC -> returns of expert, random, BC."""
    from jaxbc.quickstart import quickstart as run

    result = run(env, demo_episodes, bc_steps, eval_episodes, seed)
    text = (
        f"{env}: {result['demo_episodes']} expert episodes ({result['demo_transitions']} transitions), "
        f"BC {result['bc_steps']} steps, evaluated over {result['eval_episodes']} episodes\n\n"
        + _table(result["results"], ["policy", "mean_return", "std_return", "scaled_return"])
        + f"\n\ndone in {result['wall_time_s']} s"
    )
    _emit(result, json, text)


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
    episodes: int = 1_000_000,
    seed: int = 0,
    json: JsonFlag = False,
) -> None:
    """Pretrain DBC's diffusion model of expert (state, action) pairs and save it.

    Args:
        dataset: dataset file (.npz) with continuous actions.
        out: output directory (params.msgpack + diffusion.json); pass it to `jaxbc bc --method dbc --diffusion`.
        steps: gradient steps.
        hidden: noise-net width (the paper uses 1024; 128 suffices for small tasks).
        blocks: number of (Linear + step embedding -> ReLU) blocks.
        timesteps: diffusion steps T.
        schedule: beta schedule.
        batch_size: minibatch size.
        lr: Adam learning rate.
        episodes: use only the first N demonstration episodes.
        seed: PRNG seed.
    """
    import time

    import jax

    from jaxbc.data import load_dataset
    from jaxbc.diffusion import DiffusionConfig, make_diffusion_train, save

    ds = load_dataset(dataset)
    if episodes < ds.num_episodes:
        ds = ds.first_episodes(episodes)
    cfg = DiffusionConfig(T=timesteps, schedule=schedule, hidden=hidden, blocks=blocks, steps=steps, batch_size=batch_size, lr=lr)
    t0 = time.time()
    print(f"training a diffusion model (T={timesteps}, width {hidden}) for {steps} steps on {ds.size} transitions", file=sys.stderr)
    model = jax.jit(make_diffusion_train(cfg))(jax.random.key(seed), ds)
    jax.block_until_ready(model.params)
    train_s = time.time() - t0
    save(model, out)
    losses = model.losses
    res = {
        "env": ds.env_id, "out": str(out), "steps": steps, "hidden": hidden, "blocks": blocks, "timesteps": timesteps,
        "schedule": schedule, "demo_episodes": ds.num_episodes, "transitions": ds.size, "seed": seed,
        "final_loss": float(losses[-1]), "final_loss_mean": float(losses[-max(1, steps // 10):].mean()),
        "train_time_s": round(train_s, 2),
    }
    _emit(res, json, f"saved diffusion model to {out}: final loss {res['final_loss']:.4f} "
          f"(mean of last 10% {res['final_loss_mean']:.4f}) after {steps} steps in {res['train_time_s']} s")


def bc(
    dataset: Path,
    method: Literal["bc", "ensemble", "swarm", "dbc"] = "bc",
    members: int = 8,
    tau: float = 0.25,
    steps: int = 5000,
    batch_size: int = 256,
    lr: float = 1e-3,
    hidden: tuple[int, ...] = (256, 256),
    policy: Literal["auto", "deterministic", "gaussian", "categorical"] = "auto",
    episodes: int = 1_000_000,
    seed: int = 0,
    eval_episodes: int = 20,
    out: Path | None = None,
    diffusion: Path | None = None,
    lambda_dm: float = 0.2,
    diffusion_steps: int = 10_000,
    json: JsonFlag = False,
) -> None:
    """Train BC / ensemble BC / Swarm BC / DBC on a dataset and evaluate on the dataset's env.

    DBC here trains one policy (members=1, tau=0); Swarm BC + DBC and DBC ensembles are
    available from Python: ``make_bc_train(config, partial(dbc_loss, diffusion=m, tau=...))``.

    Args:
        dataset: dataset file (.npz) from `jaxbc collect`.
        method: bc (one policy), ensemble (N independent members), swarm (N members + tau penalty),
            dbc (one policy, BC + lambda_dm * diffusion-model loss; continuous actions only).
        members: ensemble size for ensemble/swarm.
        tau: Swarm BC hidden-feature alignment weight.
        steps: gradient steps.
        batch_size: minibatch size.
        lr: Adam learning rate.
        hidden: hidden layer widths.
        policy: policy head (auto: categorical for discrete, deterministic for continuous).
        episodes: use only the first N demonstration episodes.
        seed: PRNG seed.
        eval_episodes: evaluation episodes.
        out: save the trained policy to this directory.
        diffusion: (dbc) a diffusion model saved by `jaxbc diffusion`; default: train one on the dataset first.
        lambda_dm: (dbc) weight of the diffusion-model loss.
        diffusion_steps: (dbc, without --diffusion) pretraining steps of the diffusion model.
    """
    import time
    from functools import partial

    import jax

    from jaxbc.bc import BCConfig, PolicyConfig, make_bc_train, swarm_bc_loss
    from jaxbc.bc.evaluation import evaluate_bc
    from jaxbc.data import load_dataset

    ds = load_dataset(dataset)
    if episodes < ds.num_episodes:
        ds = ds.first_episodes(episodes)
    n_members = 1 if method in ("bc", "dbc") else members
    tau_used = tau if method == "swarm" else 0.0
    cfg = BCConfig(
        policy=PolicyConfig(kind=policy, hidden_sizes=tuple(hidden)),
        members=n_members, steps=steps, batch_size=batch_size, lr=lr,
    )
    t0 = time.time()
    k_train, k_eval = jax.random.split(jax.random.key(seed))
    train = make_bc_train(cfg, partial(swarm_bc_loss, tau=tau_used))
    extra: tuple = ()
    if method == "dbc":
        from jaxbc.bc import dbc_loss
        from jaxbc.diffusion import DiffusionConfig, check_continuous, load, make_diffusion_train

        check_continuous(ds)
        if diffusion is not None:
            model = load(diffusion)
            if model.env_id and model.env_id != ds.env_id:
                raise ValueError(f"diffusion model {str(diffusion)!r} was trained on {model.env_id}, not on {ds.env_id}")
        else:
            k_train, k_diff = jax.random.split(k_train)
            print(f"training a diffusion model for {diffusion_steps} steps first", file=sys.stderr)
            model = jax.jit(make_diffusion_train(DiffusionConfig(steps=diffusion_steps)))(k_diff, ds)

        def train(key, data, model):  # the model is an argument, not a constant baked into the program
            return make_bc_train(cfg, partial(dbc_loss, diffusion=model, lambda_dm=lambda_dm))(key, data)

        extra = (model,)
    print(f"training {method} ({n_members} member(s)) for {steps} steps on {ds.size} transitions", file=sys.stderr)
    result = jax.jit(train)(k_train, ds, *extra)
    jax.block_until_ready(result.params)
    train_s = time.time() - t0
    ev = evaluate_bc(result, k_eval, eval_episodes, dataset=ds)
    if out:
        result.save(out)
    res = {
        "env": ds.env_id, "method": method, "members": n_members, "tau": tau_used, "steps": steps,
        "demo_episodes": ds.num_episodes, "transitions": ds.size, "seed": seed,
        "final_loss": float(result.metrics["bc_loss"][-1]), "train_time_s": round(train_s, 2),
        **ev, **({"out": str(out)} if out else {}),
    }
    if method == "dbc":
        res.update(lambda_dm=lambda_dm, final_dm_loss=float(result.metrics["dm_loss"][-1]))
    _emit(res, json, f"{ds.env_id} {method}: return {ev['mean_return']:.2f} +- {ev['std_return']:.2f}, "
          f"scaled {ev['scaled_return']:.3f}, action difference {ev['action_difference']:.4f} "
          f"(visited states {ev['action_difference_visited']:.4f})")


def dagger(
    env: str,
    iterations: int = 10,
    steps_per_iteration: int = 2000,
    demo_episodes: int = 1,
    method: Literal["bc", "ensemble", "swarm"] = "bc",
    members: int = 5,
    tau: float = 0.25,
    beta: Literal["constant", "linear", "exponential"] = "linear",
    beta0: float = 1.0,
    beta_decay: float = 0.5,
    gate_threshold: float | None = None,
    bc_steps: int = 1000,
    batch_size: int = 256,
    hidden: tuple[int, ...] = (256, 256),
    num_envs: int = 16,
    warm_start: bool = False,
    eval_episodes: int = 10,
    seed: int = 0,
    out: Path | None = None,
    json: JsonFlag = False,
) -> None:
    """DAgger with the env's zoo expert: K iterations of mixture rollouts, expert labels,
    aggregation and retraining, all in one compiled program.

    Args:
        env: environment id with a zoo expert.
        iterations: DAgger iterations K (iteration 0 is BC on the demonstrations).
        steps_per_iteration: env steps collected per iteration.
        demo_episodes: expert episodes in the initial dataset.
        method: learner: bc (one policy), ensemble, swarm (ensemble + tau penalty).
        members: ensemble size for ensemble/swarm (and gating).
        tau: Swarm BC weight.
        beta: schedule of the probability of executing the expert's action.
        beta0: beta of iteration 1 (constant/linear/exponential).
        beta_decay: exponential decay factor.
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
    """
    import time
    from functools import partial

    import jax
    import numpy as np

    from jaxbc.bc import BCConfig, PolicyConfig, swarm_bc_loss
    from jaxbc.bc.evaluation import reference_returns
    from jaxbc.dagger import DAggerConfig, make_dagger
    from jaxbc.data import collect as collect_demos
    from jaxbc.experts import load_expert

    ex = load_expert(env)
    e = ex.make_env()
    k_demo, k_run = jax.random.split(jax.random.key(seed))
    data = collect_demos(ex, e, demo_episodes, k_demo)
    n_members = 1 if method == "bc" else members
    cfg = DAggerConfig(
        bc=BCConfig(policy=PolicyConfig(hidden_sizes=tuple(hidden)), members=n_members, steps=bc_steps, batch_size=batch_size),
        iterations=iterations, steps_per_iteration=steps_per_iteration, num_envs=num_envs, beta_schedule=beta,
        beta0=beta0, beta_decay=beta_decay, warm_start=warm_start, gate_threshold=gate_threshold,
        eval_episodes=eval_episodes,
    )
    loss = partial(swarm_bc_loss, tau=tau if method == "swarm" else 0.0)
    print(f"DAgger on {env}: {iterations} iterations x {steps_per_iteration} steps (compiling...)", file=sys.stderr)
    t0 = time.time()
    res = jax.device_get(jax.jit(make_dagger(cfg, loss, env=e))(k_run, ex, data))
    wall = time.time() - t0
    expert_ret, random_ret = reference_returns(env)
    rows = [
        {
            "iteration": k, "return": float(res.returns[k]),
            "scaled_return": (float(res.returns[k]) - random_ret) / (expert_ret - random_ret),
            "dataset_size": int(res.dataset_size[k]), "expert_queries": int(res.expert_queries[k]),
            "train_loss": float(res.train_loss[k]), "beta": float(res.beta[k]),
        }
        for k in range(iterations + 1)
    ]
    if out:
        res.learner.save(out)
    result = {
        "env": env, "method": method, "members": n_members, "gated": gate_threshold is not None,
        "iterations": rows, "returns": [r["return"] for r in rows],
        "final_return": rows[-1]["return"], "final_scaled_return": rows[-1]["scaled_return"],
        "bc_return": rows[0]["return"], "total_expert_queries": int(np.sum(res.expert_queries)),
        "expert_return": expert_ret, "random_return": random_ret, "wall_time_s": round(wall, 1), "seed": seed,
        **({"out": str(out)} if out else {}),
    }
    text = _table(rows, ["iteration", "return", "scaled_return", "dataset_size", "expert_queries", "beta"])
    _emit(result, json, f"{text}\n\nfinal return {result['final_return']:.2f} (BC {result['bc_return']:.2f}, expert {expert_ret:.2f}) in {wall:.1f} s")


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


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from jaxbc.io import enable_compilation_cache

    enable_compilation_cache()
    try:
        tyro.extras.subcommand_cli_from_dict(COMMANDS, prog="jaxbc", args=argv, description=__doc__)
    except (ValueError, FileNotFoundError) as e:  # user errors: one clear line, no traceback
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
