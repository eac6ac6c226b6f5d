"""Vectorised rollouts and evaluation of any policy function, on one env-stepping loop
(:func:`unroll`).

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

from jaxbc.envs import ENV_AXIS, ActionSpace, Env

PolicyFn = Callable[[Any, jax.Array, jax.Array], jax.Array]
WINDOW_EPISODES = ("all", "last", "recent")  # the window fitnesses of window_score_fn


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
    obs, state = jax.vmap(env.reset, axis_name=ENV_AXIS)(jax.random.split(key, num_envs))
    zeros = jnp.zeros((num_envs,), jnp.float32)
    return RolloutCarry(obs, state, zeros, jnp.zeros((num_envs,), jnp.int32))


class Step(NamedTuple):
    """One step of a batch of envs, as :func:`unroll` hands it to ``fold`` and ``emit``."""

    obs: jax.Array  # [E, ...] the observation the action was taken in
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: jax.Array  # after the step, before auto-reset
    done: jax.Array  # terminated | truncated
    episode_return: jax.Array  # return of the episode that ended at this step, else 0
    episode_length: jax.Array  # its length, else 0
    info: dict
    aux: Any  # whatever the actor returned besides the actions


Actor = Callable[[jax.Array, jax.Array], tuple[jax.Array, Any]]


def policy_actor(policy_fn: PolicyFn, params: Any) -> Actor:
    """An actor ``(obs [E, ...], key) -> (actions, None)`` from a one-observation policy."""
    act = jax.vmap(policy_fn, in_axes=(None, 0, 0))

    def actor(obs, key):
        return act(params, obs, jax.random.split(key, obs.shape[0])), None

    return actor


def unroll(
    env: Env,
    actor: Actor,
    key: jax.Array,
    carry: RolloutCarry,
    num_steps: int,
    fold: Callable[[Any, Step], Any] | None = None,
    acc: Any = None,
    emit: Callable[[Step], Any] | None = None,
) -> tuple[RolloutCarry, Any, Any]:
    """The one env-stepping loop: ``num_steps`` steps of every env from ``carry``.

    Every rollout in jaxbc (trajectories, evaluation, HaDES fitness, DAgger's mixture
    rollouts, the toy task's outcomes) is this scan with its own ``actor`` and per-step
    accumulators: ``fold(acc, step) -> acc`` is carried (nothing stored per step) and
    ``emit(step)`` is stacked over time. Returns ``(carry, acc, emitted)``; pure, jit it or
    call it inside other compiled programs.
    """
    num_envs = carry.obs.shape[0]
    chex.assert_shape(carry.obs, (num_envs, *env.observation_shape))
    step_envs = jax.vmap(env.step, axis_name=ENV_AXIS)

    def body(c, k):
        rc, acc = c
        k_act, k_step = jax.random.split(k)
        action, aux = actor(rc.obs, k_act)
        obs, state, reward, term, trunc, info = step_envs(
            jax.random.split(k_step, num_envs), rc.env_state, action
        )
        done = term | trunc
        ret, length = rc.ep_return + reward, rc.ep_length + 1
        step = Step(
            rc.obs,
            action,
            reward,
            term,
            trunc,
            info["final_observation"],
            done,
            jnp.where(done, ret, 0.0),
            jnp.where(done, length, 0),
            info,
            aux,
        )
        new = RolloutCarry(obs, state, jnp.where(done, 0.0, ret), jnp.where(done, 0, length))
        return (new, fold(acc, step) if fold else acc), (emit(step) if emit else None)

    (carry, acc), out = jax.lax.scan(body, (carry, acc), jax.random.split(key, num_steps))
    return carry, acc, out


def rollout_steps(
    env: Env,
    policy_fn: PolicyFn,
    params: Any,
    key: jax.Array,
    carry: RolloutCarry,
    num_steps: int,
) -> tuple[RolloutCarry, RolloutResult]:
    """Pure core: ``num_steps`` steps of every env from ``carry``, with trajectories."""

    def emit(s: Step):
        return (
            s.obs,
            s.action,
            s.reward,
            s.terminated,
            s.truncated,
            s.next_obs,
            s.episode_return,
            s.episode_length,
            s.done,
        )

    carry, _, out = unroll(env, policy_actor(policy_fn, params), key, carry, num_steps, emit=emit)
    obs, action, reward, term, trunc, next_obs, ep_ret, ep_len, done = out
    # A step is part of a complete episode iff some episode end happens at or after it.
    mask = jnp.flip(jnp.cumsum(jnp.flip(done, 0), 0), 0) > 0
    traj = Trajectory(obs, action, reward, term, trunc, next_obs, mask)
    return carry, RolloutResult(traj, ep_ret, ep_len, done)


def first_episodes(
    env: Env,
    actor: Actor,
    key: jax.Array,
    num_envs: int,
    num_steps: int,
    extra: Callable[[Step], Any] | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array, Any]:
    """Each env's first episode within ``num_steps``: ``(returns, lengths, finished, extra)``
    where an unfinished episode counts its return and length so far, and ``extra(step)``
    (optional) is recorded at the step the first episode ended."""
    k_reset, k_run = jax.random.split(key)
    carry = init_carry(env, k_reset, num_envs)
    zf, zi = jnp.zeros((num_envs,), jnp.float32), jnp.zeros((num_envs,), jnp.int32)

    def fold(acc, s: Step):
        finished, ret, length, x = acc
        ended = ~finished & s.done
        x = (
            x
            if extra is None
            else jax.tree.map(lambda new, old: jnp.where(ended, new, old), extra(s), x)
        )
        return (
            finished | ended,
            jnp.where(ended, s.episode_return, ret),
            jnp.where(ended, s.episode_length, length),
            x,
        )

    x0 = None
    if extra is not None:
        shapes = jax.eval_shape(lambda: extra(_dummy_step(env, num_envs)))
        x0 = jax.tree.map(lambda sd: jnp.zeros(sd.shape, sd.dtype), shapes)
    carry, (finished, ret, length, x), _ = unroll(
        env, actor, k_run, carry, num_steps, fold, (zi.astype(bool), zf, zi, x0)
    )
    return (
        jnp.where(finished, ret, carry.ep_return),
        jnp.where(finished, length, carry.ep_length),
        finished,
        x,
    )


def _dummy_step(env: Env, num_envs: int) -> Step:
    """A step of the right shapes (for ``eval_shape`` of per-step extractors)."""
    obs, state = jax.vmap(env.reset, axis_name=ENV_AXIS)(
        jax.random.split(jax.random.key(0), num_envs)
    )
    action = jax.vmap(env.action_space.sample)(jax.random.split(jax.random.key(0), num_envs))
    _, _, reward, term, trunc, info = jax.vmap(env.step, axis_name=ENV_AXIS)(
        jax.random.split(jax.random.key(0), num_envs), state, action
    )
    return Step(
        obs, action, reward, term, trunc, obs, term, reward, reward.astype(jnp.int32), info, None
    )


def rollout(
    env: Env,
    policy_fn: PolicyFn,
    params: Any,
    key: jax.Array,
    num_envs: int,
    num_steps: int,
) -> RolloutResult:
    """Reset ``num_envs`` environments and run ``num_steps`` steps of ``policy_fn``."""
    return _rollout_jit(env, policy_fn, num_envs, num_steps, params, key)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _rollout_jit(
    env: Env, policy_fn: PolicyFn, num_envs: int, num_steps: int, params: Any, key: jax.Array
):
    # static: env and policy_fn compare by value (jaxbc.envs.make, BC/expert policy fns),
    # so equal ones reuse this program (jit's own cache, no module-level dict)
    k_reset, k_run = jax.random.split(key)
    carry = init_carry(env, k_reset, num_envs)
    return rollout_steps(env, policy_fn, params, k_run, carry, num_steps)[1]


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

    def run(params, key) -> EvalResult:
        returns, lengths, _, _ = first_episodes(
            env, policy_actor(policy_fn, params), key, num_episodes, num_steps
        )
        return EvalResult(returns.mean(), returns.std(), returns, lengths)

    return run


class WindowScore(NamedTuple):
    """A window fitness in poolable parts: ``total / count`` over the episodes it scores, or
    ``running`` (the mean return so far of the running episodes) when it scores none. Scores
    stacked on leading axes pool with :func:`pooled` (the official HaDES-R scores the
    episodes of both inits together, so an init that falls often weighs more)."""

    total: jax.Array
    count: jax.Array
    running: jax.Array


def pooled(score: WindowScore) -> jax.Array:
    """The mean return of every episode in ``score`` (all its leading axes together)."""
    n = score.count.sum()
    return jnp.where(n > 0, score.total.sum() / jnp.maximum(n, 1.0), score.running.mean())


def window_score_fn(
    env: Env, policy_fn: PolicyFn, num_envs: int, num_steps: int, episodes: str = "all"
) -> Callable[[Any, jax.Array], WindowScore]:
    """Build a pure ``(params, key) -> WindowScore`` over a ``num_steps`` window of
    ``num_envs`` auto-resetting envs (the HaDES paper's fitness), by ``episodes``:

    * ``"all"``: EVERY episode that ends in the window (short episodes are averaged many
      times over, so a poor policy's score is far less noisy than its first episode's); if
      none ends, the mean return so far of the running episodes;
    * ``"last"``: each env's last finished episode, 0 for an env that finished none
      (the official HaDES MinAtar code, as written);
    * ``"recent"``: at every step, each env's most recently finished episode (0 before the
      first), averaged over steps (what the official MinAtar runs recorded: their
      multi-device reshaping averaged ``returned_episode_returns`` over the steps).

    ``"last"`` and ``"recent"`` count one score per env. Only running sums are carried.
    """
    if episodes not in WINDOW_EPISODES:
        raise ValueError(f"episodes must be one of {WINDOW_EPISODES}, got {episodes!r}")

    def run(params, key) -> WindowScore:
        k_reset, k_run = jax.random.split(key)
        carry = init_carry(env, k_reset, num_envs)
        zero = jnp.zeros((num_envs,), jnp.float32)

        def fold(acc, s: Step):
            total, count, last, recent = acc
            last = jnp.where(s.done, s.episode_return, last)
            return total + s.episode_return, count + s.done, last, recent + last

        carry, (total, count, last, recent), _ = unroll(
            env,
            policy_actor(policy_fn, params),
            k_run,
            carry,
            num_steps,
            fold,
            (zero, zero, zero, zero),
        )
        running = carry.ep_return.mean()
        envs = jnp.asarray(num_envs, jnp.float32)
        if episodes == "last":
            return WindowScore(last.sum(), envs, running)
        if episodes == "recent":
            return WindowScore(recent.sum() / num_steps, envs, running)
        return WindowScore(total.sum(), count.sum(), running)

    return run


def window_return_fn(
    env: Env, policy_fn: PolicyFn, num_envs: int, num_steps: int, episodes: str = "all"
) -> Callable[[Any, jax.Array], jax.Array]:
    """Build a pure ``(params, key) -> mean return``: the :func:`pooled` :func:`window_score_fn`."""
    score = window_score_fn(env, policy_fn, num_envs, num_steps, episodes)
    return lambda params, key: pooled(score(params, key))


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
    return _evaluate_jit(env, policy_fn, num_episodes, params, key)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _evaluate_jit(
    env: Env, policy_fn: PolicyFn, num_episodes: int, params: Any, key: jax.Array
) -> EvalResult:
    return evaluate_fn(env, policy_fn, num_episodes)(params, key)


class Outcomes(NamedTuple):
    """Per-episode results of :func:`episode_outcomes`, each shaped [num_episodes]."""

    returns: jax.Array
    lengths: jax.Array
    goal: jax.Array  # +1 upper goal, -1 lower goal, 0 no goal
    crashed: jax.Array

    @property
    def reached(self) -> jax.Array:
        return self.goal != 0


def episode_outcomes(
    env: Env, policy_fn: PolicyFn, params: Any, key: jax.Array, num_episodes: int
) -> Outcomes:
    """Run ``num_episodes`` episodes (one per env, the first episode counts) and record which
    goal each reached, on envs whose ``info`` reports ``goal`` and ``crashed`` (the two-goals
    toy task, the point maze). Pure and fixed-shape: jit it, vmap it over policy params."""

    def outcome(s: Step):
        return s.info["goal"], s.info["crashed"]

    returns, lengths, _, (goal, crashed) = first_episodes(
        env,
        policy_actor(policy_fn, params),
        key,
        num_episodes,
        env.max_episode_steps,
        extra=outcome,
    )
    return Outcomes(returns, lengths, goal, crashed)


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
