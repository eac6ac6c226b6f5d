"""Evaluation of trained (ensemble) policies: returns, scaled returns, action differences."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxbc.bc.policies import Policy, ensemble_disagreement
from jaxbc.bc.train import BCResult
from jaxbc.data import Dataset
from jaxbc.experts.expert import zoo_meta
from jaxbc.rollout import evaluate, random_return, rollout, scaled_return


def member_action_difference(result: BCResult, obs: jax.Array, max_states: int = 4096) -> jax.Array:
    """Mean pairwise distance of member actions (probabilities if discrete) on raw ``obs``."""
    obs = jnp.asarray(obs)
    if obs.shape[0] > max_states:  # evenly spaced subsample keeps early and late states
        obs = obs[jnp.linspace(0, obs.shape[0] - 1, max_states).astype(jnp.int32)]
    return _action_difference_jit(result.policy)(result.params, obs)


@functools.lru_cache(maxsize=32)
def _action_difference_jit(policy: Policy):
    return jax.jit(functools.partial(ensemble_disagreement, policy))


def reference_returns(
    env_id: str, dataset: Dataset | None = None, key: jax.Array | None = None, env=None
) -> tuple[float, float]:
    """(expert return, random return) for scaled returns.

    Taken from the zoo expert's metadata (100-episode means) when the zoo has ``env_id``;
    otherwise the dataset's mean episode return and a fresh random-policy evaluation, but
    only if the dataset holds expert demonstrations (``source`` ``"expert:..."``): a HaDES
    dataset's "returns" are fitness values, not an expert's (``ValueError`` then).
    """
    meta = zoo_meta(env_id)
    if meta is not None:
        return float(meta["mean_return"]), float(meta["random_return"])
    if dataset is None or env is None:
        raise ValueError(
            f"no zoo expert for {env_id}: pass the dataset and env to compute references"
        )
    if not str(dataset.source).startswith("expert:"):
        raise ValueError(
            f"no expert return for {env_id}: the zoo has no expert for it and the dataset's source "
            f"({dataset.source or 'unknown'!s}) is not expert demonstrations"
        )
    rnd = random_return(env, key if key is not None else jax.random.key(0), 100)
    return float(jnp.mean(dataset.episode_returns)), float(rnd.mean_return)


def evaluate_bc(
    result: BCResult,
    key: jax.Array,
    episodes: int = 20,
    dataset: Dataset | None = None,
    env=None,
    references: tuple[float, float] | None = None,
) -> dict:
    """Return, scaled return and action differences (expert states, visited states)."""
    env = env or result.make_env()
    k_eval, k_roll, k_ref = jax.random.split(key, 3)
    policy_fn = result.policy_fn()
    ev = evaluate(env, policy_fn, result.params, k_eval, episodes)
    reference: str | None
    if references is not None:
        reference = "given"
    elif zoo_meta(result.env_id) is not None:
        reference = f"zoo expert of {result.env_id}"
    else:
        reference = "the dataset's expert demonstrations"
    try:
        expert_ret, random_ret = references or reference_returns(result.env_id, dataset, k_ref, env)
    except ValueError:  # no real expert to compare with: no scaled return
        expert_ret, random_ret, reference = None, None, None
    out = {
        "mean_return": float(ev.mean_return),
        "std_return": float(ev.std_return),
        "episodes": episodes,
        "expert_return": expert_ret,
        "random_return": random_ret,
        "scaled_return": None
        if expert_ret is None
        else float(scaled_return(ev.mean_return, random_ret, expert_ret)),
        "expert_return_from": reference,
        "members": result.config.members,
    }
    if dataset is not None:
        out["dataset_source"] = dataset.source or "unknown"
    visited = rollout(
        env, policy_fn, result.params, k_roll, min(episodes, 16), env.max_episode_steps
    ).trajectory.obs
    visited = visited.reshape(-1, *env.observation_shape)
    out["action_difference_visited"] = float(member_action_difference(result, visited))
    if dataset is not None:
        out["action_difference_expert"] = float(member_action_difference(result, dataset.obs))
    out["action_difference"] = out.get("action_difference_expert", out["action_difference_visited"])
    return out
