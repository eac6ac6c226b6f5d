"""Vectorised rollouts and evaluation of any policy function.

A policy function maps ONE observation to ONE action::

    action = policy_fn(params, obs, key)

and is ``vmap``-ed over environments here. Everything is fixed-shape (``lax.scan`` over
steps, ``vmap`` over envs) and jittable, so rollouts run inside other compiled programs
(DAgger, HaDES fitness) as well as on their own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from jaxbc.envs import ActionSpace, Env

PolicyFn = Callable[[Any, jax.Array, jax.Array], jax.Array]


class Trajectory(NamedTuple):
    """Time-major transitions, every leaf shaped ``[L, E, ...]``.

    ``mask`` is True for steps that belong to an episode which ended inside the window
    (complete episodes); ``next_obs`` is the observation after the step, *before* auto-reset.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: jax.Array
    mask: jax.Array


class RolloutResult(NamedTuple):
    trajectory: Trajectory
    episode_return: jax.Array  # [L, E]: return of the episode that ended at step t, else 0
    episode_length: jax.Array  # [L, E]: its length, else 0
    episode_end: jax.Array  # [L, E]: terminated | truncated

    @property
    def num_episodes(self) -> jax.Array:
        return self.episode_end.sum()

    def mean_return(self) -> jax.Array:
        """Mean return of the episodes that finished inside the window (NaN if none)."""
        return (self.episode_return * self.episode_end).sum() / self.episode_end.sum()


class RolloutCarry(NamedTuple):
    """What a rollout hands to the next one, so long runs can continue seamlessly."""

    obs: jax.Array
    env_state: Any
    ep_return: jax.Array
    ep_length: jax.Array


def init_carry(env: Env, key: jax.Array, num_envs: int) -> RolloutCarry:
    obs, state = jax.vmap(env.reset)(jax.random.split(key, num_envs))
    zeros = jnp.zeros((num_envs,), jnp.float32)
    return RolloutCarry(obs, state, zeros, jnp.zeros((num_envs,), jnp.int32))


def rollout_steps(
    env: Env,
    policy_fn: PolicyFn,
    params: Any,
    key: jax.Array,
    carry: RolloutCarry,
    num_steps: int,
) -> tuple[RolloutCarry, RolloutResult]:
    """Pure core: ``num_steps`` steps of every env from ``carry``. Jit it (or call inside jit)."""
    num_envs = carry.obs.shape[0]
    chex.assert_shape(carry.obs, (num_envs, *env.observation_shape))
    act = jax.vmap(policy_fn, in_axes=(None, 0, 0))
    step = jax.vmap(env.step)

    def body(c: RolloutCarry, k):
        k_act, k_step = jax.random.split(k)
        action = act(params, c.obs, jax.random.split(k_act, num_envs))
        obs, state, reward, term, trunc, info = step(jax.random.split(k_step, num_envs), c.env_state, action)
        done = term | trunc
        ret = c.ep_return + reward
        length = c.ep_length + 1
        out = (
            c.obs,
            action,
            reward,
            term,
            trunc,
            info["final_observation"],
            jnp.where(done, ret, 0.0),
            jnp.where(done, length, 0),
            done,
        )
        new = RolloutCarry(obs, state, jnp.where(done, 0.0, ret), jnp.where(done, 0, length))
        return new, out

    carry, (obs, action, reward, term, trunc, next_obs, ep_ret, ep_len, done) = jax.lax.scan(
        body, carry, jax.random.split(key, num_steps)
    )
    # A step is part of a complete episode iff some episode end happens at or after it.
    mask = jnp.flip(jnp.cumsum(jnp.flip(done, 0), 0), 0) > 0
    traj = Trajectory(obs, action, reward, term, trunc, next_obs, mask)
    return carry, RolloutResult(traj, ep_ret, ep_len, done)


def rollout(
    env: Env,
    policy_fn: PolicyFn,
    params: Any,
    key: jax.Array,
    num_envs: int,
    num_steps: int,
) -> RolloutResult:
    """Reset ``num_envs`` environments and run ``num_steps`` steps of ``policy_fn``."""
    return _rollout_jit(env, policy_fn, num_envs, num_steps)(params, key)


@functools.lru_cache(maxsize=64)
def _rollout_jit(env: Env, policy_fn: PolicyFn, num_envs: int, num_steps: int):
    def run(params, key):
        k_reset, k_run = jax.random.split(key)
        carry = init_carry(env, k_reset, num_envs)
        return rollout_steps(env, policy_fn, params, k_run, carry, num_steps)[1]

    return jax.jit(run)


class EvalResult(NamedTuple):
    mean_return: jax.Array
    std_return: jax.Array
    returns: jax.Array  # [num_episodes]
    lengths: jax.Array  # [num_episodes]


