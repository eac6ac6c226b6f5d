"""Flax building blocks shared by experts (PPO) and imitation learners."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": nn.tanh,
    "relu": nn.relu,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "elu": nn.elu,
}


class PolicyOutput(NamedTuple):
    """``out``: logits [.., n] or action/mean [.., d]; ``log_std`` [d] (gaussian) or None;
    ``hidden``: each torso layer's activations (Swarm BC aligns them; () where unused)."""

    out: jax.Array
    log_std: jax.Array | None
    hidden: tuple[jax.Array, ...]


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}"
        ) from None


def orthogonal(scale: float = 1.0, column_axis: int = -1) -> nn.initializers.Initializer:
    """``flax.linen.initializers.orthogonal`` (same values), safe to ``vmap`` on XLA:CPU.

    Why: vmapping an init over keys (ensembles, seeds, HaDES populations) turns each QR
    into one batched LAPACK call that fans out onto the CPU intra-op thread pool and
    blocks there; two such calls running at once deadlock a 2-thread pool (jaxlib 0.10,
    2-core host). A custom batching rule runs the QRs one after another (``lax.map``)
    instead, which costs a few milliseconds per matrix at init and nothing afterwards.
    """
    base = nn.initializers.orthogonal(scale, column_axis)

    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        @jax.custom_batching.custom_vmap
        def draw(k: jax.Array) -> jax.Array:
            return base(k, shape, dtype)

        @draw.def_vmap
        def _sequential(axis_size: int, in_batched: list[bool], k: jax.Array):
            return (jax.lax.map(draw, k), True) if in_batched[0] else (draw(k), False)

        return draw(key)

    return init


def flatten_obs(obs: jax.Array, obs_ndim: int) -> jax.Array:
    """Flatten the trailing ``obs_ndim`` observation dims (images -> vectors), keep batch dims."""
    if obs_ndim <= 1:
        return obs
    return obs.reshape(*obs.shape[: obs.ndim - obs_ndim], -1)


class MLP(nn.Module):
    """MLP torso; ``return_hidden=True`` also returns each hidden layer's activations."""

    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    out_size: int | None = None
    out_scale: float = 1.0  # orthogonal init gain of the output layer

    @nn.compact
    def __call__(self, x: jax.Array, return_hidden: bool = False):
        act = activation(self.activation)
        hidden = []
        for width in self.hidden_sizes:
            x = act(nn.Dense(width, kernel_init=orthogonal(np.sqrt(2)))(x))
            hidden.append(x)
        if self.out_size is not None:
            x = nn.Dense(self.out_size, kernel_init=orthogonal(self.out_scale))(x)
        return (x, tuple(hidden)) if return_hidden else x


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs. Discrete: logits; continuous: mean + state-free log-std."""

    action_dim: int
    discrete: bool
    obs_ndim: int = 1
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    init_log_std: float = 0.0

    def setup(self):
        self.actor = MLP(self.hidden_sizes, self.activation, self.action_dim, out_scale=0.01)
        self.critic = MLP(self.hidden_sizes, self.activation, 1, out_scale=1.0)
        if not self.discrete:
            self.log_std = self.param(
                "log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,)
            )

    def __call__(self, obs: jax.Array) -> tuple[PolicyOutput, jax.Array]:
        """Returns (actor output, value); the actor's output holds logits, or the mean and
        log-std (see :func:`jaxbc.bc.policies.action_distribution`)."""
        x = flatten_obs(obs, self.obs_ndim)
        return self.policy_head(x), self.critic(x)[..., 0]

    def policy(self, obs: jax.Array) -> PolicyOutput:
        return self.policy_head(flatten_obs(obs, self.obs_ndim))

    def value(self, obs: jax.Array) -> jax.Array:
        return self.critic(flatten_obs(obs, self.obs_ndim))[..., 0]

    def policy_head(self, x: jax.Array) -> PolicyOutput:
        out = self.actor(x)
        if self.discrete:
            return PolicyOutput(out, None, ())
        return PolicyOutput(out, jnp.broadcast_to(self.log_std, out.shape), ())
