"""jaxbc's BC and DAgger against brax's ``brax.training.agents.bc`` on equal work, one run.

    python benchmarks/peers/run_peer.py --scale cpu        # throughput, a few minutes
    python benchmarks/peers/run_peer.py --scale cpu_learn --seed S  # returns, ~15 min a seed
    python benchmarks/peers/run_peer.py --scale cpu_learn --summarize  # CIs over the seeds run
    python benchmarks/peers/run_peer.py --scale gpu

Both sides learn from the jaxbc zoo expert ``brax/hopper`` (positional backend, 1,000-step
episodes), exported to plain arrays for the brax side, which runs ``brax_bc.py`` in its own
virtualenv (``--peer-python``, see README.md). Four arms (brax_bc, jaxbc_bc, brax_dagger,
jaxbc_dagger) with the same policy MLP, batch, Adam learning rate, gradient steps and env
steps (:data:`EQUAL`, :data:`NOT_EQUAL`); every final policy is evaluated by the same jaxbc
evaluator. Writes ``benchmarks/results/peers/brax_bc*.{json,md}``; readings in
docs/results/peers.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxbc import envs
from jaxbc.bc import BCConfig, PolicyConfig, make_bc_train
from jaxbc.dagger import DAggerConfig, make_dagger
from jaxbc.data import Dataset
from jaxbc.experts.expert import load_expert
from jaxbc.io import atomic_write_bytes, atomic_write_json, command_line, machine_description
from jaxbc.rollout import evaluate, evaluate_fn, init_carry, rollout_steps
from jaxbc.stats import paired_difference

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "benchmarks" / "results" / "peers"

SCALES = {
    # a plumbing check (seconds of work, mostly compilation)
    "smoke": dict(num_envs=4, demo_length=16, batch_size=32, epochs=1, dagger_steps=4, hidden_sizes=[16, 16], eval_episodes=1),
    # a few minutes on 2 shared CPU cores
    "cpu": dict(num_envs=16, demo_length=64, batch_size=256, epochs=4, dagger_steps=8, hidden_sizes=[64, 64], eval_episodes=5),
    # enough data and steps on 2 CPU cores for the returns to say something (~15 min)
    "cpu_learn": dict(num_envs=32, demo_length=128, batch_size=256, epochs=8, dagger_steps=12, hidden_sizes=[64, 64], eval_episodes=10),
    # one GPU
    "gpu": dict(num_envs=256, demo_length=128, batch_size=1024, epochs=10, dagger_steps=40, hidden_sizes=[256, 256], eval_episodes=50),
}  # fmt: skip


def settings_for(scale: str, seed: int) -> dict:
    s = dict(SCALES[scale])
    s.update(env_id="brax/hopper", backend="positional", episode_length=1000, lr=4e-4, seed=seed)
    n = s["num_envs"] * s["demo_length"]
    assert n % s["batch_size"] == 0, "an iteration's data must split into whole batches"
    s["env_steps_per_iteration"] = n
    s["grad_steps_per_iteration"] = s["epochs"] * n // s["batch_size"]
    s["env_steps"] = s["dagger_steps"] * n
    s["grad_steps"] = s["dagger_steps"] * s["grad_steps_per_iteration"]
    return s


def export_teacher(expert, env, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The expert's actor MLP + observation statistics as plain arrays, with check pairs."""
    net = expert.params["net"]["params"]["actor"]
    arrays = {}
    for name, layer in net.items():
        arrays[f"actor_{name}_kernel"] = np.asarray(layer["kernel"])
        arrays[f"actor_{name}_bias"] = np.asarray(layer["bias"])
    stats = expert.params["obs_stats"]
    arrays["obs_mean"], arrays["obs_var"] = np.asarray(stats.mean), np.asarray(stats.var)
    fn = expert.policy_fn(True, env)
    res = jax.jit(lambda k: rollout_steps(env, fn, expert.params, k, init_carry(env, k, 8), 32))(
        jax.random.key(123)
    )[1]
    obs = np.asarray(res.trajectory.obs).reshape(-1, *env.observation_shape)
    act = np.clip(np.asarray(res.trajectory.action).reshape(obs.shape[0], -1), -1.0, 1.0)
    arrays["check_obs"], arrays["check_action"] = obs, act
    np.savez(path, **arrays)
    return obs, act


