"""Observation normalisation as an env wrapper: the policy, and anything trained in the env's
observation space (HaDES's synthetic states), sees z-scored observations.

Three modes, the values of the env option ``obs_normalization``:

* ``"none"``: raw observations.
* ``"constant"``: ``(obs - mean) / sqrt(var + 1e-8)`` with fixed per-env moments, read from
  the package's ``obs_stats/<env>.npz`` (made by ``python benchmarks/obs_stats.py``) or from
  the file named by the env option ``obs_stats``.
* ``"running"``: the same z-scoring with moments that start at (mean 0, var 1, count 1e-4)
  on reset and are updated with every observation the batch of envs emits (reset and after
  each step, auto-resets included), shared by the whole batch: the vectorised running
  normaliser of gym and purejaxrl. The statistics live in each env's state and are reduced
  over the batch's vmap axis :data:`jaxbc.envs.ENV_AXIS`, so these envs must be stepped under
  ``jax.vmap(..., axis_name=ENV_AXIS)`` (every jaxbc rollout does).

``info["final_observation"]`` is normalised like the observations. No clipping.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbc.envs.core import ENV_AXIS, Env
from jaxbc.normalize import RunningStats, standardize

OBS_NORMALIZATIONS = ("none", "constant", "running")
STATS_DIR = Path(__file__).parent / "obs_stats"


def obs_stats_path(env_id: str) -> Path:
    """Where the package keeps ``env_id``'s constant observation statistics."""
    return STATS_DIR / f"{env_id.replace('/', '-')}.npz"


def load_obs_stats(
    env_id: str, observation_shape: tuple[int, ...], path: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, var)`` for ``constant`` normalisation, checked against the env's shape."""
    file = Path(path) if path is not None else obs_stats_path(env_id)
    if not file.exists():
        where = "" if path is not None else " (the package has none for this env)"
        raise ValueError(
            f"{env_id}: obs_normalization='constant' needs observation statistics, but "
            f"{str(file)!r} does not exist{where}; make them with `python benchmarks/obs_stats.py "
            f"--env {env_id} --out FILE` and pass obs_stats=FILE"
        )
    with np.load(file) as f:
        if "mean" not in f or "var" not in f:
            raise ValueError(f"{file}: observation statistics need arrays 'mean' and 'var'")
        mean, var = np.asarray(f["mean"], np.float32), np.asarray(f["var"], np.float32)
    for name, arr in (("mean", mean), ("var", var)):
        if arr.shape != tuple(observation_shape):
            raise ValueError(
                f"{file}: observation statistics {name!r} have shape {arr.shape}, but "
                f"{env_id}'s observations have shape {tuple(observation_shape)}"
            )
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(var)) and np.all(var >= 0)):
        raise ValueError(f"{file}: observation statistics must be finite with var >= 0")
    return mean, var


class NormalizedState(NamedTuple):
    inner: Any  # the wrapped env's state
    stats: RunningStats  # moments of every observation the batch emitted so far


def _batch_update(stats: RunningStats, obs: jax.Array) -> RunningStats:
    """Merge one observation per env of the batch (the vmap axis :data:`ENV_AXIS`)."""
    b_mean = jax.lax.pmean(obs, ENV_AXIS)
    b_var = jax.lax.pmean(jnp.square(obs - b_mean), ENV_AXIS)
    return stats.merge(b_mean, b_var, jax.lax.psum(jnp.float32(1.0), ENV_AXIS))


def normalize_observations(env: Env, mode: str, stats_file: str | None = None) -> Env:
    """``env`` with ``mode`` observation normalisation (see the module docstring)."""
    if mode not in OBS_NORMALIZATIONS:
        raise ValueError(
            f"{env.id}: unknown obs_normalization {mode!r}; choose from {OBS_NORMALIZATIONS}"
        )
    if stats_file is not None and mode != "constant":
        raise ValueError(
            f"{env.id}: obs_stats applies to obs_normalization='constant' only, not {mode!r}"
        )
    if mode == "none":
        return env
    options = dict(env.options, obs_normalization=mode)
    if stats_file is not None:
        options["obs_stats"] = str(stats_file)
    if mode == "constant":
        mean, var = load_obs_stats(env.id, env.observation_shape, stats_file)

        def z(x):
            return standardize(x, mean, var)

        def reset(key):
            obs, state = env.reset(key)
            return z(obs), state

        def step(key, state, action):
            obs, state, reward, term, trunc, info = env.step(key, state, action)
            info = dict(info, final_observation=z(info["final_observation"]))
            return z(obs), state, reward, term, trunc, info

    else:

        def reset(key):
            obs, inner = env.reset(key)
            stats = _batch_update(RunningStats.create(tuple(env.observation_shape)), obs)
            return stats.normalize(obs, clip=None), NormalizedState(inner, stats)

        def step(key, state, action):
            obs, inner, reward, term, trunc, info = env.step(key, state.inner, action)
            stats = _batch_update(state.stats, obs)
            final = stats.normalize(info["final_observation"], clip=None)
            info = dict(info, final_observation=final)
            return (
                stats.normalize(obs, clip=None),
                NormalizedState(inner, stats),
                reward,
                term,
                trunc,
                info,
            )

    return dataclasses.replace(
        env, reset_fn=reset, step_fn=step, options=tuple(sorted(options.items()))
    )


def env_state(state: Any) -> Any:
    """The wrapped env's own state under a running normaliser's (else ``state`` itself)."""
    return state.inner if isinstance(state, NormalizedState) else state


def one_env(fn: Any) -> Any:
    """``env.reset`` or ``env.step`` for ONE env, run as a batch of one on :data:`ENV_AXIS`
    (wrappers that reduce over the batch then see a batch of one)."""
    batched = jax.vmap(fn, axis_name=ENV_AXIS)

    def call(*args: Any) -> Any:
        out = batched(*jax.tree.map(lambda x: x[None], args))
        return jax.tree.map(lambda x: x[0], out)

    return call
