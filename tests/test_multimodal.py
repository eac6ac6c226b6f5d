"""TwoGoals2D-v0 (the multimodal toy task), its scripted expert and the DBC study script."""

import importlib.util
import math
import sys
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbc import envs, studies
from jaxbc.bc import BCConfig, PolicyConfig, make_bc_train
from jaxbc.data import collect
from jaxbc.envs.multimodal import (
    TWO_GOALS,
    TwoGoalsParams,
    TwoGoalsState,
    params_of,
)
from jaxbc.experts.scripted import ScriptedExpert, scripted_expert, two_goals_action
from jaxbc.rollout import episode_outcomes

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def env():
    return envs.make(TWO_GOALS)


@pytest.fixture(scope="module")
def step(env):
    return jax.jit(env.step)


def at(pos, t=0):
    return TwoGoalsState(jnp.asarray(pos, jnp.float32), jnp.asarray(t, jnp.int32))


def test_registered(env):
    assert TWO_GOALS in envs.list_envs()["toy"] and TWO_GOALS in envs.known_env_ids()
    assert envs.family_of(TWO_GOALS) == "toy" and env.family == "toy"
    assert env.observation_shape == (2,) and env.action_space == envs.Box((-1.0, -1.0), (1.0, 1.0))
    assert env.max_episode_steps == 100 and not env.discrete
    with pytest.raises(
        ValueError, match="unknown environment 'TwoGoals3D-v0'.*CartPole-v1.*TwoGoals2D-v0"
    ):
        envs.make("TwoGoals3D-v0")
    with pytest.raises(ValueError, match="unknown option"):
        envs.make(TWO_GOALS, speedd=1.0)
    with pytest.raises(ValueError, match="max_episode_steps"):
        envs.make(TWO_GOALS, max_episode_steps=0)


def test_reset_and_step_deterministic(env, step):
    obs, state = jax.jit(env.reset)(jax.random.key(0))
    obs2, _ = jax.jit(env.reset)(jax.random.key(0))
    assert obs.shape == (2,) and obs.dtype == jnp.float32 and np.array_equal(obs, obs2)
    p = TwoGoalsParams()
    assert abs(float(obs[0]) - p.start_x) <= p.start_x_noise and abs(float(obs[1])) <= p.start_noise
    a = jnp.asarray([0.3, -0.2])
    out1, out2 = step(jax.random.key(1), state, a), step(jax.random.key(1), state, a)
    assert jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.array_equal(x, y)), out1, out2))
    obs1, _, reward, term, trunc, info = out1
    assert np.allclose(obs1, obs + 0.05 * a) and float(reward) == pytest.approx(-0.01)
    assert not term and not trunc and np.array_equal(info["final_observation"], obs1)
    # the speed is capped: a diagonal full action moves `speed`, not speed * sqrt(2)
    obs3 = step(jax.random.key(1), state, jnp.asarray([1.0, 1.0]))[0]
    assert float(jnp.linalg.norm(obs3 - obs)) == pytest.approx(0.05, abs=1e-6)


def test_truncation_and_auto_reset():
    env = envs.make(TWO_GOALS, max_episode_steps=5)
    obs, state = env.reset(jax.random.key(0))

    def body(c, k):
        obs, state = c
        obs, state, r, term, trunc, info = env.step(k, state, jnp.zeros(2))
        return (obs, state), (obs, r, term, trunc, info["final_observation"], state.t)

    _, (obs_t, r, term, trunc, final, t) = jax.jit(
        lambda k: jax.lax.scan(body, (obs, state), jax.random.split(k, 7))
    )(jax.random.key(1))
    assert trunc.tolist() == [False] * 4 + [True, False, False] and not term.any()
    assert t.tolist() == [1, 2, 3, 4, 0, 1, 2]
    assert np.allclose(final[4], obs)  # zero actions: the last observation is the start
    assert not np.array_equal(obs_t[4], final[4])  # auto-reset to a fresh start


