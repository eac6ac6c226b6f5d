"""BC losses as pure functions.

Every loss has the signature ``loss_fn(policy, params, batch, key) -> (loss, metrics)`` where
``params`` always carries a leading member axis (1 member = single-policy BC), so single,
ensemble and Swarm BC are one code path. Bind hyperparameters with ``functools.partial``
(``partial(swarm_bc_loss, tau=0.25)``); they may be traced values, so a sweep over ``tau``
is a ``vmap``.

The per-member objective follows the policy kind: MSE for deterministic policies, Gaussian
negative log-likelihood for gaussian ones, cross-entropy for categorical ones.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxbc.bc.policies import (
    Policy,
    PolicyOutput,
    action_difference,
    centred_sq_norm,
    ensemble_apply,
    member_actions,
)
from jaxbc.training import is_static_zero


class Batch(NamedTuple):
    """A minibatch. ``obs``/``action`` are in the network's (normalised) space; losses that
    need raw values (DBC's diffusion model has its own normalisation) use ``raw_obs`` and
    map actions back with ``action * act_std + act_mean``."""

    obs: jax.Array  # [B, *obs_shape], normalised as the policy sees it
    action: jax.Array  # [B] int (discrete) or [B, d] (continuous, normalised if enabled)
    raw_obs: jax.Array | None = None  # [B, *obs_shape] as stored in the dataset
    act_mean: jax.Array | None = None  # [d] action normalisation (zeros if disabled)
    act_std: jax.Array | None = None  # [d] (ones if disabled)


def mse(pred: jax.Array, action: jax.Array) -> jax.Array:
    """``||a - pi(s)||^2`` summed over action dims, averaged over the batch."""
    return ((pred - action) ** 2).sum(-1).mean()


def gaussian_nll(mean: jax.Array, log_std: jax.Array, action: jax.Array) -> jax.Array:
    """``-log N(a; mu, diag(exp(log_std)^2))`` summed over dims, averaged over the batch."""
    log_std = jnp.broadcast_to(log_std, mean.shape)
    z = (action - mean) * jnp.exp(-log_std)
    return (0.5 * z**2 + log_std + 0.5 * jnp.log(2 * jnp.pi)).sum(-1).mean()


def cross_entropy(logits: jax.Array, action: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, action).mean()


def member_bc_loss(policy: Policy, output: PolicyOutput, action: jax.Array) -> jax.Array:
    """The BC objective of one member's outputs, chosen by the policy kind. Categorical
    targets are action indices ``[B]`` or probabilities ``[B, n]`` (soft labels)."""
    if policy.kind == "categorical":
        if action.ndim == output.out.ndim:
            return optax.softmax_cross_entropy(output.out, action).mean()
        return cross_entropy(output.out, action)
    if policy.kind == "gaussian":
        return gaussian_nll(output.out, output.log_std, action)
    return mse(output.out, action)


PENALTY_FORMS = ("paper", "normalized")


def hidden_alignment_penalty(hidden: tuple[jax.Array, ...], form: str = "paper") -> jax.Array:
    """Swarm BC penalty on per-layer activations ``[members, batch, features]``.

    * ``"paper"`` (Nuesslein et al.): ``sum_k sum_{i<j} mean_batch ||h_ik - h_jk||^2``, the
      pairwise squared distances summed over member pairs, features and hidden layers,
      averaged over the batch. (``sum_{i<j} ||h_i - h_j||^2 = N sum_i ||h_i - mean||^2``.)
    * ``"normalized"``: the mean squared distance of each member's activations to the
      members' mean, averaged over layers, members, batch and features (width-independent).

    With N members and K layers of width W, paper = N^2 * W * K * normalized. Computed by
    :func:`centred_sq_norm`: exactly zero for identical members, and fast on XLA:CPU.
    """
    if form == "paper":
        return sum(h.shape[0] * centred_sq_norm(h) / h.shape[1] for h in hidden)
    if form == "normalized":
        return jnp.mean(jnp.stack([centred_sq_norm(h) / h.size for h in hidden]))
    raise ValueError(f"unknown penalty form {form!r}; choose from {PENALTY_FORMS}")


def swarm_penalty_or_metric(
    hidden: tuple[jax.Array, ...], tau: float | jax.Array, form: str = "paper"
) -> jax.Array:
    """The penalty, without its (wasted) backward pass when ``tau`` is a concrete 0."""
    if is_static_zero(tau):
        hidden = jax.lax.stop_gradient(hidden)
    return hidden_alignment_penalty(hidden, form)


def penalty_weight(tau: float | jax.Array, form: str, members: int) -> float | jax.Array:
    """Weight of the penalty next to the members' SUMMED BC losses: ``tau`` in the paper's
    form; ``members * tau`` in the normalized form (the objective is then ``members`` times
    ``mean BC + tau * penalty``, the form's original definition)."""
    return tau if form == "paper" else members * tau


def swarm_bc_loss(
    policy: Policy,
    params: Any,
    batch: Batch,
    key: jax.Array,
    tau: float | jax.Array = 0.25,
    penalty: str = "paper",
):
    """Sum of the members' BC losses + ``tau`` * hidden-feature alignment penalty (Swarm BC).

    The BC term is summed over members, so each member's gradient is exactly its own BC
    gradient (an ensemble trains like independent policies); ``penalty`` picks the
    penalty's form and so tau's units (see :func:`hidden_alignment_penalty`). ``tau = 0``
    is exactly ensemble BC: the penalty is still computed (for logging) but contributes
    exactly zero value and gradient. Metrics report the mean member BC loss.
    """
    del key
    outputs = ensemble_apply(policy, params, batch.obs)
    per_member = jax.vmap(member_bc_loss, in_axes=(None, 0, None))(policy, outputs, batch.action)
    pen = swarm_penalty_or_metric(outputs.hidden, tau, penalty)
    loss = per_member.sum() + penalty_weight(tau, penalty, per_member.shape[0]) * pen
    metrics = {
        "loss": loss,
        "bc_loss": per_member.mean(),
        "swarm_penalty": pen,
        "action_difference": action_difference(_points(policy, outputs)),
    }
    return loss, metrics


def _points(policy: Policy, outputs: PolicyOutput) -> jax.Array:
    pts = member_actions(policy, outputs)
    return pts if pts.ndim == 3 else pts[..., None]


def bc_loss(policy: Policy, params: Any, batch: Batch, key: jax.Array):
    """Plain BC; with several members it is ensemble BC (members trained independently)."""
    return swarm_bc_loss(policy, params, batch, key, tau=0.0)


ensemble_bc_loss = bc_loss
