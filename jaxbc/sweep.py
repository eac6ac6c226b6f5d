"""Sweeps: many runs of one algorithm as one compiled program, optionally over devices.

A run is any pure function of per-run arrays (a PRNG key, hyperparameters), e.g.::

    def run(key, tau, lr):
        cfg = base.replace(lr=lr)                          # hyperparameters are data
        return make_bc_train(cfg, partial(swarm_bc_loss, tau=tau))(key, data)

    keys, taus, lrs = grid(jax.random.split(key, 3), jnp.array([0.0, 0.25]), jnp.array([1e-3, 3e-3]))
    results = sweep(run, keys, taus, lrs, devices=None)   # 12 runs; results[i] is one run

``sweep`` is ``jit(vmap(run))``; with ``devices`` the run axis is split over a 1-D
``Mesh`` of that many devices (``shard_map``: each device trains its own runs, no
communication), and the results equal the one-device sweep. In a multi-process run
(:mod:`jaxbc.distributed`) the mesh spans every process's devices, every process calls
``sweep`` with the same arguments, and each gets every run's results as host arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from jaxbc.distributed import device_mesh, host_local

RUN_AXIS = "runs"


def grid(*axes: Any) -> tuple[Any, ...]:
    """The Cartesian product of per-axis values, flattened to one leading run axis
    (C order: the last axis varies fastest). Each axis is a pytree whose leaves share a
    leading dimension (e.g. a key array or a vector of learning rates)."""
    sizes = [jax.tree.leaves(a)[0].shape[0] for a in axes]
    index = np.indices(sizes).reshape(len(sizes), -1)
    return tuple(jax.tree.map(lambda x, i=i: x[index[i]], a) for i, a in enumerate(axes))


def unflatten(results: Any, shape: tuple[int, ...]) -> Any:
    """Reshape a sweep's leading run axis into ``shape`` (e.g. seeds x taus x lrs)."""
    return jax.tree.map(lambda x: x.reshape(*shape, *x.shape[1:]), results)


def make_mesh(devices: int | Mesh | None) -> Mesh | None:
    """A 1-D mesh over the first ``devices`` of ``jax.devices()`` (in a multi-process run:
    every process's, see :mod:`jaxbc.distributed`; a Mesh is used as given)."""
    if devices is None or isinstance(devices, Mesh):
        return devices
    return device_mesh(devices, RUN_AXIS)


def sweep(run: Callable[..., Any], *args: Any, devices: int | Mesh | None = None) -> Any:
    """``run`` over the leading axis of every argument, as one compiled program.

    ``devices``: split the runs over this many devices (or a 1-D ``Mesh``); the number of
    runs is padded to a multiple of it (the padding runs are dropped from the result)."""
    n = jax.tree.leaves(args)[0].shape[0]
    mesh = make_mesh(devices)
    if mesh is None:
        return _compiled(run, None)(*args)
    d = mesh.devices.size
    pad = -n % d
    if pad:
        args = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], pad, 0)]), args)
    out = _compiled(run, mesh)(*args)
    if jax.process_count() > 1:  # runs on other processes' devices: every process gets all
        out = host_local(out)
    return jax.tree.map(lambda x: x[:n], out) if pad else out


@functools.lru_cache(maxsize=32)
def _compiled(run: Callable[..., Any], mesh: Mesh | None) -> Callable[..., Any]:
    batched = jax.vmap(run)
    if mesh is None:
        return jax.jit(batched)
    spec = PartitionSpec(mesh.axis_names[0])
    return jax.jit(
        jax.shard_map(batched, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)
    )
