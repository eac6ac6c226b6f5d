import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbc.bc import BCConfig, PolicyConfig
from jaxbc.dagger import (
    Buffer,
    DAggerConfig,
    append,
    beta_at,
    buffer_from,
    make_dagger,
    run_dagger,
)
from jaxbc.data import collect
from jaxbc.experts import load_expert

SMALL_BC = BCConfig(steps=150, batch_size=64, policy=PolicyConfig(hidden_sizes=(32, 32)))


def _demos(env_id, episodes=1, keep=None):
    ex = load_expert(env_id)
    env = ex.make_env()
    ds = collect(ex, env, episodes, jax.random.key(0))
    if keep:
        ds = ds.replace(
            **{
                k: getattr(ds, k)[:keep]
                for k in (
                    "obs",
                    "action",
                    "reward",
                    "next_obs",
                    "terminated",
                    "truncated",
                    "episode_id",
                )
            }
        )
    return ex, env, ds


def test_beta_schedules():
    k = jnp.arange(1, 6)
    lin = DAggerConfig(iterations=5, beta_schedule="linear")
    np.testing.assert_allclose(beta_at(lin, k), [1.0, 0.75, 0.5, 0.25, 0.0])
    exp = DAggerConfig(iterations=5, beta_schedule="exponential", beta0=0.8, beta_decay=0.5)
    np.testing.assert_allclose(beta_at(exp, k), 0.8 * 0.5 ** np.arange(5))
    const = DAggerConfig(iterations=5, beta_schedule="constant", beta0=0.3)
    np.testing.assert_allclose(beta_at(const, k), [0.3] * 5)
    user = DAggerConfig(iterations=5, beta_schedule=lambda k: 1.0 / k)
    np.testing.assert_allclose(beta_at(user, k), 1.0 / np.arange(1, 6), rtol=1e-6)


def test_append_compacts_never_overwrites_and_masks_empty():
    buf = Buffer(jnp.zeros((8, 2)), jnp.zeros((8,), jnp.int32), jnp.asarray(2))
    buf = buf._replace(obs=buf.obs.at[:2].set(7.0), action=buf.action.at[:2].set(7))
    obs = jnp.arange(10.0).reshape(5, 2)
    valid = jnp.array([True, False, True, False, True])
    out = append(buf, obs, jnp.arange(5), valid)
    assert int(out.num_valid) == 5
    np.testing.assert_array_equal(
        out.action[:5], [7, 7, 0, 2, 4]
    )  # old data kept, valid rows compacted
    np.testing.assert_array_equal(out.obs[5:], 0.0)  # nothing written past the valid prefix
    # without ring, rows that do not fit are dropped and old data is never overwritten
    full = append(out, jnp.ones((6, 2)), jnp.full((6,), 9), jnp.ones((6,), bool))
    np.testing.assert_array_equal(full.action, [7, 7, 0, 2, 4, 9, 9, 9])
    assert int(full.num_valid) == 8
    # ring: wraps around and overwrites the oldest entries
    ring = append(out, jnp.ones((6, 2)), jnp.full((6,), 9), jnp.ones((6,), bool), ring=True)
    np.testing.assert_array_equal(ring.action, [9, 9, 9, 2, 4, 9, 9, 9])
    assert int(ring.num_valid) == 8 and int(ring.written) == 11


def test_overflow_is_a_clear_error():
    ex, _, ds = _demos("CartPole-v1", keep=50)
    cfg = DAggerConfig(bc=SMALL_BC, iterations=2, steps_per_iteration=64, num_envs=8, capacity=100)
    with pytest.raises(ValueError, match="can overflow"):
        make_dagger(cfg)(jax.random.key(0), ex, ds)
    with pytest.raises(ValueError, match="multiple of num_envs"):
        DAggerConfig(steps_per_iteration=100, num_envs=8).validate()
    with pytest.raises(ValueError, match="ensemble learner"):
        DAggerConfig(gate_threshold=0.1).validate()


def test_beta_one_executes_expert_actions_and_labels_with_expert():
    ex, env, ds = _demos("CartPole-v1", keep=50)
    cfg = DAggerConfig(
        bc=SMALL_BC,
        iterations=2,
        steps_per_iteration=128,
        num_envs=8,
        beta_schedule="constant",
        beta0=1.0,
        eval_episodes=2,
    )
    res = run_dagger(cfg, jax.random.key(0), ex, ds)
    np.testing.assert_array_equal(res.expert_action_fraction[1:], 1.0)
    n = int(res.dataset_size[-1])
    assert n == 50 + 2 * 128
    new_obs, new_act = res.buffer.obs[50:n], res.buffer.action[50:n]
    expert_act = jax.vmap(lambda o: ex.act(o, jax.random.key(0)))(new_obs)
    np.testing.assert_array_equal(new_act, expert_act)
    # the expert never drops the pole: all collected states are near upright
    assert float(jnp.abs(new_obs[:, 2]).max()) < 0.21
    np.testing.assert_array_equal(res.expert_queries[1:], 128)
    # beta0 is data: the same compiled program with the expert never executing
    res0 = run_dagger(cfg.replace(beta0=0.0), jax.random.key(0), ex, ds)
    assert float(res0.expert_action_fraction[1]) == 0.0


@pytest.fixture(scope="module")
def pendulum():
    return _demos("Pendulum-v1", episodes=1)


def test_dagger_beats_bc_under_compounding_errors(pendulum):
    """Pendulum from one expert episode: BC drifts off the demonstrated states; DAgger
    labels the states the learner reaches and recovers."""
    ex, _, ds = pendulum
    bc = BCConfig(steps=600, batch_size=128, policy=PolicyConfig(hidden_sizes=(64, 64)))
    cfg = DAggerConfig(bc=bc, iterations=4, steps_per_iteration=800, num_envs=8, eval_episodes=8)
    res = jax.jit(make_dagger(cfg))(jax.random.key(1), ex, ds)
    bc_return, dagger_return = float(res.returns[0]), float(res.returns[-1])
    assert dagger_return > bc_return + 100, (bc_return, dagger_return)
    assert dagger_return > 0.8 * ex.meta["mean_return"] + 0.2 * ex.meta["random_return"]


def test_gated_dagger_queries_the_expert_less(pendulum):
    ex, _, ds = pendulum
    bc = BCConfig(steps=200, batch_size=128, members=3, policy=PolicyConfig(hidden_sizes=(32, 32)))
    base = dict(
        bc=bc,
        iterations=3,
        steps_per_iteration=400,
        num_envs=8,
        eval_episodes=2,
        beta_schedule="constant",
        beta0=0.0,
    )
    plain = jax.jit(make_dagger(DAggerConfig(**base)))(jax.random.key(0), ex, ds)
    gated = jax.jit(make_dagger(DAggerConfig(**base, gate_threshold=0.05)))(
        jax.random.key(0), ex, ds
    )
    assert int(gated.expert_queries.sum()) < int(plain.expert_queries.sum()) == 3 * 400
    assert int(gated.dataset_size[-1]) < int(plain.dataset_size[-1])


def test_buffer_from_rejects_oversized_initial():
    _, _, ds = _demos("CartPole-v1", keep=50)
    with pytest.raises(ValueError, match="does not fit"):
        buffer_from(ds, 10)
