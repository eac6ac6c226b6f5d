"""The Diffusion-BC study (Chen et al., ICML 2024): BC vs DBC from 5 expert trajectories, with
ensemble BC and Swarm BC for context; and BC vs DBC where averaging the modes fails.

    python benchmarks/dbc.py --scale smoke    # TwoGoals2D-v0 only: checks the pipeline
    python benchmarks/dbc.py --scale cpu      # brax/halfcheetah, brax/walker2d, TwoGoals2D-v0
    python benchmarks/dbc.py --scale cpu_large --name dbc_large  # the paper's policy sizes
    python benchmarks/dbc.py --scale paper    # GPU: the paper's settings
    python benchmarks/dbc.py --protocol multimodal --scale cpu  # toy_visible, toy_hidden, maze

Per seed one DDPM on the demonstrations; BC and DBC paired (the same initialisation,
minibatches and evaluation starts per seed), each arm one compiled program with the seeds
vmapped. Writes benchmarks/results/dbc.{json,csv,md,png} (multimodal: dbc_multimodal.* and
dbc_ddpm_samples.png); the protocols, sizes and readings are in docs/results/dbc.md.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxbc import envs, studies
from jaxbc.bc import BCConfig, PolicyConfig, bc_loss, dbc_loss, make_bc_train, swarm_bc_loss
from jaxbc.bc.evaluation import reference_returns
from jaxbc.bc.train import make_policy_fn
from jaxbc.data import collect
from jaxbc.data.dataset import ARRAY_KEYS
from jaxbc.diffusion import DiffusionConfig, make_diffusion_train
from jaxbc.diffusion import sample as diffusion_sample
from jaxbc.envs.maze import POINT_MAZE
from jaxbc.envs.multimodal import TOY
from jaxbc.experts import load_expert
from jaxbc.experts.expert import ZOO_DIR, zoo_name
from jaxbc.experts.scripted import scripted_expert
from jaxbc.io import enable_compilation_cache
from jaxbc.rollout import episode_outcomes, evaluate_fn

PerEnv = tuple[tuple[str, object], ...]  # (env id, value) pairs; frozen-dataclass friendly
log, pm, table = studies.log, studies.pm, studies.table


def _bc(hidden, steps, batch, lr, tanh_bounded: bool = True) -> BCConfig:
    """The study's policies: deterministic tanh MLP, Adam with linear decay, clip 0.5."""
    policy = PolicyConfig(hidden_sizes=hidden, activation="tanh", tanh_bounded=tanh_bounded)
    return BCConfig(
        policy, steps=steps, batch_size=batch, lr=lr, schedule="linear", max_grad_norm=0.5
    )


def _ddpm(hidden, steps, lr, batch) -> DiffusionConfig:
    return DiffusionConfig(T=1000, hidden=hidden, steps=steps, lr=lr, batch_size=batch)


@dataclass(frozen=True)
class Scale(studies.Scale):
    demo_episodes: int
    bc: BCConfig  # BC and DBC (and, with ``members``, the ensembles'); its MLP: the default
    hidden: PerEnv  # policy MLP per env
    lambda_dm: PerEnv  # DBC weight per env
    default_lambda_dm: float
    lambda_sweep: tuple[float, ...]  # extra DBC weights, run on the toy task only
    diffusion: DiffusionConfig
    members: int  # ensemble / Swarm BC size (0: no ensemble arms)
    tau: float
    eval_episodes: int

    def bc_for(self, env_id: str) -> BCConfig:
        hidden = tuple(dict(self.hidden).get(env_id, self.bc.policy.hidden_sizes))
        return self.bc.replace(policy=dataclasses.replace(self.bc.policy, hidden_sizes=hidden))

    def lambda_for(self, env_id: str) -> float:
        return float(dict(self.lambda_dm).get(env_id, self.default_lambda_dm))


HALFCHEETAH, WALKER, TWO_GOALS = "brax/halfcheetah", "brax/walker2d", TOY[0]
ENVS = (HALFCHEETAH, WALKER, TWO_GOALS)
# lambda_dm: the paper's 0.2 for the locomotion envs; 0.05 on the toy task, picked in a pilot
# sweep (0, 0.01, 0.05, 0.2, 1 with 4 seeds) where 0.2 and 1 over-weighted the diffusion term
# (DBC then fit the data worse than BC); every study re-runs that sweep on the toy task.
LAMBDAS: PerEnv = ((HALFCHEETAH, 0.2), (WALKER, 0.2), (TWO_GOALS, 0.05))
PAPER_SIZES: PerEnv = ((HALFCHEETAH, (256, 256)), (WALKER, (1024, 1024)))
SWEEP = (0.0, 0.01, 0.05, 0.2, 1.0)
SCALES = {
    # paper: 2x256 (HalfCheetah) / 2x1024 (Walker) tanh MLP, Adam, batch 128, linear decay, clip
    # 0.5, T = 1000, width 1024; steps and learning rates from the authors' run scripts
    "paper": Scale(ENVS, 3, 5, _bc((256, 256), 40_000, 128, 1e-4), PAPER_SIZES, LAMBDAS, 0.2, SWEEP, _ddpm(1024, 300_000, 2e-4, 128), 5, 0.25, 10),
    # the paper's policy sizes at about an hour of the idle 2-core CPU: DDPM width 512 and
    # 10,000 steps, 5 paired seeds, BC vs DBC only, the locomotion envs only
    "cpu_large": Scale((HALFCHEETAH, WALKER), 5, 5, _bc((256, 256), 5000, 128, 1e-3), PAPER_SIZES, LAMBDAS, 0.2, (), _ddpm(512, 10_000, 1e-3, 128), 0, 0.25, 5),
    "cpu": Scale(ENVS, 3, 5, _bc((128, 128), 3000, 128, 1e-3), (), LAMBDAS, 0.2, SWEEP, _ddpm(128, 5000, 1e-3, 128), 3, 0.25, 5),
    "smoke": Scale((TWO_GOALS,), 3, 5, _bc((32, 32), 300, 64, 1e-3), (), LAMBDAS, 0.2, (0.2,), _ddpm(32, 300, 1e-3, 64), 2, 0.25, 10),
}  # fmt: skip
METHODS = ("bc", "dbc", "ensemble", "swarm")
COMPARISONS = (("dbc", "bc"), ("ensemble", "bc"), ("swarm", "ensemble"))
# The paper's returns (3 seeds, MuJoCo v3 envs): reference only, never our results.
PAPER = {
    (HALFCHEETAH, "bc"): (4873.0, 70.0),
    (HALFCHEETAH, "dbc"): (4910.0, 73.0),
    (WALKER, "bc"): (6954.0, 74.0),
    (WALKER, "dbc"): (7035.0, 34.0),
}


