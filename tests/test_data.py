import jax
import numpy as np
import pytest

from jaxbc import envs
from jaxbc.data import DatasetError, collect, load_dataset, normalization_stats, save_dataset
from jaxbc.experts import load_expert
from jaxbc.io import resumable_timed


@pytest.fixture(scope="module")
def cartpole():
    expert = load_expert("CartPole-v1")
    env = expert.make_env()
    return expert, env, collect(expert, env, 3, jax.random.key(0))


def test_collect_fields_and_episode_structure(cartpole):
    expert, env, ds = cartpole
    assert ds.num_episodes == 3 and ds.size == 1500  # the expert balances for 500 steps
    np.testing.assert_array_equal(np.bincount(ds.episode_id), [500, 500, 500])
    assert ds.obs.shape == (1500, 4) and ds.action.dtype == np.int32
    # within an episode, next_obs of step t is obs of step t+1
    np.testing.assert_allclose(ds.next_obs[:499], ds.obs[1:500])
    assert ds.truncated.sum() == 3 and not ds.terminated.any()
    np.testing.assert_allclose(ds.episode_returns, [500.0] * 3)
    # the recorded actions are the expert's
    acts = jax.vmap(lambda o: expert.act(o, jax.random.key(0)))(ds.obs)
    np.testing.assert_array_equal(acts, ds.action)


def test_collect_continuous_and_minatar():
    env = envs.make("Pendulum-v1", max_steps_in_episode=20)
    from jaxbc.data import collect_policy
    from jaxbc.rollout import random_policy

    ds = collect_policy(env, random_policy(env.action_space), None, 2, jax.random.key(1))
    assert ds.size == 40 and ds.action.shape == (40, 1) and ds.action.dtype == np.float32
    assert (np.abs(ds.action) <= 2.0).all()
    env = envs.make("Breakout-MinAtar", max_steps_in_episode=30)
    ds = collect_policy(env, random_policy(env.action_space), None, 2, jax.random.key(1))
    assert ds.obs.shape[1:] == (10, 10, 4)


def test_round_trip(cartpole, tmp_path):
    _, env, ds = cartpole
    path = save_dataset(ds, tmp_path / "d.npz")
    back = load_dataset(path, env)
    for k in (
        "obs",
        "action",
        "reward",
        "next_obs",
        "terminated",
        "truncated",
        "episode_id",
        "episode_returns",
    ):
        np.testing.assert_array_equal(getattr(back, k), getattr(ds, k))
    assert back.env_id == "CartPole-v1" and back.action_space == env.action_space
    assert back.first_episodes(2).size == 1000


def test_normalization_stats(cartpole):
    _, _, ds = cartpole
    st = normalization_stats(ds)
    np.testing.assert_allclose(st.obs_mean, ds.obs.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(st.obs_std, ds.obs.std(0), rtol=1e-4)
    z = (ds.obs - st.obs_mean) / st.obs_std
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)


