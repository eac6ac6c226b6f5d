"""PointMaze-TwoRoutes-v0 (a JAX point mass in a grid maze) and its shortest-path planner."""

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbc import envs
from jaxbc.data import collect
from jaxbc.envs.maze import (
    GOAL_CENTRE,
    POINT_MAZE,
    START_CENTRE,
    MazeState,
    distance_field,
    is_wall,
)
from jaxbc.experts.scripted import scripted_expert
from jaxbc.rollout import episode_outcomes

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def env():
    return envs.make(POINT_MAZE)


def at(pos, vel=(0.0, 0.0), t=0):
    f = partial(jnp.asarray, dtype=jnp.float32)
    return MazeState(f(pos), f(vel), jnp.asarray(t, jnp.int32))


def test_registered_and_listed(env):
    assert POINT_MAZE in envs.list_envs()["maze"] and envs.family_of(POINT_MAZE) == "maze"
    assert env.observation_shape == (4,) and env.action_space == envs.Box((-1.0, -1.0), (1.0, 1.0))
    assert env.max_episode_steps == 200 and env == envs.make(POINT_MAZE)
    assert env != envs.make(POINT_MAZE, random_start=True)
    with pytest.raises(ValueError, match="unknown option"):
        envs.make(POINT_MAZE, acel=0.1)
    with pytest.raises(ValueError, match="accel must be in"):
        envs.make(POINT_MAZE, accel=0.6)  # top speed over a cell per step
    out = subprocess.run(
        [sys.executable, "-m", "jaxbc.cli", "envs", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert POINT_MAZE in json.loads(out.stdout.strip().splitlines()[-1])["maze"]


def test_reset_step_shapes_jit_and_vmap(env):
    keys = jax.random.split(jax.random.key(0), 5)
    obs, state = jax.jit(jax.vmap(env.reset))(keys)
    assert obs.shape == (5, 4) and obs.dtype == jnp.float32
    np.testing.assert_allclose(obs[:, :2], np.broadcast_to(START_CENTRE, (5, 2)))
    assert (obs[:, 2:] == 0).all()
    actions = jnp.tile(jnp.asarray([[-1.0, 0.5]]), (5, 1))
    obs2, state2, reward, term, trunc, info = jax.jit(jax.vmap(env.step))(keys, state, actions)
    assert obs2.shape == (5, 4) and reward.shape == term.shape == trunc.shape == (5,)
    np.testing.assert_allclose(obs2[0], [START_CENTRE[0] - 0.1, START_CENTRE[1] + 0.05, -0.1, 0.05])
    assert not term.any() and not trunc.any() and info["final_observation"].shape == (5, 4)
    assert (state2.t == 1).all()
    rnd = jax.vmap(envs.make(POINT_MAZE, random_start=True).reset)(
        jax.random.split(jax.random.key(1), 64)
    )[0]
    assert (
        not np.asarray(jax.vmap(is_wall)(rnd[:, :2])).any()
        and len(np.unique(np.floor(rnd[:, :2]), axis=0)) > 5
    )


def test_walls_block_movement_and_goal_terminates(env):
    step = jax.jit(env.step)
    # in the start cell, pushing down: the wall row below blocks y, x is untouched
    y_wall = START_CENTRE[1] + 0.5
    obs, state, *_ = step(
        jax.random.key(0), at([3.5, y_wall - 0.05], vel=[0.0, 0.19]), jnp.asarray([0.0, 1.0])
    )
    assert float(obs[1]) == pytest.approx(y_wall - 0.05) and float(obs[3]) == 0.0
    # pushing up-left into the central block from below: y blocked, x slides
    obs, *_ = step(jax.random.key(0), at([2.5, 4.05], vel=[0.0, -0.19]), jnp.asarray([-1.0, -1.0]))
    assert float(obs[1]) == pytest.approx(4.05) and float(obs[0]) < 2.5 and float(obs[3]) == 0.0

    # a long push never enters a wall
    def body(s, k):
        _, s, *_ = env.step(k, s, jnp.asarray([0.3, 1.0]))
        return s, s.pos

    _, pos = jax.lax.scan(body, at(START_CENTRE), jax.random.split(jax.random.key(1), 100))
    assert not np.asarray(jax.vmap(is_wall)(pos)).any()
    # reaching the goal: +1, terminated, auto-reset to the start
    obs, state, reward, term, trunc, info = step(
        jax.random.key(0),
        at(GOAL_CENTRE + [0.5, 0.0], vel=[-0.1, 0.0], t=50),
        jnp.asarray([-1.0, 0.0]),
    )
    assert bool(term) and not bool(trunc) and float(reward) == 1.0 and int(info["goal"]) == 1
    np.testing.assert_allclose(obs[:2], START_CENTRE)
    assert int(state.t) == 0
    # nothing happens at the time limit but truncation
    *_, reward, term, trunc, _ = step(jax.random.key(0), at(START_CENTRE, t=199), jnp.zeros(2))
    assert bool(trunc) and not bool(term) and float(reward) == 0.0


def test_distance_field_has_two_equal_routes():
    dist = distance_field()
    start = (int(START_CENTRE[1]), int(START_CENTRE[0]))
    left, right = dist[start[0], start[1] - 1], dist[start[0], start[1] + 1]
    assert dist[start] == 7 and left == right == 6


@pytest.mark.parametrize("options", [{}, {"random_start": True}])
def test_planner_reaches_the_goal(options):
    env = envs.make(POINT_MAZE, **options)
    expert = scripted_expert(POINT_MAZE, **options)
    for det in (True, False):
        run = jax.jit(partial(episode_outcomes, env, expert.policy_fn(det, env)), static_argnums=2)
        out = run(None, jax.random.key(3), 256)
        assert float(out.reached.mean()) >= 0.95 and float(out.lengths.max()) < 100


def test_demonstrations_contain_both_routes(env):
    data = collect(scripted_expert(POINT_MAZE), env, 64, jax.random.key(1))
    assert data.num_episodes == 64 and np.allclose(data.episode_returns, 1.0)
    ep, x = np.asarray(data.episode_id), np.asarray(data.obs[:, 0])
    left = np.asarray([x[ep == e].min() < 2.0 for e in range(64)])
    right = np.asarray([x[ep == e].max() > 5.0 for e in range(64)])
    assert not (left & right).any() and (left | right).all()
    assert 0.2 <= left.mean() <= 0.8
    # both routes start from the same observation: the first action is bimodal
    first = np.asarray(data.action)[np.r_[0, np.flatnonzero(np.diff(ep)) + 1]]
    assert (first[left, 0] < -0.9).all() and (first[~left, 0] > 0.9).all()
    meta = scripted_expert(POINT_MAZE).meta
    assert meta["goal_fraction"] == 1.0 and meta["mean_return"] == 1.0
