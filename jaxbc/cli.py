"""The ``jaxbc`` command line (tyro). With ``--json`` the last stdout line is one JSON object
(on failure ``{"error": {"type": ..., "message": ...}}``, exit status 2); progress bars and
logs go to stderr.

Each command parses its flags, calls one library function and prints its report. The
library functions check their arguments, settings that would have no effect and their
output paths before any work starts, and write their outputs atomically only when the run
succeeded; their errors name the argument, printed here as its flag."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

import tyro

from jaxbc.cli_minari import export_minari, import_minari
from jaxbc.cli_output import ForceFlag, JsonFlag, UsageError, library_args, reject
from jaxbc.cli_output import emit as _emit
from jaxbc.cli_output import table as _table
from jaxbc.hades.cli import hades
from jaxbc.validation import check_int


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
    cols = ["env", "mean_return", "std_return", "random_return", "env_steps", "wall_time_s"]
    _emit({"experts": rows}, json, _table(rows, [*cols, "machine"]))


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
    from jaxbc.experts import preset
    from jaxbc.experts import train_expert as run
    from jaxbc.experts.expert import zoo_name
    from jaxbc.io import command_line

    given = (("total_timesteps", steps), ("num_envs", num_envs), ("lr", lr))
    out = out or Path("runs/experts") / zoo_name(env)
    m = run(
        preset(env, backend=backend, **{k: v for k, v in given if v is not None}),
        seed=seed,
        out=out,
        eval_episodes=eval_episodes,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        command=command_line(),
        allow_config_change=allow_config_change,
        force=force,
        log_dir=log_dir,
        wandb_project=wandb_project,
    ).meta
    keys = ("mean_return", "std_return", "random_return", "env_steps", "wall_time_s")
    result = {"env": env, "out": str(out), **{k: m[k] for k in keys}}
    result.update({k: m[k] for k in ("config_changes",) if k in m})
    result.update({"log_dir": str(log_dir)} if log_dir is not None else {})
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

    from jaxbc.bc import load_policy
    from jaxbc.experts import load_expert
    from jaxbc.rollout import evaluate as run

    if expert is not None:
        ex = load_expert(expert)
        env = ex.make_env()
        env_id, policy_fn, params = ex.env_id, ex.policy_fn(not stochastic, env), ex.params
        what = {"expert": str(expert)}
    else:
        pol = load_policy(policy)  # an edited artifact.json raises ArtifactError (exit 2)
        if stochastic and pol.policy.kind == "deterministic":
            why = f"the policy in {str(policy)!r} has a deterministic head (nothing to sample)"
            reject("--stochastic", f"does not apply: {why}")
        env = pol.make_env()
        env_id, policy_fn, params = pol.env_id, pol.policy_fn(not stochastic), pol.params
        what = {"policy_dir": str(policy), "members": pol.config.members}
    ev = run(env, policy_fn, params, jax.random.key(seed), episodes)
    mean, std = float(ev.mean_return), float(ev.std_return)
    result = {"env": env_id, **what, "mean_return": mean, "std_return": std}
    kind = "stochastic" if stochastic else "deterministic"
    result.update(episodes=episodes, policy=kind, seed=seed)
    if video is not None:
        from jaxbc.video import render_rollout

        steps = video_steps or env.max_episode_steps
        render_rollout(env, policy_fn, params, jax.random.key(seed), video, steps)
        result.update(video=str(video), video_frames=steps + 1)
    _emit(result, json, f"{env_id}: {mean:.2f} +- {std:.2f} over {episodes} episodes")


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
    args = library_args(locals())
    from jaxbc.experts import collect_demos

    ds, res = collect_demos(**args)
    _emit(
        res,
        json,
        f"wrote {ds.size} transitions ({ds.num_episodes} episodes, mean return "
        f"{res['mean_return']:.2f}) to {res['out']}",
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
    from jaxbc.diffusion import DiffusionConfig, diffusion_experiment

    cfg = DiffusionConfig(
        T=timesteps,
        schedule=schedule,
        hidden=hidden,
        blocks=blocks,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
    )
    _, res = diffusion_experiment(dataset, out, cfg, episodes=episodes, seed=seed, force=force)
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
    args = library_args(locals())
    from jaxbc.bc.experiment import bc_experiment

    _, res = bc_experiment(**args)
    source = res.get("dataset_source")
    if res["scaled_return"] is None:
        scaled = f"no scaled return (no expert for {res['env']}; dataset source {source})"
    else:
        scaled = f"scaled {res['scaled_return']:.3f} (vs {res['expert_return_from']})"
    _emit(
        res,
        json,
        f"{res['env']} {method}: return {res['mean_return']:.2f} +- {res['std_return']:.2f}, "
        f"{scaled}, action difference {res['action_difference']:.4f} "
        f"(visited states {res['action_difference_visited']:.4f}); dataset source {source}",
    )


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
        members: ensemble size for ensemble/swarm (default 8; >= 2).
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
    args = library_args(locals())
    from jaxbc.dagger import dagger_experiment

    _, res = dagger_experiment(**args)
    cols = ["iteration", "return", "scaled_return", "dataset_size", "expert_queries", "beta"]
    _emit(
        res,
        json,
        f"{_table(res['iterations'], cols)}\n\nfinal return {res['final_return']:.2f} "
        f"(BC {res['bc_return']:.2f}, expert {res['expert_return']:.2f}) in {res['wall_time_s']:.1f} s",
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

    lines = [re.sub(r"[\u2500-\u257f]|-{3,}", "", line).strip() for line in text.splitlines()]
    return " ".join(x for x in lines if x and not x.startswith("For full helptext")) or (
        "invalid command line"
    )


USER_ERRORS = (ValueError, FloatingPointError, OSError)  # OSError: missing files, a full disk


def main(argv: list[str] | None = None) -> None:
    """Run ``jaxbc`` on ``argv`` (default ``sys.argv[1:]``). User errors end with one line
    ``error: ...`` on stderr (with ``--json`` also ``{"error": {...}}`` as the last stdout
    line) and exit status 2; tracebacks are for bugs only."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from jaxbc.cli_output import error_json, flag_message
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
        message = flag_message(e, COMMANDS.get(args[0]) if args else None)
        print(f"error: {message}", file=sys.stderr)
        if as_json:
            print(error_json(e, message))
        raise SystemExit(2) from None
    except Exception as e:  # a bug: keep the traceback, but honour the --json contract
        if as_json:
            print(error_json(e, f"internal error: {e}"))
        raise
    finally:
        sys.stderr = old_stderr


if __name__ == "__main__":
    main()
