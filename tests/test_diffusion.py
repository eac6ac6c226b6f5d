import json
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbc import envs
from jaxbc.bc import (
    Batch,
    BCConfig,
    PolicyConfig,
    bc_loss,
    dbc_loss,
    ensemble_apply,
    init_ensemble,
    make_bc_train,
    make_policy,
)
from jaxbc.cli import main
from jaxbc.data import Dataset, collect_policy, save_dataset
from jaxbc.diffusion import (
    DiffusionConfig,
    load,
    make_diffusion_train,
    make_schedule,
    q_sample,
    sample,
    sample_timesteps,
    save,
)
from jaxbc.envs import Box, Discrete
from jaxbc.rollout import random_policy

BOX = Box((-2.0,), (2.0,))
TOY = DiffusionConfig(T=100, hidden=64, steps=1500, batch_size=128)


def toy_dataset(n: int = 2000, seed: int = 0, discrete: bool = False) -> Dataset:
    """1-D states in two clusters (around -2 and 2) with cluster-dependent 1-D actions."""
    rng = np.random.default_rng(seed)
    c = rng.choice([-1.0, 1.0], size=n)
    obs = (2 * c + 0.3 * rng.normal(size=n))[:, None].astype(np.float32)
    if discrete:
        act, space = (c > 0).astype(np.int32), Discrete(2)
    else:
        act, space = (0.5 * c + 0.2 + 0.1 * rng.normal(size=n))[:, None].astype(np.float32), BOX
    return Dataset.from_pairs(obs, act, "toy", space)


@pytest.fixture(scope="module")
def toy():
    ds = toy_dataset()
    return ds, jax.jit(make_diffusion_train(TOY))(jax.random.key(0), ds)


def test_schedules_follow_their_formulas():
    T = 1000
    sch = make_schedule("sigmoid", T)
    x = np.linspace(-6, 6, T)
    np.testing.assert_allclose(sch.betas, 1 / (1 + np.exp(-x)) * (0.02 - 1e-4) + 1e-4, rtol=1e-6)
    np.testing.assert_allclose(
        sch.alpha_bars, np.cumprod(1 - np.asarray(sch.betas, np.float64)), rtol=1e-5
    )
    lin = make_schedule("linear", 50)
    assert float(lin.betas[0]) == pytest.approx(1e-4) and float(lin.betas[-1]) == pytest.approx(
        0.02
    )
    cos = make_schedule("cosine", 100)
    assert float(cos.betas.max()) == pytest.approx(0.999) and float(cos.alpha_bars[-1]) < 1e-3
    assert (np.diff(np.asarray(cos.alpha_bars)) < 0).all()
    with pytest.raises(ValueError, match="unknown noise schedule 'quadratic'.*sigmoid"):
        make_schedule("quadratic", 10)
    with pytest.raises(ValueError, match="unknown noise schedule"):
        make_diffusion_train(DiffusionConfig(schedule="quadratic"))


@pytest.mark.parametrize("batch", [8, 7])
def test_antithetic_timesteps_pair_up(batch):
    T = 100
    t = np.asarray(jax.jit(sample_timesteps, static_argnums=(1, 2, 3))(jax.random.key(0), batch, T))
    half = (batch + 1) // 2
    assert t.shape == (batch,) and t.dtype == np.int32 and ((0 <= t) & (t < T)).all()
    np.testing.assert_array_equal(t[half:] + t[: batch - half], T - 1)
    # many batches: still uniform on [0, T) (mean (T-1)/2, every step drawn)
    many = np.asarray(
        jax.vmap(lambda k: sample_timesteps(k, 64, T))(jax.random.split(jax.random.key(1), 500))
    )
    assert abs(many.mean() - (T - 1) / 2) < 1e-9 and len(np.unique(many)) == T
    plain = np.asarray(sample_timesteps(jax.random.key(0), 64, T, antithetic=False))
    assert not (plain[32:] + plain[:32] == T - 1).all()
    assert DiffusionConfig().antithetic
    with pytest.raises(ValueError, match="antithetic"):
        DiffusionConfig(antithetic=1)  # type: ignore[arg-type]


