"""The Swarm BC study (Nuesslein et al.): BC vs ensemble BC vs Swarm BC, in two protocols.

    python benchmarks/swarm_bc.py --scale cpu      # counts: over demonstration counts
    python benchmarks/swarm_bc.py --scale paper    # GPU: N=8, 2x256, more steps/episodes
    python benchmarks/swarm_bc.py --protocol paper --scale cpu    # the paper's tau units
    python benchmarks/swarm_bc.py --protocol paper --scale smoke  # checks the pipeline

``counts``: per env the zoo expert's episodes (smaller counts are prefixes), every (count x
seed) run of a method one compiled program, and a tau sweep at one count (tau
width-normalised, ``PENALTY``); writes swarm_bc.{md,csv,json} and plots. ``paper``: a
calibrated demonstration budget (ensemble BC only, fixed rule: :func:`choose_budget`), then
tau in the paper's units x two architecture arms on paired seeds with bootstrap CIs; writes
swarm_paper.{md,csv,json} and one plot per env. Protocols and readings:
docs/results/swarm_bc.md.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxbc import studies
from jaxbc.bc import (
    BCConfig,
    PolicyConfig,
    ensemble_apply,
    hidden_alignment_penalty,
    make_bc_train,
    swarm_bc_loss,
)
from jaxbc.bc.evaluation import reference_returns
from jaxbc.bc.policies import centred_sq_norm, outputs_disagreement
from jaxbc.bc.train import make_policy_fn, net_policy
from jaxbc.data import collect
from jaxbc.envs import Box
from jaxbc.experts import load_expert
from jaxbc.experts.expert import zoo_name
from jaxbc.io import enable_compilation_cache
from jaxbc.rollout import evaluate_fn, init_carry, rollout_steps

# tau's units: this study's committed results use the width-normalised form (see
# jaxbc.bc.losses.hidden_alignment_penalty; paper tau = this tau / (members * width * layers))
PENALTY = "normalized"


@dataclass(frozen=True)
class Probe:
    """How a trained policy is measured: evaluation episodes, and the envs x steps of its
    own rollout whose states give the action difference on visited states."""

    eval_episodes: int
    visited_envs: int
    visited_steps: int


@dataclass(frozen=True)
class Scale(studies.Scale):
    episode_counts: tuple[int, ...]
    bc: BCConfig  # the ensembles' config (BC: the same with one member)
    tau: float
    taus: tuple[float, ...]
    tau_sweep_episodes: int
    probe: Probe


def _bc(hidden, steps, batch, lr, members, torso="auto") -> BCConfig:
    policy = PolicyConfig(hidden_sizes=hidden, torso=torso)
    return BCConfig(policy=policy, members=members, steps=steps, batch_size=batch, lr=lr)


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
SCALES = {  # torso mlp on the cpu: CPU convolutions are slow
    "cpu": Scale(ENVS, 5, (1, 2, 4, 8, 16), _bc((64, 64), 2000, 128, 1e-3, 8, "mlp"), 0.25, (0.0, 0.05, 0.25, 1.0, 4.0), 4, Probe(5, 4, 250)),
    "paper": Scale(ENVS, 5, (1, 2, 4, 8, 16), _bc((256, 256), 20000, 256, 3e-4, 8), 0.25, (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0), 8, Probe(20, 16, 1000)),
    # seconds: for checking the pipeline end to end
    "smoke": Scale(("CartPole-v1", "Pendulum-v1"), 2, (1, 2), _bc((16, 16), 100, 64, 1e-3, 3, "mlp"), 0.25, (0.0, 1.0), 1, Probe(2, 2, 50)),
}  # fmt: skip
METHODS = ("bc", "ensemble", "swarm")


def make_eval(env, cfg: BCConfig, probe: Probe, act_scale: float | None = None):
    """(params, key, expert_obs) -> per-run metrics; pure, vmappable. Returns and the
    members' action difference on expert / visited states; with ``act_scale`` (the paper
    protocol) also the relative action differences and the hidden-feature misalignment."""
    policy_fn = make_policy_fn(cfg, env.action_space, env.observation_shape)
    policy = net_policy(cfg, env.action_space, env.observation_shape)
    ev = evaluate_fn(env, policy_fn, probe.eval_episodes)
    steps = min(probe.visited_steps, env.max_episode_steps)

    def outputs(params, obs):
        return ensemble_apply(policy, params["net"], (obs - params["obs_mean"]) / params["obs_std"])

    def ad(out):
        return outputs_disagreement(policy, out)

    def misalignment(hidden):
        """(relative misalignment, mean squared feature norm, paper-form penalty)."""
        rel, norm = [], []
        for h in hidden:  # [members, batch, features]
            m, b = h.shape[0], h.shape[1]
            pair_mean = 2.0 * centred_sq_norm(h) / (b * (m - 1))  # mean over pairs and states
            sq = (h**2).sum() / (m * b)  # mean over members and states of ||h||^2
            rel.append(pair_mean / jnp.maximum(sq, 1e-12))
            norm.append(sq)
        pen = hidden_alignment_penalty(hidden, "paper")
        return jnp.mean(jnp.stack(rel)), jnp.mean(jnp.stack(norm)), pen

    def run(params, key, expert_obs):
        k1, k2, k3 = jax.random.split(key, 3)
        returns = ev(params, k1).returns
        carry = init_carry(env, k2, probe.visited_envs)
        _, res = rollout_steps(env, policy_fn, params, k3, carry, steps)
        visited = res.trajectory.obs.reshape(-1, *env.observation_shape)
        out_e = outputs(params, expert_obs)
        ad_e, ad_v = ad(out_e), ad(outputs(params, visited))
        if act_scale is None:
            return {
                "returns": returns,
                "action_difference_expert": ad_e,
                "action_difference_visited": ad_v,
            }
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
        }  # fmt: skip

    return run


def train_probe(env, cfg: BCConfig, probe: Probe, penalty: str, data, keys, eval_keys, num_valid,
                taus, expert_obs, refs, act_scale=None, obs_act=None, what: str = ""):  # fmt: skip
    """One run per entry of ``keys`` (its demonstrations: the first ``num_valid`` of ``data``,
    or of its own ``obs_act``), trained in one compiled program and measured in another:
    per-run rows (scaled return, the probe's metrics, the final BC loss) and the seconds."""

    def train_one(k, nv, tau, oa):
        d = data if oa is None else data.replace(obs=oa[0], action=oa[1])
        res = make_bc_train(cfg, partial(swarm_bc_loss, tau=tau, penalty=penalty))(k, d, nv)
        return res.params, res.metrics["bc_loss"][-max(1, cfg.steps // 10) :].mean()

    t0 = time.time()
    taus = jnp.asarray(taus, jnp.float32)
    params, bc_final = jax.jit(jax.vmap(train_one))(keys, num_valid, taus, obs_act)
    jax.block_until_ready(params)
    t_train = time.time() - t0
    ev = jax.jit(jax.vmap(make_eval(env, cfg, probe, act_scale), in_axes=(0, 0, None)))
    m = jax.device_get(ev(params, eval_keys, expert_obs))
    timings = {"train_s": t_train, "eval_s": time.time() - t0 - t_train}
    studies.log(f"{what}:", t0)
    rows = []
    for i in range(len(taus)):
        r = {k: float(np.mean(v[i])) for k, v in m.items()}  # returns: mean over episodes
        r["mean_return"] = r.pop("returns", r.get("mean_return"))
        r["scaled_return"] = studies.scaled(r["mean_return"], refs[1], refs[0])
        rows.append(r | {"bc_loss_final": float(bc_final[i])})
    return rows, timings


def study_env(env_id: str, scale: Scale, seed: int) -> tuple[list[dict], list[dict]]:
    key = jax.random.key(seed)
    expert = load_expert(env_id)
    env = expert.make_env()
    data = collect(expert, env, max(scale.episode_counts), jax.random.fold_in(key, 0))
    expert_ret, random_ret = reference_returns(env_id)
    ends = np.cumsum(np.bincount(data.episode_id))  # transitions in the first k episodes
    # expert states for action differences: a fixed, evenly spaced subsample
    idx = np.linspace(0, data.size - 1, min(2048, data.size)).astype(int)
    expert_obs = jnp.asarray(data.obs[idx])

    def runs_for(cfg: BCConfig, counts, taus, salt: int, what: str) -> list[dict]:
        """Train and evaluate len(counts) runs (one program each for training and eval)."""
        keys = jax.random.split(jax.random.fold_in(key, salt), len(counts))
        eval_keys = jax.random.split(jax.random.fold_in(keys[0], 1), len(counts))
        num_valid = jnp.asarray([int(ends[c - 1]) for c in counts])
        return train_probe(env, cfg, scale.probe, PENALTY, data, keys, eval_keys, num_valid,
                           taus, expert_obs, (expert_ret, random_ret), what=f"{env_id} {what}")[0]  # fmt: skip

    rows: list[dict] = []
    grid = [(c, s) for c in scale.episode_counts for s in range(scale.seeds)]
    for m_idx, method in enumerate(METHODS):
        members = 1 if method == "bc" else scale.bc.members
        tau = scale.tau if method == "swarm" else 0.0
        cfg = scale.bc.replace(members=members)
        res = runs_for(cfg, [c for c, _ in grid], [tau] * len(grid), 1 + m_idx, method)
        rows += [{"env": env_id, "episodes": c, "method": method, "seed": s, "members": members, "tau": tau}
                 | r | {"expert_return": expert_ret, "random_return": random_ret}
                 for (c, s), r in zip(grid, res, strict=True)]  # fmt: skip
    # tau sweep at one episode count: taus x seeds in one program
    sweep_grid = [(t, s) for t in scale.taus for s in range(scale.seeds)]
    res = runs_for(
        scale.bc,
        [scale.tau_sweep_episodes] * len(sweep_grid),
        [t for t, _ in sweep_grid],
        100,
        "tau sweep",
    )
    sweep = [
        {"env": env_id, "episodes": scale.tau_sweep_episodes, "tau": t, "seed": s} | r
        for (t, s), r in zip(sweep_grid, res, strict=True)
    ]  # fmt: skip
    return rows, sweep


AD = ("action_difference_expert", "action_difference_visited")
COUNT_METRICS = ("mean_return", "scaled_return", *AD)
COMPARISONS = (("swarm", "ensemble"), ("ensemble", "bc"), ("swarm", "bc"))


def counts_statistics(rows: list[dict], resamples: int = 10_000) -> dict:
    """Paired differences per (env, episodes) and rliable aggregates over all of them.

    Every method of one env trains on the same demonstrations, and seed ``s`` of one method
    is paired with seed ``s`` of another (their inits and minibatches differ by method), so
    per (env, episodes) the difference X - Y is averaged over paired seeds with a 95% paired
    bootstrap CI. Aggregates: ``jaxbc.stats.aggregate_scores`` over the (env, episodes) tasks
    (IQM and mean of the scaled return, stratified bootstrap) and P(X > Y).
    """
    arms = {m: ({"method": m}, "scaled_return") for m in METHODS}
    scores, tasks = studies.score_matrix(rows, arms, task=("env", "episodes"))
    return {
        "paired": studies.paired(rows, COMPARISONS, ("env", "episodes"), resamples=resamples),
        "aggregate": studies.aggregate(scores, COMPARISONS, [list(t) for t in tasks], resamples),
        "tasks": [list(t) for t in tasks],
        "seeds": sorted({r["seed"] for r in rows}),
        "scores": {m: v.tolist() for m, v in scores.items()},
    }


def counts_report(
    summary: list[dict], sweep: list[dict], sc: Scale, meta: dict, stats: dict
) -> list[str]:
    by = {(r["env"], r["episodes"], r["method"]): r for r in summary}
    by |= {(r["env"], r["tau"]): r for r in sweep}
    by |= {(p["env"], p["episodes"], p["x"], p["y"]): p for p in stats["paired"]}

    def ret(*k):  # a column: the scaled return of the summary row at (row's key) + k
        return lambda t: studies.pm(by[t + k]["scaled_return"], by[t + k]["scaled_return_std"])

    def ad(m):
        return lambda t: f"{by[t + (m,)][AD[0]]:.3f} / {by[t + (m,)][AD[1]]:.3f}"

    def diff(x, y):
        mark = {"supported": " (+)", "opposite": " (-)"}
        return lambda t: (
            studies.signed_ci(by[t + (x, y)]["mean"], by[t + (x, y)]["ci"])
            + mark.get(by[t + (x, y)]["reading"], "")
        )

    tasks = [(e, c) for e in dict.fromkeys(r["env"] for r in summary)
             for c in sorted({r["episodes"] for r in summary if r["env"] == e})]  # fmt: skip
    bc, p, first = sc.bc, sc.probe, {"env": lambda t: t[0]}
    counts = first | {"episodes": lambda t: t[1]}
    return studies.heading("Swarm BC study", meta, (
        f"seeds 0..{sc.seeds - 1}; wall time {meta['wall_time_s']:.0f} s; members N = {bc.members}, "
        f"tau = {sc.tau}, {bc.steps} steps, MLP {list(bc.policy.hidden_sizes)}, {p.eval_episodes} "
        "evaluation episodes per run. Scaled return: mean ± std over seeds; action difference: "
        "members' mean pairwise distance on expert / visited states."
    )) + [""] + studies.table(tasks, counts | {
        "BC": ret("bc"), "ensemble BC": ret("ensemble"), "Swarm BC": ret("swarm"),
        "action diff. ensemble (expert / visited)": ad("ensemble"), "action diff. Swarm (expert / visited)": ad("swarm"),
    }) + [
        *studies.aggregates_section(stats["aggregate"], "Scaled return", 3),
        "", f"## Statistics over seeds: paired differences ({len(stats['seeds'])} seeds, 95% "
        "bootstrap CIs; (+): CI above 0, (-): below)", "",
        *studies.table([tuple(t) for t in stats["tasks"]], counts | {f"{x} - {y}": diff(x, y) for x, y in COMPARISONS}),
        "", f"## tau sweep (Swarm BC, {sc.tau_sweep_episodes} episodes)", "",
        *studies.table([(e,) for e in dict.fromkeys(r["env"] for r in sweep)], first | {f"tau={t}": ret(t) for t in sc.taus}),
    ]  # fmt: skip


def plot_counts(summary: list[dict], out_dir: Path, stem: str) -> None:
    env_ids = list(dict.fromkeys(r["env"] for r in summary))
    for metric, ylabel, fname, methods in (
        ("scaled_return", "scaled return", f"{stem}_returns.png", METHODS),
        (AD[1], "action difference (visited states)", f"{stem}_action_difference.png", ("ensemble", "swarm")),
    ):  # fmt: skip
        with studies.figure(
            out_dir / fname, len(env_ids), min(4, len(env_ids)), (3.2, 2.6)
        ) as axes:
            for ax, env_id in zip(axes.flat, env_ids, strict=False):
                for m in methods:
                    rs = [r for r in summary if r["env"] == env_id and r["method"] == m]
                    studies.band(ax, rs, "episodes", metric, m)
                ax.set_xscale("log", base=2)
                ax.set_title(env_id, fontsize=9)
                ax.set_xlabel("expert episodes", fontsize=8)
                ax.set_ylabel(ylabel, fontsize=8)
            axes.flat[0].legend(fontsize=7)  # fmt: skip


def main_counts(
    scale: str, envs: list[str] | None, seed: int, out_dir: Path, name: str, resume: bool
) -> None:
    sc = SCALES[scale].only(envs)
    settings = {**studies.record(sc), "envs": None, "seed": seed}

    def run(env_id: str) -> dict:
        r, s = study_env(env_id, sc, seed)
        return {"runs": r, "tau_sweep_runs": s}

    parts, wall = studies.run_units(
        out_dir / f"{name}_parts", sc.envs, settings, run, resume, "swarm study"
    )
    rows = [r for p in parts.values() for r in p["runs"]]
    sweep = [r for p in parts.values() for r in p["tau_sweep_runs"]]
    summary = studies.group_stats(rows, ("env", "episodes", "method"), COUNT_METRICS)
    sweep_summary = studies.group_stats(sweep, ("env", "tau"), COUNT_METRICS)
    stats = counts_statistics(rows)
    meta = studies.metadata(
        "benchmarks/swarm_bc.py", scale, sc, wall, seed=seed, penalty_form=PENALTY
    )
    data = {
        "meta": meta,
        "summary": summary,
        "tau_sweep": sweep_summary,
        "statistics": stats,
        "runs": rows,
        "tau_sweep_runs": sweep,
    }
    studies.write_report(
        out_dir, name, data, counts_report(summary, sweep_summary, sc, meta, stats), rows
    )
    plot_counts(summary, out_dir, name)
    studies.profiles(
        {m: np.array(v) for m, v in stats["scores"].items()}, out_dir / f"{name}_profiles.png",
        f"Swarm BC counts study: {len(stats['tasks'])} (env, episodes) tasks",
    )  # fmt: skip
    print((out_dir / f"{name}.md").read_text())


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
    *AD,
    "action_difference_expert_rel",
    "action_difference_visited_rel",
    "misalignment_rel_expert",
    "feature_sq_norm_expert",
    "penalty_expert",
    "bc_loss_final",
)


@dataclass(frozen=True)
class PaperScale(studies.Scale):
    budgets: tuple[int, ...]  # demonstration transitions tried by the calibration
    calibration_seeds: int
    bc: BCConfig  # the ensembles' config (the arms set the activation and the head)
    taus: tuple[float, ...]  # paper units; 0.0 (the ensemble arm) must come first
    probe: Probe
    bootstrap_resamples: int = 10_000


PAPER_TAUS = (0.0, 0.01, 0.1, 0.25, 1.0, 10.0)
PAPER_SCALES = {
    # 25-40 min estimated on the idle 2-core CPU (module docstring)
    "cpu": PaperScale(("brax/halfcheetah", "brax/hopper"), 10, (50, 100, 250, 1000), 3, _bc((64, 64), 2000, 128, 1e-3, 8, "mlp"), PAPER_TAUS, Probe(5, 4, 250)),
    # GPU: the paper's N = 8 with 2x256 members, more envs, steps and evaluation
    "paper": PaperScale(("brax/halfcheetah", "brax/hopper", "brax/walker2d", "brax/ant"), 10, (50, 100, 250, 1000, 4000), 5, _bc((256, 256), 20000, 256, 3e-4, 8, "mlp"), PAPER_TAUS, Probe(20, 16, 1000)),
    # ~2 min: checks the pipeline end to end (2 seeds: CIs are meaningless)
    "smoke": PaperScale(("Pendulum-v1",), 2, (50, 200), 2, _bc((16, 16), 100, 64, 1e-3, 3, "mlp"), (0.0, 0.1, 10.0), Probe(2, 2, 50), 1000),
}  # fmt: skip


def choose_budget(calibration: dict[int, float], target: tuple[float, float] = TARGET) -> int:
    """The fixed calibration rule (ensemble BC's mean scaled return per budget): the largest
    budget inside ``target``; else the one closest to it (ties: the smaller budget)."""
    lo, hi = target
    inside = [b for b, r in calibration.items() if lo <= r <= hi]
    if inside:
        return max(inside)
    return min(calibration, key=lambda b: (max(lo - calibration[b], calibration[b] - hi), b))


def paper_env(env_id: str, sc: PaperScale, seed: int) -> dict:
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

    def run_grid(arm, keys, rots, budgets, taus, eval_keys):
        """Train and evaluate one run per entry (one program each); per-run metric dicts."""
        cfg = sc.bc.replace(policy=dataclasses.replace(sc.bc.policy, **ARMS[arm]))
        obs_act = tuple(jnp.asarray(np.stack([rotation(r)[i] for r in rots])) for i in (0, 1))
        return train_probe(env, cfg, sc.probe, PAPER_PENALTY, template, keys, eval_keys,
                           jnp.asarray(budgets), taus, expert_obs, (expert_ret, random_ret),
                           act_scale, obs_act, f"{env_id} {arm}")  # fmt: skip

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
        {"phase": "calibration", "env": env_id, "arm": arms[0], "budget": b, "seed": c, "tau": 0.0} | r
        for (b, c), r in zip(cal_grid, cal_rows_, strict=True)
    ]  # fmt: skip
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
            arm, keys, [s for _, s in grid], [budget] * len(grid), [t for t, _ in grid], eval_keys
        )
        runs += [
            {"phase": "study", "env": env_id, "arm": arm, "budget": budget, "seed": s, "tau": t} | r
            for (t, s), r in zip(grid, rows, strict=True)
        ]
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
    out = studies.group_stats(runs, ("env", "arm", "tau"), RUN_METRICS, ci=True, reps=resamples)
    by = {(r["env"], r["arm"], r["tau"], r["seed"]): r for r in runs}
    for agg in out:
        agg["budget"] = next(
            r["budget"] for r in runs if r["env"] == agg["env"] and r["arm"] == agg["arm"]
        )
        if agg["tau"] == 0.0:
            continue
        e, a, t = agg["env"], agg["arm"], agg["tau"]
        common = sorted(
            s for (e_, a_, t_, s) in by if (e_, a_, t_) == (e, a, t) and (e, a, 0.0, s) in by
        )
        for m, direction in CLAIMS.items():
            x = [by[(e, a, t, s)][m] for s in common]
            y = [by[(e, a, 0.0, s)][m] for s in common]
            agg[f"diff_{m}"] = studies.paired_ci(x, y, direction, resamples)
    return out  # fmt: skip


