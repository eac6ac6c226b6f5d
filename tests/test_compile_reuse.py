"""Interactive use: repeated calls with equal arguments, and changed hyperparameters, reuse
compiled programs (counted with JAX's own compile events, not timing)."""

import dataclasses

import jax
import pytest

from jaxbc import envs
from jaxbc.bc import BCConfig, PolicyConfig, bc_loss, swarm_bc_loss, train_bc
from jaxbc.bc.evaluation import evaluate_bc
from jaxbc.data import collect
from jaxbc.debug import count_compiles
from jaxbc.experts import load_expert
from jaxbc.rollout import evaluate, rollout


@pytest.fixture(scope="module")
def cartpole():
    ex = load_expert("CartPole-v1")
    env = envs.make("CartPole-v1", max_steps_in_episode=60)
    return ex, env, collect(ex, env, 2, jax.random.key(0))


def _recompiles(call, changed=None) -> tuple[int, int]:
    """Compiles in calls 2-3 (equal arguments) and in a call with a changed hyperparameter."""
    call()
    with count_compiles() as again:
        call()
        call()
    with count_compiles() as other:
        (changed or call)()
    return again.count, other.count


CFG = BCConfig(policy=PolicyConfig(hidden_sizes=(8,)), steps=10, batch_size=16)


@pytest.mark.parametrize(
    "members, loss, params",
    [(1, bc_loss, {}), (3, bc_loss, {}), (3, swarm_bc_loss, {"tau": 0.25})],
    ids=["bc", "ensemble", "swarm"],
)
def test_training_reuses_programs(cartpole, members, loss, params):
    _, _, data = cartpole
    cfg = CFG.replace(members=members)
    changed = {k: v * 2 for k, v in params.items()}
    assert _recompiles(
        lambda: train_bc(cfg, jax.random.key(0), data, loss, **params),
        lambda: train_bc(
            cfg.replace(lr=3e-3, max_grad_norm=0.5), jax.random.key(1), data, loss, **changed
        ),
    ) == (0, 0)
    with count_compiles() as c:  # a structural change does compile
        train_bc(cfg.replace(steps=11), jax.random.key(0), data, loss, **params)
    assert c.count >= 1


def test_evaluation_rollout_collect_reuse_programs(cartpole):
    ex, env, data = cartpole
    result = train_bc(CFG, jax.random.key(0), data)
    # a new but equal env and a re-made policy function each call, as a notebook does
    assert _recompiles(
        lambda: evaluate_bc(result, jax.random.key(2), episodes=2, dataset=data)
    ) == (0, 0)
    assert _recompiles(
        lambda: evaluate(
            envs.make("CartPole-v1", max_steps_in_episode=60),
            result.policy_fn(),
            result.params,
            jax.random.key(3),
            2,
        )
    ) == (0, 0)
    assert _recompiles(
        lambda: rollout(
            envs.make("CartPole-v1", max_steps_in_episode=60),
            ex.policy_fn(True, env),
            ex.params,
            jax.random.key(4),
            2,
            30,
        )
    ) == (0, 0)
    assert _recompiles(
        lambda: collect(ex, envs.make("CartPole-v1", max_steps_in_episode=60), 2, jax.random.key(5))
    ) == (0, 0)
    # evaluating another result of the same structure (changed lr) reuses it too
    other = train_bc(CFG.replace(lr=3e-3), jax.random.key(1), data)
    with count_compiles() as c:
        evaluate_bc(other, jax.random.key(2), episodes=2, dataset=data)
    assert c.count == 0


def test_dagger_reuses_its_program(cartpole):
    from jaxbc.dagger import DAggerConfig, run_dagger

    ex, _, data = cartpole
    cfg = DAggerConfig(bc=CFG, iterations=2, steps_per_iteration=32, num_envs=4, eval_episodes=2)
    assert _recompiles(
        lambda: run_dagger(cfg, jax.random.key(0), ex, data),
        lambda: run_dagger(
            cfg.replace(beta0=0.5, bc=CFG.replace(lr=3e-3)), jax.random.key(1), ex, data
        ),
    ) == (0, 0)


def test_envs_equal_by_id_and_options():
    a, b = envs.make("CartPole-v1"), envs.make("CartPole-v1")
    assert a == b and hash(a) == hash(b)
    assert a != envs.make("CartPole-v1", max_steps_in_episode=60)


