"""Imitation policies (flax linen): a torso (MLP or small CNN) and one of three heads.

* ``deterministic``: action = (optionally tanh-bounded) network output; trained with MSE.
* ``gaussian``: mean from the network, state-independent learned log-std; trained with NLL.
* ``categorical``: logits over discrete actions; trained with cross-entropy.

Every policy returns its hidden activations per torso layer as well (Swarm BC aligns them).
Ensembles are the same module with parameters stacked on a leading member axis
(:func:`init_ensemble`), applied with ``jax.vmap``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxbc.envs import ActionSpace, Box, Discrete
from jaxbc.networks import ACTIVATIONS, PolicyOutput, activation, flatten_obs, orthogonal
from jaxbc.normalize import zscore
from jaxbc.validation import check_choice, check_float, check_int, check_sizes

POLICY_KINDS = ("deterministic", "gaussian", "categorical")
INITS = {
    "orthogonal": lambda: orthogonal(np.sqrt(2)),
    "lecun": nn.initializers.lecun_normal,
    "xavier": nn.initializers.xavier_uniform,
    "he": nn.initializers.he_normal,
}


@dataclass(frozen=True)
class PolicyConfig:
    kind: str = "auto"  # auto: categorical for discrete actions, deterministic for continuous
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    init: str = "orthogonal"
    torso: str = "auto"  # auto: cnn for image observations, mlp otherwise
    cnn_channels: int = 16
    tanh_bounded: bool = True  # deterministic/gaussian means squashed into the action bounds
    init_log_std: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> PolicyConfig:
        """Every field; errors name ``PolicyConfig.<field>`` and the allowed values."""
        owner = "PolicyConfig"
        check_choice(f"{owner}.kind", self.kind, ("auto", *POLICY_KINDS))
        check_sizes(f"{owner}.hidden_sizes", self.hidden_sizes, allow_empty=False)
        check_choice(f"{owner}.activation", self.activation, sorted(ACTIVATIONS))
        check_choice(f"{owner}.init", self.init, sorted(INITS))
        check_choice(f"{owner}.torso", self.torso, ("auto", "mlp", "cnn"))
        check_int(f"{owner}.cnn_channels", self.cnn_channels, 1)
        check_float(f"{owner}.init_log_std", self.init_log_std)
        return self


class PolicyNet(nn.Module):
    action_space: ActionSpace
    observation_shape: tuple[int, ...]
    kind: str
    hidden_sizes: Sequence[int]
    activation: str
    init_scheme: str
    torso: str
    cnn_channels: int
    tanh_bounded: bool
    init_log_std: float

    @nn.compact
    def __call__(self, obs: jax.Array) -> PolicyOutput:
        act = activation(self.activation)
        kinit = INITS[self.init_scheme]()
        hidden = []
        x = obs
        if self.torso == "cnn":
            x = act(nn.Conv(self.cnn_channels, (3, 3), padding="SAME", kernel_init=kinit)(x))
            x = x.reshape(*x.shape[:-3], -1)
            hidden.append(x)
        else:
            x = flatten_obs(x, len(self.observation_shape))
        for width in self.hidden_sizes:
            x = act(nn.Dense(width, kernel_init=kinit)(x))
            hidden.append(x)
        out_init = orthogonal(0.01)
        if self.kind == "categorical":
            return PolicyOutput(
                nn.Dense(self.action_space.n, kernel_init=out_init)(x), None, tuple(hidden)
            )
        dim = self.action_space.shape[0]
        out = nn.Dense(dim, kernel_init=out_init)(x)
        if self.tanh_bounded:
            low, high = jnp.asarray(self.action_space.low), jnp.asarray(self.action_space.high)
            out = low + (jnp.tanh(out) + 1.0) * 0.5 * (high - low)
        log_std = None
        if self.kind == "gaussian":
            log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (dim,))
        return PolicyOutput(out, log_std, tuple(hidden))


@dataclass(frozen=True)
class Policy:
    """A policy definition: ``init(key) -> params``, ``apply(params, obs) -> PolicyOutput``."""

    net: PolicyNet
    kind: str
    action_space: ActionSpace
    observation_shape: tuple[int, ...]

    def init(self, key: jax.Array) -> Any:
        return self.net.init(key, jnp.zeros((1, *self.observation_shape), jnp.float32))

    def apply(self, params: Any, obs: jax.Array) -> PolicyOutput:
        return self.net.apply(params, obs)

    def distribution(self, output: PolicyOutput) -> distrax.Distribution:
        return action_distribution(self.kind, output)

    def action(
        self, output: PolicyOutput, key: jax.Array | None = None, deterministic: bool = True
    ) -> jax.Array:
        """Mode/mean if deterministic, else a sample (continuous samples are clipped to bounds)."""
        return head_action(self.kind, output, key, deterministic, self.action_space)


def head_action(
    kind: str,
    output: PolicyOutput,
    key: jax.Array | None = None,
    deterministic: bool = True,
    bounds: ActionSpace | None = None,
) -> jax.Array:
    """The action of one ``kind`` policy output: the argmax (categorical) or the output
    (gaussian mean, deterministic action) if ``deterministic``, else a sample; continuous
    samples are clipped to the box ``bounds`` (None: unclipped, as PPO experts sample)."""
    if kind == "categorical":
        if deterministic:
            return jnp.argmax(output.out, -1).astype(jnp.int32)
        return action_distribution(kind, output).sample(seed=key).astype(jnp.int32)
    if kind == "deterministic" or deterministic:
        return output.out
    sample = action_distribution(kind, output).sample(seed=key)
    return sample if bounds is None else bounds.clip(sample)


def action_distribution(kind: str, output: PolicyOutput) -> distrax.Distribution:
    """The action distribution of a ``categorical`` (logits) or ``gaussian`` (mean, and a
    state-independent log-std) policy output; the one used by BC's policies and PPO."""
    if kind == "categorical":
        return distrax.Categorical(logits=output.out)
    if kind == "gaussian":
        return distrax.MultivariateNormalDiag(
            output.out, jnp.exp(jnp.broadcast_to(output.log_std, output.out.shape))
        )
    raise ValueError(f"a {kind} policy has no action distribution")


