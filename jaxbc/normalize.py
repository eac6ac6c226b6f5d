"""Running mean/variance statistics (parallel Welford), used for observation and reward scaling.

Kept here rather than taken from brax (``brax.training.acme.running_statistics``): ours is a
3-field pytree that vmaps and scans without brax's nested-structure machinery, ~30 lines.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

EPS = 1e-8  # added to the variance before its square root (gym's and purejaxrl's value)
OBS_CLIP = 10.0  # PPO's z-scored observations are clipped to +-this (gym's and purejaxrl's value)


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
        b_count = jnp.asarray(batch.size / max(self.mean.size, 1), jnp.float32)
        return self.merge(batch.mean(axes), batch.var(axes), b_count)

    def merge(self, b_mean: jax.Array, b_var: jax.Array, b_count: jax.Array) -> RunningStats:
        """Merge the moments of a batch of ``b_count`` samples (Chan et al.'s parallel rule)."""
        delta = b_mean - self.mean
        total = self.count + b_count
        mean = self.mean + delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        return RunningStats(mean, m2 / total, total)

    def normalize(self, x: jax.Array, clip: float | None = OBS_CLIP) -> jax.Array:
        """``(x - mean) / sqrt(var + 1e-8)``, clipped to ``[-clip, clip]`` (None: unclipped)."""
        return standardize(x, self.mean, self.var, clip)


def standardize(
    x: jax.Array, mean: jax.Array, var: jax.Array, clip: float | None = None
) -> jax.Array:
    """``(x - mean) / sqrt(var + 1e-8)``: the one z-scoring of observations by moments."""
    return zscore(x, mean, jnp.sqrt(var + EPS), clip)


def zscore(x: jax.Array, mean: jax.Array, std: jax.Array, clip: float | None = None) -> jax.Array:
    """``(x - mean) / std``, clipped to ``[-clip, clip]`` (None: unclipped)."""
    z = (x - mean) / std
    return z if clip is None else jnp.clip(z, -clip, clip)
