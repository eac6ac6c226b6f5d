"""Scripted experts for the toy tasks and the point maze, usable wherever the code takes a zoo :class:`Expert`.

They offer what collection, DAgger and the studies use: ``env_id``, ``make_env()``,
``policy_fn(deterministic, env) -> (params, obs, key) -> action``, ``params`` and ``meta``
(``mean_return``, ``random_return``, ... measured on first access). Nothing is stored in the
zoo: ``scripted_expert(env_id)`` builds one.

The ``TwoGoals2D-v0`` expert is bimodal but Markov: the sign of the current ``y`` picks the
goal (upper if ``y >= 0``), so the tiny random y offset of the start state decides the mode
of an episode and the choice stays consistent as ``|y|`` grows. Its path: straight ahead
along the centre line (the two modes share these states) to a decision point just in front
of the obstacle, a steep sidestep to a waypoint beside the obstacle, then the goal on that
side. At the decision point the same observation (up to the tiny offset) is followed by
opposite sidesteps whose average drives into the obstacle within a few steps.

With ``hide_mode=True`` the env observes ``(x, |y|)``, so no policy of the observation can
demonstrate both modes: the expert acts on the true position. Its demonstrations
(:meth:`ScriptedExpert.demonstrations`, which :func:`jaxbc.data.collect` uses) are collected on
the visible twin (same dynamics and seeds) and their observations hidden afterwards; its
``policy_fn`` (DAgger labels, rollouts) refuses, and ``meta`` is measured on the twin.

The ``PointMaze-TwoRoutes-v0`` expert is a planner on the maze's BFS distance field
(:func:`maze_action`): it heads for a neighbour cell nearer the goal; at the start cell both
routes tie and a coin flip from its key picks one, after which the mass's offset keeps it on
that route. It reaches the goal in every episode (fixed or random starts), in 32 steps from
the start.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbc import envs
from jaxbc.data.dataset import Dataset, collect_policy
from jaxbc.envs import Env
from jaxbc.envs.maze import (
    GOAL_CENTRE,
    MAZES,
    MOVES,
    MazeParams,
    distance_field,
    maze_params_of,
)
from jaxbc.envs.multimodal import TOY, TwoGoalsParams, params_of
from jaxbc.rollout import PolicyFn, episode_outcomes, random_return

DECISION_GAP = 0.15  # the sidestep starts this far in front of the obstacle
WAYPOINT = (-0.2, 0.2)  # waypoint x, and its clearance above/below the obstacle
SWITCH = 0.02  # head for the goal once within this x-distance of the waypoint
SAMPLED_NOISE = 0.1  # std of the action noise of the non-deterministic policy
TIE_BAND = 0.05  # maze planner: tied next cells closer than this in preference are a coin flip


def two_goals_action(p: TwoGoalsParams, obs: jax.Array) -> jax.Array:
    """The deterministic expert action (unit norm) at position ``obs``."""
    x, y = obs[0], obs[1]
    side = jnp.where(y >= 0, 1.0, -1.0)
    waypoint = jnp.stack([jnp.float32(WAYPOINT[0]), side * (p.obstacle_radius + WAYPOINT[1])])
    goal = jnp.stack([jnp.float32(p.goal_x), side * p.goal_y])
    target = jnp.where(x >= WAYPOINT[0] - SWITCH, goal, waypoint)
    direction = target - obs
    direction = direction / jnp.maximum(jnp.linalg.norm(direction), 1e-6)
    straight = jnp.asarray([1.0, 0.0])
    before_decision = x < -(p.obstacle_radius + DECISION_GAP)
    return jnp.where(before_decision, straight, direction).astype(jnp.float32)


@functools.lru_cache(maxsize=32)
def _two_goals_policy(p: TwoGoalsParams, deterministic: bool) -> PolicyFn:
    # cached: the same function object for the same env, so jitted rollouts are reused
    def policy(params, obs, key):
        del params
        a = two_goals_action(p, obs)
        if not deterministic:
            a = a + SAMPLED_NOISE * jax.random.normal(key, a.shape)
        return jnp.clip(a, -1.0, 1.0)

    return policy


def _visible(env_options: tuple) -> tuple:
    return tuple((k, v) for k, v in env_options if k != "hide_mode")


def maze_action(p: MazeParams, obs: jax.Array, key: jax.Array) -> jax.Array:
    """The planner's force at observation ``(x, y, vx, vy)``: head for the centre of a
    neighbour cell one step nearer the goal on the BFS :func:`distance_field` (the goal's
    centre inside the goal cell) at the env's top speed, with the force that reaches that
    velocity in one step (clipped to the box).

    Where two neighbours are equally near the goal (the start cell of
    ``PointMaze-TwoRoutes-v0``), the one on the side the mass is already offset to wins;
    within ``TIE_BAND`` of the symmetry line a coin flip from ``key`` decides. Started on
    the line, the first step is a fair coin (the episode's route) and the offset it makes
    keeps every later step on that route, so the expert stays a function of the observation
    (DAgger can label with it) and both routes appear in its demonstrations."""
    pos, vel = obs[:2], obs[2:]
    dist = jnp.asarray(distance_field())
    moves = jnp.asarray(MOVES)  # (drow, dcol)
    cell = jnp.floor(pos[::-1]).astype(jnp.int32)  # (row, col)
    here = dist[cell[0], cell[1]]
    nbr = dist[cell[0] + moves[:, 0], cell[1] + moves[:, 1]]
    direction = moves[:, ::-1].astype(jnp.float32)  # (dx, dy) of each move
    offset = pos - (cell[::-1] + 0.5)
    preference = direction @ offset + TIE_BAND * jax.random.uniform(key, (len(MOVES),))
    best = jnp.argmax(jnp.where(nbr < here, preference, -jnp.inf))
    target = jnp.where(here == 0, jnp.asarray(GOAL_CENTRE), cell[::-1] + 0.5 + direction[best])
    heading = target - pos
    top_speed = p.accel / (1.0 - p.damping)
    want = top_speed * heading / jnp.maximum(jnp.linalg.norm(heading), 1e-6)
    return jnp.clip((want - p.damping * vel) / p.accel, -1.0, 1.0).astype(jnp.float32)


@functools.lru_cache(maxsize=32)
def _maze_policy(p: MazeParams, deterministic: bool) -> PolicyFn:
    def policy(params, obs, key):
        del params
        k_tie, k_noise = jax.random.split(key)
        a = maze_action(p, obs, k_tie)
        if not deterministic:
            a = a + SAMPLED_NOISE * jax.random.normal(k_noise, a.shape)
        return jnp.clip(a, -1.0, 1.0)

    return policy


@functools.lru_cache(maxsize=32)
def _measured_meta(env_id: str, env_options: tuple, episodes: int) -> dict:
    expert = ScriptedExpert(env_id, _visible(env_options))
    env = expert.make_env()
    out = jax.jit(lambda k: episode_outcomes(env, expert.policy_fn(True, env), None, k, episodes))(
        jax.random.key(0)
    )
    rnd = random_return(env, jax.random.key(1), episodes)
    return {
        "source": "scripted",
        "eval_episodes": episodes,
        "mean_return": float(out.returns.mean()),
        "std_return": float(out.returns.std()),
        "mean_length": float(out.lengths.mean()),
        "goal_fraction": float(out.reached.mean()),
        "upper_goal_fraction": float((out.goal == 1).mean()),
        "random_return": float(rnd.mean_return),
    }


@dataclass(frozen=True, eq=False)
class ScriptedExpert:
    """A hand-written deterministic controller with the :class:`Expert` interface."""

    env_id: str
    env_options: tuple = ()
    params: dict = field(default_factory=dict)  # no parameters; kept for the interface
    eval_episodes: int = 100

    def make_env(self) -> Env:
        return envs.make(self.env_id, **dict(self.env_options))

    def policy_fn(self, deterministic: bool = True, env: Env | None = None) -> PolicyFn:
        """``(params, obs, key) -> action`` for ONE observation; sampled adds Gaussian noise."""
        env = env or self.make_env()
        if env.id != self.env_id:
            raise ValueError(f"scripted expert for {self.env_id} cannot act in {env.id}")
        if env.id in MAZES:
            return _maze_policy(maze_params_of(env), bool(deterministic))
        p = params_of(env)
        if p.hide_mode:
            raise ValueError(
                f"{env.id} with hide_mode=True: the observation (x, |y|) does not say which goal "
                "the expert heads for, so it cannot act from it; collect its demonstrations with "
                "jaxbc.data.collect (ScriptedExpert.demonstrations: the visible twin, hidden after)"
            )
        return _two_goals_policy(p, bool(deterministic))

    def demonstrations(
        self, env: Env, num_episodes: int, key: jax.Array, deterministic: bool = True
    ) -> Dataset:
        """Demonstrations on ``env``; a hidden-mode env gets the visible twin's episodes (the
        same seeds and dynamics) with ``(x, |y|)`` observations and its own env options."""
        hidden = env.id in TOY and params_of(env).hide_mode
        twin = envs.make(env.id, **dict(_visible(env.options))) if hidden else env
        source = f"expert:{self.env_id}:{'deterministic' if deterministic else 'sampled'}"
        data = collect_policy(
            twin, self.policy_fn(deterministic, twin), self.params, num_episodes, key, source=source
        )
        if not hidden:
            return data
        p = params_of(env)
        hide = (
            np.asarray(p.observe(jnp.asarray(data.obs))),
            np.asarray(p.observe(jnp.asarray(data.next_obs))),
        )
        return dataclasses.replace(
            data, obs=hide[0], next_obs=hide[1], env_options=tuple(env.options)
        )

    def act(self, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
        return self.policy_fn(deterministic)(self.params, obs, key)

    @property
    def meta(self) -> dict:
        """Returns of the deterministic expert and of a random policy (measured once, cached)."""
        return dict(_measured_meta(self.env_id, tuple(self.env_options), self.eval_episodes))


# a pytree like Expert (no leaves), so it can be passed into jitted functions such as DAgger's
jax.tree_util.register_pytree_node(
    ScriptedExpert,
    lambda e: ((e.params,), (e.env_id, e.env_options, e.eval_episodes)),
    lambda aux, leaves: ScriptedExpert(aux[0], aux[1], leaves[0], aux[2]),
)


def scripted_env_ids() -> tuple[str, ...]:
    return TOY + MAZES


def scripted_expert(env_id: str, **options: Any) -> ScriptedExpert:
    """The scripted expert of a toy task or maze; ``options`` are the env's options."""
    if env_id not in scripted_env_ids():
        raise ValueError(
            f"no scripted expert for {env_id!r}; scripted experts exist for "
            f"{', '.join(scripted_env_ids())} "
            f"(trained experts: jaxbc.experts.load_expert)"
        )
    envs.make(env_id, **options)  # validates the options
    return ScriptedExpert(env_id, tuple(sorted(options.items())))