def test_goal_and_obstacle_terminate(step):
    right = jnp.asarray([1.0, 0.0])
    for y, goal in ((0.6, 1), (-0.6, -1)):
        obs, state, reward, term, trunc, info = step(jax.random.key(0), at([0.86, y], t=99), right)
        assert bool(term) and not bool(trunc) and float(reward) == 1.0 and int(info["goal"]) == goal
        assert np.allclose(info["final_observation"], [0.91, y]) and float(obs[0]) < -0.9  # reset
        assert int(state.t) == 0
    _, _, reward, term, _, info = step(jax.random.key(0), at([-0.38, 0.0]), right)
    assert bool(term) and float(reward) == -1.0 and bool(info["crashed"]) and int(info["goal"]) == 0


def test_expert_bimodal_and_near_optimal(env):
    expert = scripted_expert(TWO_GOALS)
    out = jax.jit(
        lambda k: episode_outcomes(env, expert.policy_fn(True, env), expert.params, k, 64)
    )(jax.random.key(0))
    assert bool(out.reached.all()) and not bool(out.crashed.any())
    upper = float((out.goal == 1).mean())
    assert 0.3 < upper < 0.7  # both goals, roughly equally often
    # upper bound on the return: the straight line from the nearest start, ignoring the obstacle
    p = TwoGoalsParams()
    min_steps = math.ceil(
        (math.hypot(p.goal_x - p.start_x - p.start_x_noise, p.goal_y) - p.goal_radius) / p.speed
    )
    best = p.goal_reward - p.step_cost * (min_steps - 1)
    assert float(out.returns.mean()) >= 0.85 * best
    meta = expert.meta
    assert meta["mean_return"] == pytest.approx(float(out.returns.mean()), abs=0.02)
    assert meta["random_return"] < -0.9 and meta["goal_fraction"] == 1.0


def test_mean_of_modes_fails(env):
    """Near the decision point one observation is followed by opposite actions; their average
    (what MSE regression converges to) drives into the obstacle."""
    p = params_of(env)

    def mean_policy(params, obs, key):
        flip = jnp.asarray([1.0, -1.0])
        return 0.5 * (two_goals_action(p, obs) + two_goals_action(p, obs * flip))

    out = jax.jit(lambda k: episode_outcomes(env, mean_policy, None, k, 32))(jax.random.key(0))
    assert bool(out.crashed.all()) and not bool(out.reached.any())
    assert float(out.returns.mean()) < scripted_expert(TWO_GOALS).meta["random_return"]
    # the modes really differ at (almost) the same observation
    up = two_goals_action(p, jnp.asarray([-0.5, 1e-4]))
    down = two_goals_action(p, jnp.asarray([-0.5, -1e-4]))
    assert float(up[1]) > 0.5 and float(down[1]) < -0.5 and np.allclose(up[0], down[0])


def test_demonstrations_and_interface(env):
    expert = scripted_expert(TWO_GOALS)
    assert expert.env_id == TWO_GOALS and expert.make_env().id == TWO_GOALS and expert.params == {}
    assert expert.policy_fn(True, env) is expert.policy_fn(True, env)  # cached: jit reuse
    data = collect(expert, env, 16, jax.random.key(3))
    finals = np.asarray(data.next_obs)[np.asarray(data.terminated)]
    assert len(finals) == 16 and (finals[:, 1] > 0).any() and (finals[:, 1] < 0).any()
    a = np.asarray(data.action)
    assert np.abs(a).max() <= 1.0 and np.allclose(np.linalg.norm(a, axis=-1), 1.0, atol=1e-5)
    noisy = expert.policy_fn(False, env)(expert.params, jnp.asarray([-1.0, 0.0]), jax.random.key(0))
    assert noisy.shape == (2,) and not np.allclose(noisy, [1.0, 0.0])
    leaves, tree = jax.tree.flatten(expert)
    assert isinstance(jax.tree.unflatten(tree, leaves), ScriptedExpert)
    with pytest.raises(ValueError, match="no scripted expert for 'CartPole-v1'"):
        scripted_expert("CartPole-v1")


