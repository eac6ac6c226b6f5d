import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxbc import envs
from jaxbc.bc import (
    Batch,
    BCConfig,
    PolicyConfig,
    action_difference,
    bc_loss,
    cross_entropy,
    ensemble_action,
    ensemble_apply,
    gaussian_nll,
    hidden_alignment_penalty,
    init_ensemble,
    load_policy,
    make_bc_train,
    make_policy,
    mse,
    swarm_bc_loss,
)
from jaxbc.bc.losses import penalty_weight
from jaxbc.data import collect
from jaxbc.envs import Box, Discrete
from jaxbc.experts import load_expert
from jaxbc.rollout import evaluate

BOX = Box((-2.0, -2.0), (2.0, 2.0))


def test_primitive_losses_match_formulas():
    pred, a = jnp.array([[0.0, 1.0]]), jnp.array([[1.0, 3.0]])
    assert float(mse(pred, a)) == pytest.approx(5.0)
    log_std = jnp.log(jnp.array([1.0, 2.0]))
    expected = -(
        jax.scipy.stats.norm.logpdf(1.0, 0.0, 1.0) + jax.scipy.stats.norm.logpdf(3.0, 1.0, 2.0)
    )
    assert float(gaussian_nll(pred, log_std, a)) == pytest.approx(float(expected), rel=1e-5)
    logits = jnp.log(jnp.array([[0.25, 0.75]]))
    assert float(cross_entropy(logits, jnp.array([1]))) == pytest.approx(-np.log(0.75), rel=1e-5)


@pytest.mark.parametrize(
    "kind, space, obs_shape",
    [
        ("deterministic", BOX, (3,)),
        ("gaussian", BOX, (3,)),
        ("categorical", Discrete(4), (3,)),
        ("categorical", Discrete(3), (10, 10, 4)),
    ],
)
def test_policy_heads_shapes_and_hidden(kind, space, obs_shape):
    policy = make_policy(PolicyConfig(kind=kind, hidden_sizes=(16, 8)), space, obs_shape)
    params = policy.init(jax.random.key(0))
    out = policy.apply(params, jnp.zeros((5, *obs_shape)))
    n_hidden = 3 if len(obs_shape) == 3 else 2  # the cnn torso adds a layer
    assert len(out.hidden) == n_hidden and out.hidden[-1].shape == (5, 8)
    a = policy.action(out, jax.random.key(1), deterministic=False)
    assert a.shape == (5, *space.shape)
    if isinstance(space, Box):
        assert (jnp.abs(a) <= 2.0).all()  # tanh-bounded / clipped into the bounds
    if kind == "gaussian":
        assert out.log_std.shape == (2,)


def test_policy_kind_must_fit_space():
    with pytest.raises(ValueError, match="does not fit"):
        make_policy(PolicyConfig(kind="categorical"), BOX, (3,))
    with pytest.raises(ValueError, match="cnn torso"):
        make_policy(PolicyConfig(torso="cnn"), BOX, (3,))


def test_ensemble_members_differ_and_aggregate():
    policy = make_policy(PolicyConfig(hidden_sizes=(16,)), BOX, (3,))
    params = init_ensemble(policy, jax.random.key(0), 5)
    out = ensemble_apply(policy, params, jnp.ones((7, 3)))
    assert out.out.shape == (5, 7, 2)
    assert not np.allclose(out.out[0], out.out[1])
    np.testing.assert_allclose(ensemble_action(policy, out), out.out.mean(0), rtol=1e-6)
    # discrete: mean of probabilities, then argmax
    dpol = make_policy(PolicyConfig(hidden_sizes=(16,)), Discrete(3), (3,))
    dout = ensemble_apply(dpol, init_ensemble(dpol, jax.random.key(1), 4), jnp.ones((7, 3)))
    probs = jax.nn.softmax(dout.out, -1).mean(0)
    np.testing.assert_array_equal(ensemble_action(dpol, dout), probs.argmax(-1))


def test_action_difference():
    pts = jnp.array([[[0.0, 0.0]], [[3.0, 4.0]]])  # two members, one state, distance 5
    assert float(action_difference(pts)) == pytest.approx(5.0, rel=1e-5)
    assert float(action_difference(pts[:1])) == 0.0
    many = np.asarray(jax.random.normal(jax.random.key(1), (5, 7, 3)))
    naive = np.mean(
        [
            np.linalg.norm(many[i] - many[j], axis=-1).mean()
            for i in range(5)
            for j in range(5)
            if i != j
        ]
    )
    assert float(action_difference(jnp.asarray(many))) == pytest.approx(naive, rel=1e-5)


