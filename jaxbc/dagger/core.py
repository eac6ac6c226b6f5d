"""DAgger on device: roll out, relabel with the expert, aggregate, retrain, all in one jit.

``make_dagger(config, loss_fn)`` returns ``run(key, expert, initial_dataset) -> DAggerResult``.
Iteration 0 is plain BC on the initial dataset; iterations 1..K each

1. roll out the mixture policy from the envs' carried state: at every step the expert's
   action with probability ``beta_k``, else the learner's;
2. label visited states with the expert's action (all of them, or, in the ensemble-gated
   variant, only states where the learner ensemble's action difference exceeds
   ``gate_threshold``: the expert is only *queried* there);
3. append the labelled states to a fixed-capacity buffer (compacted, so the valid entries
   are always a prefix of length ``num_valid``);
4. retrain the learner on the buffer (from scratch, or warm-started), then evaluate it.

The K iterations are a ``lax.scan``; nothing leaves the device until the end.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from jaxbc.bc import BCConfig, bc_loss, make_bc_train
from jaxbc.bc.policies import ensemble_disagreement
from jaxbc.bc.train import BCResult, make_policy_fn, net_policy
from jaxbc.data import Dataset
from jaxbc.envs import Env
from jaxbc.logs import host_callback
from jaxbc.rollout import PolicyFn, RolloutCarry, Step, evaluate_fn, init_carry, unroll
from jaxbc.training import split_static
from jaxbc.validation import check_float, check_int

BETA_SCHEDULES = ("constant", "linear", "exponential")


@struct.dataclass
class DAggerConfig:
    """DAgger's loop. Sizes, counts and the schedule's kind are static; ``beta0``,
    ``beta_decay``, ``gate_threshold`` and the learner's BC hyperparameters are data (they
    may be traced and vmapped; changing them does not recompile :func:`run_dagger`)."""

    bc: BCConfig = struct.field(default_factory=BCConfig)
    iterations: int = struct.field(default=10, pytree_node=False)
    steps_per_iteration: int = struct.field(
        default=2_000, pytree_node=False
    )  # env steps per iteration (num_envs x length)
    num_envs: int = struct.field(default=8, pytree_node=False)
    beta_schedule: Any = struct.field(
        default="linear", pytree_node=False
    )  # constant | linear (1 -> 0) | exponential | fn(k)
    beta0: float | jax.Array = 1.0  # beta of iteration 1
    beta_decay: float | jax.Array = 0.5  # exponential: beta_k = beta0 * decay^(k-1)
    warm_start: bool = struct.field(
        default=False, pytree_node=False
    )  # retrain from the previous learner, not from scratch
    capacity: int | None = struct.field(
        default=None, pytree_node=False
    )  # buffer size; default: no overflow possible
    overflow: str = struct.field(
        default="error", pytree_node=False
    )  # error: refuse a capacity that can overflow; ring
    gate_threshold: float | jax.Array | None = (
        None  # ensemble-gated DAgger: query where action diff > this
    )
    eval_episodes: int = struct.field(default=10, pytree_node=False)

    @property
    def rollout_length(self) -> int:
        return self.steps_per_iteration // self.num_envs

    def __post_init__(self):
        self.validate()

    def validate(self) -> DAggerConfig:
        self.bc.validate()
        check_int("DAggerConfig.iterations", self.iterations, 1)
        check_int("DAggerConfig.num_envs", self.num_envs, 1)
        check_int(
            "DAggerConfig.steps_per_iteration", self.steps_per_iteration, max(1, self.num_envs)
        )
        check_int("DAggerConfig.eval_episodes", self.eval_episodes, 1)
        check_int("DAggerConfig.capacity", self.capacity, 1, allow_none=True)
        if not callable(self.beta_schedule):
            check_float("DAggerConfig.beta0", self.beta0, 0.0, 1.0)
            check_float("DAggerConfig.beta_decay", self.beta_decay, 0.0, 1.0, lo_open=True)
        check_float("DAggerConfig.gate_threshold", self.gate_threshold, 0.0, allow_none=True)
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if self.steps_per_iteration % self.num_envs:
            raise ValueError(
                f"steps_per_iteration ({self.steps_per_iteration}) must be a multiple of num_envs ({self.num_envs})"
            )
        if self.beta_schedule not in BETA_SCHEDULES and not callable(self.beta_schedule):
            raise ValueError(
                f"unknown beta schedule {self.beta_schedule!r}; choose from {BETA_SCHEDULES} or pass a function"
            )
        if self.overflow not in ("error", "ring"):
            raise ValueError(f"overflow must be 'error' or 'ring', got {self.overflow!r}")
        if self.gate_threshold is not None and self.bc.members < 2:
            raise ValueError(
                "the ensemble-gated variant needs an ensemble learner (bc.members >= 2)"
            )
        return self


def beta_at(config: DAggerConfig, k: jax.Array) -> jax.Array:
    """beta for iteration ``k`` (1-based). A callable ``beta_schedule`` is used as is."""
    sched = config.beta_schedule
    k = jnp.asarray(k, jnp.float32)
    if callable(sched):
        return jnp.asarray(sched(k), jnp.float32)
    if sched == "constant":
        return jnp.full((), config.beta0, jnp.float32)
    if sched == "linear":
        denom = max(config.iterations - 1, 1)
        return config.beta0 * jnp.clip(1.0 - (k - 1) / denom, 0.0, 1.0)
    return config.beta0 * config.beta_decay ** (k - 1)


class Buffer(NamedTuple):
    """Fixed-capacity aggregated dataset; entries ``[0, num_valid)`` are valid."""

    obs: jax.Array
    action: jax.Array
    written: jax.Array  # total entries ever written (ring mode may exceed capacity)

    @property
    def capacity(self) -> int:
        return self.obs.shape[0]

    @property
    def num_valid(self) -> jax.Array:
        return jnp.minimum(self.written, self.capacity)


def buffer_from(dataset: Dataset, capacity: int) -> Buffer:
    n = dataset.size
    if n > capacity:
        raise ValueError(
            f"the initial dataset ({n} transitions) does not fit the buffer capacity {capacity}"
        )
    obs = (
        jnp.zeros((capacity, *dataset.observation_shape), jnp.float32)
        .at[:n]
        .set(jnp.asarray(dataset.obs))
    )
    act = (
        jnp.zeros((capacity, *dataset.action_space.shape), jnp.asarray(dataset.action).dtype)
        .at[:n]
        .set(jnp.asarray(dataset.action))
    )
    return Buffer(obs, act, jnp.asarray(n, jnp.int32))


def append(
    buffer: Buffer, obs: jax.Array, action: jax.Array, valid: jax.Array, ring: bool = False
) -> Buffer:
    """Append the ``valid`` rows of (obs, action) after the existing entries.

    Valid rows are compacted (their order kept), so valid data stays a prefix. Without
    ``ring`` rows past the capacity are dropped (callers size the buffer so this cannot
    happen); with ``ring`` they wrap around and overwrite the oldest entries.
    """
    valid = valid.astype(jnp.int32)
    pos = buffer.written + jnp.cumsum(valid) - 1
    if ring:
        pos = pos % buffer.capacity
    pos = jnp.where(valid > 0, pos, buffer.capacity)  # invalid rows go out of bounds: dropped
    return Buffer(
        buffer.obs.at[pos].set(obs, mode="drop"),
        buffer.action.at[pos].set(action, mode="drop"),
        buffer.written + valid.sum(),
    )


def buffer_dataset(buffer: Buffer, template: Dataset) -> Dataset:
    """View the buffer as a :class:`Dataset` for the BC trainer (only obs/action are used)."""
    c = buffer.capacity
    zeros = jnp.zeros((c,), jnp.float32)
    return template.replace(
        obs=buffer.obs,
        action=buffer.action,
        next_obs=buffer.obs,
        reward=zeros,
        terminated=zeros.astype(bool),
        truncated=zeros.astype(bool),
        episode_id=zeros.astype(jnp.int32),
        episode_returns=jnp.zeros((1,), jnp.float32),
    )


@struct.dataclass
class DAggerResult:
    learner: BCResult  # the final learner
    returns: jax.Array  # [K+1] deterministic evaluation return after each iteration (0 = BC)
    dataset_size: jax.Array  # [K+1] valid buffer entries the learner was trained on
    expert_queries: jax.Array  # [K+1] expert queries made in that iteration (labels + actions)
    train_loss: jax.Array  # [K+1] final BC loss of each retraining
    beta: jax.Array  # [K+1] beta used for that iteration's rollout (0 for iteration 0)
    expert_action_fraction: jax.Array  # [K+1] fraction of executed actions that were the expert's
    buffer: Buffer


ITERATION_METRICS = (
    "return",
    "dataset_size",
    "expert_queries",
    "train_loss",
    "beta",
    "expert_action_fraction",
)


def make_dagger(
    config: DAggerConfig,
    loss_fn: Callable = bc_loss,
    env: Env | None = None,
    progress: Callable[[int, dict[str, float]], Any] | None = None,
):
    """Build ``run(key, expert, initial_dataset) -> DAggerResult`` (jit it).

    ``progress(iteration, metrics)`` (a :class:`jaxbc.logs.Logger`'s ``log``) is called on
    the host through ``jax.debug.callback`` after every iteration (0: the initial BC) with
    :data:`ITERATION_METRICS`, while the loop is still on the device; ``None`` adds nothing."""
    config.validate()
    gated = config.gate_threshold is not None

    def report(it: jax.Array, out: tuple) -> None:
        if progress is not None:
            metrics = dict(zip(ITERATION_METRICS, out, strict=True))
            # ordered: iteration 0's report is otherwise free to run after the loop's
            jax.debug.callback(host_callback(progress), it, metrics, ordered=True)

    def run(key: jax.Array, expert, initial: Dataset) -> DAggerResult:
        e = env or expert.make_env()
        initial.check_env(e)
        space, obs_shape = e.action_space, tuple(e.observation_shape)
        capacity = config.capacity or initial.size + config.iterations * config.steps_per_iteration
        if (
            config.overflow == "error"
            and capacity < initial.size + config.iterations * config.steps_per_iteration
        ):
            raise ValueError(
                f"buffer capacity {capacity} can overflow: the initial {initial.size} transitions plus "
                f"{config.iterations} x {config.steps_per_iteration} new ones need "
                f"{initial.size + config.iterations * config.steps_per_iteration}; raise capacity or use overflow='ring'"
            )
        train = make_bc_train(config.bc, loss_fn)
        learner_fn = make_policy_fn(config.bc, space, obs_shape)
        expert_fn: PolicyFn = expert.policy_fn(True, e)
        policy = net_policy(config.bc, space, obs_shape)
        evaluate = evaluate_fn(e, learner_fn, config.eval_episodes)
        n_env = config.num_envs

        def disagreement(params, obs):
            """Per-state ensemble action difference (members' actions/probabilities)."""
            return ensemble_disagreement(policy, params, obs[None])

        def collect(learner_params, expert_params, beta, carry: RolloutCarry, key):
            def actor(obs, k):
                k_mix, k_act = jax.random.split(k)
                keys = jax.random.split(k_act, n_env)
                learner_a = jax.vmap(learner_fn, in_axes=(None, 0, 0))(learner_params, obs, keys)
                expert_a = jax.vmap(expert_fn, in_axes=(None, 0, 0))(expert_params, obs, keys)
                if not e.discrete:
                    expert_a = e.action_space.clip(expert_a)  # labels as datasets store them
                use_expert = jax.random.uniform(k_mix, (n_env,)) < beta
                if gated:
                    label = (
                        jax.vmap(disagreement, in_axes=(None, 0))(learner_params, obs)
                        > config.gate_threshold
                    )
                else:
                    label = jnp.ones((n_env,), bool)
                sel = use_expert.reshape(-1, *([1] * (expert_a.ndim - 1)))
                return jnp.where(sel, expert_a, learner_a), (
                    expert_a,
                    label,
                    (label | use_expert).sum(),
                    use_expert.mean(),
                )

            def emit(s: Step):
                expert_a, label, queries, frac = s.aux
                return s.obs, expert_a, label, queries, frac

            carry, _, (obs, labels, valid, queries, frac) = unroll(
                e, actor, key, carry, config.rollout_length, emit=emit
            )
            flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
            return carry, flat(obs), flat(labels), flat(valid), queries.sum(), frac.mean()

        def iteration(state, k_iter):
            buffer, learner, carry, it = state
            k_roll, k_train, k_eval = jax.random.split(k_iter, 3)
            beta = beta_at(config, it)
            carry, obs, labels, valid, queries, frac = collect(
                learner.params, expert.params, beta, carry, k_roll
            )
            buffer = append(buffer, obs, labels, valid, ring=config.overflow == "ring")
            init_net = learner.params["net"] if config.warm_start else None
            learner = train(k_train, buffer_dataset(buffer, initial), buffer.num_valid, init_net)
            ret = evaluate(learner.params, k_eval).mean_return
            out = (ret, buffer.num_valid, queries, learner.metrics["bc_loss"][-1], beta, frac)
            report(it, out)
            return (buffer, learner, carry, it + 1), out

        k0, k_env, k_eval0, k_iters = jax.random.split(key, 4)
        buffer = buffer_from(initial, capacity)
        learner = train(k0, buffer_dataset(buffer, initial), buffer.num_valid)
        first = (
            evaluate(learner.params, k_eval0).mean_return,  # iteration 0: plain BC
            buffer.num_valid,
            jnp.asarray(0),
            learner.metrics["bc_loss"][-1],
            jnp.asarray(0.0),
            jnp.asarray(0.0),
        )
        report(jnp.asarray(0), first)
        carry = init_carry(e, k_env, n_env)
        (buffer, learner, _, _), outs = jax.lax.scan(
            iteration,
            (buffer, learner, carry, jnp.asarray(1, jnp.int32)),
            jax.random.split(k_iters, config.iterations),
        )
        cat = [
            jnp.concatenate([jnp.asarray(a)[None].astype(b.dtype), b])
            for a, b in zip(first, outs, strict=True)
        ]
        return DAggerResult(learner, *cat, buffer)

    return run


__all__ = [
    "BETA_SCHEDULES",
    "Buffer",
    "DAggerConfig",
    "DAggerResult",
    "ITERATION_METRICS",
    "append",
    "beta_at",
    "buffer_from",
    "make_dagger",
    "run_dagger",
]


def run_dagger(
    config: DAggerConfig,
    key: jax.Array,
    expert,
    initial: Dataset,
    loss: Callable = bc_loss,
    progress: Callable[[int, dict[str, float]], Any] | None = None,
    **loss_params: Any,
) -> DAggerResult:
    """The whole DAgger loop, compiled once per structure (the notebook entry point): equal
    config structure, expert architecture, dataset shapes and loss function reuse one
    program; ``beta0``, ``beta_decay``, ``gate_threshold``, the BC hyperparameters and
    numeric ``loss_params`` (``tau``) are data. ``progress``: per-iteration live logs, as in
    :func:`make_dagger` (another hook compiles another program)."""
    static, data = split_static(loss_params)
    return _dagger_jit(loss, static, progress, config, key, expert, initial, data)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _dagger_jit(loss, static, progress, config, key, expert, initial, data):
    return make_dagger(config, functools.partial(loss, **dict(static), **data), progress=progress)(
        key, expert, initial
    )
