"""The brax side of the peer benchmark: ``brax.training.agents.bc.train`` on brax hopper.

Runs INSIDE the peer virtualenv (imports only brax, jax and numpy, never jaxbc); the driver
``run_peer.py`` calls it as a subprocess::

    /tmp/peer_venv/bin/python benchmarks/peers/brax_bc.py --teacher T.npz --settings S.json --out DIR

The teacher is the zoo expert's actor as a plain-jax MLP (its ``loc`` is ``arctanh`` of the
clipped mean action, so ``tanh(loc)`` is the label a jaxbc dataset stores). Arms: ``bc``
(the teacher always acts) and ``dagger`` (brax's default schedule). Compile time inside
brax's timed scan is measured with ``jax.monitoring`` and subtracted to give the run time.
Writes ``brax_bc.json`` (timings, versions) and ``brax_bc_params.npz`` (each arm's final
weights and its actions on the driver's check observations).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jp
import numpy as np

ARMS = ("bc", "dagger")


def make_teacher(t: dict):
    """(obs dict, key) -> (action, {"loc": arctanh(action)}), batched over envs."""
    layers = sorted({k.rsplit("_", 1)[0] for k in t if k.startswith("actor_Dense_")})
    weights = [(jp.asarray(t[f"{n}_kernel"]), jp.asarray(t[f"{n}_bias"])) for n in layers]
    mean, var = jp.asarray(t["obs_mean"]), jp.asarray(t["obs_var"])

    def act(x):
        x = jp.clip((x - mean) / jp.sqrt(var + 1e-8), -10.0, 10.0)  # jaxbc RunningStats
        for i, (w, b) in enumerate(weights):
            x = x @ w + b
            if i < len(weights) - 1:
                x = jp.tanh(x)
        return jp.clip(x, -1.0, 1.0)

    def teacher(obs, key):
        del key
        a = act(obs["state"])
        return a, {"loc": jp.arctanh(jp.clip(a, -1.0 + 1e-6, 1.0 - 1e-6))}

    return teacher, act


def make_env(settings: dict):
    from brax import envs
    from brax.envs.base import Wrapper

    class DictObs(Wrapper):
        """brax's BC reads observations as a dict (``obs["state"]``)."""

        def reset(self, rng):
            s = self.env.reset(rng)
            return s.replace(obs={"state": s.obs})

        def step(self, state, action):
            s = self.env.step(state.replace(obs=state.obs["state"]), action)
            return s.replace(obs={"state": s.obs})

        @property
        def observation_size(self):
            return {"state": (self.env.observation_size,)}

    name = settings["env_id"].split("/", 1)[1]
    env = envs.get_environment(name, backend=settings["backend"])
    return envs.training.wrap(
        DictObs(env), episode_length=settings["episode_length"], action_repeat=1
    )


COMPILES: list[tuple[float, float]] = []  # (start, end) of jax's compile-stage events


def _on_event(event: str, duration: float, **kwargs) -> None:
    if event.startswith("/jax/core/compile/"):
        now = time.monotonic()
        COMPILES.append((now - duration, now))


class _Clock:
    """Stands in for the ``time`` module inside brax's trainer: records the ``monotonic()``
    readings it takes around its timed scan (``t0``, ``t1``), nothing else changes."""

    def __init__(self):
        self.readings: list[float] = []

    def monotonic(self) -> float:
        t = time.monotonic()
        self.readings.append(t)
        return t


def compile_seconds(lo: float, hi: float) -> float:
    """Seconds inside [lo, hi] covered by compile events (union: nested ones count once)."""
    total, end = 0.0, lo
    for a, b in sorted(COMPILES):
        a, b = max(a, end), min(b, hi)
        if b > a:
            total += b - a
            end = b
    return total