def test_alignment_penalty_zero_iff_members_agree():
    h = jnp.ones((4, 8, 16))
    for form in ("paper", "normalized"):
        assert float(hidden_alignment_penalty((h, h), form)) == 0.0
    h2 = h.at[0].set(3.0)
    # member 0 is 2 away from others; mean = 1.5: distances 1.5^2 (once) and 0.5^2 (3x), averaged
    assert float(hidden_alignment_penalty((h2,), "normalized")) == pytest.approx(
        (1.5**2 + 3 * 0.5**2) / 4
    )
    # paper: pairs (0, j) differ by 2 in each of 16 features, 3 such pairs, per state
    assert float(hidden_alignment_penalty((h2,), "paper")) == pytest.approx(3 * 16 * 2.0**2)
    r = np.asarray(jax.random.normal(jax.random.key(2), (6, 8, 5)))
    naive = ((r - r.mean(0)) ** 2).mean()
    assert float(hidden_alignment_penalty((jnp.asarray(r),), "normalized")) == pytest.approx(
        naive, rel=1e-5
    )
    pairs = sum(((r[i] - r[j]) ** 2).sum(-1).mean() for i in range(6) for j in range(i + 1, 6))
    assert float(hidden_alignment_penalty((jnp.asarray(r),), "paper")) == pytest.approx(
        pairs, rel=1e-5
    )


def test_penalty_forms_conversion_factor():
    """paper = N^2 * W * K * normalized for K layers of width W and N members."""
    n, b, w = 5, 7, 6
    layers = tuple(jax.random.normal(k, (n, b, w)) for k in jax.random.split(jax.random.key(3), 3))
    paper = float(hidden_alignment_penalty(layers, "paper"))
    norm = float(hidden_alignment_penalty(layers, "normalized"))
    assert paper == pytest.approx(n**2 * w * len(layers) * norm, rel=1e-5)
    with pytest.raises(ValueError, match="penalty form"):
        hidden_alignment_penalty(layers, "pairs")


def test_swarm_tau_conversion_between_forms():
    """The same objective in both forms: normalized tau t == paper tau t / (N * W * K)."""
    n, w = 4, 16
    policy = make_policy(PolicyConfig(hidden_sizes=(w, w)), BOX, (3,))
    params = init_ensemble(policy, jax.random.key(5), n)
    batch = _batch(BOX)
    t = 0.3
    norm, _ = swarm_bc_loss(policy, params, batch, None, tau=t, penalty="normalized")
    paper, _ = swarm_bc_loss(policy, params, batch, None, tau=t / (n * w * 2), penalty="paper")
    assert float(paper) == pytest.approx(float(norm), rel=1e-5)
    assert float(penalty_weight(t, "normalized", n)) == pytest.approx(n * t)


def test_init_params_depend_on_the_key_only():
    """Paired studies rely on this: the same key gives the same initial members whatever
    the tau and the data (a 1-step run with lr warmed up from 0 returns the init)."""
    expert = load_expert("Pendulum-v1")
    env = expert.make_env()
    data = collect(expert, env, 1, jax.random.key(0))
    cfg = BCConfig(
        policy=PolicyConfig(hidden_sizes=(8, 8)), members=3, steps=1, warmup_steps=1, batch_size=8
    )
    key = jax.random.key(7)
    nets = [
        make_bc_train(cfg, partial(swarm_bc_loss, tau=tau, penalty="paper"))(key, data, nv).params[
            "net"
        ]
        for tau, nv in ((0.0, 50), (10.0, 150))
    ]
    policy = make_policy(cfg.policy, env.action_space, env.observation_shape)
    init = init_ensemble(policy, jax.random.split(key, 3)[0], 3)
    jax.tree.map(np.testing.assert_array_equal, nets[0], nets[1])
    jax.tree.map(np.testing.assert_array_equal, nets[0], init)


def _batch(policy_space, n=32, obs_dim=3):
    k1, k2 = jax.random.split(jax.random.key(0))
    obs = jax.random.normal(k1, (n, obs_dim))
    if isinstance(policy_space, Discrete):
        act = jax.random.randint(k2, (n,), 0, policy_space.n)
    else:
        act = jax.random.uniform(k2, (n, 2), minval=-1, maxval=1)
    return Batch(obs, act)


