"""Default PPO recipes per environment (the zoo's experts were trained with these)."""

from __future__ import annotations

import dataclasses

from jaxbc import envs
from jaxbc.experts.ppo import PPOConfig
from jaxbc.validation import ConfigError, check_choice

_CLASSIC = dict(num_envs=16, num_steps=128, update_epochs=4, num_minibatches=4, lr=2.5e-3)
# gymnax-blines' MinAtar PPO settings: long horizon (gamma 0.999), constant lr, 64 envs.
_MINATAR = dict(
    total_timesteps=10_000_000,
    num_envs=64,
    num_steps=128,
    update_epochs=4,
    num_minibatches=8,
    gamma=0.999,
    lr=5e-4,
    anneal_lr=False,
    hidden_sizes=(256, 256),
    activation="relu",
)
# CPU-sized Brax recipe (10M steps): 256 envs x 32 steps per update, small tanh MLPs,
# normalised observations and rewards. Paper-scale experts (50M steps, 2048 envs) need a GPU.
_BRAX = dict(
    total_timesteps=10_000_000,
    num_envs=256,
    num_steps=32,
    update_epochs=4,
    num_minibatches=8,
    gamma=0.99,
    gae_lambda=0.95,
    lr=3e-4,
    ent_coef=1e-3,
    max_grad_norm=1.0,
    hidden_sizes=(128, 128),
    activation="tanh",
    normalize_obs=True,
    normalize_reward=True,
    env_options=(("backend", "positional"),),
)
_BRAX_OVERRIDES: dict[str, dict] = {
    "brax/halfcheetah": dict(gamma=0.95, env_options=(("backend", "spring"),)),
    "brax/ant": dict(gamma=0.97),
    "brax/inverted_pendulum": dict(total_timesteps=1_000_000),
    "brax/inverted_double_pendulum": dict(total_timesteps=2_000_000),
}

PRESETS: dict[str, dict] = {
    "CartPole-v1": dict(_CLASSIC, total_timesteps=500_000),
    "Acrobot-v1": dict(_CLASSIC, total_timesteps=1_000_000),
    "MountainCar-v0": dict(_CLASSIC, total_timesteps=2_000_000),
    "Pendulum-v1": dict(
        _CLASSIC,
        total_timesteps=2_000_000,
        num_envs=32,
        gamma=0.95,
        lr=1e-3,
        ent_coef=0.0,
        normalize_obs=True,
        normalize_reward=True,
    ),
    "MountainCarContinuous-v0": dict(
        _CLASSIC,
        total_timesteps=2_000_000,
        ent_coef=0.0,
        normalize_obs=True,
        normalize_reward=True,
        init_log_std=0.5,
    ),
    **{env_id: dict(_MINATAR) for env_id in envs.list_envs()["minatar"]},
    **{
        env_id: dict(_BRAX, **_BRAX_OVERRIDES.get(env_id, {}))
        for env_id in envs.list_envs()["brax"]
    },
}


def preset(env_id: str, backend: str | None = None, **overrides) -> PPOConfig:
    """The recipe for ``env_id`` with optional field overrides; ``backend``: another Brax
    backend (Brax envs only; one of :data:`jaxbc.envs.BRAX_BACKENDS`)."""
    envs.family_of(env_id)
    if backend is not None:
        if not env_id.startswith("brax/"):
            raise ConfigError(f"backend applies only to Brax envs, not {env_id}", "backend")
        check_choice("backend", backend, envs.BRAX_BACKENDS)
        overrides["env_options"] = (("backend", backend),)
    fields = {f.name for f in dataclasses.fields(PPOConfig)}
    bad = set(overrides) - fields
    if bad:
        raise ValueError(f"unknown PPOConfig field(s) {sorted(bad)}")
    return PPOConfig(env_id=env_id, **{**PRESETS.get(env_id, _CLASSIC), **overrides}).validate()
