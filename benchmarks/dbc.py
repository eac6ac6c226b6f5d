"""The Diffusion-BC study: BC vs DBC (ensemble BC and Swarm BC for context) from 5 expert
trajectories, as in Chen et al. (ICML 2024), plus the multimodal TwoGoals2D-v0 task.

    python benchmarks/dbc.py --scale smoke    # seconds: TwoGoals2D-v0 only, checks the pipeline
    python benchmarks/dbc.py --scale cpu      # 13 min on the 2-core CPU (measured, shared)
    python benchmarks/dbc.py --scale paper    # GPU: the paper's settings

Per env, 5 demonstration episodes come from the expert: the zoo PPO expert for the Brax
envs (``python benchmarks/experts.py --envs ENV --zoo`` trains a missing one), the scripted
bimodal expert for TwoGoals2D-v0. Then, each a single compiled program with seeds vmapped:

1. one diffusion model per seed (pretrained on the demonstrations; DBC seed ``s`` uses
   model ``s``, so seed-to-seed spread includes the diffusion model's);
2. BC (``bc_loss``) and DBC (``partial(dbc_loss, diffusion=model, lambda_dm=...)``), paired:
   the same initialisation and minibatches per seed; on the toy task DBC also runs a
   ``lambda_dm`` sweep in the same program;
3. ensemble BC and Swarm BC (``members`` policies, tau 0 / tau > 0) in one program;
4. evaluation (one program for all single policies, one for all ensembles).

Writes benchmarks/results/dbc.{json,csv,md} and dbc.png. The paper's numbers (MuJoCo
HalfCheetah-v3 / Walker2d-v3) are printed only as reference columns: Brax's envs differ in
dynamics and reward scale, so compare the DBC - BC difference, not absolute returns.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from jaxbc import envs
from jaxbc.bc import BCConfig, PolicyConfig, bc_loss, dbc_loss, make_bc_train, swarm_bc_loss
from jaxbc.bc.evaluation import reference_returns
from jaxbc.bc.train import make_policy_fn
from jaxbc.data import collect
from jaxbc.diffusion import DiffusionConfig, make_diffusion_train
from jaxbc.envs.multimodal import TOY, episode_outcomes
from jaxbc.experts import load_expert
from jaxbc.experts.expert import ZOO_DIR, zoo_name
from jaxbc.experts.scripted import scripted_expert
from jaxbc.io import (
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_json,
    enable_compilation_cache,
    machine_description,
)
from jaxbc.rollout import evaluate_fn

PerEnv = tuple[tuple[str, object], ...]  # (env id, value) pairs; frozen-dataclass friendly


@dataclass(frozen=True)
class Scale:
    envs: tuple[str, ...]
    seeds: int
    demo_episodes: int
    steps: int  # policy gradient steps
    batch_size: int
    lr: float
    hidden: PerEnv  # policy MLP per env
    default_hidden: tuple[int, ...]
    lambda_dm: PerEnv  # DBC weight per env
    default_lambda_dm: float
    lambda_sweep: tuple[float, ...]  # extra DBC weights, run on the toy task only
    diffusion_T: int
    diffusion_hidden: int
    diffusion_steps: int
    diffusion_lr: float
    members: int  # ensemble / Swarm BC size
    tau: float
    eval_episodes: int

    def hidden_for(self, env_id: str) -> tuple[int, ...]:
        return tuple(dict(self.hidden).get(env_id, self.default_hidden))

    def lambda_for(self, env_id: str) -> float:
        return float(dict(self.lambda_dm).get(env_id, self.default_lambda_dm))


HALFCHEETAH, WALKER, TWO_GOALS = "brax/halfcheetah", "brax/walker2d", TOY[0]
ENVS = (HALFCHEETAH, WALKER, TWO_GOALS)
# lambda_dm: the paper's 0.2 for the locomotion envs; 0.05 on the toy task, picked in a pilot
# sweep (0, 0.01, 0.05, 0.2, 1 with 4 seeds) where 0.2 and 1 over-weighted the diffusion term
# (DBC then fit the data worse than BC); every study re-runs that sweep on the toy task.
LAMBDAS: PerEnv = ((HALFCHEETAH, 0.2), (WALKER, 0.2), (TWO_GOALS, 0.05))
SCALES = {
    # paper: 2x256 (HalfCheetah) / 2x1024 (Walker) tanh MLP, Adam, batch 128, linear decay, clip
    # 0.5, T = 1000, width 1024. Steps and learning rates follow the authors' public run
    # scripts (policy lr 1e-4, 1000 epochs of 5,000 transitions = 40k steps; DDPM lr 2e-4,
    # 8000 epochs ~ 300k steps).
    "paper": Scale(
        ENVS,
        3,
        5,
        40_000,
        128,
        1e-4,
        ((HALFCHEETAH, (256, 256)), (WALKER, (1024, 1024))),
        (256, 256),
        LAMBDAS,
        0.2,
        (0.0, 0.01, 0.05, 0.2, 1.0),
        1000,
        1024,
        300_000,
        2e-4,
        5,
        0.25,
        10,
    ),
    "cpu": Scale(
        ENVS,
        3,
        5,
        3000,
        128,
        1e-3,
        (),
        (128, 128),
        LAMBDAS,
        0.2,
        (0.0, 0.01, 0.05, 0.2, 1.0),
        1000,
        128,
        5000,
        1e-3,
        3,
        0.25,
        5,
    ),
    "smoke": Scale(
        (TWO_GOALS,),
        3,
        5,
        300,
        64,
        1e-3,
        (),
        (32, 32),
        LAMBDAS,
        0.2,
        (0.2,),
        1000,
        32,
        300,
        1e-3,
        2,
        0.25,
        10,
    ),
}
METHODS = ("bc", "dbc", "ensemble", "swarm")
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
    missing = [
        e for e in env_ids if e not in TOY and not (zoo_dir / zoo_name(e) / "expert.json").exists()
    ]
    if missing:
        raise SystemExit(
            f"error: no zoo expert for {', '.join(missing)} (expected {zoo_dir}/<env>/expert.json).\n"
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


def make_eval(env, cfg: BCConfig, episodes: int):
    """Jitted ``(params [R, ...], keys [R]) -> (returns, reached, crashed)``, each [R, episodes];
    goal reach and crashes are NaN outside the toy task."""
    policy_fn = make_policy_fn(cfg, env.action_space, env.observation_shape)
    if env.id in TOY:

        def run(params, key):
            out = episode_outcomes(env, policy_fn, params, key, episodes)
            return out.returns, out.reached.astype(jnp.float32), out.crashed.astype(jnp.float32)

    else:
        ev = evaluate_fn(env, policy_fn, episodes)

        def run(params, key):
            returns = ev(params, key).returns
            nan = jnp.full_like(returns, jnp.nan)
            return returns, nan, nan

    return jax.jit(jax.vmap(run))


def study_env(env_id: str, sc: Scale, seed: int) -> tuple[list[dict], dict]:
    key = jax.random.key(seed)
    expert, expert_ret, random_ret = demo_expert(env_id)
    env = expert.make_env()
    t0 = time.time()
    data = collect(expert, env, sc.demo_episodes, jax.random.fold_in(key, 0))
    info = {
        "env": env_id,
        "transitions": data.size,
        "demo_return": float(np.mean(data.episode_returns)),
        "expert_return": expert_ret,
        "random_return": random_ret,
    }
    log = partial(print, file=sys.stderr, flush=True)
    log(
        f"{env_id}: {data.size} transitions from {sc.demo_episodes} episodes ({time.time() - t0:.0f} s)"
    )

    # 1. diffusion models, one per seed
    t0 = time.time()
    dcfg = DiffusionConfig(
        T=sc.diffusion_T,
        hidden=sc.diffusion_hidden,
        steps=sc.diffusion_steps,
        lr=sc.diffusion_lr,
        batch_size=sc.batch_size,
    )
    seed_keys = jax.random.split(jax.random.fold_in(key, 1), sc.seeds)
    models = jax.jit(jax.vmap(make_diffusion_train(dcfg), in_axes=(0, None)))(seed_keys, data)
    info["diffusion_final_loss"] = float(models.losses[:, -max(1, dcfg.steps // 10) :].mean())
    log(
        f"{env_id}: diffusion models {time.time() - t0:.0f} s, final loss {info['diffusion_final_loss']:.4f}"
    )

    policy = PolicyConfig(hidden_sizes=sc.hidden_for(env_id), activation="tanh")
    cfg = BCConfig(
        policy=policy,
        steps=sc.steps,
        batch_size=sc.batch_size,
        lr=sc.lr,
        schedule="linear",
        max_grad_norm=0.5,
    )
    train_keys = jax.random.split(
        jax.random.fold_in(key, 2), sc.seeds
    )  # shared by BC and DBC: paired runs
    steps = sc.steps

    # 2a. BC
    t0 = time.time()
    bc_params, bc_stats = jax.jit(
        jax.vmap(lambda k: _single(make_bc_train(cfg, bc_loss)(k, data), steps))
    )(train_keys)
    log(f"{env_id}: bc {time.time() - t0:.0f} s")

    # 2b. DBC: (lambda, seed) pairs in one program; seed s uses diffusion model s
    t0 = time.time()
    lam_main = sc.lambda_for(env_id)
    lams = [lam_main] + (
        [lam for lam in sc.lambda_sweep if lam != lam_main] if env_id in TOY else []
    )
    grid = [(lam, s) for lam in lams for s in range(sc.seeds)]
    seed_idx = jnp.asarray([s for _, s in grid])
    grid_models = jax.tree.map(lambda x: x[seed_idx], models)

    def dbc_one(k, model, lam):
        return _single(
            make_bc_train(cfg, partial(dbc_loss, diffusion=model, lambda_dm=lam))(k, data), steps
        )

    dbc_params, dbc_stats = jax.jit(jax.vmap(dbc_one))(
        train_keys[seed_idx], grid_models, jnp.asarray([lam for lam, _ in grid], jnp.float32)
    )
    log(f"{env_id}: dbc ({len(lams)} lambda_dm x {sc.seeds} seeds) {time.time() - t0:.0f} s")

    # 3. ensemble BC (tau 0) and Swarm BC (tau > 0) in one program
    t0 = time.time()
    ens_cfg = dataclasses.replace(cfg, members=sc.members)
    taus = jnp.asarray([0.0] * sc.seeds + [sc.tau] * sc.seeds, jnp.float32)
    ens_keys = jnp.concatenate([jax.random.split(jax.random.fold_in(key, 3), sc.seeds)] * 2)

    def ens_one(k, tau):
        return _single(
            make_bc_train(ens_cfg, partial(swarm_bc_loss, tau=tau, penalty="normalized"))(k, data),
            steps,
        )

    ens_params, ens_stats = jax.jit(jax.vmap(ens_one))(ens_keys, taus)
    log(f"{env_id}: ensemble + swarm {time.time() - t0:.0f} s")

    # 4. evaluation: the same episode starts for every method
    t0 = time.time()
    eval_keys = jax.random.split(jax.random.fold_in(key, 4), sc.seeds)
    single = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), bc_params, dbc_params)
    single_keys = jnp.concatenate([eval_keys, eval_keys[seed_idx]])
    single_out = jax.device_get(make_eval(env, cfg, sc.eval_episodes)(single, single_keys))
    ens_out = jax.device_get(
        make_eval(env, ens_cfg, sc.eval_episodes)(ens_params, jnp.concatenate([eval_keys] * 2))
    )
    log(f"{env_id}: evaluation {time.time() - t0:.0f} s")

    runs = [("bc", 0.0, s, 1, 0.0) for s in range(sc.seeds)] + [
        ("dbc" if lam == lam_main else "dbc_sweep", lam, s, 1, 0.0) for lam, s in grid
    ]
    stats = jax.device_get(jax.tree.map(lambda a, b: jnp.concatenate([a, b]), bc_stats, dbc_stats))
    rows = [
        _row(env_id, m, lam, s, mem, tau, single_out, stats, i, info)
        for i, (m, lam, s, mem, tau) in enumerate(runs)
    ]
    ens_runs = [("ensemble", s) for s in range(sc.seeds)] + [("swarm", s) for s in range(sc.seeds)]
    ens_stats = jax.device_get(ens_stats)
    rows += [
        _row(
            env_id,
            m,
            0.0,
            s,
            sc.members,
            sc.tau if m == "swarm" else 0.0,
            ens_out,
            ens_stats,
            i,
            info,
        )
        for i, (m, s) in enumerate(ens_runs)
    ]
    return rows, info


def _single(result, steps: int):
    """What leaves a training program: final params and losses averaged over the last 10% of steps."""
    tail = max(1, steps // 10)
    m = result.metrics
    dm = m["dm_loss"][-tail:].mean() if "dm_loss" in m else jnp.float32(jnp.nan)
    return result.params, {"bc_loss": m["bc_loss"][-tail:].mean(), "dm_loss": dm}


def _row(env_id, method, lam, seed, members, tau, out, stats, i, info) -> dict:
    returns, reached, crashed = (np.asarray(x[i]) for x in out)
    r = float(returns.mean())
    reach = float(reached.mean())
    return {
        "env": env_id,
        "method": method,
        "lambda_dm": lam,
        "seed": seed,
        "members": members,
        "tau": tau,
        "mean_return": r,
        "scaled_return": (r - info["random_return"])
        / (info["expert_return"] - info["random_return"]),
        "goal_reach": None if np.isnan(reach) else reach,
        "crash": None if np.isnan(reach) else float(crashed.mean()),
        "bc_loss": float(stats["bc_loss"][i]),
        "dm_loss": None if np.isnan(stats["dm_loss"][i]) else float(stats["dm_loss"][i]),
        "expert_return": info["expert_return"],
        "random_return": info["random_return"],
    }


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["env"], r["method"], r["lambda_dm"]), []).append(r)
    out = []
    for (env_id, method, lam), rs in groups.items():
        agg = {"env": env_id, "method": method, "lambda_dm": lam, "n": len(rs)}
        for m in ("mean_return", "scaled_return", "goal_reach", "crash"):
            v = [r[m] for r in rs if r[m] is not None]
            agg[m], agg[m + "_std"] = (float(np.mean(v)), float(np.std(v))) if v else (None, None)
        paper = PAPER.get((env_id, method))
        agg["paper_return"], agg["paper_return_std"] = paper if paper else (None, None)
        out.append(agg)
    return out


def _pm(mean, std, fmt: str = ".2f") -> str:
    return "–" if mean is None else f"{mean:{fmt}} ± {std:{fmt}}"


def write_markdown(path: Path, summary: list[dict], infos: list[dict], meta: dict) -> None:
    lines = [
        "# Diffusion-BC study",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; seeds 0..{meta['seeds'] - 1} (vmapped); wall time {meta['wall_time_s']:.0f} s; "
        f"{meta['demo_episodes']} expert episodes per env; deterministic tanh MLP policies, Adam lr {meta['lr']} "
        f"with linear decay to 0, batch {meta['batch_size']}, grad clip 0.5, {meta['steps']} steps; diffusion "
        f"model T = {meta['diffusion_T']}, width {meta['diffusion_hidden']}, {meta['diffusion_steps']} pretraining "
        f"steps, one per seed; ensembles: {meta['members']} members, Swarm tau = {meta['tau']}; "
        f"{meta['eval_episodes']} evaluation episodes per run.",
        "",
        "Return and scaled return `(R - R_random) / (R_expert - R_random)` as mean ± std over seeds. "
        "Goal reach / crash: fraction of evaluation episodes that reached a goal / hit the obstacle "
        f"({TWO_GOALS} only). The paper column holds the DBC paper's MuJoCo returns as a reference, "
        "not our results (Brax envs differ in dynamics and reward scale).",
        "",
        "| env | method | lambda_DM | return | scaled return | goal reach | crash | paper return (reference) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in summary:
        if r["method"] == "dbc_sweep":
            continue
        lam = f"{r['lambda_dm']:g}" if r["method"] == "dbc" else "–"
        lines.append(
            f"| {r['env']} | {r['method']} | {lam} | {_pm(r['mean_return'], r['mean_return_std'], '.1f' if abs(r['mean_return']) > 10 else '.3f')} "
            f"| {_pm(r['scaled_return'], r['scaled_return_std'])} | {_pm(r['goal_reach'], r['goal_reach_std'])} "
            f"| {_pm(r['crash'], r['crash_std'])} | {_pm(r['paper_return'], r['paper_return_std'], '.0f')} |"
        )
    sweep = sorted(
        (r for r in summary if r["method"] in ("dbc", "dbc_sweep") and r["env"] in TOY),
        key=lambda r: r["lambda_dm"],
    )
    if len(sweep) > 1:
        lines += [
            "",
            f"## DBC lambda_DM sweep ({', '.join(dict.fromkeys(r['env'] for r in sweep))})",
            "",
            "| lambda_DM | scaled return | goal reach | crash |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['lambda_dm']:g} | {_pm(r['scaled_return'], r['scaled_return_std'])} | {_pm(r['goal_reach'], r['goal_reach_std'])} "
            f"| {_pm(r['crash'], r['crash_std'])} |"
            for r in sweep
        ]
    lines += [
        "",
        "## Data and references",
        "",
        "| env | transitions | demo return | expert return | random return | diffusion loss (end) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {i['env']} | {i['transitions']} | {i['demo_return']:.2f} | {i['expert_return']:.2f} | {i['random_return']:.2f} "
        f"| {i['diffusion_final_loss']:.4f} |"
        for i in infos
    ]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def plot(summary: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env_ids = list(dict.fromkeys(r["env"] for r in summary))
    sweep = sorted(
        (r for r in summary if r["method"] in ("dbc", "dbc_sweep") and r["env"] in TOY),
        key=lambda r: r["lambda_dm"],
    )
    panels = len(env_ids) + (len(sweep) > 1)
    fig, axes = plt.subplots(1, panels, figsize=(3.3 * panels, 2.8), squeeze=False)
    for ax, env_id in zip(axes[0], env_ids, strict=False):
        rs = [r for r in summary if r["env"] == env_id and r["method"] in METHODS]
        x = np.arange(len(rs))
        ax.bar(
            x,
            [r["scaled_return"] for r in rs],
            yerr=[r["scaled_return_std"] for r in rs],
            capsize=3,
            color="C0",
            label="scaled return",
        )
        if env_id in TOY:
            ax.plot(x, [r["goal_reach"] for r in rs], "o", color="C3", label="goal reach")
            ax.legend(fontsize=7)
        ax.set_xticks(x, [r["method"] for r in rs], fontsize=8)
        ax.axhline(1.0, color="gray", lw=0.8, ls="--")
        ax.set_title(env_id, fontsize=9)
        ax.set_ylabel("scaled return", fontsize=8)
    if len(sweep) > 1:
        ax = axes[0][-1]
        lam = [r["lambda_dm"] for r in sweep]
        ax.errorbar(
            range(len(lam)),
            [r["goal_reach"] for r in sweep],
            yerr=[r["goal_reach_std"] for r in sweep],
            marker="o",
            capsize=3,
        )
        ax.set_xticks(range(len(lam)), [f"{v:g}" for v in lam], fontsize=8)
        ax.set(xlabel="lambda_DM", ylabel="goal reach", title=f"DBC on {sweep[0]['env']}")
        ax.title.set_fontsize(9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(
    scale: Literal["cpu", "paper", "smoke"] = "cpu",
    envs: list[str] | None = None,
    seed: int = 0,
    out_dir: Path = Path("benchmarks/results"),
    name: str = "dbc",
) -> None:
    """Args:
    scale: cpu (13 min measured on 2 cores), paper (GPU), smoke (seconds, checks the pipeline).
    envs: subset of envs (default: the scale's; brax/halfcheetah, brax/walker2d, TwoGoals2D-v0).
    seed: base PRNG seed.
    out_dir: where results go.
    name: file stem of the results.
    """
    sc = SCALES[scale]
    if envs:
        sc = dataclasses.replace(sc, envs=tuple(envs))
    check_experts(sc.envs)
    enable_compilation_cache()
    t0 = time.time()
    rows, infos = [], []
    for env_id in sc.envs:
        r, info = study_env(env_id, sc, seed)
        rows += r
        infos.append(info)
    summary = summarize(rows)
    meta = {
        "command": "python benchmarks/dbc.py " + " ".join(sys.argv[1:]),
        "machine": machine_description(),
        "scale": scale,
        "seed": seed,
        "wall_time_s": time.time() - t0,
        "paper_reference": {f"{e} {m}": v for (e, m), v in PAPER.items()},
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(sc).items()},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        out_dir / f"{name}.json", {"meta": meta, "data": infos, "summary": summary, "runs": rows}
    )
    atomic_write_csv(out_dir / f"{name}.csv", rows)
    write_markdown(out_dir / f"{name}.md", summary, infos, meta)
    plot(summary, out_dir / f"{name}.png")
    print((out_dir / f"{name}.md").read_text())


if __name__ == "__main__":
    tyro.cli(main)
