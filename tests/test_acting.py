"""The one policy-function factory (jaxbc.bc.acting): a zoo expert, a trained BC policy and a
HaDES policy act exactly (bitwise) as their networks' apply, the normaliser's formula and
the action head written out by hand say, on fixed observations and keys."""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbc.bc import BCConfig, PolicyConfig, train_bc
from jaxbc.bc.acting import ActionHead, ObsNormalizer, Single, policy_function
from jaxbc.data.dataset import collect_policy
from jaxbc.experts import load_expert
from jaxbc.experts.scripted import scripted_expert
from jaxbc.hades import HadesConfig, make_hades, make_strategy, solution_template
from jaxbc.networks import ActorCritic

N = 32
KEYS = jax.random.split(jax.random.key(7), N)


def _obs(shape, scale=3.0):
    return scale * jax.random.normal(jax.random.key(3), (N, *shape))


def _acts(fn, params, obs):
    """One observation and key at a time, as rollouts call policy functions."""
    return np.asarray(jax.jit(jax.vmap(fn, in_axes=(None, 0, 0)))(params, obs, KEYS))


@pytest.mark.parametrize("deterministic", [True, False])
def test_zoo_expert_acts_as_its_actor_on_clipped_running_zscores(deterministic):
    expert = load_expert("Pendulum-v1")  # normalize_obs=True: running moments, clip 10
    env = expert.make_env()
    net = expert.network(env)
    stats = expert.params["obs_stats"]

    def by_hand(params, obs, key, clip=10.0):
        z = (obs - params["obs_stats"].mean) / jnp.sqrt(params["obs_stats"].var + 1e-8)
        if clip is not None:
            z = jnp.clip(z, -clip, clip)
        out = net.apply(params["net"], z, method=ActorCritic.policy)
        if deterministic:
            return out.out
        return distrax.MultivariateNormalDiag(out.out, jnp.exp(out.log_std)).sample(seed=key)

    obs = stats.mean + 30.0 * jnp.sqrt(stats.var) * jax.random.normal(jax.random.key(3), (N, 3))
    got = _acts(expert.policy_fn(deterministic, env), expert.params, obs)
    assert np.array_equal(got, _acts(by_hand, expert.params, obs))
    # the observations reach the clip, so a normaliser without it acts otherwise
    unclipped = _acts(lambda p, o, k: by_hand(p, o, k, None), expert.params, obs)
    assert not np.array_equal(got, unclipped)
    assert not deterministic or np.abs(got).max() > 0  # (mean actions are not all zero)


def test_zoo_expert_without_normaliser_samples_its_categorical():
    expert = load_expert("CartPole-v1")  # normalize_obs=False: raw observations
    env = expert.make_env()
    net = expert.network(env)

    def by_hand(params, obs, key):
        logits = net.apply(params["net"], obs, method=ActorCritic.policy).out
        return distrax.Categorical(logits=logits).sample(seed=key)

    obs = _obs(env.observation_shape, 0.5)
    got = _acts(expert.policy_fn(False, env), expert.params, obs)
    assert got.dtype == np.int32 and np.array_equal(got, _acts(by_hand, expert.params, obs))
    assert len(set(got.tolist())) == 2  # both actions are drawn


@pytest.fixture(scope="module")
def demos():
    expert = load_expert("Pendulum-v1")
    return collect_policy(
        expert.make_env(), expert.policy_fn(), expert.params, 1, jax.random.key(1)
    )


@pytest.mark.parametrize("deterministic", [True, False])
def test_trained_bc_ensemble_acts_as_its_members_on_dataset_zscores(demos, deterministic):
    cfg = BCConfig(
        policy=PolicyConfig(hidden_sizes=(16,), kind="gaussian"),
        members=2,
        steps=20,
        batch_size=32,
        normalize_actions=True,
    )
    result = train_bc(cfg, jax.random.key(2), demos)
    policy, space = result.policy, result.action_space
    low, high = jnp.asarray(space.low), jnp.asarray(space.high)

    def by_hand(params, obs, key):
        z = (obs - params["obs_mean"]) / params["obs_std"]
        outs = jax.vmap(policy.apply, in_axes=(0, None))(params["net"], z[None])
        means = outs.out[:, 0]  # [members, d]
        if deterministic:
            a = means.mean(0)
        else:
            ks = jax.random.split(key, 2)
            scales = jnp.exp(outs.log_std)
            samples = [
                distrax.MultivariateNormalDiag(means[m], scales[m]).sample(seed=ks[m])
                for m in range(2)
            ]
            a = jnp.clip(jnp.stack(samples), low, high).mean(0)
        return jnp.clip(a * params["act_std"] + params["act_mean"], low, high)

    obs = _obs(result.observation_shape)
    got = _acts(result.policy_fn(deterministic), result.params, obs)
    assert np.array_equal(got, _acts(by_hand, result.params, obs))
    assert float(result.params["act_std"][0]) != 1.0  # the action unnormaliser is exercised


