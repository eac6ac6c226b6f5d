"""``make(env_id)``: gymnax (classic control, MinAtar), Brax, the toy tasks and the point maze
behind one :class:`Env`."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbc.envs.core import Box, Discrete, Env, auto_reset
from jaxbc.envs.maze import MAZES, make_point_maze
from jaxbc.envs.multimodal import TOY, make_two_goals
from jaxbc.envs.normalization import normalize_observations

CLASSIC_CONTROL = (
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "Pendulum-v1",
    "MountainCarContinuous-v0",
)
MINATAR = (
    "Asterix-MinAtar",
    "Breakout-MinAtar",
    "Freeway-MinAtar",
    "Seaquest-MinAtar",
    "SpaceInvaders-MinAtar",
)
BRAX = tuple(
    f"brax/{name}"
    for name in (
        "ant",
        "halfcheetah",
        "hopper",
        "humanoid",
        "walker2d",
        "inverted_pendulum",
        "inverted_double_pendulum",
        "reacher",
        "swimmer",
    )
)
BRAX_BACKENDS = ("positional", "spring", "generalized", "mjx")
DEFAULT_BRAX_BACKEND = "positional"
# where a Brax env goes when an episode ends: a fresh reset, or back to the env's first start
# state (what brax's AutoResetWrapper, and so the official HaDES evaluation, does)
BRAX_RESTARTS = ("fresh", "first")


def list_envs() -> dict[str, tuple[str, ...]]:
    """Known env ids per family."""
    return {"classic": CLASSIC_CONTROL, "minatar": MINATAR, "brax": BRAX, "toy": TOY, "maze": MAZES}


def known_env_ids() -> tuple[str, ...]:
    return CLASSIC_CONTROL + MINATAR + BRAX + TOY + MAZES


def family_of(env_id: str) -> str:
    for family, ids in list_envs().items():
        if env_id in ids:
            return family
    raise ValueError(
        f"unknown environment {env_id!r}; known environments: {', '.join(known_env_ids())}"
    )


def make(env_id: str, **options: Any) -> Env:
    """Build an environment by id.

    Options: for gymnax envs, any field of the env's params (e.g. ``max_steps_in_episode``);
    for Brax envs, ``backend`` (default ``"positional"``), ``episode_length`` (default 1000)
    and keyword arguments of the Brax env constructor; for the toy tasks, any field of their
    params (``jaxbc.envs.multimodal.TwoGoalsParams``); for the point maze, any field of
    ``jaxbc.envs.maze.MazeParams``. Every env also takes ``obs_normalization`` (``"none"``,
    ``"constant"``, ``"running"``) and, with ``"constant"``, ``obs_stats`` (a ``.npz`` of
    ``mean`` and ``var``; default: the package's statistics for ``env_id``): see
    :mod:`jaxbc.envs.normalization`.
    """
    family = family_of(env_id)
    norm = options.pop("obs_normalization", "none")
    stats_file = options.pop("obs_stats", None)
    if family == "brax":
        env = _make_brax(env_id, **options)
    elif family == "toy":
        env = make_two_goals(env_id, **options)
    elif family == "maze":
        env = make_point_maze(env_id, **options)
    else:
        env = _make_gymnax(env_id, family, **options)
    env = normalize_observations(env, norm, stats_file)
    key = ("jaxbc.envs.make", env_id, env.options)
    try:
        hash(key)
    except TypeError:  # an unhashable option value: fall back to identity
        return env
    return dataclasses.replace(env, cache_key=key)


def _make_gymnax(env_id: str, family: str, **options: Any) -> Env:
    import gymnax

    genv, params = gymnax.make(env_id)
    fields = {f.name for f in dataclasses.fields(params)}
    unknown = set(options) - fields
    if unknown:
        raise ValueError(
            f"{env_id}: unknown option(s) {sorted(unknown)}; valid options are {sorted(fields)}"
        )
    params = params.replace(**options)
    gspace = genv.action_space(params)
    space: Discrete | Box
    if hasattr(gspace, "n"):
        space = Discrete(int(gspace.n))
    else:
        n = int(gspace.shape[0]) if gspace.shape else 1
        # numpy, not jnp: make() may be called while tracing (bounds must stay static)
        low = np.broadcast_to(np.asarray(gspace.low, np.float32), (n,))
        high = np.broadcast_to(np.asarray(gspace.high, np.float32), (n,))
        space = Box(tuple(float(x) for x in low), tuple(float(x) for x in high))
    obs_shape = tuple(int(d) for d in genv.observation_space(params).shape)
    scalar_action = isinstance(space, Box) and not gspace.shape

    def reset(key):
        obs, state = genv.reset(key, params)
        return obs.astype(jnp.float32), state

    def step(key, state, action):
        if isinstance(space, Box):
            action = space.clip(action)
            if scalar_action:
                action = action[0]
        obs, state, reward, terminated, truncated, info = genv.step(key, state, action, params)
        terminated = jnp.asarray(terminated, bool)
        truncated = jnp.asarray(truncated, bool) & ~terminated
        info = {"final_observation": info["final_observation"].astype(jnp.float32)}
        return (
            obs.astype(jnp.float32),
            state,
            reward.astype(jnp.float32),
            terminated,
            truncated,
            info,
        )

    return Env(
        id=env_id,
        family=family,
        observation_shape=obs_shape,
        action_space=space,
        max_episode_steps=int(params.max_steps_in_episode),
        reset_fn=reset,
        step_fn=step,
        options=tuple(sorted(options.items())),
    )


class BraxEnvState(NamedTuple):
    inner: Any  # brax.envs.base.State
    t: jax.Array  # steps taken in the current episode
    first: Any = None  # the env's first start state (restart="first"), else None


def _make_brax(
    env_id: str,
    backend: str = DEFAULT_BRAX_BACKEND,
    episode_length: int = 1000,
    restart: str = "fresh",
    **kwargs: Any,
) -> Env:
    if backend not in BRAX_BACKENDS:
        raise ValueError(f"{env_id}: unknown Brax backend {backend!r}; choose from {BRAX_BACKENDS}")
    if restart not in BRAX_RESTARTS:
        raise ValueError(f"{env_id}: unknown restart {restart!r}; choose from {BRAX_RESTARTS}")
    if episode_length < 1:
        raise ValueError(f"{env_id}: episode_length must be >= 1, got {episode_length}")
    import contextlib
    import sys
    import warnings

    # Brax prints import chatter on stdout; keep stdout clean for `--json` output.
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        from brax import envs as brax_envs

        benv = brax_envs.get_environment(env_id.split("/", 1)[1], backend=backend, **kwargs)
    act_dim = int(benv.action_size)
    space = Box((-1.0,) * act_dim, (1.0,) * act_dim)

    def reset(key):
        inner = benv.reset(key)
        first = inner if restart == "first" else None
        return inner.obs, BraxEnvState(inner, jnp.zeros((), jnp.int32), first)

    def restart_first(obs, state, done):
        state = state._replace(
            inner=jax.tree.map(lambda f, s: jnp.where(done, f, s), state.first, state.inner),
            t=jnp.where(done, 0, state.t),
        )
        return jnp.where(done, state.first.obs, obs), state

    def step(key, state, action):
        inner = benv.step(state.inner, space.clip(action))
        t = state.t + 1
        terminated = inner.done > 0.5
        truncated = (t >= episode_length) & ~terminated
        done = terminated | truncated
        final_obs = inner.obs
        ended = BraxEnvState(inner, t, state.first)
        if restart == "first":
            obs, new_state = restart_first(final_obs, ended, done)
        else:
            obs, new_state = auto_reset(reset, final_obs, ended, key, done)
        return obs, new_state, inner.reward, terminated, truncated, {"final_observation": final_obs}

    return Env(
        id=env_id,
        family="brax",
        observation_shape=(int(benv.observation_size),),
        action_space=space,
        max_episode_steps=int(episode_length),
        reset_fn=reset,
        step_fn=step,
        options=tuple(
            sorted(
                {
                    "backend": backend,
                    "episode_length": episode_length,
                    # "fresh" is left out so envs made before the option keep their options
                    **({"restart": restart} if restart != "fresh" else {}),
                    **kwargs,
                }.items()
            )
        ),
    )
