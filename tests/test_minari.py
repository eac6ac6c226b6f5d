"""Minari import/export: exact round trips, datasets made with Minari's own API, env checks."""

import json
import sys

import jax
import numpy as np
import pytest

pytest.importorskip("minari")
pytest.importorskip("h5py")

import minari  # noqa: E402

from jaxbc import envs  # noqa: E402
from jaxbc.data import Dataset, DatasetError, collect_policy, load_dataset, save_dataset  # noqa: E402
from jaxbc.data.minari_io import GYMNASIUM_IDS, from_minari, open_minari, to_minari  # noqa: E402
from jaxbc.rollout import random_policy  # noqa: E402

KEYS = (
    "obs",
    "action",
    "reward",
    "terminated",
    "truncated",
    "next_obs",
    "episode_id",
    "episode_returns",
)


def assert_same(a: Dataset, b: Dataset) -> None:
    for k in KEYS:
        x, y = np.asarray(getattr(a, k)), np.asarray(getattr(b, k))
        assert x.dtype == y.dtype and x.shape == y.shape, k
        np.testing.assert_array_equal(x, y, err_msg=k)
    assert (a.env_id, a.action_space, a.observation_shape) == (
        b.env_id,
        b.action_space,
        b.observation_shape,
    )


@pytest.fixture(scope="module")
def cartpole_random():
    """Random CartPole play: episodes of different lengths that end in terminations."""
    env = envs.make("CartPole-v1")
    return env, collect_policy(
        env, random_policy(env.action_space), None, 4, jax.random.key(3), source="random"
    )


def test_export_import_round_trip_is_exact(cartpole_random, tmp_path):
    env, ds = cartpole_random
    assert ds.terminated.sum() == 4 and len(set(np.bincount(ds.episode_id))) > 1
    mds = to_minari(ds, "jaxbc/cartpole/random-v0", tmp_path)
    assert mds.total_episodes == 4 and mds.total_steps == ds.size
    assert mds.env_spec.id == "CartPole-v1"
    # Minari's own loader sees the same episodes
    monkey = pytest.MonkeyPatch()
    monkey.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    loaded = minari.load_dataset("jaxbc/cartpole/random-v0")
    monkey.undo()
    ep = loaded[1]
    sl = ds.episode_id == 1
    np.testing.assert_array_equal(ep.observations[:-1], ds.obs[sl])
    np.testing.assert_array_equal(ep.observations[-1], ds.next_obs[sl][-1])
    np.testing.assert_array_equal(ep.actions, ds.action[sl])
    np.testing.assert_array_equal(ep.rewards, ds.reward[sl])
    assert ep.terminations[-1] and not ep.terminations[:-1].any()
    # and back, through a directory path and through the id
    assert_same(from_minari(tmp_path / "jaxbc/cartpole/random-v0", env), ds)
    back = from_minari("jaxbc/cartpole/random-v0", "CartPole-v1", root=tmp_path)
    assert_same(back, ds)
    assert back.source == "random"


def test_round_trip_continuous_minatar_and_inexact_chain(tmp_path):
    """Pendulum (Box actions, truncations), MinAtar (10x10xC obs), next_obs off by one ulp."""
    env = envs.make("Pendulum-v1", max_steps_in_episode=7)
    ds = collect_policy(env, random_policy(env.action_space), None, 3, jax.random.key(0))
    assert ds.truncated.sum() == 3
    to_minari(ds, "pendulum-v0", tmp_path)
    back = from_minari("pendulum-v0", env, root=tmp_path)
    assert_same(back, ds)
    assert back.env_options == (("max_steps_in_episode", 7),)

    rng = np.random.default_rng(0)
    n, obs_shape = 9, (10, 10, 4)
    seq = [
        rng.integers(0, 2, (4, *obs_shape)).astype(np.float32),
        rng.integers(0, 2, (7, *obs_shape)).astype(np.float32),
    ]
    obs = np.concatenate([s[:-1] for s in seq])
    nxt = np.concatenate([s[1:] for s in seq])
    nxt[1, 0, 0, 0] = np.nextafter(nxt[1, 0, 0, 0], 2)  # differs from obs[2] in the last bit
    ds = Dataset(
        obs=obs,
        action=rng.integers(0, 3, n).astype(np.int32),
        reward=rng.normal(size=n).astype(np.float32),
        next_obs=nxt,
        terminated=np.array([0, 0, 1, 0, 0, 0, 0, 0, 0], bool),
        truncated=np.array([0, 0, 0, 0, 0, 0, 0, 0, 1], bool),
        episode_id=np.array([0] * 3 + [1] * 6, np.int32),
        episode_returns=np.array([0.5, -1.25], np.float32),
        env_id="Breakout-MinAtar",
        action_space=envs.Discrete(3),
        observation_shape=obs_shape,
    )
    mds = to_minari(ds, "minatar/breakout-v1", tmp_path)
    assert mds.env_spec is None  # no Gymnasium counterpart
    assert_same(from_minari("minatar/breakout-v1", "Breakout-MinAtar", root=tmp_path), ds)


