"""Observation normalisation: the env wrapper's three modes, HaDES in the normalised space,
and a distilled dataset that trains and evaluates in that space through the CLI."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbc import envs
from jaxbc.bc import PolicyConfig, load_policy
from jaxbc.cli import main as cli_main
from jaxbc.data import load_dataset, save_dataset
from jaxbc.hades import (
    HadesConfig,
    distilled_dataset,
    hades_preset,
    make_hades,
    make_strategy,
    solution_template,
)
from jaxbc.normalize import RunningStats
from jaxbc.rollout import evaluate, random_policy, rollout

SHORT = (("max_steps_in_episode", 30),)


def _stats_file(tmp_path, mean, var, name="stats.npz"):
    path = tmp_path / name
    np.savez(path, mean=np.asarray(mean, np.float32), var=np.asarray(var, np.float32))
    return str(path)


def _random_obs(env, key, num_envs=5, steps=40):
    return rollout(env, random_policy(env.action_space), None, key, num_envs, steps).trajectory.obs


def test_running_mode_is_the_vectorised_running_normaliser():
    """Each observation is z-scored with the moments of every observation the batch has
    emitted so far, itself included: reset (stats from mean 0, var 1, count 1e-4), then one
    merge per step of the batch's new observations (auto-resets included)."""
    raw_env = envs.make("CartPole-v1", max_steps_in_episode=30)
    norm_env = envs.make("CartPole-v1", max_steps_in_episode=30, obs_normalization="running")
    key = jax.random.key(0)
    raw = np.asarray(_random_obs(raw_env, key))  # same keys: same actions, same raw states
    seen = np.asarray(_random_obs(norm_env, key))
    stats = RunningStats.create((4,))
    expected = []
    for t in range(raw.shape[0]):
        stats = stats.update(jnp.asarray(raw[t]))  # the [E, 4] batch of step t
        expected.append(np.asarray(stats.normalize(jnp.asarray(raw[t]), clip=None)))
    np.testing.assert_allclose(seen, np.stack(expected), rtol=1e-4, atol=1e-4)
    assert abs(seen[-1].mean()) < 3 and not np.allclose(seen, raw)


def test_constant_mode_uses_the_given_moments_and_final_observations_too(tmp_path):
    mean, var = [0.5, -1.0, 0.1, 2.0], [4.0, 0.25, 1.0, 9.0]
    path = _stats_file(tmp_path, mean, var)
    raw_env = envs.make("CartPole-v1", max_steps_in_episode=30)
    env = envs.make(
        "CartPole-v1", max_steps_in_episode=30, obs_normalization="constant", obs_stats=path
    )
    assert dict(env.options)["obs_normalization"] == "constant"
    assert dict(env.options)["obs_stats"] == path
    key = jax.random.key(1)
    a = rollout(raw_env, random_policy(raw_env.action_space), None, key, 3, 40).trajectory
    b = rollout(env, random_policy(env.action_space), None, key, 3, 40).trajectory
    z = lambda x: (np.asarray(x) - mean) / np.sqrt(np.asarray(var) + 1e-8)  # noqa: E731
    np.testing.assert_allclose(b.obs, z(a.obs), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(b.next_obs, z(a.next_obs), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(b.reward, a.reward)


def test_package_statistics_exist_for_the_presets_that_use_them():
    for env_id in ("Breakout-MinAtar", "SpaceInvaders-MinAtar", "Asterix-MinAtar"):
        cfg = hades_preset(env_id)
        assert cfg.obs_normalization == "constant"
        env = cfg.make_env()
        mean, var = envs.load_obs_stats(env_id, env.observation_shape)
        assert mean.shape == env.observation_shape and (var >= 0).all()
        meta = json.loads(envs.obs_stats_path(env_id).with_suffix(".json").read_text())
        assert meta["command"].startswith("python benchmarks/obs_stats.py")
        obs = np.asarray(_random_obs(env, jax.random.key(2), 2, 20))
        assert np.isfinite(obs).all()


def test_bad_normalisation_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown obs_normalization 'zscore'"):
        envs.make("CartPole-v1", obs_normalization="zscore")
    with pytest.raises(ValueError, match="unknown HadesConfig.obs_normalization 'zscore'"):
        HadesConfig(obs_normalization="zscore")  # type: ignore[arg-type]
    bad = _stats_file(tmp_path, np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match=r"'mean' have shape \(3,\).*shape \(4,\)"):
        envs.make("CartPole-v1", obs_normalization="constant", obs_stats=bad)
    with pytest.raises(ValueError, match="needs observation statistics.*does not exist"):
        envs.make("CartPole-v1", obs_normalization="constant")  # the package has none
    with pytest.raises(ValueError, match="obs_stats applies to obs_normalization='constant'"):
        envs.make("CartPole-v1", obs_normalization="running", obs_stats=bad)
    negative = _stats_file(tmp_path, np.zeros(4), -np.ones(4), "neg.npz")
    with pytest.raises(ValueError, match="var >= 0"):
        envs.make("CartPole-v1", obs_normalization="constant", obs_stats=negative)
    with pytest.raises(ValueError, match="set HadesConfig.obs_normalization"):
        HadesConfig(env_options=(("obs_normalization", "running"),))


@pytest.mark.parametrize("mode", ["none", "constant", "running"])
def test_distilled_dataset_trains_and_evaluates_in_its_space_through_the_cli(
    tmp_path, capsys, mode
):
    options = SHORT
    if mode == "constant":
        options += (
            ("obs_stats", _stats_file(tmp_path, [0.1, 0.0, -0.05, 0.2], [0.01, 0.3, 0.02, 0.5])),
        )
    cfg = HadesConfig(
        env_id="CartPole-v1",
        env_options=options,
        dataset_size=4,
        inner_steps=10,
        num_envs=2,
        policy=PolicyConfig(hidden_sizes=(8, 8), torso="mlp", tanh_bounded=False),
        obs_normalization=mode,
    )
    h = make_hades(cfg, make_strategy("SNES", 8, solution_template(cfg), sigma=0.5))
    assert dict(h.env.options).get("obs_normalization", "none") == mode
    state, _ = h.run(jax.random.key(0), 2)
    ds = distilled_dataset(h, state, "best")
    path = save_dataset(ds, tmp_path / "distilled.npz")
    assert envs.make(ds.env_id, **dict(load_dataset(path).env_options)) == h.env

    def cli(*argv):
        cli_main([*argv, "--json"])
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    trained = cli(
        "bc", "--dataset", str(path), "--out", str(tmp_path / "pol"), "--eval-episodes", "2"
    )
    assert "error" not in trained, trained
    pol = load_policy(tmp_path / "pol")
    assert pol.make_env() == h.env  # the policy acts in the dataset's space
    # the recipe adds no z-scoring of its own: the net sees the env's (normalised)
    # observations, as in HaDES's inner loop and fitness rollouts
    assert pol.config.normalize_obs is False
    np.testing.assert_array_equal(pol.params["obs_mean"], 0.0)
    np.testing.assert_array_equal(pol.params["obs_std"], 1.0)
    ev = cli("evaluate", "--policy", str(tmp_path / "pol"), "--episodes", "3", "--seed", "4")
    ours = evaluate(h.env, pol.policy_fn(), pol.params, jax.random.key(4), 3)
    assert ev["mean_return"] == pytest.approx(float(ours.mean_return), rel=1e-6)
