"""Policy functions: the one factory, :func:`policy_function`, behind every ``(params, obs,
key) -> action`` that rollouts take (:data:`jaxbc.rollout.PolicyFn`): BC policies and
ensembles (:meth:`jaxbc.bc.BCResult.policy_fn`), trained experts
(:meth:`jaxbc.experts.Expert.policy_fn`) and HaDES's inner-loop policies
(:meth:`jaxbc.hades.Hades.policy_fn`).

A policy function acts on ONE raw observation in four steps, each a static, hashable part
(two policy functions built from equal parts compare and hash equal, so jitted rollouts
keyed on them reuse their compiled programs):

1. the observation normaliser (:class:`ObsNormalizer`): its moments are data in the
   params (a BC policy's ``obs_mean``/``obs_std``, an expert's running ``obs_stats``), its
   clip is a parameter of the normaliser (experts: 10, as PPO trained them; BC: none);
2. the network (:class:`Ensemble`, :class:`Single`, :class:`ActorNet`) on ``params["net"]``;
3. the action head (:class:`ActionHead`): argmax or sample of a categorical, mean or
   (optionally clipped) sample of a gaussian, the output of a deterministic policy (its
   tanh squash is part of the network), or an ensemble's mixture of these;
4. optionally, the action unnormaliser: ``params["act_mean"]``/``params["act_std"]``, then
   the clip to the action box (BC with continuous actions).

HaDES's policies have no normaliser of their own (observation normalisation belongs to the
env there): their params are ``{"net": ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax

from jaxbc.bc.policies import Policy, ensemble_apply, head_action, mixture_action
from jaxbc.envs import ActionSpace, Box
from jaxbc.networks import ActorCritic, PolicyOutput
from jaxbc.normalize import standardize, zscore

OBS_MOMENTS = ("mean_std", "running")


@dataclass(frozen=True)
class ObsNormalizer:
    """How a policy's params z-score its observations; the moments are data in the params.

    ``moments``: ``"mean_std"``, ``(obs - params["obs_mean"]) / params["obs_std"]`` (BC's,
    the dataset's moments); ``"running"``, ``(obs - mean) / sqrt(var + 1e-8)`` with the
    :class:`~jaxbc.normalize.RunningStats` ``params["obs_stats"]`` (PPO's). ``clip``: the
    z-scores are clipped to ``[-clip, clip]`` (None: unclipped)."""

    moments: str = "mean_std"
    clip: float | None = None

    def __post_init__(self) -> None:
        if self.moments not in OBS_MOMENTS:
            raise ValueError(f"unknown moments {self.moments!r}; choose from {OBS_MOMENTS}")

    def __call__(self, params: Any, obs: jax.Array) -> jax.Array:
        if self.moments == "running":
            stats = params["obs_stats"]
            return standardize(obs, stats.mean, stats.var, self.clip)
        return zscore(obs, params["obs_mean"], params["obs_std"], self.clip)


@dataclass(frozen=True)
class Ensemble:
    """A BC policy's member-stacked networks on one observation (a batch of one): outputs
    with a leading member axis."""

    policy: Policy

    def __call__(self, net: Any, x: jax.Array) -> PolicyOutput:
        outputs = ensemble_apply(self.policy, net, x[None])  # out [members, 1, ...]
        # (a gaussian's log-std [members, d] is no batch: each dimension keeps its own)
        return outputs._replace(out=outputs.out[:, 0], hidden=())


@dataclass(frozen=True)
class Single:
    """One BC-style policy network on one observation (a batch of one)."""

    policy: Policy

    def __call__(self, net: Any, x: jax.Array) -> PolicyOutput:
        output = self.policy.apply(net, x[None])
        return output._replace(out=output.out[0], hidden=())


@dataclass(frozen=True)
class ActorNet:
    """A PPO actor-critic's policy head on one observation."""

    net: ActorCritic

    def __call__(self, net: Any, x: jax.Array) -> PolicyOutput:
        return self.net.apply(net, x, method=ActorCritic.policy)


@dataclass(frozen=True)
class ActionHead:
    """A network output -> an action. ``kind``: ``categorical``, ``gaussian`` or
    ``deterministic`` (:func:`~jaxbc.bc.policies.head_action`); ``bounds``: the box that
    continuous samples are clipped to (None: unclipped); ``members``: the outputs carry a
    leading member axis and the action is the ensemble's
    (:func:`~jaxbc.bc.policies.mixture_action`)."""

    kind: str
    bounds: ActionSpace | None = None
    members: bool = False

    def __call__(self, output: PolicyOutput, key: jax.Array, deterministic: bool) -> jax.Array:
        if self.members:
            return mixture_action(self.kind, output, key, deterministic, self.bounds)
        return head_action(self.kind, output, key, deterministic, self.bounds)


@dataclass(frozen=True)
class PolicyFunction:
    """``(params, obs, key) -> action`` for ONE raw observation: see the module docstring.
    Build it with :func:`policy_function`."""

    network: Any  # Ensemble | Single | ActorNet: (net params, one observation) -> outputs
    head: ActionHead
    deterministic: bool = True
    obs_normalizer: ObsNormalizer | None = None
    action_box: Box | None = None  # unnormalise with params act_mean/act_std, clip to it

    def __call__(self, params: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
        x = obs if self.obs_normalizer is None else self.obs_normalizer(params, obs)
        action = self.head(self.network(params["net"], x), key, self.deterministic)
        if self.action_box is not None:
            action = self.action_box.clip(action * params["act_std"] + params["act_mean"])
        return action


def policy_function(
    network: Any,
    head: ActionHead,
    deterministic: bool = True,
    obs_normalizer: ObsNormalizer | None = None,
    action_box: Box | None = None,
) -> PolicyFunction:
    """The policy function of ``network`` (:class:`Ensemble`, :class:`Single`,
    :class:`ActorNet`: ``(params["net"], x) -> PolicyOutput`` for one observation) with the
    action ``head``: the mode/mean if ``deterministic``, else a sample. ``obs_normalizer``
    z-scores the raw observation with the moments in the params first (None: the network
    sees it raw); ``action_box``: the head's action is unnormalised with the params'
    ``act_mean``/``act_std`` and clipped to this box."""
    if action_box is not None and not isinstance(action_box, Box):
        raise ValueError(f"action_box must be a Box, got {action_box}")
    return PolicyFunction(network, head, bool(deterministic), obs_normalizer, action_box)
