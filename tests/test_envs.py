import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbc import envs
from jaxbc.envs import Box, Discrete


def _conformance(env_id: str, **options):
    env = envs.make(env_id, **options)
    key = jax.random.key(0)
    reset = jax.jit(env.reset)
    step = jax.jit(env.step)
    obs, state = reset(key)
    assert obs.shape == env.observation_shape and obs.dtype == jnp.float32
    # determinism under the same key
    obs2, _ = reset(key)
    np.testing.assert_array_equal(obs, obs2)
    action = env.action_space.sample(jax.random.key(1))
    assert action.shape == env.action_space.shape
    out1 = step(jax.random.key(2), state, action)
    out2 = step(jax.random.key(2), state, action)
    jax.tree.map(np.testing.assert_array_equal, out1, out2)
    obs, state, reward, term, trunc, info = out1
    assert obs.shape == env.observation_shape
    assert reward.shape == () and reward.dtype == jnp.float32
    assert term.dtype == jnp.bool_ and trunc.dtype == jnp.bool_
    assert info["final_observation"].shape == env.observation_shape
    return env


def _run_until_done(env, max_steps):
    """Step a random policy until the first episode end; check the auto-reset contract."""
    step = jax.jit(env.step)
    obs, state = jax.jit(env.reset)(jax.random.key(3))
    for t in range(max_steps):
        k1, k2 = jax.random.split(jax.random.key(100 + t))
        prev = obs
        obs, state, reward, term, trunc, info = step(k2, state, env.action_space.sample(k1))
        assert not (bool(term) and bool(trunc)), "truncated must exclude terminated"
        if bool(term) or bool(trunc):
            return t + 1, prev, obs, info
        np.testing.assert_array_equal(info["final_observation"], obs)
    raise AssertionError("no episode ended")


def test_classic_control_discrete():
    env = _conformance("CartPole-v1")
    assert env.action_space == Discrete(2) and env.max_episode_steps == 500
    length, _, obs_after, info = _run_until_done(env, 500)
    # after the end, obs is a fresh reset (CartPole resets near 0), final obs is the failed state
    assert np.abs(obs_after).max() < 0.06
    assert np.abs(info["final_observation"]).max() > np.abs(obs_after).max()


def test_classic_control_continuous_truncates():
    env = _conformance("Pendulum-v1")
    assert isinstance(env.action_space, Box) and env.action_space.shape == (1,)
    length, *_ = _run_until_done(env, 300)
    assert length == env.max_episode_steps == 200  # Pendulum only ends by time limit


def test_minatar():
    env = _conformance("Breakout-MinAtar")
    assert env.observation_shape == (10, 10, 4) and env.action_space == Discrete(3)
    _run_until_done(env, 2000)


def test_env_options_override_params():
    env = envs.make("CartPole-v1", max_steps_in_episode=7)
    assert env.max_episode_steps == 7


@pytest.mark.slow
def test_brax():
    env = _conformance("brax/inverted_pendulum")
    assert env.family == "brax" and env.max_episode_steps == 1000
    short = envs.make("brax/hopper", episode_length=5)
    length, *_ = _run_until_done(short, 10)
    assert length <= 5


def test_brax_restart_first_returns_each_env_to_its_first_start_state():
    """``restart="first"`` (brax's AutoResetWrapper, the official HaDES evaluation) starts every
    episode of an env where its first began; the default draws a fresh start each time."""
    for restart, same in (("first", True), ("fresh", False)):
        env = envs.make("brax/inverted_pendulum", episode_length=3, restart=restart)
        step = jax.jit(env.step)
        start, state = jax.jit(env.reset)(jax.random.key(3))
        obs = start
        for t in range(1, 7):
            k1, k2 = jax.random.split(jax.random.key(t))
            obs, state, _, term, trunc, _ = step(k2, state, env.action_space.sample(k1))
            assert bool(term | trunc) == (t % 3 == 0)
            if t % 3 == 0:  # a new episode began
                assert np.array_equal(obs, start) == same, (restart, t)
                assert int(state.t) == 0
    assert envs.make("brax/hopper", restart="first").options != envs.make("brax/hopper").options
    with pytest.raises(ValueError, match="unknown restart 'never'"):
        envs.make("brax/hopper", restart="never")


def test_brax_env_construction_is_cheap_and_typed():
    env = envs.make("brax/hopper")
    assert env.observation_shape == (11,) and env.action_space == Box((-1.0,) * 3, (1.0,) * 3)


def test_unknown_env_lists_known_ids():
    with pytest.raises(ValueError, match="known environments: .*CartPole-v1.*brax/ant"):
        envs.make("CartPol-v1")


def test_unknown_option_and_backend():
    with pytest.raises(ValueError, match="unknown option"):
        envs.make("CartPole-v1", gravity_typo=1.0)
    with pytest.raises(ValueError, match="unknown Brax backend"):
        envs.make("brax/ant", backend="warp")


def test_list_envs_families():
    fams = envs.list_envs()
    assert {"CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCarContinuous-v0"} <= set(
        fams["classic"]
    )
    assert len(fams["minatar"]) == 5 and "brax/walker2d" in fams["brax"]
