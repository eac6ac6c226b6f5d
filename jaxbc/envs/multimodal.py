"""``TwoGoals2D-v0``: a multimodal navigation task where regressing the mean action fails.

A point agent starts at the left of a circular obstacle (a pit) centred on the origin and
has to reach one of two goals placed symmetrically above and below the obstacle's centre
line. Both goals are equally good, so demonstrations split into two modes; the average of
the two modes' actions points straight at the obstacle, which ends the episode with a
penalty. This is the situation where BC's MSE regression (the conditional mean) breaks and
a model of the joint (state, action) density, as in Diffusion-BC, can help.

* observation: the position ``(x, y)``, float32 [2]; with ``hide_mode=True`` it is
  ``(x, |y|)``: mirror-image states look alike, so the observation never tells which goal an
  episode heads for and MSE BC must average the two routes (into the obstacle). Its scripted
  demonstrations come from the visible twin (:mod:`jaxbc.experts.scripted`).
* action: a 2-D velocity command in ``[-1, 1]^2``; its norm is capped at 1, and the agent
  moves ``speed`` times it (default 0.05 per step)
* reward: ``goal_reward`` (+1) on reaching a goal (terminates), ``crash_reward`` (-1) on
  entering the obstacle (terminates), ``-step_cost`` (-0.01) on every other step
* time limit: ``max_episode_steps`` (default 100), reported as truncation
* start: ``(start_x + U(-start_x_noise, start_x_noise), U(-start_noise, start_noise))``; the
  tiny y offset is all that tells the two modes apart near the start (its sign picks the
  goal of the scripted expert in :mod:`jaxbc.experts.scripted`)

``info`` also carries ``goal`` (+1 upper, -1 lower, 0 none: the goal reached at this step)
and ``crashed`` so evaluations can count goal reaches (:func:`jaxbc.rollout.episode_outcomes`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxbc.envs.core import Box, Env, auto_reset

TWO_GOALS = "TwoGoals2D-v0"
TOY = (TWO_GOALS,)


@dataclass(frozen=True)
class TwoGoalsParams:
    """Geometry, rewards and time limit; every field is an option of ``make``."""

    max_episode_steps: int = 100
    speed: float = 0.05  # distance moved per step at full action norm
    start_x: float = -1.0
    start_x_noise: float = 0.02
    start_noise: float = 0.001  # half-width of the start's y offset (its sign picks the mode)
    goal_x: float = 1.0
    goal_y: float = 0.6  # goals at (goal_x, +-goal_y)
    goal_radius: float = 0.1
    obstacle_radius: float = 0.35  # disc at the origin
    arena: float = 1.2  # positions are clipped to [-arena, arena]^2 (walls, no termination)
    goal_reward: float = 1.0
    crash_reward: float = -1.0
    step_cost: float = 0.01
    hide_mode: bool = False  # observe (x, |y|): the observation does not reveal the mode

    def validate(self) -> TwoGoalsParams:
        if not isinstance(self.max_episode_steps, int) or self.max_episode_steps < 1:
            raise ValueError(
                f"{TWO_GOALS}: max_episode_steps must be a positive integer, got {self.max_episode_steps!r}"
            )
        for name in ("speed", "goal_radius", "obstacle_radius", "arena", "goal_y"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{TWO_GOALS}: {name} must be > 0, got {getattr(self, name)}")
        if self.goal_y - self.goal_radius <= 0:
            raise ValueError(
                f"{TWO_GOALS}: the goals overlap the centre line (goal_y {self.goal_y} <= goal_radius {self.goal_radius})"
            )
        if min(self.start_noise, self.start_x_noise, self.step_cost) < 0:
            raise ValueError(f"{TWO_GOALS}: start_noise, start_x_noise and step_cost must be >= 0")
        if not isinstance(self.hide_mode, bool):
            raise ValueError(
                f"{TWO_GOALS}: hide_mode must be True or False, got {self.hide_mode!r}"
            )
        return self

    def observe(self, pos: jax.Array) -> jax.Array:
        """The observation of position ``pos``: ``(x, |y|)`` if the mode is hidden."""
        return pos.at[..., 1].set(jnp.abs(pos[..., 1])) if self.hide_mode else pos

    @property
    def goals(self) -> jax.Array:
        """[2, 2]: the upper goal, then the lower one."""
        return jnp.asarray([[self.goal_x, self.goal_y], [self.goal_x, -self.goal_y]], jnp.float32)


class TwoGoalsState(NamedTuple):
    pos: jax.Array  # [2]
    t: jax.Array  # steps taken in the current episode


def capped_velocity(action: jax.Array) -> jax.Array:
    """Clip to the box, then cap the norm at 1 so no direction is faster than another."""
    a = jnp.clip(action, -1.0, 1.0)
    return a / jnp.maximum(1.0, jnp.linalg.norm(a))


def make_two_goals(env_id: str = TWO_GOALS, **options: Any) -> Env:
    """Build the env; ``options`` are fields of :class:`TwoGoalsParams`."""
    fields = {f.name for f in dataclasses.fields(TwoGoalsParams)}
    unknown = set(options) - fields
    if unknown:
        raise ValueError(
            f"{env_id}: unknown option(s) {sorted(unknown)}; valid options are {sorted(fields)}"
        )
    p = TwoGoalsParams(**options).validate()
    space = Box((-1.0, -1.0), (1.0, 1.0))

    def reset(key: jax.Array) -> tuple[jax.Array, TwoGoalsState]:
        kx, ky = jax.random.split(key)
        x = p.start_x + jax.random.uniform(kx, (), minval=-p.start_x_noise, maxval=p.start_x_noise)
        y = jax.random.uniform(ky, (), minval=-p.start_noise, maxval=p.start_noise)
        pos = jnp.stack([x, y]).astype(jnp.float32)
        return p.observe(pos), TwoGoalsState(pos, jnp.zeros((), jnp.int32))

    def step(key: jax.Array, state: TwoGoalsState, action: jax.Array):
        pos = jnp.clip(state.pos + p.speed * capped_velocity(action), -p.arena, p.arena)
        t = state.t + 1
        reached = jnp.linalg.norm(pos - p.goals, axis=-1) < p.goal_radius  # [2]
        at_goal = reached.any()
        crashed = jnp.linalg.norm(pos) < p.obstacle_radius
        terminated = at_goal | crashed
        truncated = (t >= p.max_episode_steps) & ~terminated
        reward = jnp.where(
            at_goal, p.goal_reward, jnp.where(crashed, p.crash_reward, -p.step_cost)
        ).astype(jnp.float32)
        goal = jnp.where(reached[0], 1, jnp.where(reached[1], -1, 0)).astype(jnp.int32)
        final_obs = p.observe(pos)
        obs, new_state = auto_reset(
            reset, final_obs, TwoGoalsState(pos, t), key, terminated | truncated
        )
        info = {"final_observation": final_obs, "goal": goal, "crashed": crashed}
        return obs, new_state, reward, terminated, truncated, info

    return Env(
        id=env_id,
        family="toy",
        observation_shape=(2,),
        action_space=space,
        max_episode_steps=p.max_episode_steps,
        reset_fn=reset,
        step_fn=step,
        options=tuple(sorted(options.items())),
    )


def params_of(env: Env) -> TwoGoalsParams:
    """The parameters an env built by :func:`make_two_goals` was made with."""
    if env.id not in TOY:
        raise ValueError(f"{env.id} is not a two-goals env ({', '.join(TOY)})")
    return TwoGoalsParams(**dict(env.options))
