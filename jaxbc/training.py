"""The one gradient loop under every algorithm: ``fit`` (BC, ensembles, Swarm BC, DBC,
DAgger retraining, HaDES's inner loop, diffusion pretraining).

``fit`` is a ``lax.scan`` of ``grad -> optax update`` steps. What varies between algorithms
is only what it is given: the loss, the optax transformation and where each step's batch
comes from (a sampler ``key -> batch`` for minibatches, or a fixed pytree for full-batch
training). Ensembles wrap their optimiser in :func:`per_member`, so clipping and Adam's
statistics are per member and an N-member ensemble trains exactly like N separate runs.

Hyperparameters (learning rate, clipping norm, weight decay, Adam's eps) enter optax as
values, so they may be traced: a sweep over them is a ``vmap`` of one compiled program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxbc.logs import host_callback

Loss = Callable[[Any, Any, jax.Array | None], tuple[jax.Array, dict]]


def is_static_zero(x: Any) -> bool:
    """True only for a concrete Python 0 (a traced value might not be 0)."""
    return isinstance(x, (int, float)) and x == 0


def adam_optimizer(
    lr: float | jax.Array | optax.Schedule,
    max_grad_norm: float | jax.Array | None = None,
    weight_decay: float | jax.Array = 0.0,
    eps: float | jax.Array = 1e-8,
) -> optax.GradientTransformation:
    """Global-norm clipping (``None``: none), then Adam (AdamW if ``weight_decay`` may be
    non-zero). Every number may be traced."""
    if is_static_zero(weight_decay):
        adam = optax.adam(lr, eps=eps)
    else:
        adam = optax.adamw(lr, eps=eps, weight_decay=weight_decay)
    if max_grad_norm is None:
        return adam
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), adam)


def check_finite(tree: Any, what: str) -> None:
    """Refuse to save or report a diverged model: ``FloatingPointError`` naming ``what`` and
    the number of NaN/inf values among the floating-point leaves of ``tree``."""
    bad = sum(
        int((~np.isfinite(np.asarray(x))).sum())
        for x in jax.tree.leaves(tree)
        if np.issubdtype(np.asarray(x).dtype, np.floating)
    )
    if bad:
        raise FloatingPointError(
            f"{what} diverged: {bad} NaN/inf parameter value(s); nothing was saved (try a lower lr)"
        )


def split_static(options: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
    """Split keyword options into static ones (strings, bools, None: hashable, part of a
    compiled program's identity) and data (numbers, arrays, pytrees: traced)."""
    is_static = {k: isinstance(v, (str, bool)) or v is None for k, v in options.items()}
    static = tuple(sorted((k, v) for k, v in options.items() if is_static[k]))
    return static, {k: v for k, v in options.items() if not is_static[k]}


def per_member(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """Apply ``tx`` independently to each slice of a leading member axis (its own clipping
    norm, Adam moments, schedule count): ensembles train as independent policies."""
    return optax.GradientTransformation(jax.vmap(tx.init), jax.vmap(tx.update))


def fit(
    loss_fn: Loss,
    tx: optax.GradientTransformation,
    params: Any,
    batches: Callable[[jax.Array], Any] | Any,
    key: jax.Array | None,
    steps: int,
    opt_state: Any = None,
    progress: Callable[[int, dict[str, float]], Any] | None = None,
    progress_every: int = 100,
    first_step: int | jax.Array = 0,
    stacked: bool = False,
) -> tuple[Any, Any, dict]:
    """Run ``steps`` optimisation steps; returns ``(params, opt_state, metrics per step)``.

    ``loss_fn(params, batch, key) -> (loss, metrics)``. ``batches`` is a sampler
    ``key -> batch`` (minibatches), a fixed pytree (full batch), or with ``stacked`` a
    pytree whose leading axis is the step (step ``i`` trains on ``batches[i]``: a pass over
    fixed minibatches, PPO's epochs). With ``key=None`` no keys are drawn (deterministic
    training) and the loss gets ``None``. Pass the returned ``opt_state`` back in to
    continue a run in chunks.

    ``progress(step, metrics)`` (a :class:`jaxbc.logs.Logger`'s ``log``) is called on the
    host through ``jax.debug.callback`` with the steps done (counted from ``first_step``, so
    chunked runs report global steps) and that step's metrics as floats, after every
    ``progress_every`` steps of this call and after its last step: live logs of a run that
    never leaves the device. The steps and their results are the same with or without it;
    ``None`` adds nothing to the program.
    """
    sample = batches if callable(batches) else (lambda _k: batches)
    opt_state = tx.init(params) if opt_state is None else opt_state

    def step(carry, x):
        params, opt_state = carry
        k, batch = x if stacked else (x, None)
        k_batch, k_loss = (None, None) if k is None else jax.random.split(k)
        batch = batch if stacked else sample(k_batch)
        grads, metrics = jax.grad(loss_fn, has_aux=True)(params, batch, k_loss)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), metrics

    xs = None if key is None else jax.random.split(key, steps)
    if stacked:
        xs = (xs, batches)
    carry = (params, opt_state)
    if progress is None:
        (params, opt_state), metrics = jax.lax.scan(step, carry, xs, length=steps)
        return params, opt_state, metrics
    carry, metrics = _scan_reporting(step, carry, xs, steps, progress_every, first_step, progress)
    return *carry, metrics


def _scan_reporting(step, carry, xs, steps: int, every: int, first_step, progress):
    """``lax.scan(step, carry, xs, length=steps)`` as scans of ``every`` steps, each followed
    by one callback with the step count and its last step's metrics, then the remainder.
    Blocks, not a per-step ``cond``: the inner loop stays the one without logs."""
    report = host_callback(progress)
    every = max(1, min(every, steps))
    blocks, rest = divmod(steps, every)

    def block(carry, x, length):
        xs_block, start = x
        carry, metrics = jax.lax.scan(step, carry, xs_block, length=length)
        last = jax.tree.map(lambda m: m[-1], metrics)
        jax.debug.callback(report, first_step + start + length, last)
        return carry, metrics

    head = jax.tree.map(lambda a: a[: blocks * every].reshape(blocks, every, *a.shape[1:]), xs)
    starts = jnp.arange(blocks) * every
    carry, metrics = jax.lax.scan(lambda c, x: block(c, x, every), carry, (head, starts))
    metrics = jax.tree.map(lambda m: m.reshape(blocks * every, *m.shape[2:]), metrics)
    if rest:
        tail = jax.tree.map(lambda a: a[blocks * every :], xs)
        carry, more = block(carry, (tail, blocks * every), rest)
        metrics = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), metrics, more)
    return carry, metrics