def make_policy(
    config: PolicyConfig, action_space: ActionSpace, observation_shape: tuple[int, ...]
) -> Policy:
    kind = config.kind
    if kind == "auto":
        kind = "categorical" if isinstance(action_space, Discrete) else "deterministic"
    if kind not in POLICY_KINDS:
        raise ValueError(f"unknown policy kind {kind!r}; choose from {POLICY_KINDS} or 'auto'")
    if (kind == "categorical") != isinstance(action_space, Discrete):
        raise ValueError(f"a {kind} policy does not fit the action space {action_space}")
    if config.init not in INITS:
        raise ValueError(f"unknown init {config.init!r}; choose from {sorted(INITS)}")
    torso = config.torso
    if torso == "auto":
        torso = "cnn" if len(observation_shape) == 3 else "mlp"
    if torso not in ("mlp", "cnn"):
        raise ValueError(f"unknown torso {torso!r}; choose 'mlp', 'cnn' or 'auto'")
    if torso == "cnn" and len(observation_shape) != 3:
        raise ValueError(f"a cnn torso needs (H, W, C) observations, got shape {observation_shape}")
    activation(config.activation)  # validates the name
    net = PolicyNet(
        action_space,
        tuple(observation_shape),
        kind,
        tuple(config.hidden_sizes),
        config.activation,
        config.init,
        torso,
        config.cnn_channels,
        config.tanh_bounded and isinstance(action_space, Box),
        config.init_log_std,
    )
    return Policy(net, kind, action_space, tuple(observation_shape))


def init_ensemble(policy: Policy, key: jax.Array, members: int) -> Any:
    """Parameters of ``members`` independently initialised policies, stacked on axis 0."""
    return jax.vmap(policy.init)(jax.random.split(key, members))


def ensemble_apply(policy: Policy, params: Any, obs: jax.Array) -> PolicyOutput:
    """Apply every member to the same observations: outputs get a leading member axis.

    One member is applied unbatched (plain matmuls rather than batch-1 batched ones, which
    XLA:CPU runs slower), then given its member axis back."""
    if jax.tree.leaves(params)[0].shape[0] == 1:
        out = policy.apply(jax.tree.map(lambda p: p[0], params), obs)
        return jax.tree.map(lambda o: o[None], out)
    return jax.vmap(policy.apply, in_axes=(0, None))(params, obs)