def paper_report(summary: list[dict], parts: dict, sc: PaperScale, meta: dict) -> list[str]:
    bc = sc.bc
    lines = studies.heading("Swarm BC study, paper protocol", meta, (
        f"scale {meta['scale']}; seeds 0..{sc.seeds - 1} (paired; {sc.calibration_seeds} calibration "
        f"seeds apart); wall time {meta['wall_time_s']:.0f} s; penalty `{meta['penalty_form']}`, taus "
        f"{list(sc.taus)} (0: ensemble BC); N = {bc.members}, MLP {list(bc.policy.hidden_sizes)}, "
        f"{bc.steps} steps, {sc.probe.eval_episodes} evaluation episodes per run. Values: mean [95% "
        "bootstrap CI over seeds]; differences: Swarm minus ensemble, paired by seed; action "
        "differences relative to the expert actions' scale."
    )) + [
        "", "## Calibration (ensemble BC, reproduction arm)", "",
        f"Rule: {next(iter(parts.values()))['calibration']['rule']}.", "",
        *studies.md_table(
            ["env", *(f"{b} transitions" for b in sc.budgets), "chosen"],
            ([e, *(f"{p['calibration']['ensemble_scaled_return'][str(b)]:.2f}" for b in sc.budgets), p["calibration"]["chosen_budget"]] for e, p in parts.items()),
        ),
    ]  # fmt: skip

    def ci(v: dict, digits: int = 2) -> str:
        lo, hi = v["ci"] or (float("nan"), float("nan"))
        return f"{v['mean']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"

    def diff(metric: str, digits: int = 2, reading: bool = False):  # Swarm tau - ensemble
        if reading:
            return lambda r: "" if r["tau"] == 0.0 else r[f"diff_{metric}"]["reading"]
        return lambda r: "(ensemble)" if r["tau"] == 0.0 else ci(r[f"diff_{metric}"], digits)

    columns = [
        ("tau", lambda r: f"{r['tau']:g}"), ("scaled return", lambda r: ci(r["scaled_return"])),
        ("Δ return vs ensemble", diff("scaled_return")), ("reading", diff("scaled_return", reading=True)),
        ("action diff. rel. (expert / visited)", lambda r: f"{r['action_difference_expert_rel']['mean']:.3f} / {r['action_difference_visited_rel']['mean']:.3f}"),
        ("Δ action diff. visited", diff("action_difference_visited_rel", 3)),
        ("reading", diff("action_difference_visited_rel", reading=True)),
        ("misalignment rel.", lambda r: ci(r["misalignment_rel_expert"], 3)),
        ("feature sq. norm", lambda r: f"{r['feature_sq_norm_expert']['mean']:.3g}"),
    ]  # fmt: skip
    for env_id in parts:
        for arm in ARMS:
            if rows := [r for r in summary if r["env"] == env_id and r["arm"] == arm]:
                lines += ["", f"## {env_id}, arm `{arm}`, {rows[0]['budget']} transitions", ""]
                lines += studies.table(rows, columns)
    return lines