def check_experts(env_ids: tuple[str, ...], zoo_dir: Path = ZOO_DIR) -> None:
    """Fail before any work if an env is unknown or its trained expert is missing (naming the
    command that trains it)."""
    for e in env_ids:
        try:
            envs.family_of(e)
        except ValueError as err:
            raise SystemExit(f"error: {err}") from None
    if missing := [
        e
        for e in env_ids
        if e not in TOY and not (zoo_dir / zoo_name(e) / "artifact.json").exists()
    ]:
        raise SystemExit(
            f"error: no zoo expert for {', '.join(missing)} (expected {zoo_dir}/<env>/artifact.json).\n"
            f"Train it with:\n  python benchmarks/experts.py --envs {' '.join(missing)} --zoo\n"
            f"or leave it out with --envs (e.g. --envs {TWO_GOALS})."
        )


def demo_expert(env_id: str):
    """(expert, expert return, random return): scripted for the toy task, else the zoo's."""
    if env_id in TOY:
        expert = scripted_expert(env_id)
        return expert, expert.meta["mean_return"], expert.meta["random_return"]
    expert = load_expert(env_id)
    if expert.make_env().discrete:
        raise SystemExit(f"error: DBC needs continuous actions; {env_id} has discrete ones")
    return expert, *reference_returns(env_id)


def make_eval(env, cfg: BCConfig, episodes: int, outcomes: bool = False):
    """Jitted ``(params [R, ...], keys [R]) -> (returns, reached, crashed)``, each [R, episodes];
    goal reach and crashes are NaN unless on the toy task or ``outcomes``."""
    policy_fn = make_policy_fn(cfg, env.action_space, env.observation_shape)
    if outcomes or env.id in TOY:

        def run(params, key):
            out = episode_outcomes(env, policy_fn, params, key, episodes)
            return out.returns, out.reached.astype(jnp.float32), out.crashed.astype(jnp.float32)

    else:
        ev = evaluate_fn(env, policy_fn, episodes)

        def run(params, key):
            returns = ev(params, key).returns
            return returns, jnp.full_like(returns, jnp.nan), jnp.full_like(returns, jnp.nan)

    return jax.jit(jax.vmap(run))


def concat(*trees):
    """Pytrees of runs, stacked along the run axis."""
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *trees)


def study_env(env_id: str, sc: Scale, seed: int) -> tuple[list[dict], dict]:
    key = jax.random.key(seed)
    expert, expert_ret, random_ret = demo_expert(env_id)
    env = expert.make_env()
    t = time.time()
    data = collect(expert, env, sc.demo_episodes, jax.random.fold_in(key, 0))
    info = {"env": env_id, "transitions": data.size, "demo_return": float(np.mean(data.episode_returns)),
            "expert_return": expert_ret, "random_return": random_ret}  # fmt: skip
    t = log(f"{env_id}: {data.size} transitions from {sc.demo_episodes} episodes", t)
    cfg, lam_main = sc.bc_for(env_id), sc.lambda_for(env_id)
    models = fit_ddpms(sc.diffusion, key, sc.seeds, data, None, info, env_id)
    lams = [lam_main] + ([x for x in sc.lambda_sweep if x != lam_main] if env_id in TOY else [])
    summary = partial(_single, steps=cfg.steps)
    grid, out, logs, eval_keys = bc_and_dbc(
        env, cfg, sc, key, data, None, models, lams, summary, False, info, env_id
    )
    runs = [("bc", 0.0, s, 1, 0.0) for s in range(sc.seeds)]
    runs += [("dbc" if lam == lam_main else "dbc_sweep", lam, s, 1, 0.0) for lam, s in grid]
    rows = _rows(env_id, runs, out, jax.device_get(concat(*logs)), info)
    if sc.members == 0:  # BC vs DBC only (the ensemble arms are context, and costly at width)
        return rows, info
    # 4. ensemble BC (tau 0) and Swarm BC (tau > 0) in one program, from the same starts
    ens_cfg = dataclasses.replace(cfg, members=sc.members)
    taus = jnp.asarray([0.0] * sc.seeds + [sc.tau] * sc.seeds, jnp.float32)
    ens_keys = jnp.concatenate([jax.random.split(jax.random.fold_in(key, 3), sc.seeds)] * 2)

    def ens_one(k, tau):
        r = make_bc_train(ens_cfg, partial(swarm_bc_loss, tau=tau, penalty="normalized"))(k, data)
        return r.params, _single(r.metrics, None, cfg.steps)

    ens_params, ens_stats = jax.jit(jax.vmap(ens_one))(ens_keys, taus)
    out = make_eval(env, ens_cfg, sc.eval_episodes)(ens_params, jnp.concatenate([eval_keys] * 2))
    jax.block_until_ready(out)  # time the work, not the dispatch
    log(f"{env_id}: ensemble + swarm, evaluated", t)
    runs = [(m, 0.0, s, sc.members, sc.tau if m == "swarm" else 0.0)
            for m in ("ensemble", "swarm") for s in range(sc.seeds)]  # fmt: skip
    return rows + _rows(env_id, runs, jax.device_get(out), jax.device_get(ens_stats), info), info