def run_arm(arm: str, settings: dict, teacher, check_obs: np.ndarray) -> tuple[dict, dict]:
    from brax.training.agents.bc import networks as bc_networks
    from brax.training.agents.bc import train as bc
    from flax import linen

    env = make_env(settings)
    factory = functools.partial(
        bc_networks.make_bc_networks,
        policy_hidden_layer_sizes=tuple(settings["hidden_sizes"]),
        activation=linen.swish,
        policy_obs_key="state",
    )
    walls: list[float] = []  # brax's cumulative walltime, per progress call

    def progress(step, metrics):
        walls.append(float(metrics.get("walltime", 0.0)))

    clock = _Clock()
    bc.time = clock  # brax times its scan with time.monotonic(): read its t0 and t1

    beta = {"bc": lambda step: jp.asarray(1.0), "dagger": None}[arm]
    kwargs = {} if beta is None else {"dagger_beta_fn": beta}
    del COMPILES[:]
    t0 = time.perf_counter()
    make_policy, params, _ = bc.train(
        demo_length=settings["demo_length"],
        teacher_inference_fn=teacher,
        normalize_observations=True,
        epochs=settings["epochs"],
        tanh_squash=True,
        env=env,
        num_envs=settings["num_envs"],
        num_eval_envs=1,
        eval_length=1,
        batch_size=settings["batch_size"],
        network_factory=factory,
        progress_fn=progress,
        seed=settings["seed"],
        learning_rate=settings["lr"],
        dagger_steps=settings["dagger_steps"],
        num_evals=2,  # one chunk (more chunks re-compile the scan each time)
        reset=False,  # carry the envs across iterations, as jaxbc's DAgger does
        **kwargs,
    )
    total_s = time.perf_counter() - t0
    bc.time = time
    t_start, t_end = clock.readings  # brax's t0 and t1 around its one timed scan
    wall = walls[-1]
    assert abs((t_end - t_start) - wall) < 1e-3, (t_start, t_end, wall)
    compile_in = compile_seconds(t_start, t_end)
    out = {
        "brax_walltime_s": round(wall, 4),  # brax's own time of the scan of all DAgger steps
        "compile_s": round(compile_in, 3),  # jax compile events inside that window
        "run_s": round(wall - compile_in, 4),
        "compile_s_whole_call": round(compile_seconds(0.0, time.monotonic()), 3),
        "train_call_total_s": round(total_s, 3),
    }
    normalizer, policy = params
    arrays = {
        f"{arm}_obs_mean": np.asarray(normalizer.mean["state"]),
        f"{arm}_obs_std": np.asarray(normalizer.std["state"]),
        f"{arm}_check_action": np.asarray(
            make_policy(params)({"state": jp.asarray(check_obs)}, None)[0]
        ),
    }
    layers = policy["params"]
    for i in range(len(layers)):
        arrays[f"{arm}_hidden_{i}_kernel"] = np.asarray(layers[f"hidden_{i}"]["kernel"])
        arrays[f"{arm}_hidden_{i}_bias"] = np.asarray(layers[f"hidden_{i}"]["bias"])
    return out, arrays


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--teacher", type=Path, required=True)
    p.add_argument("--settings", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    args = p.parse_args()
    import brax

    jax.monitoring.register_event_duration_secs_listener(_on_event)
    settings = json.loads(args.settings.read_text())
    t = dict(np.load(args.teacher))
    teacher, act = make_teacher(t)
    # the teacher must be the driver's expert: same actions on the driver's observations
    teacher_err = float(
        np.abs(np.asarray(act(jp.asarray(t["check_obs"]))) - t["check_action"]).max()
    )
    if teacher_err > 1e-4:
        raise SystemExit(f"teacher does not reproduce the expert's actions (max err {teacher_err})")
    result = {
        "jax": jax.__version__,
        "load_average": [round(x, 2) for x in __import__("os").getloadavg()],
        "brax": brax.__version__,
        "device": str(jax.devices()[0].device_kind),
        "teacher_max_abs_err": teacher_err,
        "arms": {},
    }
    arrays = {}
    for arm in args.arms:
        print(f"[brax] {arm} ...", flush=True)
        res, arr = run_arm(arm, settings, teacher, t["check_obs"])
        result["arms"][arm] = res
        arrays.update(arr)
        print(f"[brax] {arm}: {res}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / "brax_bc_params.npz", **arrays)
    (args.out / "brax_bc.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