def test_q_sample_matches_closed_form_moments():
    sch = make_schedule("sigmoid", 100)
    x0 = jnp.array([1.5, -0.5])
    n = 200_000
    for t in (0, 50, 99):
        eps = jax.random.normal(jax.random.key(t), (n, 2))
        xt = q_sample(sch, jnp.broadcast_to(x0, (n, 2)), jnp.full((n,), t), eps)
        ab = float(sch.alpha_bars[t])
        np.testing.assert_allclose(xt.mean(0), np.sqrt(ab) * x0, atol=0.01)
        np.testing.assert_allclose(xt.var(0), 1 - ab, atol=0.01)


def test_noise_prediction_loss_falls(toy):
    _, model = toy
    losses = np.asarray(model.losses)
    assert losses.shape == (TOY.steps,) and np.isfinite(losses).all()
    assert losses[-200:].mean() < 0.8 * losses[:50].mean()


def test_samples_match_the_data(toy):
    ds, model = toy
    obs, act = jax.jit(sample, static_argnums=2)(model, jax.random.key(1), 4000)
    assert obs.shape == (4000, 1) and act.shape == (4000, 1)
    obs, act = np.asarray(obs[:, 0]), np.asarray(act[:, 0])
    d_obs, d_act = ds.obs[:, 0], ds.action[:, 0]
    assert (
        abs(obs.mean() - d_obs.mean()) < 0.15 * d_obs.std()
        and abs(obs.std() / d_obs.std() - 1) < 0.1
    )
    assert (
        abs(act.mean() - d_act.mean()) < 0.1 * d_act.std()
        and abs(act.std() / d_act.std() - 1) < 0.1
    )
    # both clusters, each at the right place, with the state-action coupling
    assert 0.4 < (obs > 0).mean() < 0.6 and abs(np.abs(obs).mean() - np.abs(d_obs).mean()) < 0.15
    assert np.corrcoef(obs, act)[0, 1] > 0.9


def test_training_vmaps_over_seeds():
    ds = toy_dataset(200)
    cfg = DiffusionConfig(T=20, hidden=16, steps=10, batch_size=16)
    models = jax.jit(jax.vmap(make_diffusion_train(cfg), in_axes=(0, None)))(
        jax.random.split(jax.random.key(0), 2), ds
    )
    assert models.losses.shape == (2, 10)
    assert not np.allclose(
        models.params["params"]["out"]["kernel"][0], models.params["params"]["out"]["kernel"][1]
    )


def _policy_batch(kind="deterministic", members=1, n=64, seed=0):
    policy = make_policy(PolicyConfig(kind=kind, hidden_sizes=(16, 16)), BOX, (1,))
    params = init_ensemble(policy, jax.random.key(seed), members)
    ds = toy_dataset(n, seed)
    obs = jnp.asarray(ds.obs)
    batch = Batch(obs, jnp.asarray(ds.action), obs, jnp.zeros(1), jnp.ones(1))
    return policy, params, batch


def test_dm_loss_is_zero_when_the_policy_reproduces_the_expert(toy):
    _, model = toy
    policy, params, batch = _policy_batch()
    out = ensemble_apply(policy, params, batch.obs).out[0]
    batch = batch._replace(action=out)  # the "expert" acted exactly like the policy
    loss, m = dbc_loss(policy, params, batch, jax.random.key(0), model)
    assert float(m["dm_loss"]) == 0.0 and float(m["bc_loss"]) == 0.0 and float(loss) == 0.0
    assert float(m["agent_diffusion_loss"]) == float(m["expert_diffusion_loss"]) > 0
    _, m_raw = dbc_loss(policy, params, batch, jax.random.key(0), model, normalize_dm=False)
    assert float(m_raw["dm_loss"]) == float(m_raw["agent_diffusion_loss"]) > 0


