"""Constant observation statistics for ``obs_normalization="constant"`` (HaDES's MinAtar and
Brax D=4 presets), per env:

* where the zoo expert was trained with PPO's running observation normaliser (Brax), its
  final statistics. The official HaDES statistics are that too: a PPO run's normaliser after
  training. Its MinAtar files carry the signature: every never-visited cell has variance
  1e-4 / N with N ~ 1e7 observations, what a normaliser started at (mean 0, var 1, count
  1e-4) leaves after a 1e7-step run.
* otherwise (the MinAtar experts train on raw observations), ``--source ppo`` (the default)
  trains PPO again with the zoo expert's config, seed and steps but with the running
  normaliser on (``normalize_obs=True``), and keeps the normaliser's final statistics: the
  official procedure. The policy it trains is discarded.
  ``--source rollouts`` is the cheap alternative: the per-feature mean and variance of
  observations visited by the zoo expert (sampled actions) and by the uniformly random
  policy, equally weighted.

    python benchmarks/obs_stats.py                       # every zoo env the presets use
    python benchmarks/obs_stats.py --env Breakout-MinAtar --out my_stats.npz

Writes ``jaxbc/envs/obs_stats/<env>.npz`` (arrays ``mean``, ``var``) and ``<env>.json`` (the
command, seed, transitions per source, machine) unless ``--out`` names another file.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from jaxbc import envs
from jaxbc.experts import load_expert, train_expert
from jaxbc.experts.expert import Expert
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


def ppo_normalizer_stats(expert: Expert, total_timesteps: int | None) -> tuple[Expert, dict]:
    """Train PPO with ``expert``'s config and seed, the running observation normaliser on,
    for ``total_timesteps`` (default: the expert's own); returns the run and its source."""
    config = dataclasses.replace(
        expert.config,
        normalize_obs=True,
        total_timesteps=total_timesteps or expert.config.total_timesteps,
    )
    run = train_expert(config, seed=int(expert.meta.get("seed", 0)), eval_episodes=1)
    count = float(run.params["obs_stats"].count)
    return run, {"PPO run's observation normaliser (zoo config, normalize_obs=True)": count}


def main(
    env: tuple[str, ...] = PRESET_ENVS,
    source: Literal["ppo", "rollouts"] = "ppo",
    total_timesteps: int | None = None,
    num_envs: int = 16,
    steps: int = 2048,
    seed: int = 0,
    out: Path | None = None,
) -> None:
    """Args:
    env: env ids (zoo experts).
    source: for envs whose zoo expert has no normaliser: ppo, the final statistics of a PPO
        run with the normaliser on (the official procedure); rollouts, zoo expert + random
        rollouts.
    total_timesteps: --source ppo: the run's env steps (default: the zoo expert's).
    num_envs: --source rollouts: parallel envs per source.
    steps: --source rollouts: steps per env and source (auto-resetting episodes).
    seed: --source rollouts: PRNG seed (--source ppo uses the zoo expert's seed).
    out: the .npz to write (one env only); default: the package's statistics file.
    """
    if out is not None and len(env) != 1:
        raise SystemExit("--out takes exactly one --env")
    if total_timesteps is not None and source != "ppo":
        raise SystemExit("--total-timesteps applies to --source ppo")
    for i, env_id in enumerate(env):
        expert = load_expert(env_id)
        trained = expert.params["obs_stats"]
        if float(trained.count) > 1.0:  # the expert's PPO normaliser saw its training data
            mean, var = np.asarray(trained.mean), np.asarray(trained.var)
            sources: dict = {"zoo expert's PPO observation normaliser": float(trained.count)}
            run_seed = int(expert.meta.get("seed", 0))
        elif source == "ppo":
            run, sources = ppo_normalizer_stats(expert, total_timesteps)
            stats = run.params["obs_stats"]
            mean, var = np.asarray(stats.mean), np.asarray(stats.var)
            run_seed = int(run.meta["seed"])
        else:
            obs = visited_obs(env_id, jax.random.key(seed + i), num_envs, steps)
            both = jnp.concatenate([jnp.asarray(o) for o in obs.values()])
            mean, var = np.asarray(both.mean(0)), np.asarray(both.var(0))
            sources = {f"{k} rollouts (observations)": int(v.shape[0]) for k, v in obs.items()}
            run_seed = seed + i
        path = out or envs.obs_stats_path(env_id)
        atomic_write_bytes(path, _npz(mean=mean.astype(np.float32), var=var.astype(np.float32)))
        atomic_write_json(
            Path(path).with_suffix(".json"),
            {
                "env_id": env_id,
                "command": command_line("python benchmarks/obs_stats.py"),
                "seed": run_seed,
                "sources": sources,
                "expert_actions": "sampled",
                "machine": machine_description(),
                "var_min": float(var.min()),
                "var_max": float(var.max()),
            },
        )
        print(f"{env_id}: {sources} -> {path}")


def _npz(**arrays: np.ndarray) -> bytes:
    b = io.BytesIO()
    np.savez(b, **arrays)
    return b.getvalue()


if __name__ == "__main__":
    tyro.cli(main)
