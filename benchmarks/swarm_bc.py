"""The Swarm BC study: single BC vs ensemble BC vs Swarm BC over demonstration counts.

    python benchmarks/swarm_bc.py --scale cpu      # 30 min on the idle 2-core CPU (measured)
    python benchmarks/swarm_bc.py --scale paper    # GPU: N=8, 2x256, more steps/episodes

For every env: the zoo expert provides the largest number of demonstration episodes once;
smaller counts are prefixes of it. Per method, ALL (episode count x seed) runs are one
compiled program (``vmap`` over keys and ``num_valid``), and so is their evaluation. A tau
sweep of Swarm BC (taus x seeds, one program) runs at one episode count.

Writes benchmarks/results/swarm_bc.{md,csv,json} and two plots.
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
from tqdm.auto import tqdm

from jaxbc.bc import (
    BCConfig,
    PolicyConfig,
    action_difference,
    ensemble_apply,
    make_bc_train,
    member_actions,
    swarm_bc_loss,
)
from jaxbc.bc.evaluation import reference_returns
from jaxbc.bc.train import make_policy_fn, net_policy
from jaxbc.data import collect
from jaxbc.experts import load_expert
from jaxbc.experts.expert import zoo_name
from jaxbc.io import (
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_json,
    enable_compilation_cache,
    machine_description,
    resumable_timed,
)
from jaxbc.rollout import evaluate_fn, init_carry, rollout_steps

# tau's units: this study's committed results use the width-normalised form (see
# jaxbc.bc.losses.hidden_alignment_penalty; paper tau = this tau / (members * width * layers))
PENALTY = "normalized"


@dataclass(frozen=True)
class Scale:
    envs: tuple[str, ...]
    episode_counts: tuple[int, ...]
    seeds: int
    members: int
    tau: float
    taus: tuple[float, ...]
    tau_sweep_episodes: int
    steps: int
    batch_size: int
    hidden: tuple[int, ...]
    lr: float
    eval_episodes: int
    visited_envs: int  # envs x steps of rollout for action difference on visited states
    visited_steps: int
    image_torso: str = (
        "auto"  # PolicyConfig.torso: auto (cnn for MinAtar images) or mlp (cpu: CPU convs are slow)
    )


ENVS = (
    "CartPole-v1",
    "Acrobot-v1",
    "Pendulum-v1",
    "Breakout-MinAtar",
    "brax/hopper",
    "brax/halfcheetah",
    "brax/walker2d",
    "brax/ant",
)
SCALES = {
    "cpu": Scale(
        ENVS,
        (1, 2, 4, 8, 16),
        5,
        8,
        0.25,
        (0.0, 0.05, 0.25, 1.0, 4.0),
        4,
        2000,
        128,
        (64, 64),
        1e-3,
        5,
        4,
        250,
        "mlp",
    ),
    "paper": Scale(
        ENVS,
        (1, 2, 4, 8, 16),
        5,
        8,
        0.25,
        (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0),
        8,
        20000,
        256,
        (256, 256),
        3e-4,
        20,
        16,
        1000,
    ),
    # seconds: for checking the pipeline end to end
    "smoke": Scale(
        ("CartPole-v1", "Pendulum-v1"),
        (1, 2),
        2,
        3,
        0.25,
        (0.0, 1.0),
        1,
        100,
        64,
        (16, 16),
        1e-3,
        2,
        2,
        50,
        "mlp",
    ),
}
METHODS = ("bc", "ensemble", "swarm")


def make_eval(env, cfg: BCConfig, scale: Scale):
    """(params, key, expert_obs) -> (returns [E], ad_expert, ad_visited); pure, vmappable."""
    policy_fn = make_policy_fn(cfg, env.action_space, env.observation_shape)
    policy = net_policy(cfg, env.action_space, env.observation_shape)
    ev = evaluate_fn(env, policy_fn, scale.eval_episodes)
    steps = min(scale.visited_steps, env.max_episode_steps)

    def ad(params, obs):
        x = (obs - params["obs_mean"]) / params["obs_std"]
        pts = member_actions(policy, ensemble_apply(policy, params["net"], x))
        return action_difference(pts if pts.ndim == 3 else pts[..., None])

    def run(params, key, expert_obs):
        k1, k2, k3 = jax.random.split(key, 3)
        returns = ev(params, k1).returns
        carry = init_carry(env, k2, scale.visited_envs)
        _, res = rollout_steps(env, policy_fn, params, k3, carry, steps)
        visited = res.trajectory.obs.reshape(-1, *env.observation_shape)
        return returns, ad(params, expert_obs), ad(params, visited)

    return run


def study_env(env_id: str, scale: Scale, seed: int, bar) -> tuple[list[dict], list[dict]]:
    key = jax.random.key(seed)
    expert = load_expert(env_id)
    env = expert.make_env()
    data = collect(expert, env, max(scale.episode_counts), jax.random.fold_in(key, 0))
    expert_ret, random_ret = reference_returns(env_id)
    ends = np.cumsum(np.bincount(data.episode_id))  # transitions in the first k episodes
    # expert states for action differences: a fixed, evenly spaced subsample
    idx = np.linspace(0, data.size - 1, min(2048, data.size)).astype(int)
    expert_obs = jnp.asarray(data.obs[idx])

    def runs_for(cfg: BCConfig, loss_fn, counts, taus, salt: int):
        """Train and evaluate len(counts) runs (one program each for training and eval)."""
        n = len(counts)
        keys = jax.random.split(jax.random.fold_in(key, salt), n)
        num_valid = jnp.asarray([int(ends[c - 1]) for c in counts])

        def train_one(k, nv, tau):
            return make_bc_train(cfg, partial(loss_fn, tau=tau, penalty=PENALTY))(
                k, data, nv
            ).params

        params = jax.jit(jax.vmap(train_one, in_axes=(0, 0, 0)))(
            keys, num_valid, jnp.asarray(taus, jnp.float32)
        )
        ev = jax.jit(jax.vmap(make_eval(env, cfg, scale), in_axes=(0, 0, None)))
        returns, ad_e, ad_v = ev(
            params, jax.random.split(jax.random.fold_in(keys[0], 1), n), expert_obs
        )
        return np.asarray(returns), np.asarray(ad_e), np.asarray(ad_v)

    base = BCConfig(
        policy=PolicyConfig(hidden_sizes=scale.hidden, torso=scale.image_torso),
        steps=scale.steps,
        batch_size=scale.batch_size,
        lr=scale.lr,
    )
    rows: list[dict] = []
    grid = [(c, s) for c in scale.episode_counts for s in range(scale.seeds)]
    for m_idx, method in enumerate(METHODS):
        members = 1 if method == "bc" else scale.members
        tau = scale.tau if method == "swarm" else 0.0
        cfg = dataclasses.replace(base, members=members)
        t0 = time.time()
        returns, ad_e, ad_v = runs_for(
            cfg, swarm_bc_loss, [c for c, _ in grid], [tau] * len(grid), salt=1 + m_idx
        )
        dt = time.time() - t0
        for i, (c, s) in enumerate(grid):
            r = float(returns[i].mean())
            rows.append(
                {
                    "env": env_id,
                    "episodes": c,
                    "method": method,
                    "seed": s,
                    "members": members,
                    "tau": tau,
                    "mean_return": r,
                    "scaled_return": (r - random_ret) / (expert_ret - random_ret),
                    "action_difference_expert": float(ad_e[i]),
                    "action_difference_visited": float(ad_v[i]),
                    "expert_return": expert_ret,
                    "random_return": random_ret,
                }
            )
        bar.update()
        bar.set_postfix_str(f"{env_id} {method} {dt:.0f}s")
    # tau sweep at one episode count: taus x seeds in one program
    sweep_grid = [(t, s) for t in scale.taus for s in range(scale.seeds)]
    cfg = dataclasses.replace(base, members=scale.members)
    returns, ad_e, ad_v = runs_for(
        cfg,
        swarm_bc_loss,
        [scale.tau_sweep_episodes] * len(sweep_grid),
        [t for t, _ in sweep_grid],
        salt=100,
    )
    sweep = []
    for i, (t, s) in enumerate(sweep_grid):
        r = float(returns[i].mean())
        sweep.append(
            {
                "env": env_id,
                "episodes": scale.tau_sweep_episodes,
                "tau": t,
                "seed": s,
                "mean_return": r,
                "scaled_return": (r - random_ret) / (expert_ret - random_ret),
                "action_difference_expert": float(ad_e[i]),
                "action_difference_visited": float(ad_v[i]),
            }
        )
    bar.update()
    return rows, sweep


def aggregate(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    groups: dict = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for k, rs in groups.items():
        agg = dict(zip(keys, k, strict=True))
        for m in (
            "mean_return",
            "scaled_return",
            "action_difference_expert",
            "action_difference_visited",
        ):
            v = np.array([r[m] for r in rs])
            agg[m], agg[m + "_std"] = float(v.mean()), float(v.std())
        agg["n"] = len(rs)
        out.append(agg)
    return out


def write_markdown(path: Path, summary: list[dict], sweep: list[dict], meta: dict) -> None:
    lines = [
        "# Swarm BC study",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; seeds: {meta['seeds']} (0..{meta['seeds'] - 1}); wall time {meta['wall_time_s']:.0f} s; "
        f"members N = {meta['members']}, tau = {meta['tau']}, {meta['steps']} steps, batch {meta['batch_size']}, "
        f"MLP {meta['hidden']}, {meta['eval_episodes']} evaluation episodes per run.",
        "",
        "Scaled return `(R - R_random) / (R_expert - R_random)` (mean ± std over seeds; expert and random "
        "returns from the zoo metadata). Action difference: mean pairwise distance between members' "
        "actions (action probabilities for discrete envs) on expert states / on states the ensemble visits.",
        "",
        "| env | episodes | BC | ensemble BC | Swarm BC | action diff. ensemble (expert / visited) | action diff. Swarm (expert / visited) |",
        "|---|---|---|---|---|---|---|",
    ]
    by = {(r["env"], r["episodes"], r["method"]): r for r in summary}
    for env_id in dict.fromkeys(r["env"] for r in summary):
        for c in sorted({r["episodes"] for r in summary if r["env"] == env_id}):
            r = {m: by[(env_id, c, m)] for m in METHODS}
            cells = [
                f"{r[m]['scaled_return']:.2f} ± {r[m]['scaled_return_std']:.2f}" for m in METHODS
            ]
            ads = [
                f"{r[m]['action_difference_expert']:.3f} / {r[m]['action_difference_visited']:.3f}"
                for m in ("ensemble", "swarm")
            ]
            lines.append(f"| {env_id} | {c} | " + " | ".join(cells + ads) + " |")
    lines += [
        "",
        f"## tau sweep (Swarm BC, {meta['tau_sweep_episodes']} episodes)",
        "",
        "| env | " + " | ".join(f"tau={t}" for t in meta["taus"]) + " |",
        "|---|" + "---|" * len(meta["taus"]),
    ]
    sw = {(r["env"], r["tau"]): r for r in sweep}
    for env_id in dict.fromkeys(r["env"] for r in sweep):
        lines.append(
            f"| {env_id} | "
            + " | ".join(
                f"{sw[(env_id, t)]['scaled_return']:.2f} ± {sw[(env_id, t)]['scaled_return_std']:.2f}"
                for t in meta["taus"]
            )
            + " |"
        )
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def plot(summary: list[dict], out_dir: Path, stem: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env_ids = list(dict.fromkeys(r["env"] for r in summary))
    paths = []
    for metric, ylabel, fname, methods in (
        ("scaled_return", "scaled return", f"{stem}_returns.png", METHODS),
        (
            "action_difference_visited",
            "action difference (visited states)",
            f"{stem}_action_difference.png",
            ("ensemble", "swarm"),
        ),
    ):
        cols = min(4, len(env_ids))
        rows_ = (len(env_ids) + cols - 1) // cols
        fig, axes = plt.subplots(rows_, cols, figsize=(3.2 * cols, 2.6 * rows_), squeeze=False)
        for ax, env_id in zip(axes.flat, env_ids, strict=False):
            for m in methods:
                rs = sorted(
                    (r for r in summary if r["env"] == env_id and r["method"] == m),
                    key=lambda r: r["episodes"],
                )
                x = [r["episodes"] for r in rs]
                y = np.array([r[metric] for r in rs])
                s = np.array([r[metric + "_std"] for r in rs])
                ax.plot(x, y, marker="o", label=m)
                ax.fill_between(x, y - s, y + s, alpha=0.2)
            ax.set_xscale("log", base=2)
            ax.set_title(env_id, fontsize=9)
            ax.set_xlabel("expert episodes", fontsize=8)
            ax.set_ylabel(ylabel, fontsize=8)
        for ax in list(axes.flat)[len(env_ids) :]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / fname
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def main(
    scale: Literal["cpu", "paper", "smoke"] = "cpu",
    envs: list[str] | None = None,
    seed: int = 0,
    out_dir: Path = Path("benchmarks/results"),
    name: str = "swarm_bc",
    resume: bool = False,
) -> None:
    """Args:
    scale: cpu (30 min measured on 2 idle cores), paper (GPU), smoke (seconds, checks the pipeline).
    envs: subset of envs (default: the scale's 8).
    seed: base PRNG seed.
    out_dir: where results go.
    name: file stem of the results.
    resume: reuse the per-env results a killed run left in ``<out_dir>/<name>_parts/``
        (same scale and seed); every finished env is saved there as it completes.
    """
    enable_compilation_cache()
    out_dir.mkdir(parents=True, exist_ok=True)
    sc = SCALES[scale]
    if envs:
        sc = dataclasses.replace(sc, envs=tuple(envs))
    rows, sweep, wall = [], [], 0.0
    with tqdm(total=len(sc.envs) * (len(METHODS) + 1), desc="swarm study", file=sys.stderr) as bar:
        for env_id in sc.envs:

            def run(env_id=env_id):
                r, s = study_env(env_id, sc, seed, bar)
                return {"runs": r, "tau_sweep_runs": s}

            part = out_dir / f"{name}_parts" / f"{zoo_name(env_id)}.json"
            res, reused = resumable_timed(
                part, {**dataclasses.asdict(sc), "envs": None, "seed": seed}, run, resume
            )
            if reused:
                bar.update(len(METHODS) + 1)
            rows += res["runs"]
            sweep += res["tau_sweep_runs"]
            wall += res["wall_time_s"]
    summary = aggregate(rows, ("env", "episodes", "method"))
    sweep_summary = aggregate(sweep, ("env", "tau"))
    meta = {
        "command": "python benchmarks/swarm_bc.py " + " ".join(sys.argv[1:]),
        "machine": machine_description(),
        "scale": scale,
        "wall_time_s": wall,
        "penalty_form": PENALTY,
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(sc).items()},
    }
    atomic_write_json(
        out_dir / f"{name}.json",
        {
            "meta": meta,
            "summary": summary,
            "tau_sweep": sweep_summary,
            "runs": rows,
            "tau_sweep_runs": sweep,
        },
    )
    atomic_write_csv(out_dir / f"{name}.csv", rows)
    write_markdown(out_dir / f"{name}.md", summary, sweep_summary, meta)
    plot(summary, out_dir, name)
    print((out_dir / f"{name}.md").read_text())


if __name__ == "__main__":
    tyro.cli(main)