def _gymnasium_cartpole_buffers(num_episodes: int, seed: int):
    import gymnasium as gym
    from minari.data_collector.episode_buffer import EpisodeBuffer

    env = gym.make("CartPole-v1", max_episode_steps=30)
    rng = np.random.default_rng(seed)
    buffers = []
    for i in range(num_episodes):
        obs, _ = env.reset(seed=seed + i)
        o, a, r, te, tr = [obs], [], [], [], []
        while True:
            act = int(rng.integers(2))
            obs, rew, term, trunc, _ = env.step(act)
            o.append(obs), a.append(act), r.append(rew), te.append(term), tr.append(trunc)
            if term or trunc:
                break
        buffers.append(
            EpisodeBuffer(
                observations=np.array(o),
                actions=np.array(a),
                rewards=np.array(r),
                terminations=np.array(te),
                truncations=np.array(tr),
            )
        )
    return buffers


@pytest.mark.filterwarnings(
    "ignore::UserWarning"
)  # Minari warns about each metadata field left out
def test_import_dataset_made_with_minari_api(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    buffers = _gymnasium_cartpole_buffers(5, seed=0)
    minari.create_dataset_from_buffers(
        "gym/cartpole/random-v0", buffers, env="CartPole-v1", algorithm_name="random"
    )
    ds = from_minari("gym/cartpole/random-v0", "CartPole-v1")
    assert ds.num_episodes == 5 and ds.source == "minari:gym/cartpole/random-v0"
    obs = np.concatenate([b.observations[:-1] for b in buffers])
    nxt = np.concatenate([b.observations[1:] for b in buffers])
    np.testing.assert_array_equal(ds.obs, obs)
    np.testing.assert_array_equal(ds.next_obs, nxt)
    np.testing.assert_array_equal(ds.action, np.concatenate([b.actions for b in buffers]))
    np.testing.assert_array_equal(
        ds.reward, np.concatenate([b.rewards for b in buffers]).astype(np.float32)
    )
    np.testing.assert_array_equal(ds.terminated, np.concatenate([b.terminations for b in buffers]))
    np.testing.assert_array_equal(ds.truncated, np.concatenate([b.truncations for b in buffers]))
    np.testing.assert_array_equal(np.bincount(ds.episode_id), [len(b.rewards) for b in buffers])
    np.testing.assert_array_equal(ds.episode_returns, [np.float32(sum(b.rewards)) for b in buffers])
    assert ds.action.dtype == np.int32 and ds.obs.dtype == np.float32

    # the wrong env is refused, naming both
    with pytest.raises(DatasetError, match="'CartPole-v1'.*'Acrobot-v1' corresponds to Acrobot-v1"):
        from_minari("gym/cartpole/random-v0", "Acrobot-v1")
    with pytest.raises(DatasetError, match="no Gymnasium counterpart"):
        from_minari("gym/cartpole/random-v0", "Breakout-MinAtar")
    # no env_spec and no jaxbc metadata: only the spaces can be checked
    from gymnasium import spaces

    minari.create_dataset_from_buffers(
        "nospec-v0",
        buffers,
        observation_space=spaces.Box(-np.inf, np.inf, (4,), np.float32),
        action_space=spaces.Discrete(2),
    )
    assert from_minari("nospec-v0", "CartPole-v1").size == sum(len(b.rewards) for b in buffers)
    with pytest.raises(DatasetError, match="observation space"):
        from_minari("nospec-v0", "Acrobot-v1")
    minari.create_dataset_from_buffers(
        "nospec3-v0",
        buffers,
        observation_space=spaces.Box(-np.inf, np.inf, (4,), np.float32),
        action_space=spaces.Discrete(3),
    )
    with pytest.raises(DatasetError, match="action space Discrete.3. does not fit CartPole-v1"):
        from_minari("nospec3-v0", "CartPole-v1")
    with pytest.raises(FileNotFoundError, match="never downloads"):
        open_minari("no/such-v0")


def test_export_refuses_unchained_and_import_checks_jaxbc_env(cartpole_random, tmp_path):
    env, ds = cartpole_random
    synthetic = ds.replace(next_obs=np.asarray(ds.obs).copy())  # like HaDES' synthetic data
    with pytest.raises(DatasetError, match="consecutive transitions"):
        to_minari(synthetic, "bad-v0", tmp_path)
    with pytest.raises(ValueError, match="Malformed dataset ID"):
        to_minari(ds, "no version", tmp_path)
    assert not (tmp_path / "no version").exists()  # the half-written dataset is removed
    to_minari(ds, "ok-v0", tmp_path)
    with pytest.raises(ValueError, match="already exists"):
        to_minari(ds, "ok-v0", tmp_path)
    assert from_minari("ok-v0", env, root=tmp_path).size == ds.size  # still there
    with pytest.raises(
        DatasetError, match="exported from jaxbc env 'CartPole-v1', not 'Acrobot-v1'"
    ):
        from_minari("ok-v0", "Acrobot-v1", root=tmp_path)


def test_cli_round_trip(cartpole_random, tmp_path, capsys, monkeypatch):
    from jaxbc.cli import main

    _, ds = cartpole_random
    src = save_dataset(ds, tmp_path / "demos.npz")
    monkeypatch.chdir(tmp_path)
    root = "minari"  # relative, as typed on a command line
    main(["export-minari", str(src), "--out", "jaxbc/cartpole/cli-v0", "--root", root, "--json"])
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["gymnasium_env"] == "CartPole-v1" and res["transitions"] == ds.size
    out = tmp_path / "back.npz"
    main(
        [
            "import-minari",
            "jaxbc/cartpole/cli-v0",
            "--env",
            "CartPole-v1",
            "--out",
            str(out),
            "--root",
            root,
            "--json",
        ]
    )
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["episodes"] == 4
    assert_same(load_dataset(out, "CartPole-v1"), ds)
    with pytest.raises(SystemExit) as e:
        main(
            [
                "import-minari",
                "minari/jaxbc/cartpole/cli-v0",
                "--env",
                "Acrobot-v1",
                "--out",
                str(out),
            ]
        )
    assert e.value.code == 2 and "not 'Acrobot-v1'" in capsys.readouterr().err


def test_missing_minari_names_the_extra(monkeypatch, capsys):
    from jaxbc.cli import main
    from jaxbc.data import minari_io

    monkeypatch.setitem(sys.modules, "minari", None)
    with pytest.raises(ImportError, match=r'pip install "jaxbc\[minari\]"'):
        minari_io.require_minari()
    with pytest.raises(SystemExit):
        main(["import-minari", "x-v0", "--env", "CartPole-v1", "--out", "x.npz"])
    assert "jaxbc[minari]" in capsys.readouterr().err


def test_mapping_matches_gymnasium_spaces():
    """Every mapped classic env has exactly the Gymnasium env's spaces and time limit."""
    import gymnasium as gym

    for ours, theirs in GYMNASIUM_IDS.items():
        if ours.startswith("brax/"):
            continue
        env, genv = envs.make(ours), gym.make(theirs)
        assert tuple(genv.observation_space.shape) == env.observation_shape, ours
        assert env.max_episode_steps == gym.spec(theirs).max_episode_steps, ours
        if isinstance(env.action_space, envs.Discrete):
            assert genv.action_space.n == env.action_space.n
        else:
            np.testing.assert_array_equal(genv.action_space.low, env.action_space.low)
            np.testing.assert_array_equal(genv.action_space.high, env.action_space.high)


@pytest.mark.slow
def test_brax_mapping_matches_gymnasium_mujoco_spaces():
    gym = pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    for ours, theirs in GYMNASIUM_IDS.items():
        if not ours.startswith("brax/"):
            continue
        env = envs.make(ours, **({"backend": "generalized"} if ours == "brax/swimmer" else {}))
        genv = gym.make(theirs)
        assert tuple(genv.observation_space.shape) == env.observation_shape, ours
        np.testing.assert_array_equal(genv.action_space.low, env.action_space.low)
        np.testing.assert_array_equal(genv.action_space.high, env.action_space.high)
        assert env.max_episode_steps == gym.spec(theirs).max_episode_steps
