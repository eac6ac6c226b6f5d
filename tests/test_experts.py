import jax
import numpy as np
import pytest

from jaxbc.envs import space_from_dict
from jaxbc.experts import load_expert, zoo_env_ids, zoo_table
from jaxbc.experts.expert import ZOO_DIR
from jaxbc.rollout import evaluate


def test_zoo_has_cartpole():
    assert "CartPole-v1" in zoo_env_ids()


@pytest.mark.parametrize("env_id", zoo_env_ids())
def test_zoo_expert_loads_and_matches_its_env(env_id):
    import json

    expert = load_expert(env_id)
    env = expert.make_env()
    spec = json.loads((ZOO_DIR / env_id.replace("/", "-") / "artifact.json").read_text())
    assert spec["format"] == "jaxbc-artifact" and spec["kind"] == "expert"
    assert spec["env"]["env_id"] == env.id
    assert tuple(spec["env"]["observation_shape"]) == env.observation_shape
    assert space_from_dict(spec["env"]["action_space"]) == env.action_space
    for k in (
        "mean_return",
        "std_return",
        "random_return",
        "env_steps",
        "wall_time_s",
        "machine",
        "seed",
    ):
        assert k in expert.meta, k
    action = expert.act(np.zeros(env.observation_shape, np.float32), jax.random.key(0))
    assert action.shape == env.action_space.shape


@pytest.mark.parametrize(
    "env_id",
    [
        pytest.param(e, marks=pytest.mark.slow) if e.startswith("brax/") else e
        for e in zoo_env_ids()
    ],
)
def test_zoo_expert_reproduces_recorded_return(env_id):
    expert = load_expert(env_id)
    env = expert.make_env()
    ev = evaluate(env, expert.policy_fn(), expert.params, jax.random.key(42), 20)
    recorded, std = expert.meta["mean_return"], expert.meta["std_return"]
    tol = max(3 * std, 0.05 * abs(recorded), 1.0)
    assert abs(float(ev.mean_return) - recorded) <= tol


def test_cartpole_expert_is_expert_level():
    assert load_expert("CartPole-v1").meta["mean_return"] >= 475


def test_zoo_table_rows():
    rows = zoo_table()
    assert any(r["env"] == "CartPole-v1" and r["mean_return"] >= 475 for r in rows)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="zoo has"):
        load_expert("NoSuchEnv-v0")
    expert = load_expert("CartPole-v1")
    expert.save(tmp_path / "e")
    (tmp_path / "e" / "params.msgpack").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="corrupt"):
        load_expert(tmp_path / "e")


def test_save_load_round_trip(tmp_path):
    expert = load_expert("CartPole-v1")
    expert.save(tmp_path / "e")
    again = load_expert(tmp_path / "e")
    jax.tree.map(np.testing.assert_array_equal, expert.params, again.params)
    assert again.meta == expert.meta and again.config == expert.config


def test_readme_zoo_table_is_generated_from_metadata():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "benchmarks/zoo_table.py", "--check"], cwd=root, check=True)
