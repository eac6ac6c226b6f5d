"""The README sweep: seeds x taus x learning rates in one program, every slice usable."""

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbc.bc import BCConfig, PolicyConfig, load_policy, make_bc_train, swarm_bc_loss
from jaxbc.bc.evaluation import evaluate_bc
from jaxbc.data import collect
from jaxbc.experts import load_expert
from jaxbc.sweep import grid, sweep, unflatten

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sweep_setup():
    ex = load_expert("Pendulum-v1")
    env = ex.make_env()
    data = collect(ex, env, 2, jax.random.key(0))
    base = BCConfig(policy=PolicyConfig(hidden_sizes=(16, 16)), members=2, steps=30, batch_size=32)

    def run(key, tau, lr):
        return make_bc_train(base.replace(lr=lr), partial(swarm_bc_loss, tau=tau))(key, data)

    axes = (jax.random.split(jax.random.key(0), 3), jnp.array([0.0, 0.5]), jnp.array([1e-3, 3e-3]))
    return env, data, run, axes


def test_sweep_slices_equal_single_runs_and_evaluate_and_save(sweep_setup, tmp_path):
    env, data, run, axes = sweep_setup
    args = grid(*axes)
    results = unflatten(sweep(run, *args), (3, 2, 2))
    assert results.batch_shape == (3, 2, 2)
    with pytest.raises(ValueError, match="index it first"):
        results.save(tmp_path / "all")
    single_run = jax.jit(run)
    for i, j, k in [(0, 0, 0), (1, 1, 0), (2, 1, 1)]:
        one = results[i, j, k]
        assert one.batch_shape == () and float(one.config.lr) == pytest.approx(float(axes[2][k]))
        single = single_run(axes[0][i], axes[1][j], axes[2][k])
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
            one.params,
            single.params,
        )
        ev = evaluate_bc(one, jax.random.key(1), episodes=2, dataset=data, env=env)
        assert np.isfinite(ev["mean_return"]) and ev["members"] == 2
        one.save(tmp_path / f"p{i}{j}{k}")
        back = load_policy(tmp_path / f"p{i}{j}{k}")
        assert back.config.lr == pytest.approx(float(axes[2][k]))
        a = back.policy_fn()(back.params, data.obs[3], jax.random.key(0))
        np.testing.assert_allclose(
            a, one.policy_fn()(one.params, data.obs[3], jax.random.key(0)), rtol=1e-6
        )
    with pytest.raises(IndexError, match="single run"):
        results[0, 0, 0][0]


SHARDED = """
import os, json, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
import jax, jax.numpy as jnp, numpy as np
from functools import partial
from jaxbc.bc import BCConfig, PolicyConfig, make_bc_train, swarm_bc_loss
from jaxbc.data import collect
from jaxbc.experts import load_expert
from jaxbc.io import enable_compilation_cache
from jaxbc.sweep import grid, sweep
enable_compilation_cache()
assert len(jax.devices()) == 4
ex = load_expert("Pendulum-v1")
data = collect(ex, ex.make_env(), 1, jax.random.key(0))
base = BCConfig(policy=PolicyConfig(hidden_sizes=(8,)), members=2, steps=20, batch_size=16)
def run(key, tau, lr):
    return make_bc_train(base.replace(lr=lr), partial(swarm_bc_loss, tau=tau))(key, data)
args = grid(jax.random.split(jax.random.key(0), 3), jnp.array([0.0, 0.5]), jnp.array([1e-3]))  # 6 runs: padded to 8
one = sweep(run, *args)
four = sweep(run, *args, devices=4)
diff = max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(four.params)))
print(json.dumps({"diff": diff, "shape": list(four.batch_shape), "sharded": len(four.params["obs_mean"].sharding.device_set)}))
"""


def test_sweep_sharded_over_four_devices_equals_one_device():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run(
        [sys.executable, "-c", SHARDED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["shape"] == [6] and out["sharded"] == 4
    assert out["diff"] < 1e-5