@pytest.mark.parametrize("deterministic", [True, False])
def test_hades_policy_acts_as_its_network_on_raw_observations(deterministic):
    cfg = HadesConfig(
        env_id="CartPole-v1",
        dataset_size=4,
        inner_steps=5,
        num_envs=2,
        policy=PolicyConfig(hidden_sizes=(8, 8)),
        deterministic_eval=deterministic,
    )
    h = make_hades(cfg, make_strategy("SNES", 4, solution_template(cfg), sigma=0.5))
    params = {"net": h.policy.init(jax.random.key(5))}

    def by_hand(params, obs, key):
        logits = h.policy.apply(params["net"], obs[None]).out[0]
        if deterministic:
            return jnp.argmax(logits).astype(jnp.int32)
        return distrax.Categorical(logits=logits).sample(seed=key)

    obs = _obs(h.env.observation_shape)
    got = _acts(h.policy_fn(), params, obs)
    assert np.array_equal(got, _acts(by_hand, params, obs))


def test_equal_parts_make_equal_policy_functions_and_the_normaliser_is_checked():
    expert = load_expert("Pendulum-v1")
    assert expert.policy_fn(True) == load_expert("Pendulum-v1").policy_fn(True)
    assert expert.policy_fn(True) != expert.policy_fn(False)
    h = make_hades(
        HadesConfig(env_id="CartPole-v1", dataset_size=4, num_envs=2),
        make_strategy("SNES", 4, solution_template(HadesConfig(env_id="CartPole-v1"))),
    )
    fn = policy_function(Single(h.policy), ActionHead("categorical"))
    assert hash(fn) == hash(policy_function(Single(h.policy), ActionHead("categorical")))
    with pytest.raises(ValueError, match="unknown moments"):
        ObsNormalizer("minmax")
    with pytest.raises(ValueError, match="must be a Box"):
        policy_function(Single(h.policy), ActionHead("categorical"), action_box=h.env.action_space)


def test_gaussian_ensemble_samples_each_action_dimension_with_its_own_std():
    expert = scripted_expert("TwoGoals2D-v0")  # 2-D actions in [-1, 1]
    env = expert.make_env()
    data = expert.demonstrations(env, 2, jax.random.key(1))
    cfg = BCConfig(policy=PolicyConfig(hidden_sizes=(16,), kind="gaussian"), members=2, steps=5)
    result = train_bc(cfg, jax.random.key(2), data)
    net = result.params["net"]
    log_std = jnp.asarray([[-2.0, 0.5], [0.3, -1.0]])  # per member, per dimension
    params = dict(result.params, net={"params": dict(net["params"], log_std=log_std)})
    policy = result.policy

    def by_hand(params, obs, key):
        z = (obs - params["obs_mean"]) / params["obs_std"]
        means = jax.vmap(policy.apply, in_axes=(0, None))(params["net"], z[None]).out[:, 0]
        ks = jax.random.split(key, 2)
        samples = jax.vmap(
            lambda mean, ls, k: distrax.MultivariateNormalDiag(mean, jnp.exp(ls)).sample(seed=k)
        )(means, params["net"]["params"]["log_std"], ks)
        a = jnp.clip(samples, -1.0, 1.0).mean(0)
        return jnp.clip(a * params["act_std"] + params["act_mean"], -1.0, 1.0)

    obs = _obs(result.observation_shape, 0.3)
    got = _acts(result.policy_fn(False), params, obs)
    assert np.array_equal(got, _acts(by_hand, params, obs))
