import jax
import numpy as np
import pytest

from jaxbc.experts import PPOConfig, load_expert, preset, train_expert
from jaxbc.experts.ppo import make_train
from jaxbc.rollout import evaluate


def test_ppo_solves_cartpole(tmp_path):
    """The CartPole preset (500k steps) reaches >= 475 under deterministic evaluation."""
    expert = train_expert(
        preset("CartPole-v1"), seed=1, out=tmp_path / "cp", eval_episodes=20, progress=False
    )
    assert expert.meta["mean_return"] >= 475.0
    loaded = load_expert(tmp_path / "cp")
    env = loaded.make_env()
    ev = evaluate(env, loaded.policy_fn(), loaded.params, jax.random.key(3), 20)
    assert float(ev.mean_return) >= 475.0


def test_make_train_vmaps_over_seeds():
    cfg = PPOConfig(
        env_id="CartPole-v1",
        total_timesteps=4 * 8 * 16,
        num_envs=4,
        num_steps=16,
        num_minibatches=2,
    )
    train = jax.jit(jax.vmap(make_train(cfg)))
    state, metrics = train(jax.random.split(jax.random.key(0), 3))
    assert metrics["pg_loss"].shape == (3, cfg.num_updates)
    p = jax.tree.leaves(state.train_state.params)[0]
    assert p.shape[0] == 3 and not np.allclose(p[0], p[1])  # different seeds, different nets


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "Breakout-MinAtar"])
def test_ppo_continuous_and_image_obs_smoke(env_id):
    cfg = preset(
        env_id,
        total_timesteps=2 * 8 * 32,
        num_envs=8,
        num_steps=32,
        num_minibatches=2,
        hidden_sizes=(32, 32),
    )
    state, metrics = jax.jit(make_train(cfg))(jax.random.key(0))
    for k in ("pg_loss", "v_loss", "entropy"):
        assert np.isfinite(np.asarray(metrics[k])).all()


def test_checkpoint_resume_matches_uninterrupted(tmp_path):
    cfg = PPOConfig(
        env_id="CartPole-v1",
        total_timesteps=6 * 4 * 16,
        num_envs=4,
        num_steps=16,
        num_minibatches=2,
    )
    full = train_expert(
        cfg, seed=0, eval_episodes=2, num_chunks=3, progress=False, checkpoint_dir=tmp_path / "a"
    )
    # simulate a kill after chunk 2: drop the newest checkpoint and resume from the one before
    ckpts = sorted((tmp_path / "a").glob("step_*"))
    assert len(ckpts) == 2
    import shutil

    shutil.rmtree(ckpts[-1])
    resumed = train_expert(
        cfg,
        seed=0,
        eval_episodes=2,
        num_chunks=3,
        progress=False,
        checkpoint_dir=tmp_path / "a",
        resume=True,
    )
    jax.tree.map(np.testing.assert_array_equal, full.params, resumed.params)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="divisible"):
        PPOConfig(num_envs=3, num_steps=5, num_minibatches=4).validate()
    with pytest.raises(ValueError, match="unknown environment"):
        preset("NotAnEnv-v0")
