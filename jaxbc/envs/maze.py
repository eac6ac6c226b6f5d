"""``PointMaze-TwoRoutes-v0``: a 2-D point mass in a small grid maze (maze2d-like), pure JAX.

The layout (``#`` wall, ``S`` start, ``G`` goal) is a ring around a central block, so the
start and the goal are separated by the block and there are two equally short routes, left
and right round it (7 cells each)::

    #######
    #..G..#
    #.###.#
    #.###.#
    #..S..#
    #######

* position ``(x, y)`` in cell units: cell ``(row, col)`` covers ``[col, col+1) x [row, row+1)``
  (``y`` grows with the row, downwards in the picture)
* observation: ``(x, y, vx, vy)``, float32 [4] (maze2d's layout)
* action: a force in ``[-1, 1]^2``; ``v' = damping * v + accel * a``, then ``p' = p + v'``
  (top speed ``accel / (1 - damping)``, default 0.2 cells per step; under a cell, so nothing
  tunnels through a wall)
* walls: the move is applied one axis at a time and an axis whose move would enter a wall
  cell is cancelled (its velocity set to 0): the mass slides along walls
* reward: sparse, ``goal_reward`` (+1) on coming within ``goal_radius`` of the goal cell's
  centre, which terminates the episode (success); 0 otherwise
* time limit: ``max_episode_steps`` (default 200), reported as truncation
* start: the ``S`` cell's centre plus ``U(-start_noise, start_noise)`` per axis (default 0:
  the exact centre, where both routes are equally short); ``random_start=True`` starts in a
  uniformly drawn free cell other than the goal (centre +- 0.25)

``info`` carries ``goal`` (1 when the goal is reached at this step) and ``crashed`` (always
False) like the toy task, so :func:`jaxbc.rollout.episode_outcomes` counts successes.
The planner expert lives in :mod:`jaxbc.experts.scripted`; :func:`distance_field` is its
shortest-path table.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbc.envs.core import Box, Env, auto_reset

POINT_MAZE = "PointMaze-TwoRoutes-v0"
MAZES = (POINT_MAZE,)
LAYOUT = (
    "#######",
    "#..G..#",
    "#.###.#",
    "#.###.#",
    "#..S..#",
    "#######",
)
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # (drow, dcol): up, down, left, right
UNREACHABLE = 10_000  # distance of walls and cells cut off from the goal


@dataclass(frozen=True)
class MazeParams:
    """Dynamics, start, goal and time limit; every field is an option of ``make``."""

    max_episode_steps: int = 200
    accel: float = 0.1  # velocity change per step at full force
    damping: float = 0.5  # velocity kept from one step to the next
    goal_radius: float = 0.5  # success within this distance of the goal cell's centre
    goal_reward: float = 1.0
    start_noise: float = 0.0  # half-width of the uniform start offset per axis
    random_start: bool = False  # start in a random free cell instead of S

    def validate(self) -> MazeParams:
        if not isinstance(self.max_episode_steps, int) or self.max_episode_steps < 1:
            raise ValueError(
                f"{POINT_MAZE}: max_episode_steps must be a positive integer, got {self.max_episode_steps!r}"
            )
        if not 0 <= self.damping < 1:
            raise ValueError(f"{POINT_MAZE}: damping must be in [0, 1), got {self.damping}")
        if not 0 < self.accel < 1 - self.damping:
            raise ValueError(
                f"{POINT_MAZE}: accel must be in (0, 1 - damping) = (0, {1 - self.damping:g}) so the "
                f"top speed accel / (1 - damping) stays under one cell per step, got {self.accel}"
            )
        if not 0 < self.goal_radius <= 0.5:
            raise ValueError(
                f"{POINT_MAZE}: goal_radius must be in (0, 0.5], got {self.goal_radius}"
            )
        if not 0 <= self.start_noise < 0.5:
            raise ValueError(
                f"{POINT_MAZE}: start_noise must be in [0, 0.5), got {self.start_noise}"
            )
        if not isinstance(self.random_start, bool):
            raise ValueError(f"{POINT_MAZE}: random_start must be True or False")
        return self


def _find(char: str) -> tuple[int, int]:
    (cell,) = [(r, c) for r, row in enumerate(LAYOUT) for c, ch in enumerate(row) if ch == char]
    return cell


def walls() -> np.ndarray:
    """[rows, cols] bool, True for wall cells."""
    return np.asarray([[ch == "#" for ch in row] for row in LAYOUT])


@functools.lru_cache(maxsize=1)
def distance_field() -> np.ndarray:
    """[rows, cols] int32 shortest-path distance (in cell moves) to the goal cell (BFS);
    :data:`UNREACHABLE` for walls. Computed once, on the host."""
    wall = walls()
    dist = np.full(wall.shape, UNREACHABLE, np.int32)
    goal = _find("G")
    dist[goal] = 0
    frontier = [goal]
    while frontier:
        nxt = []
        for r, c in frontier:
            for dr, dc in MOVES:
                rr, cc = r + dr, c + dc
                if not wall[rr, cc] and dist[rr, cc] == UNREACHABLE:
                    dist[rr, cc] = dist[r, c] + 1
                    nxt.append((rr, cc))
        frontier = nxt
    return dist


def cell_centre(cell: tuple[int, int]) -> np.ndarray:
    """``(x, y)`` of a ``(row, col)`` cell's centre."""
    return np.asarray([cell[1] + 0.5, cell[0] + 0.5], np.float32)


