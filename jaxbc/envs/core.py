"""One functional environment type for every family (gymnax semantics).

An :class:`Env` is a frozen bundle of two pure functions plus static space information::

    obs, state = env.reset(key)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action)

``step`` auto-resets: when an episode ends, the returned ``obs``/``state`` already belong
to the next episode and ``info["final_observation"]`` holds the last observation of the
ended one. ``truncated`` is True only for time-limit ends that are not also terminations,
so ``terminated`` alone decides whether to bootstrap a value target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# The vmap axis name of a batch of envs: every rollout vmaps reset/step over it, so wrappers
# whose state is shared by the batch (running observation statistics) can reduce over it.
ENV_AXIS = "envs"


@dataclass(frozen=True)
class Discrete:
    """``n`` actions, encoded as int32 scalars in ``[0, n)``."""

    n: int

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    @property
    def dtype(self) -> Any:
        return jnp.int32

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, (), 0, self.n, dtype=jnp.int32)

    def to_dict(self) -> dict:
        return {"type": "discrete", "n": int(self.n)}


@dataclass(frozen=True)
class Box:
    """Continuous actions in ``[low, high]`` (per dimension), float32 vectors."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.low),)

    @property
    def dtype(self) -> Any:
        return jnp.float32

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.uniform(
            key, self.shape, minval=jnp.asarray(self.low), maxval=jnp.asarray(self.high)
        )

    def clip(self, action: jax.Array) -> jax.Array:
        return jnp.clip(action, jnp.asarray(self.low), jnp.asarray(self.high))

    def to_dict(self) -> dict:
        return {
            "type": "box",
            "low": list(map(float, self.low)),
            "high": list(map(float, self.high)),
        }


ActionSpace = Discrete | Box


def space_from_dict(d: dict) -> ActionSpace:
    """Inverse of ``space.to_dict()`` (used by dataset and expert files)."""
    if d.get("type") == "discrete":
        return Discrete(int(d["n"]))
    if d.get("type") == "box":
        return Box(tuple(float(x) for x in d["low"]), tuple(float(x) for x in d["high"]))
    raise ValueError(f"unknown action space description: {d!r}")


@dataclass(frozen=True, eq=False)
class Env:
    """A functional environment, usable as a static argument of ``jit``.

    Envs built by :func:`jaxbc.envs.make` compare and hash by ``cache_key`` (their id and
    options), so two equal ones share compiled programs; hand-built ones by identity."""

    id: str
    family: str
    observation_shape: tuple[int, ...]
    action_space: ActionSpace
    max_episode_steps: int
    reset_fn: Callable[[jax.Array], tuple[jax.Array, Any]] = field(repr=False)
    step_fn: Callable[..., tuple] = field(repr=False)
    options: tuple[tuple[str, Any], ...] = ()
    cache_key: tuple | None = field(default=None, repr=False)

    def __eq__(self, other: object) -> bool:
        if self.cache_key is None or not isinstance(other, Env):
            return self is other
        return self.cache_key == other.cache_key

    def __hash__(self) -> int:
        return id(self) if self.cache_key is None else hash(self.cache_key)

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]:
        return self.reset_fn(key)

    def step(self, key: jax.Array, state: Any, action: jax.Array):
        return self.step_fn(key, state, action)

    @property
    def discrete(self) -> bool:
        return isinstance(self.action_space, Discrete)

    @property
    def action_shape(self) -> tuple[int, ...]:
        return self.action_space.shape

    def check_action(self, action: jax.Array) -> None:
        """Raise a clear error if ``action`` does not fit this env's action space."""
        if tuple(np.shape(action)) != self.action_shape:
            raise ValueError(
                f"{self.id}: action shape {tuple(np.shape(action))} does not match the action "
                f"space {self.action_space} (expected shape {self.action_shape})"
            )

    def spec(self) -> dict:
        """JSON-able description stored in datasets and experts to detect mismatches."""
        return {
            "env_id": self.id,
            "observation_shape": list(self.observation_shape),
            "action_space": self.action_space.to_dict(),
        }


def auto_reset(
    reset_fn: Callable[[jax.Array], tuple[jax.Array, Any]],
    obs: jax.Array,
    state: Any,
    key: jax.Array,
    done: jax.Array,
) -> tuple[jax.Array, Any]:
    """Replace (obs, state) by a fresh reset where ``done``; shared by wrappers without one."""
    reset_obs, reset_state = reset_fn(key)
    state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, state)
    obs = jnp.where(done, reset_obs, obs)
    return obs, state
