"""Behavioral cloning family: policies, pure losses, vmapped ensembles, Swarm BC, the trainer."""

from jaxbc.bc.dbc import dbc_loss
from jaxbc.bc.losses import (
    Batch,
    bc_loss,
    cross_entropy,
    ensemble_bc_loss,
    gaussian_nll,
    hidden_alignment_penalty,
    mse,
    swarm_bc_loss,
)
from jaxbc.bc.policies import (
    Policy,
    PolicyConfig,
    PolicyOutput,
    action_difference,
    ensemble_action,
    ensemble_apply,
    ensemble_disagreement,
    init_ensemble,
    make_policy,
    member_actions,
)
from jaxbc.bc.train import (
    BCConfig,
    BCResult,
    load_policy,
    make_bc_train,
    make_optimizer,
    make_policy_fn,
    train_bc,
)

__all__ = [
    "BCConfig",
    "BCResult",
    "Batch",
    "Policy",
    "PolicyConfig",
    "PolicyOutput",
    "action_difference",
    "bc_loss",
    "cross_entropy",
    "dbc_loss",
    "ensemble_action",
    "ensemble_apply",
    "ensemble_bc_loss",
    "ensemble_disagreement",
    "gaussian_nll",
    "hidden_alignment_penalty",
    "init_ensemble",
    "load_policy",
    "make_bc_train",
    "make_optimizer",
    "make_policy",
    "make_policy_fn",
    "member_actions",
    "mse",
    "swarm_bc_loss",
    "train_bc",
]