def evaluate_fn(
    env: Env, policy_fn: PolicyFn, num_episodes: int, num_steps: int | None = None
) -> Callable[[Any, jax.Array], EvalResult]:
    """Build a pure ``(params, key) -> EvalResult`` over ``num_episodes`` complete episodes.

    Runs one env per episode for ``num_steps`` (default ``env.max_episode_steps``) steps and
    keeps each env's first episode; with the default the time limit guarantees every episode
    completes (with fewer steps, an unfinished episode counts its return so far). Only
    returns are carried, no trajectories, so it is cheap enough to call inside training
    loops and population vmaps.
    """
    num_steps = num_steps or env.max_episode_steps
    act = jax.vmap(policy_fn, in_axes=(None, 0, 0))
    step = jax.vmap(env.step)

    def run(params, key) -> EvalResult:
        k_reset, k_run = jax.random.split(key)
        obs, state = jax.vmap(env.reset)(jax.random.split(k_reset, num_episodes))
        zf = jnp.zeros((num_episodes,), jnp.float32)
        zi = jnp.zeros((num_episodes,), jnp.int32)
        init = (obs, state, zf, zi, jnp.zeros((num_episodes,), bool), zf, zi)

        def body(c, k):
            obs, state, ret, length, finished, final_ret, final_len = c
            k_act, k_step = jax.random.split(k)
            action = act(params, obs, jax.random.split(k_act, num_episodes))
            obs, state, reward, term, trunc, _ = step(jax.random.split(k_step, num_episodes), state, action)
            live = ~finished
            ret = ret + reward * live
            length = length + live
            ended = live & (term | trunc)
            final_ret = jnp.where(ended, ret, final_ret)
            final_len = jnp.where(ended, length, final_len)
            return (obs, state, ret, length, finished | ended, final_ret, final_len), None

        c, _ = jax.lax.scan(body, init, jax.random.split(k_run, num_steps))
        finished = c[4]
        returns = jnp.where(finished, c[5], c[2])  # unfinished: the return so far
        lengths = jnp.where(finished, c[6], c[3])
        return EvalResult(returns.mean(), returns.std(), returns, lengths)

    return run


def window_return_fn(
    env: Env, policy_fn: PolicyFn, num_envs: int, num_steps: int
) -> Callable[[Any, jax.Array], jax.Array]:
    """Build a pure ``(params, key) -> mean return`` of EVERY episode that ends within
    ``num_steps`` steps of ``num_envs`` auto-resetting envs (the HaDES paper's fitness).

    Short episodes are averaged many times over, so a poor policy's score is far less
    noisy than its first episode's. If no episode ends in the window, the mean return so
    far of the running episodes counts instead. Only running sums are carried.
    """
    act = jax.vmap(policy_fn, in_axes=(None, 0, 0))
    step = jax.vmap(env.step)

    def run(params, key) -> jax.Array:
        k_reset, k_run = jax.random.split(key)
        obs, state = jax.vmap(env.reset)(jax.random.split(k_reset, num_envs))
        zero = jnp.zeros((num_envs,), jnp.float32)

        def body(c, k):
            obs, state, ret, done_sum, done_count = c
            k_act, k_step = jax.random.split(k)
            action = act(params, obs, jax.random.split(k_act, num_envs))
            obs, state, reward, term, trunc, _ = step(jax.random.split(k_step, num_envs), state, action)
            ret = ret + reward
            done = term | trunc
            return (obs, state, jnp.where(done, 0.0, ret), done_sum + jnp.where(done, ret, 0.0), done_count + done), None

        init = (obs, state, zero, zero, zero)
        (_, _, running, total, count), _ = jax.lax.scan(body, init, jax.random.split(k_run, num_steps))
        n = count.sum()
        return jnp.where(n > 0, total.sum() / jnp.maximum(n, 1.0), running.mean())

    return run


def evaluate(
    env: Env,
    policy_fn: PolicyFn,
    params: Any,
    key: jax.Array,
    num_episodes: int = 100,
) -> EvalResult:
    """Mean/std return of ``policy_fn`` over ``num_episodes`` complete episodes (jitted).

    Deterministic or sampled evaluation is a property of ``policy_fn`` (e.g.
    ``expert.policy_fn(deterministic=True)``).
    """
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    return _evaluate_jit(env, policy_fn, num_episodes)(params, key)


@functools.lru_cache(maxsize=64)
def _evaluate_jit(env: Env, policy_fn: PolicyFn, num_episodes: int):
    return jax.jit(evaluate_fn(env, policy_fn, num_episodes))


def random_policy(space: ActionSpace) -> PolicyFn:
    """Uniformly random actions over ``space`` (params ignored)."""

    def policy(params, obs, key):
        del params, obs
        return space.sample(key)

    return policy


@functools.lru_cache(maxsize=32)
def _random_policy_cached(space: ActionSpace) -> PolicyFn:
    return random_policy(space)


def random_return(env: Env, key: jax.Array, num_episodes: int = 100) -> EvalResult:
    """Return of the uniformly random policy: the floor of scaled returns."""
    return evaluate(env, _random_policy_cached(env.action_space), None, key, num_episodes)


def scaled_return(ret, random_ret, expert_ret):
    """``(R - R_random) / (R_expert - R_random)``: 0 = random, 1 = expert."""
    return (ret - random_ret) / (expert_ret - random_ret)