def expert_dataset(expert, env, num_envs: int, length: int, key) -> tuple[Dataset, float, float]:
    """``num_envs`` envs x ``length`` steps of the expert from reset (auto-resetting), as a
    dataset; returns it with (compile seconds, run seconds)."""
    fn = expert.policy_fn(True, env)

    def run(params, k):
        k_reset, k_run = jax.random.split(k)
        res = rollout_steps(env, fn, params, k_run, init_carry(env, k_reset, num_envs), length)[1]
        t = res.trajectory
        flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
        return flat(t.obs), env.action_space.clip(flat(t.action))

    t0 = time.perf_counter()
    compiled = jax.jit(run).lower(expert.params, key).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    obs, act = jax.block_until_ready(compiled(expert.params, key))
    run_s = time.perf_counter() - t0
    data = Dataset.from_pairs(obs, act, env.id, env.action_space,
                              observation_shape=tuple(env.observation_shape), env_options=tuple(env.options))  # fmt: skip
    return data, compile_s, run_s


def timed(fn, *args) -> tuple[object, float, float]:
    """(result, compile seconds, run seconds) of ``jax.jit(fn)(*args)``."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    return out, compile_s, time.perf_counter() - t0


@dataclass(frozen=True)
class BraxPolicyFn:
    """brax's BC policy re-applied in plain jax: normalise, swish MLP, tanh of the loc half."""

    layers: int
    act_dim: int

    def __call__(self, params, obs, key):
        x = (obs - params["obs_mean"]) / params["obs_std"]
        for i in range(self.layers):
            x = x @ params[f"hidden_{i}_kernel"] + params[f"hidden_{i}_bias"]
            if i < self.layers - 1:
                x = jax.nn.swish(x)
        return jnp.tanh(x[..., : self.act_dim])


def brax_params(arrays: dict, arm: str) -> dict:
    prefix = f"{arm}_"
    return {
        k[len(prefix) :]: jnp.asarray(v)
        for k, v in arrays.items()
        if k.startswith(prefix) and not k.endswith("check_action")
    }