def _study_module():
    spec = importlib.util.spec_from_file_location("dbc_study", ROOT / "benchmarks" / "dbc.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


def test_study_names_missing_expert(tmp_path):
    study = _study_module()
    with pytest.raises(
        SystemExit,
        match=r"(?s)no zoo expert for brax/halfcheetah.*benchmarks/experts.py --envs brax/halfcheetah --zoo",
    ):
        study.check_experts(("brax/halfcheetah", TWO_GOALS), zoo_dir=tmp_path)
    study.check_experts((TWO_GOALS,), zoo_dir=tmp_path)  # the toy task needs no zoo expert


# both variants share these options: a start offset BC can resolve and a goal it can hit
HIDDEN_OPTS = {"start_noise": 0.05, "goal_radius": 0.2}


def test_hidden_mode_observes_abs_y_and_demonstrations_come_from_the_visible_twin():
    hidden = envs.make(TWO_GOALS, hide_mode=True, **HIDDEN_OPTS)
    assert hidden != envs.make(TWO_GOALS, **HIDDEN_OPTS) and params_of(hidden).hide_mode
    obs, _ = hidden.step(jax.random.key(0), at([0.0, -0.8]), jnp.asarray([0.0, -1.0]))[:2]
    assert np.allclose(obs, [0.0, 0.85])  # true y is -0.85
    expert = scripted_expert(TWO_GOALS, hide_mode=True, **HIDDEN_OPTS)
    with pytest.raises(ValueError, match="hide_mode=True.*does not say which goal"):
        expert.policy_fn(True, hidden)
    key = jax.random.key(4)
    demos = collect(expert, hidden, 8, key)
    twin = collect(
        scripted_expert(TWO_GOALS, **HIDDEN_OPTS), envs.make(TWO_GOALS, **HIDDEN_OPTS), 8, key
    )
    assert dict(demos.env_options)["hide_mode"] and demos.size == twin.size
    np.testing.assert_array_equal(demos.action, twin.action)
    np.testing.assert_array_equal(demos.obs[:, 1], np.abs(twin.obs[:, 1]))
    np.testing.assert_array_equal(demos.next_obs[:, 1], np.abs(twin.next_obs[:, 1]))
    assert (twin.obs[:, 1] < -0.3).any() and (twin.obs[:, 1] > 0.3).any()  # both modes
    assert expert.meta["goal_fraction"] == 1.0  # measured on the twin


def test_bc_fails_when_the_mode_is_hidden():
    """The same small MSE BC run reaches a goal in the visible task and (almost) never in the
    hidden-mode one, where the conditional mean of the two routes drives into the obstacle."""
    cfg = BCConfig(policy=PolicyConfig(hidden_sizes=(64, 64)), steps=800, batch_size=128, lr=3e-3)
    reach = {}
    for hide in (False, True):
        env = envs.make(TWO_GOALS, hide_mode=hide, **HIDDEN_OPTS)
        data = collect(
            scripted_expert(TWO_GOALS, hide_mode=hide, **HIDDEN_OPTS), env, 32, jax.random.key(0)
        )
        res = jax.jit(make_bc_train(cfg))(jax.random.key(1), data)
        outcomes = partial(episode_outcomes, env, res.policy_fn(True))
        out = jax.jit(outcomes, static_argnums=2)(res.params, jax.random.key(2), 100)
        reach[hide] = float(out.reached.mean())
    assert reach[False] >= 0.8 and reach[True] <= 0.2, reach


def test_dbc_study_paired_difference_reads_the_ci():
    """The multimodal protocol's reading (jaxbc.studies.paired_ci) follows the paired
    bootstrap CI: a consistent gain is supported, a gain that flips sign between seeds is
    not, a consistent loss is the opposite, a constant one has a point CI."""
    pd = studies.paired_ci
    up = pd([0.9, 0.8, 1.0, 0.95, 0.85], [0.1, 0.2, 0.0, 0.15, 0.05])
    assert up["ci"][0] > 0 and up["reading"] == "supported"
    mixed = pd([0.9, 0.1, 0.8, 0.2], [0.1, 0.9, 0.2, 0.8])
    assert mixed["ci"][0] < 0 < mixed["ci"][1] and "not supported" in mixed["reading"]
    down = pd([0.0, 0.1, 0.0], [0.5, 0.6, 0.7])
    assert down["ci"][1] < 0 and down["reading"] == "opposite"
    same = pd([1.0, 1.0], [0.0, 0.0])
    assert same["ci"] == [1.0, 1.0] and same["mean"] == 1.0