def ensemble_action(
    policy: Policy, outputs: PolicyOutput, key: jax.Array | None = None, deterministic: bool = True
) -> jax.Array:
    """One action from member outputs (leading member axis).

    Continuous: the mean of the members' actions (their means if deterministic, else each
    member samples). Discrete: the members' action probabilities are averaged and the
    action is the argmax (deterministic) or a sample of that mixture.
    """
    return mixture_action(policy.kind, outputs, key, deterministic, policy.action_space)


def mixture_action(
    kind: str,
    outputs: PolicyOutput,
    key: jax.Array | None = None,
    deterministic: bool = True,
    bounds: ActionSpace | None = None,
) -> jax.Array:
    """:func:`ensemble_action` for ``kind`` outputs with a leading member axis; each
    member's continuous sample is clipped to ``bounds`` (see :func:`head_action`)."""
    if kind == "categorical":
        probs = jax.nn.softmax(outputs.out, -1).mean(0)
        if deterministic:
            return jnp.argmax(probs, -1).astype(jnp.int32)
        return jax.random.categorical(key, jnp.log(probs + 1e-12)).astype(jnp.int32)
    members = outputs.out.shape[0]
    if kind == "deterministic" or deterministic:
        return outputs.out.mean(0)
    keys = jax.random.split(key, members)
    acts = jax.vmap(lambda o, k: head_action(kind, o, k, False, bounds))(outputs, keys)
    return acts.mean(0)


def member_actions(policy: Policy, outputs: PolicyOutput) -> jax.Array:
    """Per-member points used for action differences: actions/means, or action probabilities."""
    if policy.kind == "categorical":
        return jax.nn.softmax(outputs.out, -1)
    return outputs.out


def action_difference(points: jax.Array) -> jax.Array:
    """Mean pairwise Euclidean distance between members, averaged over states.

    ``points``: [members, batch, d] (member actions, or action probabilities for discrete
    policies). 0 for a single member. Members are unstacked (see :func:`centred_sq_norm`).
    """
    m = points.shape[0]
    if m < 2:
        return jnp.zeros(())
    p = jnp.unstack(points)
    dists = [
        jnp.sqrt(((p[i] - p[j]) ** 2).sum(-1) + 1e-12).mean()
        for i in range(m)
        for j in range(i + 1, m)
    ]
    return jnp.mean(jnp.stack(dists))


def ensemble_disagreement(policy: Policy, params: Any, obs: jax.Array) -> jax.Array:
    """The ensemble's disagreement on raw observations ``obs`` [batch, *obs_shape]: the
    :func:`action_difference` of its members' actions (action probabilities if discrete).
    ``params``: ``{"net": member-stacked params, "obs_mean", "obs_std", ...}`` (a trained
    :class:`~jaxbc.bc.BCResult`'s); the observations are normalised with them first."""
    x = zscore(obs, params["obs_mean"], params["obs_std"])
    return outputs_disagreement(policy, ensemble_apply(policy, params["net"], x))


def outputs_disagreement(policy: Policy, outputs: PolicyOutput) -> jax.Array:
    """:func:`ensemble_disagreement` of member-stacked outputs already computed."""
    pts = member_actions(policy, outputs)
    return action_difference(pts if pts.ndim == 3 else pts[..., None])


def centred_sq_norm(x: jax.Array) -> jax.Array:
    """``sum_m |x_m - mean_m x|^2`` over a leading member axis; exactly 0 for equal members
    (differences to member 0 are formed first, so equal members give exact zeros).

    Why unstacked: XLA:CPU runs reductions over a leading axis (a member mean, and the
    transpose of broadcasting it back) ~40x slower than elementwise work; per-member
    slices keep forward and backward elementwise (Swarm BC was 2x slower per member).
    """
    if x.shape[0] == 1:  # one member: exactly 0, without touching the activations
        return jnp.zeros((), x.dtype)
    xs = jnp.unstack(x)
    d = [xi - xs[0] for xi in xs]
    mean_d = sum(d) / len(d)
    return sum(((di - mean_d) ** 2).sum() for di in d)
