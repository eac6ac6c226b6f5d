"""Running mean/variance statistics (parallel Welford), used for observation and reward scaling.

Kept here rather than taken from brax (``brax.training.acme.running_statistics``): ours is a
3-field pytree that vmaps and scans without brax's nested-structure machinery, ~30 lines.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class RunningStats(NamedTuple):
    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, shape: tuple[int, ...]) -> RunningStats:
        return cls(
            jnp.zeros(shape, jnp.float32),
            jnp.ones(shape, jnp.float32),
            jnp.asarray(1e-4, jnp.float32),
        )

    def update(self, batch: jax.Array) -> RunningStats:
        """Merge a batch whose leading axes are sample axes (everything but ``mean.shape``)."""
        axes = tuple(range(batch.ndim - self.mean.ndim))
        b_mean = batch.mean(axes)
        b_var = batch.var(axes)
        b_count = jnp.asarray(batch.size / max(self.mean.size, 1), jnp.float32)
        delta = b_mean - self.mean
        total = self.count + b_count
        mean = self.mean + delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        return RunningStats(mean, m2 / total, total)

    def normalize(self, x: jax.Array, clip: float = 10.0) -> jax.Array:
        return jnp.clip((x - self.mean) / jnp.sqrt(self.var + 1e-8), -clip, clip)
