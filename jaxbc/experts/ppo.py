"""PPO expert trainer in the purejaxrl style: a whole training run is one jittable function.

``make_train(config)(key)`` runs ``num_updates`` PPO updates under one ``lax.scan``; it can be
``jit``-ed and ``vmap``-ed over seeds. For progress bars and resumable checkpoints the same
pieces are exposed separately: ``make_ppo(config)`` gives ``init(key) -> state`` and
``update(state) -> (state, metrics)``, which the CLI scans in chunks.

Details that matter for sound experts: time-limit truncations bootstrap from the value of
the final (pre-reset) observation; observations can be normalised with running statistics
(the statistics used to act are the ones stored, so the ratio stays exact); rewards can be
scaled by the running std of the discounted return.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import distrax
import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

from jaxbc import envs
from jaxbc.envs import Env
from jaxbc.logs import host_callback
from jaxbc.networks import ActorCritic
from jaxbc.normalize import RunningStats
from jaxbc.rollout import RolloutCarry, init_carry, unroll


@dataclass(frozen=True)
class PPOConfig:
    """Every number of a PPO run. Presets per env live in :mod:`jaxbc.experts.presets`."""

    env_id: str = "CartPole-v1"
    env_options: tuple[tuple[str, Any], ...] = ()  # e.g. (("backend", "spring"),)
    total_timesteps: int = 500_000
    num_envs: int = 16
    num_steps: int = 128
    update_epochs: int = 4
    num_minibatches: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    lr: float = 2.5e-4
    anneal_lr: bool = True
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    init_log_std: float = 0.0
    normalize_obs: bool = False
    normalize_reward: bool = False
    reward_scale: float = 1.0

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return max(1, self.total_timesteps // self.steps_per_update)

    def __post_init__(self):
        from jaxbc.validation import check_choice, check_float, check_int, check_sizes

        for name in (
            "num_envs",
            "num_steps",
            "update_epochs",
            "num_minibatches",
            "total_timesteps",
        ):
            check_int(f"PPOConfig.{name}", getattr(self, name), 1)
        for name in ("gamma", "gae_lambda"):
            check_float(f"PPOConfig.{name}", getattr(self, name), 0.0, 1.0)
        for name in ("lr", "clip_eps", "max_grad_norm", "reward_scale"):
            check_float(f"PPOConfig.{name}", getattr(self, name), 0.0, lo_open=True)
        for name in ("ent_coef", "vf_coef"):
            check_float(f"PPOConfig.{name}", getattr(self, name), 0.0)
        check_float("PPOConfig.init_log_std", self.init_log_std)
        check_sizes("PPOConfig.hidden_sizes", self.hidden_sizes)
        from jaxbc.networks import ACTIVATIONS

        check_choice("PPOConfig.activation", self.activation, sorted(ACTIVATIONS))

    def validate(self) -> PPOConfig:
        envs.family_of(self.env_id)  # raises on unknown ids
        if self.steps_per_update % self.num_minibatches:
            raise ValueError(
                f"num_envs * num_steps ({self.steps_per_update}) must be divisible by "
                f"num_minibatches ({self.num_minibatches})"
            )
        for name in (
            "num_envs",
            "num_steps",
            "update_epochs",
            "num_minibatches",
            "total_timesteps",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"PPOConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.total_timesteps < self.steps_per_update:
            raise ValueError(
                f"PPOConfig.total_timesteps ({self.total_timesteps}) must be >= one update's "
                f"num_envs * num_steps = {self.steps_per_update} steps"
            )
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["env_options"] = [list(kv) for kv in self.env_options]
        d["hidden_sizes"] = list(self.hidden_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PPOConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["env_options"] = tuple(tuple(kv) for kv in d.get("env_options", ()))
        d["hidden_sizes"] = tuple(d.get("hidden_sizes", (64, 64)))
        return cls(**d)

    def make_env(self) -> Env:
        return envs.make(self.env_id, **dict(self.env_options))


def make_network(config: PPOConfig, env: Env) -> ActorCritic:
    space = env.action_space
    return ActorCritic(
        action_dim=space.n if env.discrete else space.shape[0],
        discrete=env.discrete,
        obs_ndim=len(env.observation_shape),
        hidden_sizes=config.hidden_sizes,
        activation=config.activation,
        init_log_std=config.init_log_std,
    )


def distribution(actor_out, discrete: bool) -> distrax.Distribution:
    if discrete:
        return distrax.Categorical(logits=actor_out)
    mean, log_std = actor_out
    return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))


class Transition(NamedTuple):
    obs: jax.Array  # normalised, as the policy saw it
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    next_value: jax.Array  # value of the pre-reset next observation
    reward: jax.Array  # scaled reward used for learning
    terminated: jax.Array
    done: jax.Array


class PPOState(NamedTuple):
    train_state: TrainState
    obs: jax.Array  # raw observations of the running envs
    env_state: Any
    obs_stats: RunningStats
    ret_stats: RunningStats  # running discounted-return statistics for reward scaling
    disc_return: jax.Array  # per-env discounted return (reward scaling)
    ep_return: jax.Array  # per-env undiscounted return of the running episode
    key: jax.Array
    update: jax.Array  # number of updates done


class PPO(NamedTuple):
    config: PPOConfig
    env: Env
    network: ActorCritic
    init: Any  # (key) -> PPOState
    update: Any  # (PPOState) -> (PPOState, metrics)


def make_ppo(
    config: PPOConfig,
    env: Env | None = None,
    progress: Callable[[int, dict[str, float]], Any] | None = None,
) -> PPO:
    """The PPO pieces for ``config``. ``progress(update, metrics)`` (a
    :class:`jaxbc.logs.Logger`'s ``log``) is called on the host through
    ``jax.debug.callback`` after every update with its metrics (``episode_return``, losses,
    ``approx_kl``, ...); ``None`` adds nothing to the program."""
    config.validate()
    env = env or config.make_env()
    net = make_network(config, env)
    n_env, n_steps = config.num_envs, config.num_steps
    batch = config.steps_per_update
    mb = batch // config.num_minibatches
    total_grad_steps = config.num_updates * config.update_epochs * config.num_minibatches
    lr = optax.linear_schedule(config.lr, 0.0, total_grad_steps) if config.anneal_lr else config.lr
    tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr, eps=1e-5))

    def normalize(stats: RunningStats, obs):
        return stats.normalize(obs) if config.normalize_obs else obs

    def init(key: jax.Array) -> PPOState:
        k_net, k_env, key = jax.random.split(key, 3)
        params = net.init(k_net, jnp.zeros((1, *env.observation_shape)))
        ts = TrainState.create(apply_fn=net.apply, params=params, tx=tx)
        obs, env_state = init_carry(env, k_env, n_env)[:2]
        zeros = jnp.zeros((n_env,), jnp.float32)
        return PPOState(
            ts,
            obs,
            env_state,
            RunningStats.create(env.observation_shape),
            RunningStats.create(()),
            zeros,
            zeros,
            key,
            jnp.zeros((), jnp.int32),
        )

    def collect(s: PPOState, key: jax.Array):
        """``n_steps`` steps of every env on the shared :func:`jaxbc.rollout.unroll`."""
        params = s.train_state.params

        def actor(obs, k):
            obs_n = normalize(s.obs_stats, obs)
            actor_out, value = net.apply(params, obs_n)
            pi = distribution(actor_out, env.discrete)
            action = pi.sample(seed=k)
            return action, (obs_n, pi.log_prob(action), value)

        carry = RolloutCarry(s.obs, s.env_state, s.ep_return, jnp.zeros((n_env,), jnp.int32))
        carry, _, st = unroll(env, actor, key, carry, n_steps, emit=lambda x: x._replace(info=None))
        obs_n, log_prob, value = st.aux
        next_value = net.apply(
            params, normalize(s.obs_stats, st.next_obs), method=ActorCritic.value
        )

        def discounted(prev, x):  # running discounted return, for reward scaling
            reward, done = x
            disc = prev * config.gamma + reward
            return jnp.where(done, 0.0, disc), disc

        disc_last, disc = jax.lax.scan(discounted, s.disc_return, (st.reward, st.done))
        r = st.reward * config.reward_scale
        if config.normalize_reward:
            r = r / jnp.sqrt(s.ret_stats.var + 1e-8)
        traj = Transition(obs_n, st.action, log_prob, value, next_value, r, st.terminated, st.done)
        raw_obs = jnp.concatenate([st.obs[1:], carry.obs[None]])  # observations after each step
        s = s._replace(
            obs=carry.obs,
            env_state=carry.env_state,
            disc_return=disc_last,
            ep_return=carry.ep_return,
        )
        return s, (traj, (st.episode_return, st.done, disc), raw_obs)

    def gae(traj: Transition):
        def body(adv_next, t: Transition):
            delta = t.reward + config.gamma * t.next_value * (1 - t.terminated) - t.value
            adv = delta + config.gamma * config.gae_lambda * (1 - t.done) * adv_next
            return adv, adv

        _, adv = jax.lax.scan(body, jnp.zeros((n_env,)), traj, reverse=True)
        return adv, adv + traj.value

    def loss_fn(params, t: Transition, adv, target):
        actor_out, value = net.apply(params, t.obs)
        pi = distribution(actor_out, env.discrete)
        log_prob = pi.log_prob(t.action)
        v_clipped = t.value + (value - t.value).clip(-config.clip_eps, config.clip_eps)
        v_loss = 0.5 * jnp.maximum((value - target) ** 2, (v_clipped - target) ** 2).mean()
        ratio = jnp.exp(log_prob - t.log_prob)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg_loss = -jnp.minimum(
            ratio * adv, ratio.clip(1 - config.clip_eps, 1 + config.clip_eps) * adv
        ).mean()
        entropy = pi.entropy().mean()
        total = pg_loss + config.vf_coef * v_loss - config.ent_coef * entropy
        approx_kl = ((ratio - 1) - jnp.log(ratio)).mean()
        return total, {
            "pg_loss": pg_loss,
            "v_loss": v_loss,
            "entropy": entropy,
            "approx_kl": approx_kl,
        }

    def update(s: PPOState):
        key, k_roll, k_epochs = jax.random.split(s.key, 3)
        s, (traj, (ep_ret, ep_done, disc), raw_obs) = collect(s._replace(key=key), k_roll)
        adv, target = gae(traj)

        def epoch(ts, k):
            perm = jax.random.permutation(k, batch)
            data = jax.tree.map(lambda x: x.reshape(batch, *x.shape[2:])[perm], (traj, adv, target))
            data = jax.tree.map(lambda x: x.reshape(config.num_minibatches, mb, *x.shape[1:]), data)

            def minibatch(ts, d):
                grads, aux = jax.grad(loss_fn, has_aux=True)(ts.params, *d)
                return ts.apply_gradients(grads=grads), aux

            return jax.lax.scan(minibatch, ts, data)

        ts, losses = jax.lax.scan(
            epoch, s.train_state, jax.random.split(k_epochs, config.update_epochs)
        )
        obs_stats = s.obs_stats.update(raw_obs) if config.normalize_obs else s.obs_stats
        ret_stats = s.ret_stats.update(disc) if config.normalize_reward else s.ret_stats
        s = s._replace(
            train_state=ts, obs_stats=obs_stats, ret_stats=ret_stats, update=s.update + 1
        )
        n_done = ep_done.sum()
        metrics = {
            "episode_return": jnp.where(n_done > 0, ep_ret.sum() / jnp.maximum(n_done, 1), jnp.nan),
            "episodes": n_done,
            "env_steps": s.update * batch,
            **jax.tree.map(jnp.mean, losses),
        }
        if progress is not None:
            jax.debug.callback(host_callback(progress), s.update, metrics)
        return s, metrics

    return PPO(config, env, net, init, update)


def make_train(config: PPOConfig):
    """``train(key) -> (PPOState, metrics)``: the whole run, one scan; jit/vmap it freely."""
    ppo = make_ppo(config)

    def train(key: jax.Array):
        return jax.lax.scan(
            lambda s, _: ppo.update(s), ppo.init(key), None, length=config.num_updates
        )

    return train