def _save_raw(ds, path, **changes):
    """Write a file with some arrays replaced, bypassing save-time validation."""
    import io
    import json

    meta = {
        "format": "jaxbc-dataset",
        "format_version": 1,
        "env_id": ds.env_id,
        "observation_shape": list(ds.observation_shape),
        "action_space": ds.action_space.to_dict(),
    }
    arrays = {
        k: np.asarray(getattr(ds, k))
        for k in (
            "obs",
            "action",
            "reward",
            "next_obs",
            "terminated",
            "truncated",
            "episode_id",
            "episode_returns",
        )
    }
    meta.update(changes.pop("meta", {}))
    arrays.update(changes)
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.asarray(json.dumps(meta)), **arrays)
    path.write_bytes(buf.getvalue())
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        (lambda ds: {"obs": ds.obs[:, :3]}, "obs has shape"),
        (lambda ds: {"action": ds.action.astype(np.float32)}, "discrete actions must be integers"),
        (lambda ds: {"action": ds.action + 5}, "actions outside"),
        (
            lambda ds: {
                "reward": np.where(np.arange(ds.size) == 7, np.nan, ds.reward).astype(np.float32)
            },
            "NaN",
        ),
        (
            lambda ds: {
                "obs": np.where(np.arange(ds.size)[:, None] == 3, np.inf, ds.obs).astype(np.float32)
            },
            "NaN/inf",
        ),
        (lambda ds: {"terminated": ds.terminated.astype(np.float32)}, "terminated has dtype"),
        (lambda ds: {"meta": {"format_version": 99}}, "format"),
    ],
)
def test_bad_files_give_clear_errors(cartpole, tmp_path, changes, message):
    _, _, ds = cartpole
    path = _save_raw(ds, tmp_path / "bad.npz", **changes(ds))
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def test_dataset_from_another_env(cartpole, tmp_path):
    _, _, ds = cartpole
    path = save_dataset(ds, tmp_path / "d.npz")
    with pytest.raises(DatasetError, match="collected on 'CartPole-v1', not on 'Acrobot-v1'"):
        load_dataset(path, envs.make("Acrobot-v1"))
    with pytest.raises(DatasetError, match="not on 'Acrobot-v1'"):
        load_dataset(path, "Acrobot-v1")


def test_truncated_and_missing_files(cartpole, tmp_path):
    _, _, ds = cartpole
    path = save_dataset(ds, tmp_path / "d.npz")
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        load_dataset(tmp_path / "cut.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(tmp_path / "nope.npz")


def test_expert_env_mismatch_on_collect(cartpole):
    expert, _, _ = cartpole
    with pytest.raises(DatasetError, match="trained on 'CartPole-v1'"):
        collect(expert, envs.make("Acrobot-v1"), 1, jax.random.key(0))


def test_resumable_timed_reuses_only_results_made_with_equal_settings(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"rows": [len(calls)]}

    part = tmp_path / "parts" / "env.json"
    first, reused = resumable_timed(part, {"steps": (1, 2)}, compute, resume=True)
    assert not reused and first["rows"] == [1] and first["wall_time_s"] >= 0.0 and part.exists()
    again, reused = resumable_timed(
        part, {"steps": (1, 2)}, compute, resume=True
    )  # tuples saved as lists
    assert reused and again == first and len(calls) == 1
    other, reused = resumable_timed(
        part, {"steps": (1, 3)}, compute, resume=True
    )  # other settings: recompute
    assert not reused and other["rows"] == [2]
    fresh, reused = resumable_timed(
        part, {"steps": (1, 3)}, compute, resume=False
    )  # no resume: recompute
    assert not reused and fresh["rows"] == [3]


def test_from_pairs_saves_loads_and_trains(tmp_path):
    """Bare (state, action) arrays become a dataset that round-trips and that BC fits."""
    from jaxbc.bc import BCConfig, PolicyConfig, train_bc
    from jaxbc.data import Dataset

    env = envs.make("Pendulum-v1")  # obs 3, action in [-2, 2]
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(256, 3)).astype(np.float32)
    act = np.tanh(obs[:, :1]).astype(np.float32)
    data = Dataset.from_pairs(obs, act, env.id, env.action_space, source="mine")
    assert (data.size, data.num_episodes, data.observation_shape) == (256, 1, (3,))
    save_dataset(data, tmp_path / "d.npz")
    back = load_dataset(tmp_path / "d.npz")
    np.testing.assert_array_equal(back.obs, obs)
    np.testing.assert_array_equal(back.action, act)
    assert back.source == "mine"
    cfg = BCConfig(policy=PolicyConfig(hidden_sizes=(32,)), steps=300, batch_size=64, lr=3e-3)
    res = train_bc(cfg, jax.random.key(0), back)
    pred = jax.vmap(lambda o: res.policy_fn()(res.params, o, jax.random.key(0)))(obs[:64])
    assert float(np.mean((np.asarray(pred) - act[:64]) ** 2)) < 0.01
