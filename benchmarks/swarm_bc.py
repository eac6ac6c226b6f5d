"""The Swarm BC study, in two protocols.

``--protocol counts`` (default): single BC vs ensemble BC vs Swarm BC over demonstration counts.

    python benchmarks/swarm_bc.py --scale cpu      # 30 min on the idle 2-core CPU (measured)
    python benchmarks/swarm_bc.py --scale paper    # GPU: N=8, 2x256, more steps/episodes

For every env: the zoo expert provides the largest number of demonstration episodes once;
smaller counts are prefixes of it. Per method, ALL (episode count x seed) runs are one
compiled program (``vmap`` over keys and ``num_valid``), and so is their evaluation. A tau
sweep of Swarm BC (taus x seeds, one program) runs at one episode count. tau is in the
width-normalised form (``PENALTY``). Writes benchmarks/results/swarm_bc.{md,csv,json} and
two plots.

``--protocol paper``: Swarm BC in the paper's units, in a regime with room to improve.

    python benchmarks/swarm_bc.py --protocol paper --scale cpu    # 25-40 min estimated (below)
    python benchmarks/swarm_bc.py --protocol paper --scale smoke  # ~2 min: checks the pipeline

1. Calibration (ensemble BC only, never Swarm): per env, ensemble BC (tau = 0, the
   reproduction arm) is trained on each demonstration budget in ``budgets`` (transitions,
   sub-episode allowed) with ``calibration_seeds`` seeds that the study does not reuse
   (their own init keys and data offsets). Fixed rule: the LARGEST budget whose mean scaled
   return lies in [0.1, 0.6]; if none does, the budget whose mean is closest to that
   interval (ties: the smaller budget). All budgets and their returns are recorded.
2. Study at the chosen budget: tau in the PAPER's units (``penalty="paper"``: pairwise sum
   over members of squared hidden-feature differences, summed over features and hidden
   layers, batch mean; BC summed over members) over 0, 0.01, 0.1, 0.25, 1, 10; tau = 0 is
   the ensemble arm. Two architecture arms: ``linear_relu`` (ReLU hidden layers, linear
   action head: the paper's likely setting, the reproduction arm) and ``tanh_head`` (ReLU
   hidden layers, tanh-bounded head: jaxbc's default). Paired seeds: seed s gets the same
   demonstrations (the budget's first transitions starting at expert episode s) and the same
   key for every tau and both arms; ``make_bc_train`` draws the initial parameters from the
   key alone (``tests/test_bc.py::test_init_params_depend_on_the_key_only``), so the
   ensemble and every Swarm tau start from identical members and see identical minibatches.
   All taus x seeds of one arm are one compiled program (``vmap``), and so is their
   evaluation.
3. Metrics per run: scaled return (zoo expert / random returns); the members' action
   difference (mean pairwise distance) on expert states and on states the ensemble visits,
   absolute and relative to the expert actions' scale (``sqrt(sum_d Var(a_d))`` over the
   demonstrations); the hidden-feature misalignment relative to the features' own scale
   (mean pairwise squared difference / mean squared feature norm, averaged over layers, on
   expert states), with the mean squared feature norm itself and the absolute paper-form
   penalty, so a solution that shrinks activations instead of aligning them is visible.
4. Statistics: per (env, arm, tau) the mean and a 95% percentile bootstrap CI over seeds;
   for tau > 0 the paired difference Swarm - ensemble per seed with its 95% bootstrap CI
   (``scipy.stats.bootstrap(paired=True)``). Reading: "supported" when the CI excludes 0 in
   the paper's direction (higher return, lower action difference), "opposite" when it
   excludes 0 the other way, else "not supported at this budget".

Writes benchmarks/results/swarm_paper.{md,csv,json} and one plot per env
(``swarm_paper_<env>.png``: scaled return, relative action difference and relative
misalignment against tau, 95% CIs).

Time of ``--protocol paper --scale cpu`` (2 envs, 10 seeds, 2 arms x 6 taus, N = 8, 2x64,
2,000 steps): not run yet; estimated 25-40 min on the idle 2-core CPU. Basis: the counts
protocol's cpu run (measured 30 min) trains per env ~75 eight-member and 25 one-member
runs of the same size, with 5 training and 5 evaluation programs, in ~3.7 min on average
(Brax envs take longer); this protocol trains per env 12 calibration + 120 study
eight-member runs (~1.8x the work) with 3 training and 3 evaluation programs, so ~7-15 min
per Brax env including compilation, plus demonstration collection (14 episodes). The
smoke run (Pendulum, 2 seeds, N = 3, 100 steps) took 113 s of wall time measured while
sharing the 2 cores with another benchmark (70 s of CPU time), nearly all of it
compiling the six programs (~15 s each).
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
    hidden_alignment_penalty,
    make_bc_train,
    member_actions,
    swarm_bc_loss,
)
from jaxbc.bc.evaluation import reference_returns
from jaxbc.bc.policies import centred_sq_norm
from jaxbc.bc.train import make_policy_fn, net_policy
from jaxbc.data import collect
from jaxbc.envs import Box
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
from jaxbc.stats import (
    aggregate_scores,
    markdown_table,
    paired_difference,
    plot_performance_profiles,
)

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


COMPARISONS = (("swarm", "ensemble"), ("ensemble", "bc"), ("swarm", "bc"))


def counts_statistics(rows: list[dict], resamples: int = 10_000) -> dict:
    """Paired differences per (env, episodes) and rliable aggregates over all of them.

    Every method of one env trains on the same demonstrations, and seed ``s`` of one method
    is paired with seed ``s`` of another (their inits and minibatches differ by method), so
    per (env, episodes) the difference X - Y is averaged over paired seeds with a 95% paired
    bootstrap CI. Aggregates: ``jaxbc.stats.aggregate_scores`` over the (env, episodes) tasks
    (IQM and mean of the scaled return, stratified bootstrap) and P(X > Y).
    """
    by = {(r["env"], r["episodes"], r["method"], r["seed"]): r["scaled_return"] for r in rows}
    tasks = list(dict.fromkeys((r["env"], r["episodes"]) for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    scores = {m: np.array([[by[(e, c, m, s)] for e, c in tasks] for s in seeds]) for m in METHODS}
    paired = []
    for e, c in tasks:
        for x, y in COMPARISONS:
            i = tasks.index((e, c))
            d, lo, hi = paired_difference(scores[x][:, i], scores[y][:, i], resamples=resamples)
            paired.append(
                {
                    "env": e,
                    "episodes": c,
                    "x": x,
                    "y": y,
                    "diff": d,
                    "ci": [lo, hi],
                    "reading": reading(lo, hi, 1),
                }
            )
    agg = aggregate_scores(
        scores, metrics=("iqm", "mean", "optimality_gap"), comparisons=COMPARISONS, reps=resamples
    )
    return {
        "paired": paired,
        "aggregate": agg,
        "tasks": [list(t) for t in tasks],
        "seeds": seeds,
        "scores": {m: v.tolist() for m, v in scores.items()},
    }


def write_markdown(
    path: Path, summary: list[dict], sweep: list[dict], meta: dict, stats: dict | None = None
) -> None:
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
    if stats is not None:
        agg = stats["aggregate"]
        lines += [
            "",
            f"## Statistics over seeds ({len(stats['seeds'])} paired seeds, 95% bootstrap CIs)",
            "",
            f"Aggregate over all {len(stats['tasks'])} (env, episodes) tasks, scaled return "
            "(`jaxbc.stats.aggregate_scores`: stratified bootstrap over seeds):",
            "",
            markdown_table(agg, digits=3),
        ]
        lines += [
            "",
            "Paired difference of the scaled return per (env, episodes), mean over seeds [95% paired "
            "bootstrap CI]; reading: supported (CI above 0), opposite (below 0), else not supported "
            "at this budget:",
            "",
            "| env | episodes | " + " | ".join(f"{x} - {y}" for x, y in COMPARISONS) + " |",
            "|---|---|" + "---|" * len(COMPARISONS),
        ]
        pd = {(p["env"], p["episodes"], p["x"], p["y"]): p for p in stats["paired"]}
        for e, c in stats["tasks"]:
            cells = []
            for x, y in COMPARISONS:
                p = pd[(e, c, x, y)]
                mark = {"supported": " (+)", "opposite": " (-)"}.get(p["reading"], "")
                cells.append(f"{p['diff']:+.2f} [{p['ci'][0]:+.2f}, {p['ci'][1]:+.2f}]{mark}")
            lines.append(f"| {e} | {c} | " + " | ".join(cells) + " |")
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


# --- protocol "paper": Swarm BC in the paper's units, calibrated regime, paired seeds ------

PAPER_PENALTY = "paper"  # tau in the paper's units (see jaxbc.bc.losses.hidden_alignment_penalty)
TARGET = (0.1, 0.6)  # calibration window of ensemble BC's scaled return
# architecture arms: PolicyConfig fields; the first is the reproduction arm (and calibrates)
ARMS: dict[str, dict] = {
    "linear_relu": {"activation": "relu", "tanh_bounded": False},
    "tanh_head": {"activation": "relu", "tanh_bounded": True},
}
# metrics and the direction the paper claims for Swarm BC (+1: higher, -1: lower)
CLAIMS = {
    "scaled_return": 1,
    "action_difference_expert_rel": -1,
    "action_difference_visited_rel": -1,
}
RUN_METRICS = (
    "scaled_return",
    "mean_return",
    "action_difference_expert",
    "action_difference_visited",
    "action_difference_expert_rel",
    "action_difference_visited_rel",
    "misalignment_rel_expert",
    "feature_sq_norm_expert",
    "penalty_expert",
    "bc_loss_final",
)


@dataclass(frozen=True)
class PaperScale:
    envs: tuple[str, ...]
    budgets: tuple[int, ...]  # demonstration transitions tried by the calibration
    calibration_seeds: int
    seeds: int
    members: int
    taus: tuple[float, ...]  # paper units; 0.0 (the ensemble arm) must come first
    steps: int
    batch_size: int
    hidden: tuple[int, ...]
    lr: float
    eval_episodes: int
    visited_envs: int
    visited_steps: int
    bootstrap_resamples: int = 10_000


PAPER_TAUS = (0.0, 0.01, 0.1, 0.25, 1.0, 10.0)
PAPER_SCALES = {
    # 25-40 min estimated on the idle 2-core CPU (module docstring)
    "cpu": PaperScale(
        ("brax/halfcheetah", "brax/hopper"),
        (50, 100, 250, 1000),
        3,
        10,
        8,
        PAPER_TAUS,
        2000,
        128,
        (64, 64),
        1e-3,
        5,
        4,
        250,
    ),
    # GPU: the paper's N = 8 with 2x256 members, more envs, steps and evaluation
    "paper": PaperScale(
        ("brax/halfcheetah", "brax/hopper", "brax/walker2d", "brax/ant"),
        (50, 100, 250, 1000, 4000),
        5,
        10,
        8,
        PAPER_TAUS,
        20000,
        256,
        (256, 256),
        3e-4,
        20,
        16,
        1000,
    ),
    # ~2 min: checks the pipeline end to end (2 seeds: CIs are meaningless)
    "smoke": PaperScale(
        ("Pendulum-v1",),
        (50, 200),
        2,
        2,
        3,
        (0.0, 0.1, 10.0),
        100,
        64,
        (16, 16),
        1e-3,
        2,
        2,
        50,
        1000,
    ),
}


def choose_budget(calibration: dict[int, float], target: tuple[float, float] = TARGET) -> int:
    """The fixed calibration rule (ensemble BC's mean scaled return per budget): the largest
    budget inside ``target``; else the one closest to it (ties: the smaller budget)."""
    lo, hi = target
    inside = [b for b, r in calibration.items() if lo <= r <= hi]
    if inside:
        return max(inside)
    return min(calibration, key=lambda b: (max(lo - calibration[b], calibration[b] - hi), b))


def mean_ci(x: np.ndarray, resamples: int, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95% percentile bootstrap CI over seeds (scipy.stats.bootstrap)."""
    from scipy.stats import bootstrap

    x = np.asarray(x, np.float64)
    if len(x) < 2:
        return float(x.mean()), float("nan"), float("nan")
    ci = bootstrap(
        (x,),
        np.mean,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    ).confidence_interval
    return float(x.mean()), float(ci.low), float(ci.high)


def reading(lo: float, hi: float, direction: int) -> str:
    """ "supported" if the CI excludes 0 in the paper's direction, "opposite" if it excludes
    0 the other way, else "not supported at this budget"."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "no CI (too few seeds)"
    if direction * lo > 0 and direction * hi > 0:
        return "supported"
    if direction * lo < 0 and direction * hi < 0:
        return "opposite"
    return "not supported at this budget"


def make_paper_eval(env, cfg: BCConfig, sc: PaperScale, act_scale: float):
    """(params, key, expert_obs) -> dict of per-run metrics; pure, vmappable."""
    policy_fn = make_policy_fn(cfg, env.action_space, env.observation_shape)
    policy = net_policy(cfg, env.action_space, env.observation_shape)
    ev = evaluate_fn(env, policy_fn, sc.eval_episodes)
    steps = min(sc.visited_steps, env.max_episode_steps)

    def outputs(params, obs):
        x = (obs - params["obs_mean"]) / params["obs_std"]
        return ensemble_apply(policy, params["net"], x)

    def ad(out):
        pts = member_actions(policy, out)
        return action_difference(pts if pts.ndim == 3 else pts[..., None])

    def misalignment(hidden):
        """(relative misalignment, mean squared feature norm, paper-form penalty)."""
        rel, norm = [], []
        for h in hidden:  # [members, batch, features]
            m, b = h.shape[0], h.shape[1]
            pair_mean = 2.0 * centred_sq_norm(h) / (b * (m - 1))  # mean over pairs and states
            sq = (h**2).sum() / (m * b)  # mean over members and states of ||h||^2
            rel.append(pair_mean / jnp.maximum(sq, 1e-12))
            norm.append(sq)
        return (
            jnp.mean(jnp.stack(rel)),
            jnp.mean(jnp.stack(norm)),
            hidden_alignment_penalty(hidden, "paper"),
        )

    def run(params, key, expert_obs):
        k1, k2, k3 = jax.random.split(key, 3)
        returns = ev(params, k1).returns
        carry = init_carry(env, k2, sc.visited_envs)
        _, res = rollout_steps(env, policy_fn, params, k3, carry, steps)
        visited = res.trajectory.obs.reshape(-1, *env.observation_shape)
        out_e = outputs(params, expert_obs)
        ad_e, ad_v = ad(out_e), ad(outputs(params, visited))
        rel, sq, pen = misalignment(out_e.hidden)
        return {
            "mean_return": returns.mean(),
            "action_difference_expert": ad_e,
            "action_difference_visited": ad_v,
            "action_difference_expert_rel": ad_e / act_scale,
            "action_difference_visited_rel": ad_v / act_scale,
            "misalignment_rel_expert": rel,
            "feature_sq_norm_expert": sq,
            "penalty_expert": pen,
        }

    return run


def paper_env(env_id: str, sc: PaperScale, seed: int, bar) -> dict:
    """Calibration then the paired tau x arm study of one env."""
    key = jax.random.key(seed)
    expert = load_expert(env_id)
    env = expert.make_env()
    if not isinstance(env.action_space, Box):
        raise ValueError(f"the paper protocol needs continuous actions, {env_id} has discrete")
    capacity = max(sc.budgets)
    n_rot = sc.seeds + sc.calibration_seeds  # distinct starting episodes
    n_ep = n_rot + -(-capacity // env.max_episode_steps)
    data = collect(expert, env, n_ep, jax.random.fold_in(key, 0))
    expert_ret, random_ret = reference_returns(env_id)
    ep_len = np.bincount(np.asarray(data.episode_id))
    starts = np.concatenate([[0], np.cumsum(ep_len)[:-1]])
    obs_all, act_all = np.asarray(data.obs), np.asarray(data.action)

    def rotation(r: int):
        """``capacity`` transitions starting at expert episode r (wrapping around)."""
        idx = (starts[r % len(starts)] + np.arange(capacity)) % data.size
        return obs_all[idx], act_all[idx]

    template = jax.tree.map(
        lambda x: x[:capacity] if np.ndim(x) and np.shape(x)[0] == data.size else x, data
    )
    template = template.replace(obs=rotation(0)[0], action=rotation(0)[1])
    idx = np.linspace(0, data.size - 1, min(2048, data.size)).astype(int)
    expert_obs = jnp.asarray(obs_all[idx])
    act_scale = float(np.sqrt(act_all.var(0).sum()))

    def base_cfg(arm: str) -> BCConfig:
        return BCConfig(
            policy=PolicyConfig(hidden_sizes=sc.hidden, torso="mlp", **ARMS[arm]),
            members=sc.members,
            steps=sc.steps,
            batch_size=sc.batch_size,
            lr=sc.lr,
        )

    def run_grid(arm, keys, rots, budgets, taus, eval_keys):
        """Train and evaluate one run per entry (one program each); per-run metric dicts."""
        cfg = base_cfg(arm)
        obs = jnp.asarray(np.stack([rotation(r)[0] for r in rots]))
        act = jnp.asarray(np.stack([rotation(r)[1] for r in rots]))

        def train_one(k, o, a, nv, tau):
            d = template.replace(obs=o, action=a)
            res = make_bc_train(cfg, partial(swarm_bc_loss, tau=tau, penalty=PAPER_PENALTY))(
                k, d, nv
            )
            tail = max(1, sc.steps // 10)
            return res.params, res.metrics["bc_loss"][-tail:].mean()

        t0 = time.time()
        params, bc_final = jax.jit(jax.vmap(train_one))(
            keys, obs, act, jnp.asarray(budgets), jnp.asarray(taus, jnp.float32)
        )
        jax.block_until_ready(params)
        t_train = time.time() - t0
        ev = jax.jit(jax.vmap(make_paper_eval(env, cfg, sc, act_scale), in_axes=(0, 0, None)))
        m = jax.device_get(ev(params, eval_keys, expert_obs))
        t_eval = time.time() - t0 - t_train
        rows = []
        for i in range(len(rots)):
            r = {k: float(v[i]) for k, v in m.items()}
            r["scaled_return"] = (r["mean_return"] - random_ret) / (expert_ret - random_ret)
            r["bc_loss_final"] = float(bc_final[i])
            rows.append(r)
        return rows, {"train_s": t_train, "eval_s": t_eval}

    timings: dict[str, dict] = {}
    arms = list(ARMS)
    # 1. calibration: ensemble BC (tau = 0) of the reproduction arm, its own seeds
    cal_grid = [(b, c) for b in sc.budgets for c in range(sc.calibration_seeds)]
    cal_keys = [jax.random.fold_in(jax.random.fold_in(key, 2), c) for _, c in cal_grid]
    cal_rows_, timings["calibration"] = run_grid(
        arms[0],
        jnp.stack(cal_keys),
        [sc.seeds + c for _, c in cal_grid],
        [b for b, _ in cal_grid],
        [0.0] * len(cal_grid),
        jnp.stack([jax.random.fold_in(k, 1) for k in cal_keys]),
    )
    cal_rows = [
        {"phase": "calibration", "env": env_id, "arm": arms[0], "budget": b, "seed": c, "tau": 0.0}
        | r
        for (b, c), r in zip(cal_grid, cal_rows_, strict=True)
    ]
    bar.update()
    cal_means = {
        b: float(np.mean([r["scaled_return"] for r in cal_rows if r["budget"] == b]))
        for b in sc.budgets
    }
    budget = choose_budget(cal_means)
    # 2. the study: every (tau, seed) of an arm in one program; seed s: key s, rotation s
    grid = [(t, s) for t in sc.taus for s in range(sc.seeds)]
    seed_keys = [jax.random.fold_in(jax.random.fold_in(key, 1), s) for s in range(sc.seeds)]
    keys = jnp.stack([seed_keys[s] for _, s in grid])
    eval_keys = jnp.stack([jax.random.fold_in(seed_keys[s], 1) for _, s in grid])
    runs = []
    for arm in arms:
        rows, timings[arm] = run_grid(
            arm,
            keys,
            [s for _, s in grid],
            [budget] * len(grid),
            [t for t, _ in grid],
            eval_keys,
        )
        runs += [
            {"phase": "study", "env": env_id, "arm": arm, "budget": budget, "seed": s, "tau": t} | r
            for (t, s), r in zip(grid, rows, strict=True)
        ]
        bar.update()
        bar.set_postfix_str(f"{env_id} {arm} {sum(timings[arm].values()):.0f}s")
    return {
        "calibration": {
            "budgets": list(sc.budgets),
            "ensemble_scaled_return": {str(b): v for b, v in cal_means.items()},
            "target": list(TARGET),
            "chosen_budget": budget,
            "rule": "largest budget with ensemble mean in [0.1, 0.6], else closest (ties: smaller)",
        },
        "calibration_runs": cal_rows,
        "runs": runs,
        "env_info": {
            "expert_return": expert_ret,
            "random_return": random_ret,
            "action_scale": act_scale,
            "episodes_collected": int(data.num_episodes),
            "timings_s": timings,
        },
    }


def paper_summary(runs: list[dict], resamples: int) -> list[dict]:
    """Mean and CI per (env, arm, tau); paired Swarm - ensemble differences and readings."""
    out = []
    for env_id in dict.fromkeys(r["env"] for r in runs):
        for arm in dict.fromkeys(r["arm"] for r in runs if r["env"] == env_id):
            rs = [r for r in runs if r["env"] == env_id and r["arm"] == arm]
            by_tau: dict[float, dict[int, dict]] = {}
            for r in rs:
                by_tau.setdefault(r["tau"], {})[r["seed"]] = r
            ens = by_tau[0.0]
            for tau, seeds in by_tau.items():
                common = sorted(set(seeds) & set(ens))
                agg: dict = {"env": env_id, "arm": arm, "tau": tau, "n": len(seeds)}
                agg["budget"] = rs[0]["budget"]
                for m in RUN_METRICS:
                    v = np.array([seeds[s][m] for s in sorted(seeds)])
                    agg[m], agg[m + "_ci_lo"], agg[m + "_ci_hi"] = mean_ci(v, resamples)
                if tau != 0.0:
                    for m, direction in CLAIMS.items():
                        x = np.array([seeds[s][m] for s in common])
                        y = np.array([ens[s][m] for s in common])
                        d, lo, hi = paired_difference(x, y, resamples=resamples)
                        agg[f"diff_{m}"], agg[f"diff_{m}_ci_lo"], agg[f"diff_{m}_ci_hi"] = d, lo, hi
                        agg[f"reading_{m}"] = reading(lo, hi, direction)
                out.append(agg)
    return out


def _ci(r: dict, m: str, fmt: str = ".2f") -> str:
    return f"{r[m]:{fmt}} [{r[m + '_ci_lo']:{fmt}}, {r[m + '_ci_hi']:{fmt}}]"


def write_paper_markdown(path: Path, summary: list[dict], parts: dict, meta: dict) -> None:
    lines = [
        "# Swarm BC study, paper protocol",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; scale {meta['scale']}; seeds 0..{meta['seeds'] - 1} "
        f"(paired; calibration seeds are separate: {meta['calibration_seeds']}); wall time "
        f"{meta['wall_time_s']:.0f} s.  ",
        f"Penalty form: `{meta['penalty_form']}` (tau in the paper's units: pairwise sum over "
        "members of squared hidden-feature differences, summed over features and hidden layers, "
        "batch mean; BC losses summed over members); taus "
        f"{meta['taus']} (0 = ensemble BC).  ",
        f"Members N = {meta['members']}, MLP {meta['hidden']}, {meta['steps']} steps of batch "
        f"{meta['batch_size']}, lr {meta['lr']}, {meta['eval_episodes']} evaluation episodes "
        "per run. Arms: `linear_relu` (ReLU, linear action head: the reproduction arm, also "
        "used for calibration), `tanh_head` (ReLU, tanh-bounded head: jaxbc's default).",
        "",
        "Values: mean [95% bootstrap CI over seeds]. Differences: Swarm tau minus ensemble "
        "(tau = 0) per seed, paired (same data, initial parameters and minibatches), 95% "
        "percentile bootstrap CI. Reading: *supported* if the CI excludes 0 in the paper's "
        "direction (higher return, lower action difference), *opposite* if it excludes 0 the "
        "other way, else *not supported at this budget*. Action differences are relative to "
        "the expert actions' scale sqrt(sum_d Var(a_d)); misalignment is the mean pairwise "
        "squared hidden-feature difference over the mean squared feature norm (expert states), "
        "shown with that norm.",
        "",
        "## Calibration (ensemble BC only, reproduction arm)",
        "",
        f"Rule (fixed before the study): {next(iter(parts.values()))['calibration']['rule']}.",
        "",
        "| env | " + " | ".join(f"{b} transitions" for b in meta["budgets"]) + " | chosen |",
        "|---|" + "---|" * (len(meta["budgets"]) + 1),
    ]
    for env_id, part in parts.items():
        cal = part["calibration"]
        cells = [f"{cal['ensemble_scaled_return'][str(b)]:.2f}" for b in meta["budgets"]]
        lines.append(f"| {env_id} | " + " | ".join(cells) + f" | {cal['chosen_budget']} |")
    for env_id in parts:
        for arm in ARMS:
            rows = [r for r in summary if r["env"] == env_id and r["arm"] == arm]
            if not rows:
                continue
            lines += [
                "",
                f"## {env_id}, arm `{arm}`, {rows[0]['budget']} transitions",
                "",
                "| tau | scaled return | Δ return vs ensemble | reading | action diff. rel. "
                "(expert / visited) | Δ action diff. visited | reading | misalignment rel. | "
                "feature sq. norm |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for r in rows:
                if r["tau"] == 0.0:
                    d_ret = d_ad = "(ensemble)"
                    read_ret = read_ad = ""
                else:
                    d_ret = _ci(r, "diff_scaled_return")
                    d_ad = _ci(r, "diff_action_difference_visited_rel", ".3f")
                    read_ret = r["reading_scaled_return"]
                    read_ad = r["reading_action_difference_visited_rel"]
                lines.append(
                    f"| {r['tau']:g} | {_ci(r, 'scaled_return')} | {d_ret} | {read_ret} | "
                    f"{r['action_difference_expert_rel']:.3f} / "
                    f"{r['action_difference_visited_rel']:.3f} | {d_ad} | {read_ad} | "
                    f"{_ci(r, 'misalignment_rel_expert', '.3f')} | "
                    f"{r['feature_sq_norm_expert']:.3g} |"
                )
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def plot_paper(summary: list[dict], out_dir: Path, stem: str) -> list[Path]:
    """Per env: scaled return, relative action difference and relative misalignment vs tau
    (log x; tau = 0, the ensemble, as a horizontal line with its CI band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    panels = (
        ("scaled_return", "scaled return"),
        ("action_difference_visited_rel", "action difference / action scale\n(visited states)"),
        ("misalignment_rel_expert", "hidden misalignment / feature scale\n(expert states)"),
    )
    for env_id in dict.fromkeys(r["env"] for r in summary):
        fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.2))
        for ax, (metric, ylabel) in zip(axes, panels, strict=True):
            for i, arm in enumerate(ARMS):
                rs = [r for r in summary if r["env"] == env_id and r["arm"] == arm]
                if not rs:
                    continue
                color = f"C{i}"
                pos = sorted((r for r in rs if r["tau"] > 0), key=lambda r: r["tau"])
                x = np.array([r["tau"] for r in pos])
                y = np.array([r[metric] for r in pos])
                err = np.array(
                    [
                        [r[metric] - r[metric + "_ci_lo"], r[metric + "_ci_hi"] - r[metric]]
                        for r in pos
                    ]
                ).T
                ax.errorbar(
                    x,
                    y,
                    yerr=np.nan_to_num(err),
                    marker="o",
                    capsize=3,
                    color=color,
                    label=f"Swarm, {arm}",
                )
                e = next(r for r in rs if r["tau"] == 0.0)
                ax.axhline(e[metric], color=color, ls="--", lw=1, label=f"ensemble (tau=0), {arm}")
                if np.isfinite(e[metric + "_ci_lo"]):
                    ax.axhspan(e[metric + "_ci_lo"], e[metric + "_ci_hi"], color=color, alpha=0.12)
            ax.set_xscale("log")
            ax.set_xlabel("tau (paper units)", fontsize=8)
            ax.set_ylabel(ylabel, fontsize=8)
        axes[0].legend(fontsize=6)
        budget = next(r["budget"] for r in summary if r["env"] == env_id)
        fig.suptitle(f"{env_id}, {budget} transitions (95% bootstrap CIs over seeds)", fontsize=9)
        fig.tight_layout()
        path = out_dir / f"{stem}_{zoo_name(env_id)}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def main_paper(
    scale: str, envs: list[str] | None, seed: int, out_dir: Path, name: str, resume: bool
) -> None:
    sc = PAPER_SCALES[scale]
    if envs:
        sc = dataclasses.replace(sc, envs=tuple(envs))
    if sc.taus[0] != 0.0:
        raise ValueError("the paper protocol's taus must start with 0.0 (the ensemble arm)")
    parts: dict[str, dict] = {}
    wall = 0.0
    with tqdm(total=len(sc.envs) * (1 + len(ARMS)), desc="swarm paper", file=sys.stderr) as bar:
        for env_id in sc.envs:
            part = out_dir / f"{name}_parts" / f"{zoo_name(env_id)}.json"
            res, reused = resumable_timed(
                part,
                {**dataclasses.asdict(sc), "envs": None, "seed": seed, "protocol": "paper"},
                lambda env_id=env_id: paper_env(env_id, sc, seed, bar),
                resume,
            )
            if reused:
                bar.update(1 + len(ARMS))
            parts[env_id] = res
            wall += res["wall_time_s"]
    runs = [r for p in parts.values() for r in p["runs"]]
    cal_runs = [r for p in parts.values() for r in p["calibration_runs"]]
    summary = paper_summary(runs, sc.bootstrap_resamples)
    meta = {
        "command": "python benchmarks/swarm_bc.py " + " ".join(sys.argv[1:]),
        "protocol": "paper",
        "machine": machine_description(),
        "scale": scale,
        "seed": seed,
        "wall_time_s": wall,
        "penalty_form": PAPER_PENALTY,
        "tau_units": "paper (Nuesslein et al.): sum over member pairs, features and hidden "
        "layers of squared hidden-feature differences, batch mean; BC summed over members",
        "arms": ARMS,
        "calibration_target": list(TARGET),
        "pairing": "seed s: same key (initial parameters, minibatches, evaluation) and same "
        "demonstrations for every tau and both arms",
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(sc).items()},
    }
    atomic_write_json(
        out_dir / f"{name}.json",
        {
            "meta": meta,
            "calibration": {k: p["calibration"] for k, p in parts.items()},
            "env_info": {k: p["env_info"] for k, p in parts.items()},
            "summary": summary,
            "runs": runs,
            "calibration_runs": cal_runs,
        },
    )
    atomic_write_csv(
        out_dir / f"{name}.csv",
        [
            {
                **{k: r[k] for k in ("phase", "env", "arm", "budget", "seed", "tau")},
                **{k: r[k] for k in RUN_METRICS},
                "penalty_form": PAPER_PENALTY,
                "scale": scale,
                "command": meta["command"],
                "machine": meta["machine"],
            }
            for r in cal_runs + runs
        ],
    )
    write_paper_markdown(out_dir / f"{name}.md", summary, parts, meta)
    plot_paper(summary, out_dir, name)
    print((out_dir / f"{name}.md").read_text())