def plot_paper(summary: list[dict], out_dir: Path, stem: str) -> None:
    """Per env: scaled return, relative action difference and relative misalignment vs tau
    (log x; tau = 0, the ensemble, as a horizontal line with its CI band)."""
    panels = (
        ("scaled_return", "scaled return"),
        ("action_difference_visited_rel", "action difference / action scale\n(visited states)"),
        ("misalignment_rel_expert", "hidden misalignment / feature scale\n(expert states)"),
    )
    for env_id in dict.fromkeys(r["env"] for r in summary):
        with studies.figure(
            out_dir / f"{stem}_{zoo_name(env_id)}.png", len(panels), size=(4.0, 3.2)
        ) as axes:
            for ax, (metric, ylabel) in zip(axes[0], panels, strict=True):
                for i, arm in enumerate(ARMS):
                    if not (rs := [r for r in summary if r["env"] == env_id and r["arm"] == arm]):
                        continue
                    pos = sorted((r for r in rs if r["tau"] > 0), key=lambda r: r["tau"])
                    y = np.array([r[metric]["mean"] for r in pos])
                    lo_hi = np.array([r[metric]["ci"] or (np.nan, np.nan) for r in pos]).reshape(
                        -1, 2
                    )
                    ax.errorbar(
                        [r["tau"] for r in pos],
                        y,
                        yerr=np.nan_to_num(np.abs(lo_hi - y[:, None]).T),
                        marker="o",
                        capsize=3,
                        color=f"C{i}",
                        label=f"Swarm, {arm}",
                    )
                    e = next(r[metric] for r in rs if r["tau"] == 0.0)
                    ax.axhline(
                        e["mean"], color=f"C{i}", ls="--", lw=1, label=f"ensemble (tau=0), {arm}"
                    )
                    if e["ci"]:
                        ax.axhspan(*e["ci"], color=f"C{i}", alpha=0.12)  # fmt: skip
                ax.set_xscale("log")
                ax.set_xlabel("tau (paper units)", fontsize=8)
                ax.set_ylabel(ylabel, fontsize=8)
            axes[0, 0].legend(fontsize=6)
            budget = next(r["budget"] for r in summary if r["env"] == env_id)
            axes[0, 0].figure.suptitle(f"{env_id}, {budget} transitions (95% bootstrap CIs over seeds)", fontsize=9)  # fmt: skip