def test_swarm_tau_zero_equals_ensemble_bc_exactly():
    policy = make_policy(PolicyConfig(hidden_sizes=(16, 16)), BOX, (3,))
    params = init_ensemble(policy, jax.random.key(0), 4)
    batch = _batch(BOX)
    g_ens = jax.grad(lambda p: bc_loss(policy, p, batch, jax.random.key(0))[0])(params)
    g_sw0 = jax.grad(lambda p: swarm_bc_loss(policy, p, batch, jax.random.key(0), tau=0.0)[0])(
        params
    )
    jax.tree.map(np.testing.assert_array_equal, g_ens, g_sw0)
    g_sw = jax.grad(lambda p: swarm_bc_loss(policy, p, batch, jax.random.key(0), tau=1.0)[0])(
        params
    )
    assert not all(
        jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.allclose(a, b)), g_ens, g_sw))
    )


def test_ensemble_loss_gradient_is_each_members_own():
    """Ensemble BC's gradient for member i is exactly the gradient of member i's own BC loss."""
    policy = make_policy(PolicyConfig(kind="categorical", hidden_sizes=(8,)), Discrete(3), (3,))
    params = init_ensemble(policy, jax.random.key(0), 3)
    batch = _batch(Discrete(3))
    g = jax.grad(lambda p: bc_loss(policy, p, batch, None)[0])(params)
    one = jax.tree.map(lambda x: x[1:2], params)
    g1 = jax.grad(lambda p: bc_loss(policy, p, batch, None)[0])(one)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[1], b[0], rtol=1e-5, atol=1e-7), g, g1)


@pytest.fixture(scope="module")
def cartpole_data():
    ex = load_expert("CartPole-v1")
    env = ex.make_env()
    return env, collect(ex, env, 2, jax.random.key(0))


def test_bc_learns_cartpole_and_saves(cartpole_data, tmp_path):
    env, ds = cartpole_data
    res = jax.jit(make_bc_train(BCConfig(steps=1500)))(jax.random.key(0), ds)
    losses = np.asarray(res.metrics["loss"])
    assert losses[-50:].mean() < 0.5 * losses[:50].mean()
    ev = evaluate(env, res.policy_fn(), res.params, jax.random.key(1), 10)
    assert float(ev.mean_return) > 300
    res.save(tmp_path / "p")
    back = load_policy(tmp_path / "p")
    jax.tree.map(np.testing.assert_array_equal, res.params, back.params)
    assert back.config == res.config and back.env_id == "CartPole-v1"


def test_sweep_taus_and_seeds_is_one_program(cartpole_data):
    _, ds = cartpole_data
    base = BCConfig(steps=20, members=3, batch_size=32, policy=PolicyConfig(hidden_sizes=(16, 16)))

    def run(key, tau, lr):
        return make_bc_train(dataclasses.replace(base, lr=lr), partial(swarm_bc_loss, tau=tau))(
            key, ds
        ).metrics

    taus = jnp.repeat(jnp.array([0.0, 0.25, 1.0]), 2)
    keys = jax.random.split(jax.random.key(0), 6)
    lrs = jnp.full((6,), 1e-3)
    m = jax.jit(jax.vmap(run))(keys, taus, lrs)
    assert m["loss"].shape == (6, 20)
    # tau = 0 runs: loss equals the members' summed bc loss; tau > 0: loss adds the penalty
    np.testing.assert_allclose(m["loss"][:2], 3 * m["bc_loss"][:2], rtol=1e-6)
    assert (m["loss"][2:] > 3 * m["bc_loss"][2:]).all()


def test_ensemble_trains_like_independent_runs_with_clipping(cartpole_data):
    """An N-member ensemble equals N one-member runs from the same inits and batch keys,
    with clipping binding (per-member norms and Adam statistics)."""
    _, ds = cartpole_data
    cfg = BCConfig(
        steps=30,
        members=3,
        batch_size=32,
        max_grad_norm=1e-3,
        policy=PolicyConfig(hidden_sizes=(16,)),
    )
    key = jax.random.key(4)
    ens = jax.jit(make_bc_train(cfg))(key, ds)
    init = init_ensemble(ens.policy, jax.random.split(key, 3)[0], 3)  # the inits train() draws
    norms = optax.global_norm(
        jax.grad(lambda p: bc_loss(ens.policy, p, _batch_from(ds), None)[0])(init)
    )
    assert float(norms) > 1e-2  # far above max_grad_norm: clipping binds
    one = jax.jit(make_bc_train(cfg.replace(members=1)))
    for i in range(3):
        run = one(key, ds, None, jax.tree.map(lambda x, i=i: x[i : i + 1], init))
        jax.tree.map(
            lambda a, b, i=i: np.testing.assert_allclose(a[i], b[0], rtol=2e-4, atol=1e-6),
            ens.params["net"],
            run.params["net"],
        )


def _batch_from(ds, n=32):
    return Batch(jnp.asarray(ds.obs[:n]), jnp.asarray(ds.action[:n]))