def test_diffusion_error_is_higher_off_the_expert_distribution(toy):
    """The signal DBC uses: pairs with the other cluster's actions are predicted worse."""
    _, model = toy
    policy, params, batch = _policy_batch(n=512)
    f = partial(dbc_loss, policy, params, key=jax.random.key(0), diffusion=model)
    _, m = f(batch)
    _, m_wrong = f(batch._replace(action=0.4 - batch.action))  # mirrored: 0.2 + 0.5c -> 0.2 - 0.5c
    assert float(m_wrong["expert_diffusion_loss"]) > 1.2 * float(m["expert_diffusion_loss"])


@pytest.mark.parametrize("antithetic", [True, False])
def test_dbc_expert_term_draws_steps_like_the_official_loss(toy, antithetic):
    """The expert term is the batch-mean noise error at the model's step sampling: antithetic
    pairs (t, T-1-t) by default, as the official DBC loss draws them, uniform when told."""
    import dataclasses

    from jaxbc.diffusion import noise_prediction_error

    _, model = toy
    model = model.replace(config=dataclasses.replace(model.config, antithetic=antithetic))
    policy, params, batch = _policy_batch(n=64)
    key = jax.random.key(5)
    _, m = dbc_loss(policy, params, batch, key, model)
    k_t, k_eps = jax.random.split(key)
    t = sample_timesteps(k_t, 64, model.config.T, antithetic)
    x = jnp.concatenate(
        [model.normalize_obs(batch.raw_obs), model.normalize_action(batch.action)], -1
    )
    eps = jax.random.normal(k_eps, x.shape, x.dtype)
    want = noise_prediction_error(model.net, model.params, model.schedule, x, t, eps).mean()
    assert float(m["expert_diffusion_loss"]) == pytest.approx(float(want), rel=1e-6)


def test_gradients_skip_the_diffusion_model_and_reach_the_policy(toy):
    _, model = toy
    policy, params, batch = _policy_batch()
    key = jax.random.key(0)
    g_model = jax.grad(lambda d: dbc_loss(policy, params, batch, key, d, lambda_dm=1.0)[0])(model)
    for leaf in jax.tree.leaves(g_model):
        assert not np.asarray(leaf).any()
    dm_only = partial(
        dbc_loss,
        policy,
        batch=batch,
        key=key,
        diffusion=model,
        lambda_bc=0.0,
        lambda_dm=1.0,
        normalize_dm=False,
    )
    g_pol = jax.grad(lambda p: dm_only(p)[0])(params)
    assert any(np.asarray(leaf).any() for leaf in jax.tree.leaves(g_pol))
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(g_pol))


@pytest.mark.parametrize("kind", ["deterministic", "gaussian"])
def test_lambda_dm_zero_is_exactly_bc(toy, kind):
    _, model = toy
    policy, params, batch = _policy_batch(kind, members=3)
    key = jax.random.key(3)
    (l_bc, _), g_bc = jax.value_and_grad(lambda p: bc_loss(policy, p, batch, key), has_aux=True)(
        params
    )
    (l_dbc, m), g_dbc = jax.value_and_grad(
        lambda p: dbc_loss(policy, p, batch, key, model, lambda_dm=0.0), has_aux=True
    )(params)
    assert float(l_bc) == float(l_dbc) and float(m["dm_loss"]) >= 0
    jax.tree.map(np.testing.assert_array_equal, g_bc, g_dbc)