def main_paper(
    scale: str, envs: list[str] | None, seed: int, out_dir: Path, name: str, resume: bool
) -> None:
    sc = PAPER_SCALES[scale].only(envs)
    if sc.taus[0] != 0.0:
        raise ValueError("the paper protocol's taus must start with 0.0 (the ensemble arm)")
    settings = {**studies.record(sc), "envs": None, "seed": seed, "protocol": "paper"}
    run = partial(paper_env, sc=sc, seed=seed)
    parts, wall = studies.run_units(
        out_dir / f"{name}_parts", sc.envs, settings, run, resume, "swarm paper"
    )
    runs = [r for p in parts.values() for r in p["runs"]]
    cal_runs = [r for p in parts.values() for r in p["calibration_runs"]]
    summary = paper_summary(runs, sc.bootstrap_resamples)
    meta = studies.metadata(
        "benchmarks/swarm_bc.py", scale, sc, wall, seed=seed, protocol="paper", penalty_form=PAPER_PENALTY,
        tau_units="paper (Nuesslein et al.): sum over member pairs, features and hidden "
        "layers of squared hidden-feature differences, batch mean; BC summed over members",
        arms=ARMS,
        calibration_target=list(TARGET),
        pairing="seed s: same key (initial parameters, minibatches, evaluation) and same "
        "demonstrations for every tau and both arms",
    )  # fmt: skip
    data = {
        "meta": meta,
        "calibration": {k: p["calibration"] for k, p in parts.items()},
        "env_info": {k: p["env_info"] for k, p in parts.items()},
        "summary": summary,
        "runs": runs,
        "calibration_runs": cal_runs,
    }
    keys = ("phase", "env", "arm", "budget", "seed", "tau", *RUN_METRICS)
    csv = [{**{k: r[k] for k in keys}, "penalty_form": PAPER_PENALTY, "scale": scale,
            "command": meta["command"], "machine": meta["machine"]} for r in cal_runs + runs]  # fmt: skip
    studies.write_report(out_dir, name, data, paper_report(summary, parts, sc, meta), csv)
    plot_paper(summary, out_dir, name)
    print((out_dir / f"{name}.md").read_text())  # fmt: skip


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
    else:
        main_counts(scale, envs, seed, out_dir, name or "swarm_bc", resume)


if __name__ == "__main__":
    studies.cli(main, multi_process=False)