@pytest.mark.slow
def test_memory_stays_flat_over_100_evaluations(cartpole):
    import gc

    import psutil

    _, _, data = cartpole
    result = train_bc(CFG, jax.random.key(0), data)
    proc = psutil.Process()
    for i in range(10):  # warm up: compile, allocator pools
        evaluate_bc(result, jax.random.key(i), episodes=4, dataset=data)
    gc.collect()
    before = proc.memory_info().rss
    with count_compiles() as c:
        for i in range(100):
            evaluate_bc(result, jax.random.key(i), episodes=4, dataset=data)
    gc.collect()
    grown = (proc.memory_info().rss - before) / 2**20
    assert c.count == 0 and grown < 20, f"{c.count} compiles, {grown:.1f} MiB growth"


def tiny_hades_config():
    from jaxbc.hades import HadesConfig

    return HadesConfig(
        dataset_size=2,
        inner_steps=4,
        num_envs=2,
        eval_steps=20,
        policy=PolicyConfig(hidden_sizes=(8,)),
    )


def test_hades_reuses_its_programs():
    """``run_hades`` re-made with equal arguments, then with another inner lr and SNES sigma
    (``std_init``: strategy params are data), compiles nothing; the distilled data's fitness
    evaluation is reused the same way. A structural change (population) does compile."""
    from jaxbc.hades import make_strategy, run_hades, solution_template

    cfg = tiny_hades_config()

    def run(config=cfg, sigma=0.5, population=4, key=0):
        es = make_strategy("SNES", population, solution_template(config), sigma=sigma)
        res = run_hades(config, es, jax.random.key(key), 1, progress=False)
        res.hades.evaluate_data(res.state, res.state.best_data, jax.random.key(key))
        return res

    assert _recompiles(run, lambda: run(dataclasses.replace(cfg, inner_lr=0.01), 0.2, key=1)) == (
        0,
        0,
    )
    first, other = run(), run(sigma=0.2)
    assert float(first.state.es_state.std[0]) != float(other.state.es_state.std[0])  # sigma acted
    with count_compiles() as c:
        run(population=6)
    assert c.count >= 1


def test_dbc_training_reuses_programs():
    """DBC: another lambda_dm and another (equally shaped) diffusion model are data."""
    import numpy as np

    from jaxbc.bc import dbc_loss
    from jaxbc.data import Dataset
    from jaxbc.diffusion import DiffusionConfig, make_diffusion_train
    from jaxbc.envs import Box

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(64, 2)).astype(np.float32)
    data = Dataset.from_pairs(obs, np.tanh(obs[:, :1]), "toy", Box((-1.0,), (1.0,)))
    train_dm = jax.jit(
        make_diffusion_train(DiffusionConfig(T=10, hidden=8, steps=5, batch_size=16))
    )
    dm_a, dm_b = train_dm(jax.random.key(0), data), train_dm(jax.random.key(1), data)
    cfg = CFG.replace(members=2)
    assert _recompiles(
        lambda: train_bc(cfg, jax.random.key(0), data, dbc_loss, diffusion=dm_a, lambda_dm=0.2),
        lambda: train_bc(cfg, jax.random.key(0), data, dbc_loss, diffusion=dm_b, lambda_dm=30.0),
    ) == (0, 0)


@pytest.mark.parametrize("strategy", ["SNES", "Open_ES", "SimpleGA"])
def test_hades_generation_keeps_the_state_types(strategy):
    """A generation returns the state with the types it took (shape, dtype, weak type): a
    weak-typed leaf after ``tell`` (Open_ES's ``std`` was one) made the second chunk of every
    run compile the whole generation again."""
    from jaxbc.hades import make_hades, make_strategy, solution_template

    cfg = tiny_hades_config()
    hades = make_hades(cfg, make_strategy(strategy, 4, solution_template(cfg)))

    def types(tree):
        return [(x.shape, x.dtype, x.weak_type) for x in jax.tree.leaves(tree)]

    state = jax.eval_shape(hades.init, jax.random.key(0))
    after = jax.eval_shape(lambda s: hades.generation(s)[0], state)
    assert types(after) == types(state)