def test_periodic_evaluation_inside_jit(cartpole_data):
    _, ds = cartpole_data
    cfg = BCConfig(
        steps=40,
        eval_every=20,
        eval_episodes=2,
        batch_size=32,
        policy=PolicyConfig(hidden_sizes=(16,)),
    )
    res = jax.jit(make_bc_train(cfg))(jax.random.key(0), ds)
    assert res.eval_returns.shape == (2,) and res.metrics["loss"].shape == (40,)


def test_continuous_normalised_actions_round_trip():
    env = envs.make("Pendulum-v1", max_steps_in_episode=50)
    ex = load_expert("Pendulum-v1")
    ds = collect(ex, env, 2, jax.random.key(0))
    cfg = BCConfig(
        steps=300,
        normalize_actions=True,
        policy=PolicyConfig(kind="gaussian", hidden_sizes=(32, 32)),
    )
    res = jax.jit(make_bc_train(cfg))(jax.random.key(0), ds)
    a = res.policy_fn()(res.params, ds.obs[0], jax.random.key(0))
    assert a.shape == (1,) and np.abs(a).max() <= 2.0
    assert np.isfinite(np.asarray(res.metrics["loss"])).all()


def test_bad_config():
    with pytest.raises(ValueError, match="multiple of eval_every"):
        make_bc_train(BCConfig(steps=10, eval_every=3))
    with pytest.raises(ValueError, match="unknown schedule"):
        make_bc_train(BCConfig(schedule="step"))
    for field, value in (
        ("lr", float("nan")),
        ("batch_size", 0),
        ("members", -1),
        ("max_grad_norm", 0.0),
    ):
        with pytest.raises(ValueError, match=field):
            BCConfig(**{field: value})


def test_num_valid_uses_only_the_prefix(cartpole_data):
    """Training on the first k rows of a padded dataset equals training on the k-row dataset."""
    _, ds = cartpole_data
    k = 500
    cfg = BCConfig(steps=30, batch_size=32, policy=PolicyConfig(hidden_sizes=(16,)))
    train = make_bc_train(cfg)
    a = jax.jit(train)(jax.random.key(0), ds, k)
    small = ds.replace(
        **{
            f: getattr(ds, f)[:k]
            for f in (
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
    b = jax.jit(train)(jax.random.key(0), small)
    jax.tree.map(
        lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), a.params, b.params
    )
    # a garbage tail beyond num_valid changes nothing
    poisoned = ds.replace(obs=np.concatenate([ds.obs[:k], np.full_like(ds.obs[k:], 1e6)]))
    c = jax.jit(train)(jax.random.key(0), poisoned, k)
    jax.tree.map(
        lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), a.params, c.params
    )


def test_orthogonal_init_is_flax_and_never_a_batched_qr():
    """vmapped inits (ensembles, seeds) run their QRs one at a time: a batched LAPACK QR
    deadlocks XLA:CPU's 2-thread pool when two of them run at once."""
    import flax.linen as nn

    from jaxbc.networks import orthogonal

    keys = jax.random.split(jax.random.key(0), (2, 3))
    ours = jax.vmap(jax.vmap(lambda k: orthogonal(2.0)(k, (5, 4))))(keys)
    ref = jax.vmap(jax.vmap(lambda k: nn.initializers.orthogonal(2.0)(k, (5, 4))))(keys)
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_allclose(
        np.einsum("abij,abik->abjk", ours, ours),
        np.broadcast_to(4 * np.eye(4), (2, 3, 4, 4)),
        atol=1e-5,
    )
    jaxpr = jax.make_jaxpr(jax.vmap(lambda k: orthogonal()(k, (4, 4))))(keys[0])
    assert [e.primitive.name for e in jaxpr.jaxpr.eqns] == ["scan"]


def test_max_grad_norm_none_means_no_clipping(cartpole_data):
    """``max_grad_norm=None`` (HaDES's inner loop, the recipe stored with distilled data) is
    a valid config and trains exactly like a clipping norm that never binds."""
    _, ds = cartpole_data
    cfg = BCConfig(steps=20, batch_size=32, policy=PolicyConfig(hidden_sizes=(16,)))
    key = jax.random.key(7)
    free = make_bc_train(cfg.replace(max_grad_norm=None))(key, ds)
    loose = make_bc_train(cfg.replace(max_grad_norm=1e9))(key, ds)
    tight = make_bc_train(cfg.replace(max_grad_norm=1e-4))(key, ds)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
        free.params["net"],
        loose.params["net"],
    )
    diff = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), free.params, tight.params)
    assert max(jax.tree.leaves(diff)) > 1e-3  # clipping at 1e-4 binds: None is not that
