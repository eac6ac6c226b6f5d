"""DDPM over joint state-action vectors ``x = [s, a]``, the expert model of Diffusion-BC.

``make_diffusion_train(config)`` -> ``train(key, dataset) -> DiffusionModel``: states and
actions are z-scored with the dataset's statistics and clamped to ``+-clamp``, then the
noise network is fitted with the epsilon-prediction MSE. The whole run is one ``lax.scan``,
so ``train`` can be jitted and vmapped over seeds. ``sample`` draws (state, action) pairs by
ancestral sampling; ``save``/``load`` store a model as a ``"diffusion"`` artifact
(:mod:`jaxbc.artifact`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct

from jaxbc.artifact import SPEC_FILE, ArtifactError, read_spec, read_state, save_artifact
from jaxbc.data import Dataset, normalization_stats
from jaxbc.diffusion.model import NoiseNet
from jaxbc.diffusion.schedules import SCHEDULES, Schedule, make_schedule
from jaxbc.envs import Box
from jaxbc.networks import flatten_obs
from jaxbc.training import adam_optimizer, fit
from jaxbc.validation import check_float


@dataclass(frozen=True)
class DiffusionConfig:
    """Diffusion model and pretraining hyperparameters (defaults: the DBC paper's model)."""

    T: int = 1000  # diffusion steps
    schedule: str = "sigmoid"  # sigmoid | linear | cosine
    hidden: int = 1024  # noise-net width (128 is enough for small tasks)
    blocks: int = 3
    steps: int = 10_000  # gradient steps of pretraining
    batch_size: int = 128
    lr: float = 1e-3
    max_grad_norm: float = 1.0
    clamp: float = 10.0  # normalised states/actions are clipped to +-clamp
    # pretraining draws t in antithetic pairs (t, T-1-t), as the official DBC code does:
    # every batch covers both ends of the chain, a lower-variance loss estimate
    antithetic: bool = True

    def __post_init__(self):
        self.validate()

    def validate(self) -> DiffusionConfig:
        for name in ("lr", "max_grad_norm"):
            value = getattr(self, name)
            if isinstance(value, int | float):
                check_float(f"DiffusionConfig.{name}", value, 0.0, lo_open=True)
        for name in ("T", "hidden", "blocks", "steps", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"diffusion config: {name} must be a positive integer, got {v!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown noise schedule {self.schedule!r}; choose from {SCHEDULES}")
        if not isinstance(self.antithetic, bool):
            raise ValueError(
                f"diffusion config: antithetic must be True or False, got {self.antithetic!r}"
            )
        if isinstance(self.clamp, int | float) and self.clamp <= 0:
            raise ValueError(f"diffusion config: clamp must be > 0, got {self.clamp}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DiffusionConfig:
        return cls(**d)


@struct.dataclass
class DiffusionModel:
    """A trained noise network with the normalisation it was trained in.

    Statistics are flat: ``obs_mean``/``obs_std`` [obs_dim] (observations flattened),
    ``act_mean``/``act_std`` [act_dim]. ``losses`` [steps] is the pretraining loss per step.
    """

    params: Any
    obs_mean: jax.Array
    obs_std: jax.Array
    act_mean: jax.Array
    act_std: jax.Array
    losses: jax.Array
    config: DiffusionConfig = struct.field(pytree_node=False)
    observation_shape: tuple[int, ...] = struct.field(pytree_node=False)
    act_dim: int = struct.field(pytree_node=False)
    env_id: str = struct.field(pytree_node=False, default="")

    @property
    def obs_dim(self) -> int:
        return math.prod(self.observation_shape)

    @property
    def dim(self) -> int:
        return self.obs_dim + self.act_dim

    @property
    def net(self) -> NoiseNet:
        return NoiseNet(self.dim, self.config.T, self.config.hidden, self.config.blocks)

    @property
    def schedule(self) -> Schedule:
        return make_schedule(self.config.schedule, self.config.T)

    def normalize_obs(self, obs: jax.Array) -> jax.Array:
        """Raw observations [..., *obs_shape] -> flat z-scores [..., obs_dim], clamped."""
        x = flatten_obs(jnp.asarray(obs, jnp.float32), len(self.observation_shape))
        return jnp.clip((x - self.obs_mean) / self.obs_std, -self.config.clamp, self.config.clamp)

    def normalize_action(self, action: jax.Array) -> jax.Array:
        """Raw actions [..., act_dim] -> z-scores, clamped."""
        a = (jnp.asarray(action, jnp.float32) - self.act_mean) / self.act_std
        return jnp.clip(a, -self.config.clamp, self.config.clamp)

    def normalize(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        """Raw (obs, action) -> the model's joint vector x = [s, a], shaped [..., dim]."""
        return jnp.concatenate([self.normalize_obs(obs), self.normalize_action(action)], -1)

    def denormalize(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Joint vectors [..., dim] -> raw (obs [..., *obs_shape], action [..., act_dim])."""
        chex.assert_axis_dimension(x, -1, self.dim)
        obs = x[..., : self.obs_dim] * self.obs_std + self.obs_mean
        act = x[..., self.obs_dim :] * self.act_std + self.act_mean
        return obs.reshape(*x.shape[:-1], *self.observation_shape), act

    def predict_noise(self, x_t: jax.Array, t: jax.Array) -> jax.Array:
        return self.net.apply(self.params, x_t, t)


def _expand(v: jax.Array, x: jax.Array) -> jax.Array:
    """Per-sample coefficients [B] -> broadcastable against x [B, ...]."""
    return v.reshape(v.shape + (1,) * (x.ndim - v.ndim))


def q_sample(schedule: Schedule, x0: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """Closed-form forward noising ``x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps`` (t: [B] ints)."""
    chex.assert_equal_shape([x0, eps])
    return (
        _expand(schedule.sqrt_alpha_bars[t], x0) * x0
        + _expand(schedule.sqrt_one_minus_alpha_bars[t], x0) * eps
    )


def noise_prediction_error(
    net: NoiseNet, params: Any, schedule: Schedule, x0: jax.Array, t: jax.Array, eps: jax.Array
) -> jax.Array:
    """Per-sample ``mean_d (eps - eps_theta(x_t, t))^2`` [B] for given steps and noise."""
    chex.assert_rank(x0, 2)
    chex.assert_shape(t, (x0.shape[0],))
    pred = net.apply(params, q_sample(schedule, x0, t, eps), t)
    return ((pred - eps) ** 2).mean(-1)


def sample_timesteps(key: jax.Array, batch: int, T: int, antithetic: bool = True) -> jax.Array:
    """[batch] int32 diffusion steps, each uniform on ``[0, T)``. Antithetic (the official DBC
    pretraining): the first ``ceil(batch/2)`` are drawn, the rest are ``T-1-t`` of the first
    ones (``t[i + ceil(batch/2)] = T-1-t[i]``), so the pair means are exactly mid-chain."""
    if not antithetic:
        return jax.random.randint(key, (batch,), 0, T)
    half = (batch + 1) // 2
    t = jax.random.randint(key, (half,), 0, T)
    return jnp.concatenate([t, T - 1 - t])[:batch]


def noise_prediction_loss(
    net: NoiseNet,
    params: Any,
    schedule: Schedule,
    x0: jax.Array,
    key: jax.Array,
    antithetic: bool = False,
) -> jax.Array:
    """The DDPM training loss: a uniform step per sample (antithetic pairs if asked, see
    :func:`sample_timesteps`), fresh Gaussian noise, batch mean."""
    k_t, k_eps = jax.random.split(key)
    t = sample_timesteps(k_t, x0.shape[0], schedule.num_steps, antithetic)
    eps = jax.random.normal(k_eps, x0.shape, x0.dtype)
    return noise_prediction_error(net, params, schedule, x0, t, eps).mean()


def check_continuous(dataset: Dataset) -> None:
    """DBC models the joint density of states and continuous actions; reject anything else."""
    if not isinstance(dataset.action_space, Box):
        raise ValueError(
            f"the diffusion model (DBC) needs continuous Box actions, but dataset {dataset.env_id!r} "
            f"has {dataset.action_space}; use plain BC for discrete actions"
        )


def _empty_model(
    config: DiffusionConfig, obs_shape: tuple[int, ...], act_dim: int, env_id: str
) -> DiffusionModel:
    obs_dim = math.prod(obs_shape)
    return DiffusionModel(
        None,
        jnp.zeros(obs_dim),
        jnp.ones(obs_dim),
        jnp.zeros(act_dim),
        jnp.ones(act_dim),
        jnp.zeros((config.steps,)),
        config,
        tuple(obs_shape),
        act_dim,
        env_id,
    )


def _init_params(model: DiffusionModel, key: jax.Array) -> Any:
    return model.net.init(key, jnp.zeros((1, model.dim)), jnp.zeros((1,), jnp.int32))


def make_diffusion_train(config: DiffusionConfig = DiffusionConfig()):
    """Build ``train(key, dataset, num_valid=None) -> DiffusionModel`` (jittable, vmappable)."""
    config.validate()
    tx = adam_optimizer(config.lr, config.max_grad_norm)

    def train(
        key: jax.Array, dataset: Dataset, num_valid: jax.Array | int | None = None
    ) -> DiffusionModel:
        """Fit on ``dataset`` (only its first ``num_valid`` transitions if given; may be traced)."""
        check_continuous(dataset)
        obs_shape, act_dim = tuple(dataset.observation_shape), dataset.action_space.shape[0]
        obs = jnp.asarray(dataset.obs, jnp.float32)
        actions = jnp.asarray(dataset.action, jnp.float32)
        n = obs.shape[0]
        chex.assert_shape(obs, (n, *obs_shape))
        chex.assert_shape(actions, (n, act_dim))
        stats = normalization_stats(dataset, num_valid)
        model = _empty_model(config, obs_shape, act_dim, dataset.env_id).replace(
            obs_mean=stats.obs_mean.reshape(-1),
            obs_std=stats.obs_std.reshape(-1),
            act_mean=stats.action_mean,
            act_std=stats.action_std,
        )
        x = model.normalize(obs, actions)
        count = n if num_valid is None else num_valid
        net, schedule = model.net, model.schedule
        k_init, k_train = jax.random.split(key)
        params = _init_params(model, k_init)

        def sample(k):
            return x[jax.random.randint(k, (config.batch_size,), 0, count)]

        def loss(p, batch, k):
            value = noise_prediction_loss(net, p, schedule, batch, k, config.antithetic)
            return value, value

        params, _, losses = fit(loss, tx, params, sample, k_train, config.steps)
        return model.replace(params=params, losses=losses)

    return train


def sample(model: DiffusionModel, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    """``n`` raw (obs, action) pairs by ancestral DDPM sampling (``sigma_t^2 = beta_t``).

    Runs the T reverse steps as one ``lax.scan``; jit with ``n`` static. The final vectors
    are clamped to the training range before de-normalising.
    """
    net, sch = model.net, model.schedule
    k_init, k_steps = jax.random.split(key)
    x = jax.random.normal(k_init, (n, model.dim))

    def step(x, inp):
        t, k = inp
        eps = net.apply(model.params, x, jnp.full((n,), t, jnp.int32))
        mean = (x - (sch.betas[t] / sch.sqrt_one_minus_alpha_bars[t]) * eps) / jnp.sqrt(
            sch.alphas[t]
        )
        sigma = jnp.where(t > 0, jnp.sqrt(sch.betas[t]), 0.0)
        return mean + sigma * jax.random.normal(k, x.shape), None

    ts = jnp.arange(model.config.T - 1, -1, -1)
    x, _ = jax.lax.scan(step, x, (ts, jax.random.split(k_steps, model.config.T)))
    return model.denormalize(jnp.clip(x, -model.config.clamp, model.config.clamp))


def _state(model: DiffusionModel) -> dict:
    return {
        "params": model.params,
        "obs_mean": model.obs_mean,
        "obs_std": model.obs_std,
        "act_mean": model.act_mean,
        "act_std": model.act_std,
        "losses": model.losses,
    }


def save(model: DiffusionModel, directory: str | Path) -> Path:
    """Write the model (weights, statistics, losses) as a ``"diffusion"`` artifact
    (:mod:`jaxbc.artifact`)."""
    env = {
        "env_id": model.env_id,
        "observation_shape": list(model.observation_shape),
        "act_dim": model.act_dim,
    }
    return save_artifact(directory, "diffusion", _state(model), env, model.config.to_dict())


def load(directory: str | Path) -> DiffusionModel:
    """Load a model written by :func:`save`; corrupt or mismatched files raise ValueError."""
    spec = read_spec(directory, "diffusion")
    try:
        config = DiffusionConfig.from_dict(spec["config"]).validate()
        env = spec["env"]
        template = _empty_model(
            config,
            tuple(int(d) for d in env["observation_shape"]),
            int(env["act_dim"]),
            str(env["env_id"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ArtifactError(
            f"{Path(directory) / SPEC_FILE} is not a valid diffusion model description: {e}"
        ) from e
    expected = _state(
        template.replace(params=jax.eval_shape(lambda: _init_params(template, jax.random.key(0))))
    )
    state = jax.tree.map(jnp.asarray, read_state(directory, expected))
    return template.replace(**state)
