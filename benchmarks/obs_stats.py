"""Constant observation statistics for ``obs_normalization="constant"`` (HaDES's MinAtar and
Brax D=4 presets), per env:

* where the zoo expert was trained with PPO's running observation normaliser (Brax), its
  final statistics: the official HaDES statistics are that too (a PPO run's normaliser
  after training, ~1e7 steps for MinAtar, 5e7 for Brax);
* otherwise (the MinAtar experts train on raw observations) the per-feature mean and
  variance of observations visited by the zoo expert (sampled actions) and by the uniformly
  random policy, equally weighted.

    python benchmarks/obs_stats.py                       # every zoo env the presets use
    python benchmarks/obs_stats.py --env Breakout-MinAtar --out my_stats.npz

Writes ``jaxbc/envs/obs_stats/<env>.npz`` (arrays ``mean``, ``var``) and ``<env>.json`` (the
command, seed, transitions per source, machine) unless ``--out`` names another file.
"""

from __future__ import annotations

import io
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from jaxbc import envs
from jaxbc.experts import load_expert
from jaxbc.io import atomic_write_bytes, atomic_write_json, command_line, machine_description
from jaxbc.rollout import random_policy, rollout

PRESET_ENVS = (
    "Asterix-MinAtar",
    "Breakout-MinAtar",
    "Freeway-MinAtar",
    "SpaceInvaders-MinAtar",
    "brax/hopper",
    "brax/walker2d",
    "brax/halfcheetah",
    "brax/ant",
)


def visited_obs(env_id: str, key: jax.Array, num_envs: int, steps: int) -> dict[str, np.ndarray]:
    """``num_envs x steps`` raw observations from the zoo expert and from random play."""
    env = envs.make(env_id)
    expert = load_expert(env_id)
    k_exp, k_rnd = jax.random.split(key)
    sources = {
        "expert": (expert.policy_fn(False, env), expert.params, k_exp),
        "random": (random_policy(env.action_space), None, k_rnd),
    }
    return {
        name: np.asarray(
            rollout(env, fn, params, k, num_envs, steps).trajectory.obs.reshape(
                -1, *env.observation_shape
            )
        )
        for name, (fn, params, k) in sources.items()
    }


def main(
    env: tuple[str, ...] = PRESET_ENVS,
    num_envs: int = 16,
    steps: int = 2048,
    seed: int = 0,
    out: Path | None = None,
) -> None:
    """Args:
    env: env ids (zoo experts).
    num_envs: parallel envs per source.
    steps: steps per env and source (auto-resetting episodes).
    seed: PRNG seed.
    out: the .npz to write (one env only); default: the package's statistics file.
    """
    if out is not None and len(env) != 1:
        raise SystemExit("--out takes exactly one --env")
    for i, env_id in enumerate(env):
        expert = load_expert(env_id)
        trained = expert.params["obs_stats"]
        if float(trained.count) > 1.0:  # the expert's PPO normaliser saw its training data
            mean, var = np.asarray(trained.mean), np.asarray(trained.var)
            source: dict = {"zoo expert's PPO observation normaliser": float(trained.count)}
        else:
            obs = visited_obs(env_id, jax.random.key(seed + i), num_envs, steps)
            both = jnp.concatenate([jnp.asarray(o) for o in obs.values()])
            mean, var = np.asarray(both.mean(0)), np.asarray(both.var(0))
            source = {f"{k} rollouts (observations)": int(v.shape[0]) for k, v in obs.items()}
        path = out or envs.obs_stats_path(env_id)
        atomic_write_bytes(path, _npz(mean=mean.astype(np.float32), var=var.astype(np.float32)))
        atomic_write_json(
            Path(path).with_suffix(".json"),
            {
                "env_id": env_id,
                "command": command_line("python benchmarks/obs_stats.py"),
                "seed": seed + i,
                "sources": source,
                "expert_actions": "sampled",
                "machine": machine_description(),
                "var_min": float(var.min()),
                "var_max": float(var.max()),
            },
        )
        print(f"{env_id}: {source} -> {path}")


def _npz(**arrays: np.ndarray) -> bytes:
    b = io.BytesIO()
    np.savez(b, **arrays)
    return b.getvalue()


if __name__ == "__main__":
    tyro.cli(main)
