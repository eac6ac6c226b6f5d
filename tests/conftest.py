"""Shared test setup: the persistent compilation cache and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("JAXBC_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".jax_cache"))
# XLA's optimisation passes off (inherited by the CLI subprocesses): the tests' tiny programs
# spend most of their time compiling, and test_bc.py + test_hades.py ran in 356 s instead of
# 548 s with them off (same machine, cold cache). Results are the same computation; the
# benchmarks, which time programs, run with the optimisations on. JAX_DISABLE_MOST_OPTIMIZATIONS=0
# in the environment turns them back on.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import jax  # noqa: E402

# read like jax reads it (its import already did, unless something imported jax earlier)
jax.config.update(
    "jax_disable_most_optimizations",
    os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"].strip().lower()
    in ("1", "true", "t", "yes", "y", "on"),
)

from jaxbc.io import enable_compilation_cache  # noqa: E402

enable_compilation_cache()