GOAL_CENTRE = cell_centre(_find("G"))
START_CENTRE = cell_centre(_find("S"))


class MazeState(NamedTuple):
    pos: jax.Array  # [2] (x, y)
    vel: jax.Array  # [2]
    t: jax.Array  # steps taken in the current episode


def is_wall(pos: jax.Array) -> jax.Array:
    """Whether position ``(x, y)`` lies in a wall cell (outside the grid counts as wall)."""
    wall = jnp.asarray(walls())
    rows, cols = wall.shape
    r, c = jnp.floor(pos[1]).astype(jnp.int32), jnp.floor(pos[0]).astype(jnp.int32)
    inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
    return ~inside | wall[jnp.clip(r, 0, rows - 1), jnp.clip(c, 0, cols - 1)]


def move(pos: jax.Array, vel: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Apply ``vel`` axis by axis; an axis whose move enters a wall is cancelled (and its
    velocity zeroed), so the mass slides along walls and never enters one."""
    for axis in (0, 1):
        moved = pos.at[axis].add(vel[axis])
        blocked = is_wall(moved)
        pos = jnp.where(blocked, pos, moved)
        vel = vel.at[axis].set(jnp.where(blocked, 0.0, vel[axis]))
    return pos, vel


def make_point_maze(env_id: str = POINT_MAZE, **options: Any) -> Env:
    """Build the env; ``options`` are fields of :class:`MazeParams`."""
    fields = {f.name for f in dataclasses.fields(MazeParams)}
    unknown = set(options) - fields
    if unknown:
        raise ValueError(
            f"{env_id}: unknown option(s) {sorted(unknown)}; valid options are {sorted(fields)}"
        )
    p = MazeParams(**options).validate()
    dist = distance_field()
    free = [(r, c) for r, c in zip(*np.nonzero(dist < UNREACHABLE), strict=True) if dist[r, c] > 0]
    free_centres = jnp.asarray(np.stack([cell_centre((int(r), int(c))) for r, c in free]))
    goal, start = jnp.asarray(GOAL_CENTRE), jnp.asarray(START_CENTRE)

    def observe(state: MazeState) -> jax.Array:
        return jnp.concatenate([state.pos, state.vel]).astype(jnp.float32)

    def reset(key: jax.Array) -> tuple[jax.Array, MazeState]:
        k_cell, k_off = jax.random.split(key)
        if p.random_start:
            centre = free_centres[jax.random.randint(k_cell, (), 0, len(free))]
            pos = centre + jax.random.uniform(k_off, (2,), minval=-0.25, maxval=0.25)
        else:
            pos = start + jax.random.uniform(
                k_off, (2,), minval=-p.start_noise, maxval=p.start_noise
            )
        state = MazeState(
            pos.astype(jnp.float32), jnp.zeros(2, jnp.float32), jnp.zeros((), jnp.int32)
        )
        return observe(state), state

    def step(key: jax.Array, state: MazeState, action: jax.Array):
        force = jnp.clip(action, -1.0, 1.0)
        pos, vel = move(state.pos, p.damping * state.vel + p.accel * force)
        new = MazeState(pos, vel, state.t + 1)
        terminated = jnp.linalg.norm(pos - goal) < p.goal_radius
        truncated = (new.t >= p.max_episode_steps) & ~terminated
        reward = jnp.where(terminated, p.goal_reward, 0.0).astype(jnp.float32)
        final_obs = observe(new)
        obs, new = auto_reset(reset, final_obs, new, key, terminated | truncated)
        info = {
            "final_observation": final_obs,
            "goal": terminated.astype(jnp.int32),
            "crashed": jnp.zeros((), bool),
        }
        return obs, new, reward, terminated, truncated, info

    return Env(
        id=env_id,
        family="maze",
        observation_shape=(4,),
        action_space=Box((-1.0, -1.0), (1.0, 1.0)),
        max_episode_steps=p.max_episode_steps,
        reset_fn=reset,
        step_fn=step,
        options=tuple(sorted(options.items())),
    )


def maze_params_of(env: Env) -> MazeParams:
    """The parameters an env built by :func:`make_point_maze` was made with."""
    if env.id not in MAZES:
        raise ValueError(f"{env.id} is not a point-maze env ({', '.join(MAZES)})")
    return MazeParams(**dict(env.options))
