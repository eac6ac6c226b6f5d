import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbc import envs
from jaxbc.envs import Box, Env
from jaxbc.rollout import (
    evaluate,
    random_policy,
    random_return,
    rollout,
    scaled_return,
    window_return_fn,
)


def counter_env(episode_len: int = 3) -> Env:
    """obs = [t]; reward = the action; terminates after ``episode_len`` steps."""

    def reset(key):
        return jnp.zeros((1,), jnp.float32), jnp.zeros((), jnp.int32)

    def step(key, t, action):
        t = t + 1
        term = t >= episode_len
        final = jnp.array([t], jnp.float32)
        nt = jnp.where(term, 0, t)
        return (
            jnp.array([nt], jnp.float32),
            nt,
            action[0],
            term,
            jnp.zeros((), bool),
            {"final_observation": final},
        )

    return Env("Counter", "test", (1,), Box((0.0,), (10.0,)), episode_len, reset, step)


def constant_policy(params, obs, key):
    return jnp.full((1,), params, jnp.float32)


def test_rollout_masks_and_returns_match_hand_computation():
    env = counter_env(3)
    res = rollout(env, constant_policy, 2.0, jax.random.key(0), num_envs=2, num_steps=10)
    tr = res.trajectory
    assert (
        tr.obs.shape == (10, 2, 1) and tr.action.shape == (10, 2, 1) and tr.reward.shape == (10, 2)
    )
    # episodes end at t = 2, 5, 8; each has return 3 * 2 = 6
    ends = np.zeros((10, 2), bool)
    ends[[2, 5, 8]] = True
    np.testing.assert_array_equal(res.episode_end, ends)
    np.testing.assert_allclose(res.episode_return, np.where(ends, 6.0, 0.0))
    np.testing.assert_array_equal(res.episode_length, np.where(ends, 3, 0))
    # step 9 belongs to an unfinished episode
    np.testing.assert_array_equal(tr.mask[:, 0], [True] * 9 + [False])
    np.testing.assert_array_equal(tr.obs[:4, 0, 0], [0, 1, 2, 0])
    np.testing.assert_array_equal(tr.next_obs[:4, 0, 0], [1, 2, 3, 1])
    assert float(res.mean_return()) == 6.0 and int(res.num_episodes) == 6


def test_evaluate_counts_first_complete_episode():
    env = counter_env(4)
    ev = evaluate(env, constant_policy, 1.5, jax.random.key(0), num_episodes=5)
    np.testing.assert_allclose(ev.returns, [6.0] * 5)
    np.testing.assert_array_equal(ev.lengths, [4] * 5)
    assert float(ev.std_return) == 0.0


def test_window_return_averages_every_finished_episode():
    # counter env: episodes of 3 steps with return 3 * action; 10 steps hold 3 per env
    env = counter_env(3)
    assert float(window_return_fn(env, constant_policy, 2, 10)(2.0, jax.random.key(0))) == 6.0
    # no episode ends within 2 steps: the running episodes' return so far (2 * 2.0)
    assert float(window_return_fn(env, constant_policy, 2, 2)(2.0, jax.random.key(0))) == 4.0
    # on a stochastic env and policy it is rollout()'s mean over finished episodes, same keys
    cartpole = envs.make("CartPole-v1")

    def coin(params, obs, key):
        return jax.random.bernoulli(key, params).astype(jnp.int32)

    key = jax.random.key(3)
    expected = rollout(cartpole, coin, 0.5, key, num_envs=3, num_steps=200).mean_return()
    got = jax.jit(window_return_fn(cartpole, coin, 3, 200))(0.5, key)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_evaluate_jits_and_random_baseline_on_cartpole():
    env = envs.make("CartPole-v1")
    rnd = random_return(env, jax.random.key(0), 64)
    assert 10 < float(rnd.mean_return) < 40  # random CartPole lasts ~22 steps
    assert rnd.returns.shape == (64,)
    assert float(scaled_return(rnd.mean_return, rnd.mean_return, 500.0)) == 0.0


def test_window_return_last_is_each_envs_last_finished_episode():
    """``episodes="last"``: per env the return of the last episode that ended in the window
    (0 where none ended), averaged over envs; ``"recent"``: that value at every step,
    averaged over steps too; ``"all"``: the mean over every ended episode."""
    env = envs.make("CartPole-v1")
    pol = random_policy(env.action_space)
    key = jax.random.key(3)
    for steps in (15, 60):  # at 15 steps some random CartPole envs have not finished yet
        res = rollout(env, pol, None, key, 6, steps)
        done, ret = np.asarray(res.episode_end), np.asarray(res.episode_return)
        last = [
            ret[np.nonzero(done[:, e])[0][-1], e] if done[:, e].any() else 0.0 for e in range(6)
        ]
        got = window_return_fn(env, pol, 6, steps, "last")(None, key)
        np.testing.assert_allclose(float(got), np.mean(last), rtol=1e-6)
        # "recent": at each step, each env's most recently finished episode (0 before any)
        recent = np.zeros((steps, 6))
        for e in range(6):
            current = 0.0
            for t in range(steps):
                current = ret[t, e] if done[t, e] else current
                recent[t, e] = current
        got_recent = window_return_fn(env, pol, 6, steps, "recent")(None, key)
        np.testing.assert_allclose(float(got_recent), recent.mean(), rtol=1e-5)
        if done.any():
            got_all = window_return_fn(env, pol, 6, steps, "all")(None, key)
            np.testing.assert_allclose(float(got_all), ret[done].mean(), rtol=1e-6)
    with pytest.raises(ValueError, match="episodes must be one of"):
        window_return_fn(env, pol, 6, 10, "first")
