"""Diffusion Model-Augmented BC (DBC; Chen et al., ICML 2024) as a loss for ``make_bc_train``.

A diffusion model pretrained on expert (state, action) pairs scores how expert-like the
joint vector ``[s, pi(s)]`` is: its noise-prediction error is low on the expert
distribution. DBC adds ``lambda_dm * max(L_agent - L_expert, 0)`` to the BC loss, where both
errors use the same steps and noise, so the expert term removes the error the diffusion
model makes anyway. The diffusion model is frozen; the gradient flows through it into the
policy's actions. Bind the model and weights with ``functools.partial``::

    loss = partial(dbc_loss, diffusion=model, lambda_dm=0.2)
    result = jax.jit(make_bc_train(config, loss))(key, dataset)

Parameters carry a leading member axis, so ensembles and Swarm BC + DBC (``tau > 0``) use
the same function.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxbc.bc.losses import Batch, member_bc_loss, penalty_weight, swarm_penalty_or_metric
from jaxbc.bc.policies import Policy, action_difference, ensemble_apply
from jaxbc.diffusion import DiffusionModel, noise_prediction_error, sample_timesteps


def _check(policy: Policy, batch: Batch, diffusion: DiffusionModel) -> None:
    if policy.kind == "categorical":
        raise ValueError(
            "DBC needs a deterministic or gaussian policy over continuous actions, not a categorical one"
        )
    if batch.raw_obs is None or batch.act_mean is None or batch.act_std is None:
        raise ValueError(
            "DBC needs batch.raw_obs, batch.act_mean and batch.act_std (make_bc_train provides them)"
        )
    obs_shape = tuple(batch.raw_obs.shape[1:])
    if obs_shape != tuple(diffusion.observation_shape):
        raise ValueError(
            f"the diffusion model was trained on observations of shape {diffusion.observation_shape}, "
            f"but the batch has shape {obs_shape}"
        )
    act_dim = batch.action.shape[-1] if batch.action.ndim == 2 else None
    if act_dim != diffusion.act_dim:
        raise ValueError(
            f"the diffusion model has {diffusion.act_dim} action dims, the batch actions have shape {batch.action.shape[1:]}"
        )


def dbc_loss(
    policy: Policy,
    params: Any,
    batch: Batch,
    key: jax.Array,
    diffusion: DiffusionModel,
    lambda_bc: float | jax.Array = 1.0,
    lambda_dm: float | jax.Array = 0.2,
    normalize_dm: bool = True,
    tau: float | jax.Array = 0.0,
    penalty: str = "paper",
) -> tuple[jax.Array, dict]:
    """Summed over members: ``lambda_bc`` * BC loss + ``lambda_dm`` * L_DM; plus ``tau`` *
    Swarm penalty (in the ``penalty`` form, see :func:`jaxbc.bc.losses.swarm_bc_loss`).

    Per member, ``L_DM = max(L_agent - L_expert, 0)`` (``normalize_dm``) or ``L_agent``:
    batch-mean noise-prediction errors of ``[s, pi(s)]`` and ``[s, a]`` with one shared step
    and noise per sample, steps in antithetic pairs when the model's config says so (the
    official code's reductions: per-dimension means, the clip on the batch means). Gaussian
    policies contribute their mean action.
    ``lambda_dm = 0`` gives exactly the BC loss and gradient.
    """
    _check(policy, batch, diffusion)
    diffusion = jax.lax.stop_gradient(diffusion)  # frozen: no gradient into its params or stats
    outputs = ensemble_apply(policy, params, batch.obs)
    per_member = jax.vmap(member_bc_loss, in_axes=(None, 0, None))(policy, outputs, batch.action)
    pen = swarm_penalty_or_metric(outputs.hidden, tau, penalty)

    # the diffusion model lives in its own normalised space: go via raw states and actions
    s = diffusion.normalize_obs(batch.raw_obs)
    expert = jnp.concatenate(
        [s, diffusion.normalize_action(batch.action * batch.act_std + batch.act_mean)], -1
    )
    agent = jax.vmap(
        lambda out: jnp.concatenate(
            [s, diffusion.normalize_action(out * batch.act_std + batch.act_mean)], -1
        )
    )(outputs.out)
    b = expert.shape[0]
    k_t, k_eps = jax.random.split(key)
    # the official DBC loss draws t in antithetic pairs (t, T-1-t), like its pretraining
    t = sample_timesteps(k_t, b, diffusion.config.T, diffusion.config.antithetic)
    eps = jax.random.normal(k_eps, expert.shape, expert.dtype)

    def error(x):
        return noise_prediction_error(
            diffusion.net, diffusion.params, diffusion.schedule, x, t, eps
        ).mean()

    expert_loss = error(expert)
    agent_loss = jax.vmap(error)(agent)  # [members]
    dm = jnp.maximum(agent_loss - expert_loss, 0.0) if normalize_dm else agent_loss

    m = per_member.shape[0]
    loss = (
        lambda_bc * per_member.sum() + penalty_weight(tau, penalty, m) * pen + lambda_dm * dm.sum()
    )
    pts = outputs.out
    metrics = {
        "loss": loss,
        "bc_loss": per_member.mean(),
        "swarm_penalty": pen,
        "action_difference": action_difference(pts if pts.ndim == 3 else pts[..., None]),
        "dm_loss": dm.mean(),
        "agent_diffusion_loss": agent_loss.mean(),
        "expert_diffusion_loss": expert_loss,
    }
    return loss, metrics