@pytest.mark.parametrize("normalize_actions", [False, True])
def test_dbc_ensemble_with_swarm_penalty_trains_inside_jit(toy, normalize_actions):
    ds, model = toy
    cfg = BCConfig(
        members=3,
        steps=20,
        batch_size=32,
        normalize_actions=normalize_actions,
        policy=PolicyConfig(hidden_sizes=(16, 16)),
    )
    res = jax.jit(make_bc_train(cfg, partial(dbc_loss, diffusion=model, lambda_dm=1.0, tau=0.5)))(
        jax.random.key(0), ds
    )
    for k in (
        "loss",
        "bc_loss",
        "swarm_penalty",
        "action_difference",
        "dm_loss",
        "agent_diffusion_loss",
        "expert_diffusion_loss",
    ):
        assert res.metrics[k].shape == (20,) and np.isfinite(np.asarray(res.metrics[k])).all(), k
    m = res.metrics
    # summed over the 3 members (metrics report member means); tau in the paper's units
    np.testing.assert_allclose(
        m["loss"],
        3 * m["bc_loss"] + 0.5 * m["swarm_penalty"] + 3 * m["dm_loss"],
        rtol=1e-5,
        atol=1e-5,
    )
    assert (np.asarray(m["action_difference"]) > 0).all()


def test_expert_pair_uses_raw_actions_whatever_the_policy_space(toy):
    """With z-scored policy actions the batch carries (a - m) / s; DBC maps them back to raw."""
    _, model = toy
    policy, params, batch = _policy_batch()
    m, s = jnp.array([0.3]), jnp.array([0.7])
    z_batch = batch._replace(action=(batch.action - m) / s, act_mean=m, act_std=s)
    _, raw = dbc_loss(policy, params, batch, jax.random.key(0), model)
    _, z = dbc_loss(policy, params, z_batch, jax.random.key(0), model)
    assert float(z["expert_diffusion_loss"]) == pytest.approx(
        float(raw["expert_diffusion_loss"]), rel=1e-5
    )
    # the agent's outputs are read in the policy's space too: same net output, different raw action
    assert float(z["agent_diffusion_loss"]) != pytest.approx(
        float(raw["agent_diffusion_loss"]), rel=1e-5
    )