def fit_ddpms(dcfg: DiffusionConfig, key, seeds: int, data, num_valid, info: dict, what: str):
    """One DDPM per seed: on the shared demonstrations, or (``num_valid`` given) on seed s's
    own (``data`` stacked per seed); records the final loss in ``info``."""
    t, keys = time.time(), jax.random.split(jax.random.fold_in(key, 1), seeds)
    if num_valid is None:
        models = jax.jit(jax.vmap(make_diffusion_train(dcfg), in_axes=(0, None)))(keys, data)
    else:
        n = len(num_valid)
        models = jax.jit(jax.vmap(make_diffusion_train(dcfg)))(keys[:n], data, num_valid)
    info["diffusion_final_loss"] = float(models.losses[:, -max(1, dcfg.steps // 10) :].mean())
    info["diffusion_time_s"] = time.time() - t
    log(f"{what}: DDPMs, final loss {info['diffusion_final_loss']:.4f},", t)
    return models


def bc_and_dbc(env, cfg, sc, key, data, num_valid, models, lams, summary, outcomes, info, what):
    """BC per seed, then DBC for every (lambda, seed) in one program (seed s: DDPM s, and with
    ``num_valid`` data s), the train keys shared (paired runs), then every policy evaluated
    from its seed's episode starts. ``summary(metrics, lam)``: what leaves a training program
    besides the params. Returns the (lambda, seed) grid, the evaluation (returns, reached,
    crashed), the (BC, DBC) summaries and the evaluation keys."""
    t, per_seed = time.time(), num_valid is not None
    train_keys = jax.random.split(jax.random.fold_in(key, 2), sc.seeds)

    def one(k, d, nv, model, lam):
        loss = bc_loss if model is None else partial(dbc_loss, diffusion=model, lambda_dm=lam)
        r = make_bc_train(cfg, loss)(k, d, nv) if per_seed else make_bc_train(cfg, loss)(k, data)
        return r.params, summary(r.metrics, 0.0 if model is None else lam)

    bc_params, bc_logs = jax.jit(jax.vmap(lambda k, d, nv: one(k, d, nv, None, None)))(
        train_keys, data if per_seed else None, num_valid
    )
    jax.block_until_ready(bc_params)  # time the work, not the dispatch
    info["bc_time_s"], t = time.time() - t, log(f"{what}: bc", t)
    grid = [(lam, s) for lam in lams for s in range(sc.seeds)]
    idx = jnp.asarray([s for _, s in grid])
    pick = partial(jax.tree.map, lambda x: x[idx])
    dbc_params, dbc_logs = jax.jit(jax.vmap(one))(
        train_keys[idx], pick(data) if per_seed else None, num_valid[idx] if per_seed else None,
        pick(models), jnp.asarray([lam for lam, _ in grid], jnp.float32),
    )  # fmt: skip
    jax.block_until_ready(dbc_params)  # time the work, not the dispatch
    info["dbc_time_s"], t = time.time() - t, log(f"{what}: dbc ({len(lams)} lambda_DM x {sc.seeds} seeds)", t)  # fmt: skip
    eval_keys = jax.random.split(jax.random.fold_in(key, 4), sc.seeds)
    out = make_eval(env, cfg, sc.eval_episodes, outcomes)(
        concat(bc_params, dbc_params), jnp.concatenate([eval_keys, eval_keys[idx]])
    )
    log(f"{what}: evaluation (bc, dbc)", t)
    return grid, jax.device_get(out), jax.device_get((bc_logs, dbc_logs)), eval_keys


def _single(metrics, lam, steps: int):
    """What leaves a training program: losses over the last 10% of steps."""
    tail = max(1, steps // 10)
    dm = metrics["dm_loss"][-tail:].mean() if "dm_loss" in metrics else jnp.float32(jnp.nan)
    return {"bc_loss": metrics["bc_loss"][-tail:].mean(), "dm_loss": dm}


def _rows(env_id, runs, out, stats, info) -> list[dict]:
    """One row per (method, lambda, seed, members, tau) run, from its evaluation and losses."""
    rows = []
    for i, (method, lam, seed, members, tau) in enumerate(runs):
        returns, reached, crashed = (np.asarray(x[i]) for x in out)
        r, reach, dm = float(returns.mean()), float(reached.mean()), stats["dm_loss"][i]
        rows.append({
            "env": env_id, "method": method, "lambda_dm": lam, "seed": seed, "members": members,
            "tau": tau, "mean_return": r,
            "scaled_return": (r - info["random_return"]) / (info["expert_return"] - info["random_return"]),
            "goal_reach": None if np.isnan(reach) else reach,
            "crash": None if np.isnan(reach) else float(crashed.mean()),
            "bc_loss": float(stats["bc_loss"][i]), "dm_loss": None if np.isnan(dm) else float(dm),
            "expert_return": info["expert_return"], "random_return": info["random_return"],
        })  # fmt: skip
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    keys = ("env", "method", "lambda_dm")
    out = studies.group_stats(rows, keys, ("mean_return", "scaled_return", "goal_reach", "crash"))
    for agg, rs in zip(out, studies.groups(rows, keys).values(), strict=True):
        paper = PAPER.get((agg["env"], agg["method"]))
        agg["paper_return"], agg["paper_return_std"] = paper if paper else (None, None)
        # whether the diffusion term acted: lambda_DM L_DM / L_BC over the last steps, seed mean
        lam = agg["lambda_dm"]
        terms = [(r["dm_loss"], r["bc_loss"]) for r in rs if r.get("dm_loss") is not None]
        agg["dm_term_ratio"] = (
            float(np.mean([lam * dm / bc for dm, bc in terms])) if terms and lam else None
        )
    return out


def arm_scores(rows: list[dict]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Scaled returns as rliable score matrices ``[seeds, envs]`` per arm (the lambda sweep's
    extra runs left out; arms not run are absent)."""
    arms = {m: ({"method": m}, "scaled_return") for m in METHODS}
    scores, tasks = studies.score_matrix(rows, arms)
    return scores, [t[0] for t in tasks]


def statistics(rows: list[dict], reps: int = 10_000) -> dict:
    """IQM, mean and optimality gap per arm and P(X > Y) for :data:`COMPARISONS`, stratified
    bootstrap over seeds; per env the paired differences of :data:`COMPARISONS`."""
    scores, envs = arm_scores(rows)
    out = studies.aggregate(scores, COMPARISONS, envs, reps)
    out["paired"] = studies.paired(rows, COMPARISONS)
    return out


def _ratio(r: dict) -> str:
    return "–" if r.get("dm_term_ratio") is None else f"{r['dm_term_ratio']:.2g}"


def _pm(field: str, spec: str = ".2f"):
    """A column: ``field`` as mean ± std over seeds."""
    return lambda r: pm(r[field], r[field + "_std"], spec)


def locomotion_report(
    summary: list[dict], infos: list[dict], meta: dict, sc: Scale, stats: dict
) -> list[str]:
    bc, dm = sc.bc, sc.diffusion
    lines = studies.heading("Diffusion-BC study", meta, (
        f"seeds 0..{sc.seeds - 1} (paired); wall time {meta['wall_time_s']:.0f} s; "
        f"{sc.demo_episodes} expert episodes per env; tanh MLPs, {bc.steps} steps; DDPM width {dm.hidden}, "
        f"{dm.steps} steps; " + (f"{sc.members} members, Swarm tau {sc.tau}; " if sc.members else "no ensemble arms; ")
        + f"{sc.eval_episodes} evaluation episodes per run. Mean ± std over seeds; the paper's "
        "returns (MuJoCo) as a reference only."
    )) + [""] + table((r for r in summary if r["method"] != "dbc_sweep"), {
        "env": "env", "method": "method",
        "lambda_DM": lambda r: f"{r['lambda_dm']:g}" if r["method"] == "dbc" else "–",
        "return": lambda r: pm(r["mean_return"], r["mean_return_std"], ".1f" if abs(r["mean_return"]) > 10 else ".3f"),
        "scaled return": _pm("scaled_return"), "goal reach": _pm("goal_reach"), "crash": _pm("crash"),
        "lambda_DM L_DM / L_BC": _ratio, "paper return (reference)": _pm("paper_return", ".0f"),
    })  # fmt: skip
    if len(sweep := _sweep(summary)) > 1:
        lines += ["", f"## DBC lambda_DM sweep ({sweep[0]['env']})", ""] + table(sweep, {
            "lambda_DM": lambda r: f"{r['lambda_dm']:g}", "scaled return": _pm("scaled_return"),
            "goal reach": _pm("goal_reach"), "crash": _pm("crash"), "lambda_DM L_DM / L_BC": _ratio,
        })  # fmt: skip
    lines += studies.aggregates_section(stats, "Scaled return")
    if stats.get("paired"):
        lines += ["", "## Paired differences per env (scaled return, 95% bootstrap CI)", ""]
        lines += table(stats["paired"], {
            "env": "env", "X - Y": lambda d: f"{d['x']} - {d['y']}",
            "mean [95% CI]": lambda d: studies.signed_ci(d["mean"], d["ci"], "+.3f"),
            "seeds": "n", "reading": "reading",
        })  # fmt: skip
    return lines + ["", "## Data and references", ""] + table(infos, {
        "env": "env", "transitions": "transitions", "demo return": "demo_return:.2f",
        "expert return": "expert_return:.2f", "random return": "random_return:.2f",
        "diffusion loss (end)": lambda i: f"{i['diffusion_final_loss']:.4f}",
    })  # fmt: skip


def _sweep(summary: list[dict]) -> list[dict]:
    """The toy task's DBC runs over lambda_DM."""
    rs = (r for r in summary if r["method"] in ("dbc", "dbc_sweep") and r["env"] in TOY)
    return sorted(rs, key=lambda r: r["lambda_dm"])


def plot(summary: list[dict], path: Path) -> None:
    env_ids = list(dict.fromkeys(r["env"] for r in summary))
    sweep = _sweep(summary)
    with studies.figure(path, len(env_ids) + (len(sweep) > 1)) as axes:
        for ax, env_id in zip(axes[0], env_ids, strict=False):
            rs = [r for r in summary if r["env"] == env_id and r["method"] in METHODS]
            x = np.arange(len(rs))
            ax.bar(x, [r["scaled_return"] for r in rs], yerr=[r["scaled_return_std"] for r in rs],
                   capsize=3, color="C0", label="scaled return")  # fmt: skip
            if env_id in TOY:
                ax.plot(x, [r["goal_reach"] for r in rs], "o", color="C3", label="goal reach")
                ax.legend(fontsize=7)
            ax.set_xticks(x, [r["method"] for r in rs], fontsize=8)
            ax.axhline(1.0, color="gray", lw=0.8, ls="--")
            ax.set_title(env_id, fontsize=9)
            ax.set_ylabel("scaled return", fontsize=8)
        if len(sweep) > 1:
            ax = axes[0][-1]
            ax.errorbar(range(len(sweep)), [r["goal_reach"] for r in sweep],
                        yerr=[r["goal_reach_std"] for r in sweep], marker="o", capsize=3)  # fmt: skip
            ax.set_xticks(range(len(sweep)), [f"{r['lambda_dm']:g}" for r in sweep], fontsize=8)
            ax.set(xlabel="lambda_DM", ylabel="goal reach", title=f"DBC on {sweep[0]['env']}")
            ax.title.set_fontsize(9)


# --- protocol "multimodal": DBC where averaging the modes fails ----------------------------
#
# Tasks (name -> env id and options). On toy_visible the observation tells the expert's mode
# (the sign of y), so MSE BC has nothing to fix: the control. On toy_hidden the observation
# is (x, |y|): BC must average the two sidesteps into the obstacle. On the maze the start
# observation is the same for both routes and the expert's first action is a coin flip.
TASKS: dict[str, tuple[str, tuple]] = {
    "toy_visible": (TWO_GOALS, ()),
    "toy_hidden": (TWO_GOALS, (("hide_mode", True),)),
    "maze": (POINT_MAZE, ()),
}
# lambda_DM per task, fixed before any run: 30 is the paper's Maze value; on the toy tasks
# also 0.05 (the locomotion protocol's toy value) and 1 (AntReach's), every one reported.
TASK_LAMBDAS: dict[str, tuple[float, ...]] = {
    "toy_visible": (0.05, 1.0, 30.0),
    "toy_hidden": (0.05, 1.0, 30.0),
    "maze": (30.0,),
}
# which (observation dim, action dim) the samples plot shows against each other
SAMPLE_AXES = {"toy_visible": (0, 1), "toy_hidden": (0, 1), "maze": (1, 0)}
LOSS_TERMS = ("bc_loss", "dm_loss", "agent_diffusion_loss", "expert_diffusion_loss")


@dataclass(frozen=True)
class MultimodalScale(studies.Scale):  # envs: the tasks (keys of TASKS)
    demo_episodes: int
    bc: BCConfig  # BC and DBC alike (tanh MLP, linear action head, orthogonal init)
    diffusion: DiffusionConfig
    eval_episodes: int
    curve_points: int  # training curves are averaged into this many windows
    samples: int  # DDPM samples drawn (seed 0's model) for the samples plot


MM_SCALES = {
    # the paper's Maze policy (3x256 tanh, linear head) and its locomotion-size DDPM (1,024
    # wide); 100 demonstrations like maze2d-medium; needs a GPU
    "paper": MultimodalScale(tuple(TASKS), 10, 100, _bc((256, 256, 256), 40_000, 128, 1e-4, False), _ddpm(1024, 100_000, 2e-4, 128), 100, 200, 4000),
    # ~1 h on the idle 2-core CPU (estimated from timed pieces of the smoke run)
    "cpu": MultimodalScale(tuple(TASKS), 10, 50, _bc((256, 256), 6000, 128, 1e-3, False), _ddpm(256, 12_000, 1e-3, 128), 50, 60, 2000),
    "smoke": MultimodalScale(tuple(TASKS), 3, 20, _bc((32, 32), 300, 64, 1e-3, False), _ddpm(32, 300, 1e-3, 64), 10, 10, 500),
}  # fmt: skip


def seed_datasets(expert, env, episodes: int, key: jax.Array, seeds: int):
    """One demonstration set per seed (shared by BC and DBC: paired), padded to a common
    length with copies of the last transition and stacked: ``(data [seeds, N, ...], sizes)``;
    trainers see only the first ``sizes[s]`` transitions (``num_valid``)."""
    ds = [collect(expert, env, episodes, jax.random.fold_in(key, s)) for s in range(seeds)]
    n = max(d.size for d in ds)

    def pad(x):
        x = np.asarray(x)
        return np.concatenate([x, np.repeat(x[-1:], n - len(x), 0)])

    padded = [d.replace(**{k: pad(getattr(d, k)) for k in ARRAY_KEYS}) for d in ds]
    stacked = jax.tree.map(lambda *xs: np.stack(xs), *padded)
    return stacked, np.asarray([d.size for d in ds]), ds


def _padded(x: np.ndarray) -> tuple[float, float]:
    lo, hi = float(np.min(x)), float(np.max(x))
    pad = 0.25 * (hi - lo) + 0.1
    return lo - pad, hi + pad


def _outside(s: dict) -> float:
    """Share of DDPM samples with any coordinate outside the padded range of the data."""
    data = np.concatenate([s["data_obs"], s["data_act"]], 1)
    smp = np.concatenate([s["sample_obs"], s["sample_act"]], 1)
    lims = np.asarray([_padded(c) for c in data.T])
    return float(((smp < lims[:, 0]) | (smp > lims[:, 1])).any(1).mean())


def _curves(metrics: dict, lam, steps: int, points: int) -> dict:
    """Per-step metrics -> window means [points] for the loss terms, plus their last-10% means
    and the ratio lambda_DM * L_DM / L_BC at the end."""
    points = max(1, min(points, steps))
    w, tail, out = steps // points, max(1, steps // 10), {}
    for k in (k for k in LOSS_TERMS if k in metrics):
        out["curve_" + k] = metrics[k][: w * points].reshape(points, w).mean(1)
        out["end_" + k] = metrics[k][-tail:].mean()
    if "dm_loss" in metrics:
        out["end_ratio"] = lam * out["end_dm_loss"] / out["end_bc_loss"]
    return out


def study_task(
    task: str, sc: MultimodalScale, seed: int, samples_only: bool = False
) -> tuple[list[dict], dict, dict]:
    """BC and DBC (each lambda of the task) on one task, ``sc.seeds`` paired seeds; with
    ``samples_only`` just seed 0's demonstrations, DDPM and samples (no rows)."""
    env_id, options = TASKS[task]
    key = jax.random.fold_in(jax.random.key(seed), list(TASKS).index(task))
    expert = scripted_expert(env_id, **dict(options))
    env = expert.make_env()
    t = time.time()
    data, sizes, per_seed = seed_datasets(
        expert, env, sc.demo_episodes, jax.random.fold_in(key, 0), 1 if samples_only else sc.seeds
    )
    num_valid = jnp.asarray(sizes)
    info: dict = {
        "task": task, "env": env_id, "env_options": dict(options), "transitions_per_seed": sizes.tolist(),
        "demo_return": float(np.mean([d.episode_returns.mean() for d in per_seed])),
        "expert_return": expert.meta["mean_return"], "random_return": expert.meta["random_return"],
        "lambdas": list(TASK_LAMBDAS[task]),
    }  # fmt: skip
    t = log(f"{task}: {sizes.tolist()} transitions per seed", t)
    models = fit_ddpms(sc.diffusion, key, sc.seeds, data, num_valid, info, task)
    # samples of seed 0's model against its data, for the plot
    model0 = jax.tree.map(lambda x: x[0], models)
    s_obs, s_act = jax.device_get(
        jax.jit(lambda k: diffusion_sample(model0, k, sc.samples))(jax.random.fold_in(key, 5))
    )
    d0 = per_seed[0]
    samples = {"data_obs": np.asarray(d0.obs), "data_act": np.asarray(d0.action),
               "sample_obs": np.asarray(s_obs), "sample_act": np.asarray(s_act)}  # fmt: skip
    # of the actions that step sideways (|component| > 0.1 along the mode's axis), the share
    # that step up (toy) / right (maze): in the data and in the samples
    info["samples_outside_data_range"] = _outside(samples)
    for src in ("data", "sample"):
        side = samples[src + "_act"][:, SAMPLE_AXES[task][1]]
        side = side[np.abs(side) > 0.1]
        info[f"upper_mode_fraction_{src}"] = float((side > 0).mean()) if side.size else float("nan")
    t = log(f"{task}: {sc.samples} DDPM samples", t)
    if samples_only:
        return [], info, samples

    summary = partial(_curves, steps=sc.bc.steps, points=sc.curve_points)
    grid, (returns, reached, crashed), logs, _ = bc_and_dbc(
        env, sc.bc, sc, key, data, num_valid, models, TASK_LAMBDAS[task], summary, True, info, task
    )
    runs = [("bc", 0.0, s) for s in range(sc.seeds)] + [("dbc", lam, s) for lam, s in grid]
    rows, curves = [], []
    for i, (method, lam, s) in enumerate(runs):
        lg, j = (logs[0], i) if method == "bc" else (logs[1], i - sc.seeds)
        rows.append({
            "task": task, "env": env_id, "method": method, "lambda_dm": lam, "seed": s,
            "transitions": int(sizes[s]), "success": float(reached[i].mean()),
            "crash": float(crashed[i].mean()) if env_id in TOY else None,
            "mean_return": float(returns[i].mean()),
            **{k: float(lg["end_" + k][j]) if "end_" + k in lg else None for k in LOSS_TERMS},
            "ratio_dm_bc": float(lg["end_ratio"][j]) if "end_ratio" in lg else None,
        })  # fmt: skip
        curves.append({"task": task, "method": method, "lambda_dm": lam, "seed": s,
                       **{k: lg["curve_" + k][j].tolist() for k in LOSS_TERMS if "curve_" + k in lg}})  # fmt: skip
    info["curves"] = curves
    return rows, info, samples


def compare(rows: list[dict], tasks: tuple[str, ...]) -> list[dict]:
    """Per task and lambda: both arms' means and the paired DBC - BC difference in success."""

    def arm(task, method, lam=None):
        rs = [r for r in rows if r["task"] == task and r["method"] == method
              and (lam is None or r["lambda_dm"] == lam)]  # fmt: skip
        return sorted(rs, key=lambda r: r["seed"])

    def mean(rs, k):
        return None if rs[0][k] is None else float(np.mean([r[k] for r in rs]))

    out = []
    for task in tasks:
        bc = arm(task, "bc")
        for lam in TASK_LAMBDAS[task]:
            dbc = arm(task, "dbc", lam)
            assert [r["seed"] for r in bc] == [r["seed"] for r in dbc]
            diff = studies.paired_ci([r["success"] for r in dbc], [r["success"] for r in bc])
            ratio = [r["ratio_dm_bc"] for r in dbc]
            out.append({
                "task": task, "env": bc[0]["env"], "lambda_dm": lam, "seeds": len(bc),
                "bc_success": mean(bc, "success"), "dbc_success": mean(dbc, "success"),
                "bc_crash": mean(bc, "crash"), "dbc_crash": mean(dbc, "crash"),
                "difference": diff["mean"], "difference_ci": diff["ci"], "reading": diff["reading"],
                "bc_loss_bc_arm": mean(bc, "bc_loss"),
                **{f"{k}_dbc_arm": float(np.mean([r[k] for r in dbc])) for k in LOSS_TERMS},
                "ratio_dm_bc": float(np.mean(ratio)), "ratio_dm_bc_range": [float(np.min(ratio)), float(np.max(ratio))],
            })  # fmt: skip
    return out


def _diff(c: dict) -> str:
    return studies.signed_ci(c["difference"], c["difference_ci"])


def multimodal_report(
    comparisons: list[dict], infos: list[dict], meta: dict, sc: MultimodalScale
) -> list[str]:
    bc, dm = sc.bc, sc.diffusion
    lines = studies.heading("Diffusion-BC where averaging the modes fails (protocol `multimodal`)", meta, (
        f"scale `{meta['scale']}`; base seed {meta['seed']}, seeds 0..{sc.seeds - 1} (paired); wall time "
        f"{meta['wall_time_s']:.0f} s; {sc.demo_episodes} scripted-expert episodes per seed; DDPM width "
        f"{dm.hidden}, {dm.steps} steps; MLP {'x'.join(map(str, bc.policy.hidden_sizes))}, {bc.steps} steps; "
        f"{sc.eval_episodes} evaluation episodes per run. Success: share of episodes reaching a goal."
    )) + [""] + table(comparisons, {
        "task": "task", "lambda_DM": lambda c: f"{c['lambda_dm']:g}", "BC success": "bc_success:.2f",
        "DBC success": "dbc_success:.2f", "DBC - BC [95% CI]": _diff, "reading": "reading",
        "BC / DBC crash": lambda c: "–" if c["bc_crash"] is None else f"{c['bc_crash']:.2f} / {c['dbc_crash']:.2f}",
        "L_BC (BC / DBC)": lambda c: f"{c['bc_loss_bc_arm']:.4f} / {c['bc_loss_dbc_arm']:.4f}",
        "L_agent": lambda c: f"{c['agent_diffusion_loss_dbc_arm']:.4f}",
        "L_expert": lambda c: f"{c['expert_diffusion_loss_dbc_arm']:.4f}",
        "L_DM": lambda c: f"{c['dm_loss_dbc_arm']:.2e}",
        "lambda_DM L_DM / L_BC": lambda c: "{:.3g} [{:.3g}, {:.3g}]".format(c["ratio_dm_bc"], *c["ratio_dm_bc_range"]),
    })  # fmt: skip
    return lines + ["", "## Data and diffusion models (seed 0's samples)", ""] + table(infos, {
        "task": "task", "env options": lambda i: i["env_options"] or "–",
        "transitions per seed": lambda i: ", ".join(map(str, i["transitions_per_seed"])),
        "demo return": "demo_return:.2f",
        "expert / random return": lambda i: f"{i['expert_return']:.2f} / {i['random_return']:.2f}",
        "DDPM loss (end)": lambda i: f"{i['diffusion_final_loss']:.4f}",
        "mode fraction data / samples": lambda i: f"{i['upper_mode_fraction_data']:.2f} / {i['upper_mode_fraction_sample']:.2f}",
        "samples off-frame": "samples_outside_data_range:.2f",
    })  # fmt: skip


def plot_samples(samples: dict[str, dict], path: Path) -> None:
    """Per task: the 2-D action scatter, and the mode's action component against a state
    coordinate, demonstrations vs DDPM samples."""
    with studies.figure(path, 2 * len(samples), 2, (3.5, 3.0)) as axes:
        for row, (task, s) in zip(axes, samples.items(), strict=True):
            od, ad = SAMPLE_AXES[task]
            for src, color, label, size in (
                ("sample", "C1", "DDPM samples", 4),
                ("data", "C0", "demonstrations", 2),
            ):
                o, a = s[src + "_obs"], s[src + "_act"]
                row[0].scatter(a[:, 0], a[:, 1], s=size, alpha=0.5, color=color, label=label)
                row[1].scatter(o[:, od], a[:, ad], s=size, alpha=0.5, color=color, label=label)
            # frame the data (the share of samples outside the frame is in the title)
            o, a = s["data_obs"], s["data_act"]
            for ax, (xs, ys) in zip(row, ((a[:, 0], a[:, 1]), (o[:, od], a[:, ad])), strict=True):
                ax.set_xlim(*_padded(xs))
                ax.set_ylim(*_padded(ys))
            obs_names = ("x", "|y|" if TASKS[task][1] else "y", "vx", "vy")
            row[0].set(
                xlabel="action 0",
                ylabel="action 1",
                title=f"{task}: actions ({_outside(s):.0%} of samples off-frame)",
            )
            row[1].set(
                xlabel=f"state {obs_names[od]}",
                ylabel=f"action {ad}",
                title=f"{task}: action {ad} vs state",
            )
            for ax in row:
                ax.title.set_fontsize(9)
            row[0].legend(fontsize=7, markerscale=3)  # fmt: skip


def plot_multimodal(
    rows: list[dict], comparisons: list[dict], infos: list[dict], path: Path
) -> None:
    """Left: success per seed (BC and each DBC lambda, pairs joined); right: the DBC arms'
    training curves of L_BC and lambda_DM * L_DM (mean over seeds)."""
    tasks = list(dict.fromkeys(c["task"] for c in comparisons))
    with studies.figure(path, 2 * len(tasks), 2, (4.0, 2.8)) as axes:
        for (ax, axc), task in zip(axes, tasks, strict=True):
            lams = TASK_LAMBDAS[task]
            arms = [("bc", 0.0)] + [("dbc", lam) for lam in lams]
            by = {
                (r["method"], r["lambda_dm"], r["seed"]): r["success"]
                for r in rows
                if r["task"] == task
            }
            vals = np.asarray(
                [[by[(m, lam, s)] for m, lam in arms] for s in sorted({s for _, _, s in by})]
            )
            for v in vals:
                ax.plot(range(len(arms)), v, "-o", color="gray", alpha=0.4, ms=3)
            ax.plot(range(len(arms)), vals.mean(0), "s", color="C3", ms=7, label="mean")
            ax.set_xticks(range(len(arms)), ["BC"] + [f"DBC {lam:g}" for lam in lams], fontsize=8)
            ax.set_ylim(-0.05, 1.05)
            cis = "; ".join(_diff(c) for c in comparisons if c["task"] == task)
            ax.set_title(f"{task}: success (DBC-BC: {cis})", fontsize=8)
            info = next(i for i in infos if i["task"] == task)
            for lam, color in zip(lams, ("C0", "C1", "C2", "C4"), strict=False):
                cs = [c for c in info["curves"] if c["method"] == "dbc" and c["lambda_dm"] == lam]
                bc = np.mean([c["bc_loss"] for c in cs], 0)
                dm = lam * np.mean([c["dm_loss"] for c in cs], 0)
                x = np.arange(1, len(bc) + 1) / len(bc)
                axc.plot(x, bc, color=color, label=f"L_BC (lambda {lam:g})")
                axc.plot(
                    x, np.maximum(dm, 1e-8), color=color, ls="--", label=f"lambda L_DM ({lam:g})"
                )
            axc.set_yscale("log")
            axc.set(xlabel="fraction of training", title=f"{task}: DBC loss terms")
            axc.title.set_fontsize(9)
            axc.legend(fontsize=6)  # fmt: skip


def run_multimodal(
    scale: str, tasks: list[str] | None, seed: int, out_dir: Path, name: str, samples_only: bool
) -> None:
    if unknown := [t for t in tasks or () if t not in TASKS]:
        raise SystemExit(f"error: unknown task(s) {unknown}; choose from {list(TASKS)}")
    sc = MM_SCALES[scale].only(tasks)
    enable_compilation_cache()
    t0 = time.time()
    rows, infos, samples = [], [], {}
    for task in sc.envs:
        r, info, samples[task] = study_task(task, sc, seed, samples_only)
        rows += r
        infos.append(info)
    samples_path = out_dir / f"{name.removesuffix('_multimodal')}_ddpm_samples.png"
    meta = studies.metadata(
        "benchmarks/dbc.py", scale, sc, time.time() - t0, protocol="multimodal", seed=seed,
        task_lambdas={t: list(TASK_LAMBDAS[t]) for t in sc.envs},
        statistics="paired percentile bootstrap (jaxbc.stats.paired_difference, 9999 resamples) of the "
        "mean DBC - BC success over seeds, 95%",
    )  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    if samples_only:  # the DDPM samples plot of seed 0 per task, with its settings
        meta["samples_only"] = True
        studies.write_report(out_dir, samples_path.stem, {"meta": meta, "data": infos})
        plot_samples(samples, samples_path)
        print(json.dumps(infos, indent=1))
        return
    comparisons = compare(rows, sc.envs)
    data = {"meta": meta, "data": infos, "comparisons": comparisons, "runs": rows}
    studies.write_report(out_dir, name, data, multimodal_report(comparisons, infos, meta, sc), rows)
    plot_multimodal(rows, comparisons, infos, out_dir / f"{name}.png")
    plot_samples(samples, samples_path)
    print((out_dir / f"{name}.md").read_text())


def main(
    scale: Literal["cpu", "cpu_large", "paper", "smoke"] = "cpu",
    protocol: Literal["locomotion", "multimodal"] = "locomotion",
    envs: list[str] | None = None,
    tasks: list[str] | None = None,
    seed: int = 0,
    out_dir: Path = Path("benchmarks/results"),
    name: str | None = None,
    samples_only: bool = False,
    report_only: bool = False,
) -> None:
    """Args:
    scale: cpu (2 cores: locomotion 13 min measured, multimodal ~1 h estimated), cpu_large
        (locomotion at the paper's policy sizes, DDPM width 512, 5 seeds, BC vs DBC: ~1 h
        estimated), paper (GPU), smoke (checks the pipeline).
    protocol: locomotion (BC, DBC, ensemble, Swarm on Brax + TwoGoals2D-v0; dbc.*) or
        multimodal (BC vs DBC where the observation hides the mode: toy_visible, toy_hidden,
        maze; dbc_multimodal.* and dbc_ddpm_samples.png).
    envs: locomotion: subset of envs (default: brax/halfcheetah, brax/walker2d, TwoGoals2D-v0).
    tasks: multimodal: subset of toy_visible, toy_hidden, maze (default: all).
    seed: base PRNG seed.
    out_dir: where results go.
    name: file stem of the results (default: dbc, or dbc_multimodal).
    samples_only: multimodal: only seed 0's DDPM per task and dbc_ddpm_samples.{png,json}.
    report_only: locomotion: rewrite the report (aggregates, plots) from the runs saved in
        out_dir/<name>.json; trains nothing (the meta's command stays the run's).
    """
    if protocol == "multimodal":
        if envs or report_only:
            raise SystemExit("error: --envs and --report-only belong to the locomotion protocol")
        return run_multimodal(scale, tasks, seed, out_dir, name or "dbc_multimodal", samples_only)
    if tasks:
        raise SystemExit("error: --tasks belongs to --protocol multimodal")
    name = name or "dbc"
    sc = SCALES[scale].only(envs)
    if report_only:
        if envs:
            raise SystemExit("error: --report-only rewrites every env of the saved runs")
        saved = studies.load_saved(out_dir / f"{name}.json", scale=scale, seed=seed)
        command = studies.metadata("benchmarks/dbc.py", None)["command"]
        meta = {**saved["meta"], "report_command": command}
        sc = dataclasses.replace(sc, envs=tuple(i["env"] for i in saved["data"]))
        return write_locomotion(out_dir, name, meta, sc, saved["data"], saved["runs"], csv=False)
    check_experts(sc.envs)
    enable_compilation_cache()
    t0 = time.time()
    rows, infos = [], []
    for env_id in sc.envs:
        r, info = study_env(env_id, sc, seed)
        rows += r
        infos.append(info)
    meta = studies.metadata(
        "benchmarks/dbc.py", scale, sc, time.time() - t0, seed=seed,
        paper_reference={f"{e} {m}": v for (e, m), v in PAPER.items()},
    )  # fmt: skip
    write_locomotion(out_dir, name, meta, sc, infos, rows)


def write_locomotion(out_dir: Path, name: str, meta: dict, sc: Scale, infos: list[dict],
                     rows: list[dict], csv: bool = True) -> None:  # fmt: skip
    """The locomotion study's files: runs and summary (json, csv; a report-only rewrite
    leaves the run's csv as written), report with the rliable aggregates (md), bar chart
    and performance profiles (png)."""
    summary, stats = summarize(rows), statistics(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "data": infos, "summary": summary, "statistics": stats, "runs": rows}
    md = locomotion_report(summary, infos, meta, sc, stats)
    studies.write_report(out_dir, name, data, md, rows if csv else None)
    plot(summary, out_dir / f"{name}.png")
    title = f"DBC study: {', '.join(stats['tasks'])}"
    studies.profiles(arm_scores(rows)[0], out_dir / f"{name}_profiles.png", title)
    print((out_dir / f"{name}.md").read_text())


if __name__ == "__main__":
    studies.cli(main, multi_process=False)