def main(
    scale: Literal["cpu", "paper", "smoke"] = "cpu",
    envs: list[str] | None = None,
    seed: int = 0,
    out_dir: Path = Path("benchmarks/results"),
    name: str | None = None,
    resume: bool = False,
    protocol: Literal["counts", "paper"] = "counts",
) -> None:
    """Args:
    scale: cpu (counts: 30 min measured on 2 idle cores; paper: 25-40 min estimated), paper
        (GPU), smoke (seconds to a minute, checks the pipeline).
    envs: subset of envs (default: the scale's).
    seed: base PRNG seed.
    out_dir: where results go.
    name: file stem of the results (default: swarm_bc for counts, swarm_paper for paper).
    resume: reuse the per-env results a killed run left in ``<out_dir>/<name>_parts/``
        (same scale and seed); every finished env is saved there as it completes.
    protocol: counts (BC / ensemble / Swarm over demonstration counts, tau width-normalised)
        or paper (calibrated budget, tau in the paper's units, paired seeds, bootstrap CIs);
        see the module docstring.
    """
    enable_compilation_cache()
    out_dir.mkdir(parents=True, exist_ok=True)
    if protocol == "paper":
        main_paper(scale, envs, seed, out_dir, name or "swarm_paper", resume)
        return
    name = name or "swarm_bc"
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
    stats = counts_statistics(rows)
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
            "statistics": stats,
            "runs": rows,
            "tau_sweep_runs": sweep,
        },
    )
    atomic_write_csv(out_dir / f"{name}.csv", rows)
    write_markdown(out_dir / f"{name}.md", summary, sweep_summary, meta, stats)
    plot(summary, out_dir, name)
    plot_performance_profiles(
        {m: np.array(v) for m, v in stats["scores"].items()},
        out_dir / f"{name}_profiles.png",
        title=f"Swarm BC counts study: {len(stats['tasks'])} (env, episodes) tasks",
    )
    print((out_dir / f"{name}.md").read_text())


if __name__ == "__main__":
    tyro.cli(main)