def test_save_load_round_trip_and_corrupt_files(toy, tmp_path):
    _, model = toy
    save(model, tmp_path / "m")
    back = load(tmp_path / "m")
    assert (
        back.config == model.config
        and back.observation_shape == (1,)
        and back.act_dim == 1
        and back.env_id == "toy"
    )
    jax.tree.map(
        np.testing.assert_array_equal,
        (model.params, model.obs_mean, model.act_std, model.losses),
        (back.params, back.obs_mean, back.act_std, back.losses),
    )
    draw = jax.jit(sample, static_argnums=2)
    np.testing.assert_array_equal(
        draw(model, jax.random.key(5), 8)[1], draw(back, jax.random.key(5), 8)[1]
    )
    (tmp_path / "m" / "params.msgpack").write_bytes(b"not msgpack at all")
    with pytest.raises(ValueError, match="corrupt"):
        load(tmp_path / "m")
    save(model, tmp_path / "m")
    spec = json.loads((tmp_path / "m" / "artifact.json").read_text())
    spec["config"]["hidden"] = 32  # params no longer match the description
    (tmp_path / "m" / "artifact.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="does not match"):
        load(tmp_path / "m")
    (tmp_path / "m" / "artifact.json").write_text("{truncated")
    with pytest.raises(ValueError, match="not a valid diffusion model"):
        load(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="no saved diffusion model"):
        load(tmp_path / "nothing")


def test_bad_inputs_give_clear_errors(toy):
    _, model = toy
    with pytest.raises(ValueError, match="continuous Box actions"):
        make_diffusion_train(DiffusionConfig(T=10, hidden=8, steps=2))(
            jax.random.key(0), toy_dataset(50, discrete=True)
        )
    with pytest.raises(ValueError, match="T must be a positive integer"):
        make_diffusion_train(DiffusionConfig(T=0))
    cat = make_policy(PolicyConfig(kind="categorical", hidden_sizes=(8,)), Discrete(2), (1,))
    obs = jnp.zeros((4, 1))
    batch = Batch(obs, jnp.zeros(4, jnp.int32), obs, jnp.zeros(()), jnp.ones(()))
    with pytest.raises(ValueError, match="not a categorical one"):
        dbc_loss(cat, init_ensemble(cat, jax.random.key(0), 1), batch, jax.random.key(0), model)
    policy, params, batch = _policy_batch()
    with pytest.raises(ValueError, match="needs batch.raw_obs"):
        dbc_loss(policy, params, Batch(batch.obs, batch.action), jax.random.key(0), model)
    wide = make_policy(PolicyConfig(hidden_sizes=(8,)), BOX, (3,))
    obs3 = jnp.zeros((4, 3))
    with pytest.raises(ValueError, match=r"observations of shape \(1,\)"):
        dbc_loss(
            wide,
            init_ensemble(wide, jax.random.key(0), 1),
            Batch(obs3, jnp.zeros((4, 1)), obs3, jnp.zeros(1), jnp.ones(1)),
            jax.random.key(0),
            model,
        )


def run_cli(capsys, *argv) -> dict:
    main(list(argv))
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def pendulum_file(tmp_path_factory):
    env = envs.make("Pendulum-v1", max_steps_in_episode=20)
    ds = collect_policy(env, random_policy(env.action_space), None, 3, jax.random.key(0))
    return save_dataset(ds, tmp_path_factory.mktemp("data") / "pendulum.npz")


def test_cli_diffusion_then_dbc(capsys, tmp_path, pendulum_file):
    res = run_cli(
        capsys,
        "diffusion",
        "--dataset",
        str(pendulum_file),
        "--out",
        str(tmp_path / "dm"),
        "--steps",
        "50",
        "--hidden",
        "32",
        "--timesteps",
        "50",
        "--json",
    )
    assert (
        res["env"] == "Pendulum-v1" and res["transitions"] == 60 and np.isfinite(res["final_loss"])
    )
    assert load(tmp_path / "dm").config.hidden == 32
    common = (
        "--dataset",
        str(pendulum_file),
        "--method",
        "dbc",
        "--hidden",
        "16",
        "16",
        "--eval-episodes",
        "2",
        "--json",
    )
    out = run_cli(
        capsys,
        "bc",
        *common,
        "--steps",
        "20",
        "--diffusion",
        str(tmp_path / "dm"),
        "--lambda-dm",
        "0.5",
    )
    for k in (
        "mean_return",
        "scaled_return",
        "action_difference",
        "final_loss",
        "members",
        "tau",
        "lambda_dm",
    ):
        assert k in out, k
    assert (
        out["method"] == "dbc"
        and out["members"] == 1
        and out["tau"] == 0.0
        and out["lambda_dm"] == 0.5
    )
    assert np.isfinite(out["final_dm_loss"])
    # without --diffusion a default-config model is trained first
    out2 = run_cli(capsys, "bc", *common, "--steps", "5", "--diffusion-steps", "3")
    assert out2["lambda_dm"] == 0.2 and np.isfinite(out2["mean_return"])


def test_cli_dbc_rejects_discrete_datasets(capsys, tmp_path):
    env = envs.make("CartPole-v1", max_steps_in_episode=10)
    data = save_dataset(
        collect_policy(env, random_policy(env.action_space), None, 2, jax.random.key(0)),
        tmp_path / "cp.npz",
    )
    with pytest.raises(SystemExit) as e:
        main(["bc", "--dataset", str(data), "--method", "dbc", "--steps", "2", "--json"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert (
        "error: the diffusion model (DBC) needs continuous Box actions" in err
        and "Traceback" not in err
    )
    with pytest.raises(SystemExit):
        main(["diffusion", "--dataset", str(data), "--out", str(tmp_path / "dm"), "--steps", "2"])
    assert "continuous Box actions" in capsys.readouterr().err
