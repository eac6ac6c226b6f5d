"""Multi-process (multi-host) runs through ``jax.distributed``.

Every process runs the same program on the same keys; ``jax.devices()`` then lists every
process's devices, and meshes built from it (HaDES's population axis, :func:`jaxbc.sweep.sweep`)
span all of them. Process 0 (the *primary*) alone touches the file system: it checks and
restores checkpoints, writes them, results and logs; what the others need from disk (a
restored state, a refusal) it broadcasts to them, so the directories need not be shared.

Call :func:`initialize` before anything else touches JAX: with explicit coordinates
(coordinator address, process count, this process's id), with ``auto=True`` to let
``jax.distributed.initialize()`` read them from the cluster (SLURM, TPU pods, MPI,
Kubernetes), or with neither for a single-process run (nothing happens).
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh


class DistributedError(ValueError):
    """Processes that cannot run together: an unreachable coordinator, bad coordinates,
    different settings."""


@dataclass(frozen=True)
class ProcessLayout:
    """Where this process sits: its index, the process count, local and global devices."""

    process_id: int
    num_processes: int
    local_devices: int
    global_devices: int

    def to_dict(self) -> dict:
        return {
            "num_processes": self.num_processes,
            "local_devices": self.local_devices,
            "global_devices": self.global_devices,
        }


def device_mesh(num_devices: int, axis: str) -> Mesh:
    """A 1-D mesh named ``axis`` over the first ``num_devices`` of ``jax.devices()`` (every
    process's in a multi-process run), the one way HaDES and sweeps split work over devices."""
    available = jax.devices()
    if not 1 <= num_devices <= len(available):
        raise ValueError(
            f"num_devices must be between 1 and the {len(available)} visible device(s), got {num_devices}"
        )
    return Mesh(np.asarray(available[:num_devices]), (axis,))


def layout() -> ProcessLayout:
    """This process's :class:`ProcessLayout` (1 process when not initialized)."""
    return ProcessLayout(
        jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count()
    )


def is_primary() -> bool:
    """Whether this is process 0, the one that reads and writes files."""
    return jax.process_index() == 0


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    auto: bool = False,
    timeout_s: int = 300,
) -> ProcessLayout:
    """Join a multi-process run (see the module docstring) and return this process's layout.

    Explicit coordinates need all three values; ``auto`` takes them from the cluster
    environment instead (``jax.distributed.initialize()``'s detection). ``timeout_s`` bounds
    the wait for the coordinator and the other processes. Errors are
    :class:`DistributedError` naming what to fix."""
    given = {
        "coordinator_address": coordinator_address,
        "num_processes": num_processes,
        "process_id": process_id,
    }
    if auto and any(v is not None for v in given.values()):
        raise DistributedError(
            "give either the coordinates (coordinator_address, num_processes, process_id) or "
            "auto=True (read them from the cluster), not both"
        )
    if not auto and all(v is None for v in given.values()):
        return layout()
    if not auto:
        missing = [k for k, v in given.items() if v is None]
        if missing or coordinator_address is None or num_processes is None or process_id is None:
            raise DistributedError(
                f"a multi-process run needs coordinator_address, num_processes and process_id; "
                f"missing: {', '.join(missing)}"
            )
        if ":" not in coordinator_address:
            raise DistributedError(
                f"coordinator_address must be HOST:PORT, got {coordinator_address!r}"
            )
        if num_processes < 1:
            raise DistributedError(f"num_processes must be >= 1, got {num_processes}")
        if not 0 <= process_id < num_processes:
            raise DistributedError(
                f"process_id must be in [0, {num_processes - 1}] for {num_processes} processes, "
                f"got {process_id}"
            )
    if timeout_s < 1:
        raise DistributedError(f"timeout_s must be >= 1, got {timeout_s}")
    where = "the cluster's coordinates" if auto else f"coordinator {coordinator_address}"
    if not auto and process_id != 0:
        _wait_for(coordinator_address, timeout_s)
    try:
        jax.distributed.initialize(**given, initialization_timeout=int(timeout_s))
    except (RuntimeError, ValueError) as e:  # jax raises both (and XlaRuntimeError, a RuntimeError)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        hint = (
            "is every process started with the same coordinator address and process count, "
            "and is the address reachable?"
            if not auto
            else "is this a SLURM / TPU pod / MPI / Kubernetes job? Elsewhere pass the coordinates"
        )
        raise DistributedError(
            f"could not join the multi-process run through {where} within {timeout_s} s: "
            f"{first} ({hint})"
        ) from e
    return layout()