def rates(env_steps: int, grad_steps: int, batch: int, run_s: float) -> dict:
    return {
        "env_steps_per_s": round(env_steps / run_s, 1),
        "grad_steps_per_s": round(grad_steps / run_s, 1),
        "samples_per_s": round(grad_steps * batch / run_s, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--peer-python", default="/tmp/peer_venv/bin/python")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument(
        "--summarize",
        action="store_true",
        help="train nothing: gather the scale's runs in --out (one file per --seed) into "
        "brax_bc_<scale>_seeds.{json,md} with means and 95%% bootstrap CIs over seeds",
    )
    args = p.parse_args()
    if args.summarize:
        summarize_seeds(args.scale, args.out)
        return
    s = settings_for(args.scale, args.seed)
    expert = load_expert(s["env_id"])
    env = envs.make(s["env_id"], backend=s["backend"], episode_length=s["episode_length"])
    assert env.options == expert.make_env().options, "the zoo expert's env options changed"
    out: dict = {
        "command": command_line("python benchmarks/peers/run_peer.py"),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_description(),
        "jaxbc_side": {"jax": jax.__version__, "device": str(jax.devices()[0].device_kind)},
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "settings": s,
        "arms": {},
    }
    n_iter = s["env_steps_per_iteration"]
    policy = PolicyConfig(
        hidden_sizes=tuple(s["hidden_sizes"]), activation="silu", init="lecun", tanh_bounded=True
    )

    # --- brax (peer venv, subprocess) ----------------------------------------------------
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        check_obs, _ = export_teacher(expert, env, tmp / "teacher.npz")
        (tmp / "settings.json").write_text(json.dumps(s))
        cmd = [args.peer_python, str(Path(__file__).with_name("brax_bc.py"))]
        cmd += ["--teacher", str(tmp / "teacher.npz"), "--settings", str(tmp / "settings.json")]
        cmd += ["--out", str(tmp)]
        print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        peer_wall = time.perf_counter() - t0
        peer = json.loads((tmp / "brax_bc.json").read_text())
        arrays = dict(np.load(tmp / "brax_bc_params.npz"))
    keys = ("jax", "brax", "device", "teacher_max_abs_err", "load_average")
    out["brax_side"] = {k: peer[k] for k in keys}
    out["brax_side"]["subprocess_wall_s"] = round(peer_wall, 2)
    act_dim = env.action_space.shape[0]
    for arm in ("bc", "dagger"):
        res = peer["arms"][arm]
        params = brax_params(arrays, arm)
        fn = BraxPolicyFn(sum(k.endswith("_kernel") for k in params), act_dim)
        mine = jax.vmap(lambda o, fn=fn, params=params: fn(params, o, None))(jnp.asarray(check_obs))
        err = float(jnp.abs(mine - arrays[f"{arm}_check_action"]).max())
        assert err < 1e-4, f"re-applied brax {arm} policy differs from brax's ({err})"
        out["arms"][f"brax_{arm}"] = {
            **res,
            **rates(s["env_steps"], s["grad_steps"], s["batch_size"], res["run_s"]),
            "reapply_max_abs_err": err,
            "_policy": (fn, params),
        }

    # --- jaxbc BC -------------------------------------------------------------------------
    key = jax.random.key(s["seed"])
    k_data, k_bc, k_init, k_dag = jax.random.split(key, 4)
    bc_cfg = BCConfig(policy=policy, steps=s["grad_steps"], batch_size=s["batch_size"], lr=s["lr"],
                      max_grad_norm=None, normalize_obs=True)  # fmt: skip
    print("[jaxbc] bc ...", file=sys.stderr, flush=True)
    data, c_col, r_col = expert_dataset(
        expert, env, s["num_envs"], s["dagger_steps"] * s["demo_length"], k_data
    )
    result, c_bc, r_bc = timed(make_bc_train(bc_cfg), k_bc, data)
    out["arms"]["jaxbc_bc"] = {
        "collect_compile_s": round(c_col, 3), "collect_run_s": round(r_col, 4),
        "train_compile_s": round(c_bc, 3), "train_run_s": round(r_bc, 4),
        "compile_s": round(c_col + c_bc, 3), "run_s": round(r_col + r_bc, 4),
        **rates(s["env_steps"], s["grad_steps"], s["batch_size"], r_col + r_bc),
        "_policy": (result.policy_fn(), result.params),
    }  # fmt: skip

    # --- jaxbc DAgger ---------------------------------------------------------------------
    print("[jaxbc] dagger ...", file=sys.stderr, flush=True)
    initial, c_i, r_i = expert_dataset(expert, env, s["num_envs"], s["demo_length"], k_init)
    dag_cfg = DAggerConfig(
        bc=bc_cfg.replace(steps=s["grad_steps_per_iteration"]), iterations=s["dagger_steps"] - 1,
        steps_per_iteration=n_iter, num_envs=s["num_envs"], beta_schedule="constant", beta0=0.0,
        warm_start=True, eval_episodes=1,
    )  # fmt: skip
    dag, c_d, r_d = timed(make_dagger(dag_cfg, env=env), k_dag, expert, initial)
    # its per-iteration evaluation (1 episode of 1,000 steps, inside the program) is work
    # brax's arm does not do: time it alone to report a rate without it
    ev = evaluate_fn(env, dag.learner.policy_fn(), 1)
    _, _, r_ev = timed(ev, dag.learner.params, k_dag)
    r_train = r_i + r_d - s["dagger_steps"] * r_ev
    out["arms"]["jaxbc_dagger"] = {
        "collect_compile_s": round(c_i, 3), "collect_run_s": round(r_i, 4),
        "dagger_compile_s": round(c_d, 3), "dagger_run_s": round(r_d, 4),
        "compile_s": round(c_i + c_d, 3), "run_s": round(r_i + r_d, 4),
        **rates(s["env_steps"], s["grad_steps"], s["batch_size"], r_i + r_d),
        "eval_s_per_iteration": round(r_ev, 4), "run_s_without_evals": round(r_train, 4),
        "grad_steps_per_s_without_evals": round(s["grad_steps"] / r_train, 1),
        "per_iteration_returns_1ep": [round(float(x), 1) for x in dag.returns],
        "_policy": (dag.learner.policy_fn(), dag.learner.params),
    }  # fmt: skip

    # --- one evaluator for every final policy --------------------------------------------
    k_eval = jax.random.key(10_000 + s["seed"])
    n_ep = s["eval_episodes"]
    ex = evaluate(env, expert.policy_fn(True, env), expert.params, k_eval, n_ep)
    out["expert_return"] = {"mean": float(ex.mean_return), "std": float(ex.std_return)}
    for name, arm in out["arms"].items():
        fn, params = arm.pop("_policy")
        r = evaluate(env, fn, params, k_eval, n_ep)
        arm["final_return"] = {"mean": float(r.mean_return), "std": float(r.std_return)}
        print(f"{name}: {arm}", file=sys.stderr, flush=True)
    out["evaluation"] = (
        f"jaxbc.rollout.evaluate on {s['env_id']} ({s['backend']}, {s['episode_length']}-step "
        f"episodes), {n_ep} episodes, deterministic, same key for every arm"
    )
    out["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out["equal"] = EQUAL
    out["not_equal"] = NOT_EQUAL
    name = results_stem(args.scale) + (f"_s{args.seed}" if args.seed else "")
    atomic_write_json(args.out / f"{name}.json", out)
    atomic_write_bytes(args.out / f"{name}.md", report(out).encode())
    print(report(out))


EQUAL = [
    "teacher: the jaxbc zoo brax/hopper expert (deterministic, clipped); the brax side's "
    "plain-jax copy is checked against jaxbc's actions (teacher_max_abs_err)",
    "env: brax hopper, positional backend, 1,000-step episodes",
    "policy MLP hidden sizes, swish activation, tanh-bounded actions, observation normalisation",
    "loss: squared error summed over action dims, mean over the batch (brax: on tanh(loc))",
    "batch size, Adam learning rate, no gradient clipping, number of gradient steps, env steps",
    "final returns: one jaxbc evaluator, same episodes and key for all arms; brax's policies "
    "re-applied in plain jax and checked against brax's own actions (reapply_max_abs_err)",
]
NOT_EQUAL = [
    "brax_bc draws fresh expert rollouts every iteration and trains epochs over shuffled "
    "minibatches of only that iteration's data; jaxbc_bc collects the same number of expert "
    "transitions once and samples minibatches with replacement from all of them",
    "brax_dagger trains each iteration on that iteration's data only (no aggregation) and "
    "keeps its Adam state; jaxbc_dagger aggregates every iteration's data into a buffer and "
    "re-creates Adam each iteration (warm-started weights)",
    "brax queries the teacher on every minibatch (labels re-computed each epoch); jaxbc labels "
    "once at collection",
    "brax's auto-reset returns an env to its first initial state; jaxbc's draws a fresh reset",
    "brax's net outputs loc and scale (2x action dims, lecun_uniform); jaxbc's outputs the "
    "action (lecun_normal hidden, orthogonal(0.01) output)",
    "normalisation: brax keeps running statistics of all data seen; jaxbc recomputes them "
    "from its dataset/buffer (the same data for DAgger, since the buffer holds all of it)",
    "timing: jaxbc arms are one compiled program each (compile timed apart with "
    "lower().compile()); brax's trainer compiles inside its training call, so its compile time is "
    "the union of jax.monitoring compile events inside brax's timed scan, and its run time "
    "that scan's walltime minus them (tracing not reported as an event counts as run); "
    "jaxbc_dagger's run time includes a 1-episode evaluation per iteration "
    "(run_s_without_evals subtracts its separately measured cost)",
    "brax arms run in a separate process (peer venv): jax versions are recorded per side",
]


COMPARE = (("jaxbc_bc", "brax_bc"), ("jaxbc_dagger", "brax_dagger"))


def results_stem(scale: str) -> str:
    """File stem of a scale's results (seed s > 0 adds ``_s<s>``, the summary ``_seeds``)."""
    return "brax_bc" if scale == "cpu" else f"brax_bc_{scale}"


def summarize_seeds(scale: str, out: Path) -> None:
    """Per arm over the seeds run at ``scale``: final return and throughput; per pair in
    :data:`COMPARE`, the paired difference in final return (seed ``s`` of both arms: the same
    teacher, settings and evaluation key) with a 95% percentile bootstrap CI."""
    stem = results_stem(scale)
    runs, files = {}, {}
    for path in sorted(out.glob(f"{stem}*.json")):
        rest = path.stem.removeprefix(stem)
        if rest == "" or (rest.startswith("_s") and rest[2:].isdigit()):
            o = json.loads(path.read_text())
            seed = o["settings"]["seed"]
            if seed in runs:
                raise SystemExit(f"error: seed {seed} is in both {files[seed]} and {path.name}")
            runs[seed], files[seed] = o, path.name
    if len(runs) < 2:
        raise SystemExit(f"error: --summarize needs runs of 2+ seeds in {out} ({stem}*.json)")
    seeds = sorted(runs)
    first = runs[seeds[0]]

    def setup(o: dict) -> dict:  # (the expert's return differs by seed: its evaluation key)
        return {k: v for k, v in o["settings"].items() if k != "seed"}

    for s in seeds:
        if setup(runs[s]) != setup(first):
            raise SystemExit(
                f"error: {files[s]} was run with other settings than {files[seeds[0]]}; "
                "move stale runs out of the way"
            )
    arms = {}
    for arm in first["arms"]:
        ret = np.array([runs[s]["arms"][arm]["final_return"]["mean"] for s in seeds])
        # (grad_steps_per_s_without_evals: jaxbc DAgger with its evaluations taken out)
        medians = (
            "grad_steps_per_s",
            "env_steps_per_s",
            "run_s",
            "compile_s",
            "grad_steps_per_s_without_evals",
        )
        arms[arm] = {
            "final_return_per_seed": ret.round(1).tolist(), "final_return_mean": float(ret.mean()),
            **{k + "_median": float(np.median([runs[s]["arms"][arm][k] for s in seeds]))
               for k in medians if all(k in runs[s]["arms"][arm] for s in seeds)},
        }  # fmt: skip
    pairs = []
    for x, y in COMPARE:
        a = [runs[s]["arms"][x]["final_return"]["mean"] for s in seeds]
        b = [runs[s]["arms"][y]["final_return"]["mean"] for s in seeds]
        mean, lo, hi = paired_difference(a, b)
        speed = [
            runs[s]["arms"][x]["grad_steps_per_s"] / runs[s]["arms"][y]["grad_steps_per_s"]
            for s in seeds
        ]
        pairs.append({"x": x, "y": y, "return_difference": mean, "ci": [lo, hi],
                      "grad_steps_per_s_ratio_median": float(np.median(speed))})  # fmt: skip
    summary = {
        "command": command_line("python benchmarks/peers/run_peer.py"),
        "runs": [files[s] for s in seeds], "commands": [runs[s]["command"] for s in seeds],
        "machine": first["machine"], "seeds": seeds, "settings": setup(first),
        "expert_return": first["expert_return"], "arms": arms, "paired": pairs,
        "statistics": "paired percentile bootstrap over seeds (jaxbc.stats.paired_difference, 9,999 resamples)",
    }  # fmt: skip
    lines = [
        f"# jaxbc vs brax.training.agents.bc over seeds ({scale})",
        "",
        f"`{summary['command']}` gathered {', '.join(summary['runs'])} ({first['machine']}). "
        f"Settings as in each run's report; expert return {first['expert_return']['mean']:.0f}.",
        "",
        "| arm | final return per seed | mean | grad steps/s (median) | env steps/s (median) | compile s (median) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for arm, a in arms.items():
        lines.append(
            f"| {arm} | {', '.join(f'{v:.0f}' for v in a['final_return_per_seed'])} | "
            f"{a['final_return_mean']:.0f} | {a['grad_steps_per_s_median']:,.0f} | "
            f"{a['env_steps_per_s_median']:,.0f} | {a['compile_s_median']:.0f} |"
        )
    for arm, a in arms.items():
        if "grad_steps_per_s_without_evals_median" in a:
            lines += [
                "",
                f"{arm} without its per-iteration one-episode evaluations (brax's DAgger has none): "
                f"{a['grad_steps_per_s_without_evals_median']:,.0f} grad steps/s (median).",
            ]
    lines += [
        "",
        f"Paired over {len(seeds)} seeds (95% percentile bootstrap; with few seeds it runs "
        "narrow, and with 3 it is the range of the per-seed differences: excluding 0 then means "
        "the same sign in every seed):",
        "",
        "| X - Y | final return difference [95% CI] | grad steps/s ratio X / Y (median) |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {p['x']} - {p['y']} | {p['return_difference']:+.0f} [{p['ci'][0]:+.0f}, {p['ci'][1]:+.0f}] "
        f"| {p['grad_steps_per_s_ratio_median']:.2f} |"
        for p in pairs
    ]
    atomic_write_json(out / f"{stem}_seeds.json", summary)
    atomic_write_bytes(out / f"{stem}_seeds.md", ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))


def report(o: dict) -> str:
    s = o["settings"]
    lines = [
        "# jaxbc vs brax.training.agents.bc (brax hopper)",
        "",
        f"`{o['command']}` on {o['machine']}, {o['date']}. jaxbc side: jax {o['jaxbc_side']['jax']}; "
        f"brax side: brax {o['brax_side']['brax']}, jax {o['brax_side']['jax']}.",
        "",
        f"Per arm: {s['env_steps']:,} env steps ({s['num_envs']} envs x {s['demo_length']} steps x "
        f"{s['dagger_steps']} iterations), {s['grad_steps']:,} gradient steps of batch "
        f"{s['batch_size']}, MLP {s['hidden_sizes']} swish, Adam lr {s['lr']}. Returns: "
        f"{s['eval_episodes']} episodes, one evaluator. Expert: {o['expert_return']['mean']:.0f}.",
        "",
        "| arm | compile s | run s | grad steps/s | env steps/s | final return |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, a in o["arms"].items():
        run, comp = a["run_s"], a["compile_s"]
        r = a["final_return"]
        lines.append(
            f"| {name} | {comp:.1f} | {run:.2f} | {a['grad_steps_per_s']:,.0f} | "
            f"{a['env_steps_per_s']:,.0f} | {r['mean']:.0f} ± {r['std']:.0f} |"
        )
    d = o["arms"]["jaxbc_dagger"]
    lines += [
        "",
        (
            f"jaxbc_dagger without its per-iteration evaluations: {d['run_s_without_evals']:.2f} s "
            f"({d['grad_steps_per_s_without_evals']:,.0f} grad steps/s). "
            if d["run_s_without_evals"] > 0
            else "jaxbc_dagger without its per-iteration evaluations: not separable here (the "
            "separately timed evaluations took longer than the whole run: timing noise). "
        )
        + "brax: run s = brax's own "
        "walltime of its training scan minus the jax compile events inside it.",
        "",
        "Equal: " + "; ".join(o["equal"]) + ".",
        "",
        "Not equal: " + "; ".join(o["not_equal"]) + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
