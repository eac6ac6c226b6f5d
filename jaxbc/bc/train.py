"""The BC trainer: ``make_bc_train(config, loss_fn)`` -> ``train(key, dataset) -> BCResult``.

The whole optimisation (normalisation, member initialisation, minibatch sampling, optax
with schedule and clipping, periodic evaluation) is one traced function: ``jit`` it,
``vmap`` it over seeds, or build it inside a ``vmap`` over hyperparameters::

    def run(key, tau, lr):
        cfg = dataclasses.replace(base, lr=lr)
        return make_bc_train(cfg, partial(swarm_bc_loss, tau=tau))(key, data)
    jax.jit(jax.vmap(run))(keys, taus, lrs)      # one compiled program for the sweep
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax
from flax import serialization, struct

from jaxbc import envs
from jaxbc.bc.losses import Batch, bc_loss
from jaxbc.bc.policies import (
    Policy,
    PolicyConfig,
    ensemble_action,
    ensemble_apply,
    init_ensemble,
    make_policy,
)
from jaxbc.data import Dataset, normalization_stats
from jaxbc.envs import ActionSpace, Box, Discrete, space_from_dict
from jaxbc.io import atomic_write_bytes, atomic_write_json
from jaxbc.rollout import PolicyFn, evaluate_fn
from jaxbc.validation import check_bc_config

SCHEDULES = ("constant", "cosine", "linear")


@dataclass(frozen=True)
class BCConfig:
    """Everything a BC run needs besides the loss. ``members > 1`` trains an ensemble."""

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    members: int = 1
    steps: int = 5_000
    batch_size: int = 256
    lr: float = 1e-3
    schedule: str = "constant"  # constant | cosine | linear (decay to 0)
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    normalize_obs: bool = True
    normalize_actions: bool = False  # continuous only: regress z-scored actions
    eval_every: int = 0  # >0: evaluate on the dataset's env every this many steps (inside jit)
    eval_episodes: int = 10

    def __post_init__(self):
        check_bc_config(self)

    def validate(self) -> BCConfig:
        check_bc_config(self)
        if isinstance(self.members, int) and self.members < 1:
            raise ValueError(f"members must be >= 1, got {self.members}")
        if isinstance(self.steps, int) and self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose from {SCHEDULES}")
        if self.eval_every and self.steps % self.eval_every:
            raise ValueError(f"steps ({self.steps}) must be a multiple of eval_every ({self.eval_every})")
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["policy"]["hidden_sizes"] = list(self.policy.hidden_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> BCConfig:
        d = dict(d)
        pol = dict(d.pop("policy", {}))
        if "hidden_sizes" in pol:
            pol["hidden_sizes"] = tuple(pol["hidden_sizes"])
        return cls(policy=PolicyConfig(**pol), **d)


@struct.dataclass
class BCResult:
    """Trained (ensemble) policy. ``params`` plugs into ``policy_fn()``; ``metrics`` are per step."""

    params: Any  # {"net": member-stacked params, "obs_mean", "obs_std", "act_mean", "act_std"}
    metrics: dict  # each [steps]
    eval_returns: jax.Array  # [num_evals] mean return at each periodic evaluation (empty if none)
    config: BCConfig = struct.field(pytree_node=False)
    env_id: str = struct.field(pytree_node=False)
    action_space: ActionSpace = struct.field(pytree_node=False)
    observation_shape: tuple[int, ...] = struct.field(pytree_node=False)
    env_options: tuple = struct.field(pytree_node=False, default=())

    @property
    def policy(self) -> Policy:
        return net_policy(self.config, self.action_space, self.observation_shape)

    def policy_fn(self, deterministic: bool = True) -> PolicyFn:
        return make_policy_fn(self.config, self.action_space, self.observation_shape, deterministic)

    def make_env(self):
        return envs.make(self.env_id, **dict(self.env_options))

    def member(self, i: int) -> BCResult:
        """The ``i``-th member as a one-member result (e.g. to evaluate members alone)."""
        params = dict(self.params, net=jax.tree.map(lambda x: x[i : i + 1], self.params["net"]))
        return self.replace(params=params)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        atomic_write_bytes(directory / "params.msgpack", serialization.to_bytes(self.params))
        atomic_write_json(
            directory / "policy.json",
            {
                "format_version": 1,
                "env_id": self.env_id,
                "env_options": [list(kv) for kv in self.env_options],
                "observation_shape": list(self.observation_shape),
                "action_space": self.action_space.to_dict(),
                "config": self.config.to_dict(),
            },
        )
        return directory


def load_policy(directory: str | Path) -> BCResult:
    """Load a policy saved with :meth:`BCResult.save`."""
    directory = Path(directory)
    if not (directory / "policy.json").exists():
        raise FileNotFoundError(f"no saved policy at {str(directory)!r} (policy.json missing)")
    spec = json.loads((directory / "policy.json").read_text())
    config = BCConfig.from_dict(spec["config"])
    space = space_from_dict(spec["action_space"])
    obs_shape = tuple(spec["observation_shape"])
    template = _init_params(config, space, obs_shape, jax.random.key(0))
    try:
        params = serialization.from_bytes(template, (directory / "params.msgpack").read_bytes())
    except Exception as e:
        raise ValueError(f"{directory / 'params.msgpack'} is corrupt or does not match policy.json: {e}") from e
    return BCResult(
        params, {}, jnp.zeros((0,)), config, spec["env_id"], space, obs_shape,
        tuple(tuple(kv) for kv in spec.get("env_options", [])),
    )


def net_policy(config: BCConfig, space: ActionSpace, obs_shape: tuple[int, ...]) -> Policy:
    pol_cfg = config.policy
    if config.normalize_actions and isinstance(space, Box):
        # bounds in z-space are data dependent, so a normalised-action net is left unbounded
        pol_cfg = PolicyConfig(**{**asdict(pol_cfg), "tanh_bounded": False})
    return make_policy(pol_cfg, space, obs_shape)


def _init_params(config: BCConfig, space: ActionSpace, obs_shape, key) -> dict:
    policy = net_policy(config, space, obs_shape)
    act_shape = space.shape if isinstance(space, Box) else ()
    return {
        "net": init_ensemble(policy, key, config.members),
        "obs_mean": jnp.zeros(obs_shape),
        "obs_std": jnp.ones(obs_shape),
        "act_mean": jnp.zeros(act_shape),
        "act_std": jnp.ones(act_shape),
    }


def make_policy_fn(
    config: BCConfig, space: ActionSpace, obs_shape: tuple[int, ...], deterministic: bool = True
) -> PolicyFn:
    """``(params, obs, key) -> action`` for one raw observation (normalisation inside)."""
    return _policy_fn_cached(config, space, tuple(obs_shape), deterministic)


_PF_CACHE: dict = {}


def _policy_fn_cached(config, space, obs_shape, deterministic):
    k = (config, space, obs_shape, deterministic)
    if k not in _PF_CACHE:
        policy = net_policy(config, space, obs_shape)

        def policy_fn(params, obs, key):
            x = (obs - params["obs_mean"]) / params["obs_std"]
            outputs = ensemble_apply(policy, params["net"], x[None])
            outputs = jax.tree.map(lambda o: o[:, 0] if o.ndim > 1 else o, outputs)
            a = ensemble_action(policy, outputs, key, deterministic)
            if isinstance(space, Box):
                a = space.clip(a * params["act_std"] + params["act_mean"])
            return a

        _PF_CACHE[k] = policy_fn
    return _PF_CACHE[k]


LossFn = Callable[..., tuple[jax.Array, dict]]


def make_optimizer(config: BCConfig) -> optax.GradientTransformation:
    """Gradient clipping then Adam(W) with the configured schedule (lr may be traced)."""
    warmup = config.warmup_steps
    decay_steps = max(1, config.steps - warmup)
    decay = {
        "constant": lambda: optax.constant_schedule(config.lr),
        "cosine": lambda: optax.cosine_decay_schedule(config.lr, decay_steps),
        "linear": lambda: optax.linear_schedule(config.lr, 0.0, decay_steps),
    }[config.schedule]()
    lr = optax.join_schedules([optax.linear_schedule(0.0, config.lr, warmup), decay], [warmup]) if warmup else decay
    adam = optax.adamw(lr, weight_decay=config.weight_decay) if config.weight_decay else optax.adam(lr)
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), adam)


def make_bc_train(
    config: BCConfig, loss_fn: LossFn = bc_loss, progress: Callable[[int], Any] | None = None, progress_every: int = 100
):
    """Build ``train(key, dataset) -> BCResult``; ``loss_fn(policy, params, batch, key)``.

    ``progress(n)``: called on the host (``jax.debug.callback``) with the number of steps
    done since its last call, every ``progress_every`` steps (with ``eval_every``: after each
    evaluation chunk); ``None`` (default) adds nothing to the program."""
    config.validate()
    tx = make_optimizer(config)

    def train(
        key: jax.Array, dataset: Dataset, num_valid: jax.Array | int | None = None, init_net: Any = None
    ) -> BCResult:
        """Train on ``dataset``; with ``num_valid`` only its first ``num_valid`` transitions
        are used (a traced value: one program serves every dataset size up to capacity).
        ``init_net`` warm-starts from member-stacked network params instead of a fresh init."""
        space, obs_shape = dataset.action_space, tuple(dataset.observation_shape)
        policy = net_policy(config, space, obs_shape)
        obs = jnp.asarray(dataset.obs, jnp.float32)
        actions = jnp.asarray(dataset.action)
        n = obs.shape[0]
        chex.assert_shape(obs, (n, *obs_shape))
        stats = normalization_stats(dataset, num_valid)
        count = n if num_valid is None else num_valid
        k_init, k_train, k_eval = jax.random.split(key, 3)
        params = _init_params(config, space, obs_shape, k_init)
        if init_net is not None:
            params["net"] = init_net
        if config.normalize_obs:
            params.update(obs_mean=stats.obs_mean, obs_std=stats.obs_std)
        if config.normalize_actions and isinstance(space, Box):
            params.update(act_mean=stats.action_mean, act_std=stats.action_std)
        x = (obs - params["obs_mean"]) / params["obs_std"]
        y = actions if isinstance(space, Discrete) else (actions - params["act_mean"]) / params["act_std"]
        opt_state = tx.init(params["net"])

        def step(carry, k):
            net, opt_state = carry
            k_idx, k_loss = jax.random.split(k)
            idx = jax.random.randint(k_idx, (config.batch_size,), 0, count)
            batch = Batch(x[idx], y[idx], obs[idx], params["act_mean"], params["act_std"])
            grads, metrics = jax.grad(lambda p: loss_fn(policy, p, batch, k_loss), has_aux=True)(net)
            updates, opt_state = tx.update(grads, opt_state, net)
            return (optax.apply_updates(net, updates), opt_state), metrics

        def tracked(carry, xs):  # step, then report progress every progress_every steps
            k, i = xs
            done = (i + 1) % progress_every
            n = jnp.where(done == 0, progress_every, done)
            jax.lax.cond((done == 0) | (i == config.steps - 1), lambda: jax.debug.callback(progress, n), lambda: None)
            return step(carry, k)

        carry = (params["net"], opt_state)
        if config.eval_every:
            env = envs.make(dataset.env_id, **dict(dataset.env_options))
            ev = evaluate_fn(env, make_policy_fn(config, space, obs_shape), config.eval_episodes)

            def chunk(carry, k):
                k_steps, k_ev = jax.random.split(k)
                carry, metrics = jax.lax.scan(step, carry, jax.random.split(k_steps, config.eval_every))
                ret = ev(dict(params, net=carry[0]), k_ev).mean_return
                if progress is not None:
                    jax.debug.callback(progress, config.eval_every)
                return carry, (metrics, ret)

            n_chunks = config.steps // config.eval_every
            carry, (metrics, eval_returns) = jax.lax.scan(chunk, carry, jax.random.split(k_train, n_chunks))
            metrics = jax.tree.map(lambda m: m.reshape(-1), metrics)
        else:
            keys = jax.random.split(k_train, config.steps)
            if progress is None:
                carry, metrics = jax.lax.scan(step, carry, keys)
            else:
                carry, metrics = jax.lax.scan(tracked, carry, (keys, jnp.arange(config.steps)))
            eval_returns = jnp.zeros((0,))
        return BCResult(
            dict(params, net=carry[0]), metrics, eval_returns, config, dataset.env_id, space, obs_shape,
            tuple(dataset.env_options),
        )

    return train