def _wait_for(address: str, timeout_s: int) -> None:
    """Wait until ``address`` (HOST:PORT) accepts connections. jax's client aborts the whole
    process when the coordinator stays away, so an unreachable one is caught here first."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
                return
        except (OSError, ValueError) as e:
            if time.monotonic() >= deadline:
                raise DistributedError(
                    f"could not join the multi-process run through coordinator {address} within "
                    f"{timeout_s} s: nothing accepts connections there ({e}); is process 0 "
                    "running, with the same address, and is the port reachable from here?"
                ) from None
            time.sleep(0.5)


def sync(name: str) -> None:
    """Wait until every process gets here (e.g. the primary has finished writing), so no
    process exits while another still works: jax's shutdown barrier would fail."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def settings_digest(settings: Any) -> str:
    """A hex digest of JSON-able ``settings`` (sorted keys)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def check_same_settings(settings: Any, what: str = "run") -> None:
    """Refuse to start unless every process was given the same ``settings`` (compared as a
    digest through one all-gather; nothing happens in a single-process run)."""
    if jax.process_count() == 1:
        return
    digest = np.frombuffer(bytes.fromhex(settings_digest(settings)), np.uint32)
    everyone = np.asarray(multihost_utils.process_allgather(digest))
    differ = [i for i in range(everyone.shape[0]) if not np.array_equal(everyone[i], everyone[0])]
    if differ:
        raise DistributedError(
            f"the processes were started with different {what} settings (process(es) "
            f"{differ} differ from process 0); start every process with the same command"
        )


def _bytes_from_primary(payload: bytes | None) -> bytes:
    size = multihost_utils.broadcast_one_to_all(np.int64(len(payload or b"")))
    buf = np.zeros(int(size), np.uint8)
    if is_primary():
        buf = np.frombuffer(payload or b"", np.uint8)
    return bytes(np.asarray(multihost_utils.broadcast_one_to_all(buf)).astype(np.uint8))


def on_primary(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` run on the primary only; every process gets its JSON-able
    result, or raises its error again (as :class:`ValueError` subclasses it is re-raised as
    the same class where that class takes one message, else as ``ValueError``)."""
    if jax.process_count() == 1:
        return fn(*args, **kwargs)
    message: dict = {}
    if is_primary():
        try:
            message = {"ok": fn(*args, **kwargs)}
        except ValueError as e:
            message = {"error": str(e), "type": type(e).__name__, "module": type(e).__module__}
            error = e
    shared = json.loads(_bytes_from_primary(json.dumps(message).encode() if is_primary() else None))
    if "error" in shared:
        if is_primary():
            raise error
        raise _error_class(shared["module"], shared["type"])(shared["error"])
    return shared["ok"]


def _error_class(module: str, name: str) -> type[ValueError]:
    import sys

    cls = getattr(sys.modules.get(module), name, None)
    return cls if isinstance(cls, type) and issubclass(cls, ValueError) else ValueError


def broadcast_from_primary(tree: Any) -> Any:
    """The primary's values of ``tree`` (same structure, shapes and dtypes on every
    process; typed PRNG keys allowed) on every process, as host arrays."""
    if jax.process_count() == 1:
        return tree
    is_key = [
        isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
        for x in jax.tree.leaves(tree)
    ]
    leaves, treedef = jax.tree.flatten(tree)
    impls = [jax.random.key_impl(x) if k else None for x, k in zip(leaves, is_key, strict=True)]
    raw = [
        np.asarray(jax.random.key_data(x) if k else x) for x, k in zip(leaves, is_key, strict=True)
    ]
    shared = [np.asarray(x) for x in multihost_utils.broadcast_one_to_all(raw)]
    out = [
        jax.random.wrap_key_data(x, impl=impl) if impl is not None else x
        for x, impl in zip(shared, impls, strict=True)
    ]
    return jax.tree.unflatten(treedef, out)


def host_local(tree: Any) -> Any:
    """``tree`` as host (numpy) arrays on every process: arrays spread over several
    processes are gathered (a collective: every process calls it); typed keys stay keys."""

    def gather(x: Any) -> Any:
        if not isinstance(x, jax.Array):
            return x
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(
                gather(jax.random.key_data(x)), impl=jax.random.key_impl(x)
            )
        if x.is_fully_addressable or x.is_fully_replicated:
            return np.asarray(x)
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return jax.tree.map(gather, tree)
