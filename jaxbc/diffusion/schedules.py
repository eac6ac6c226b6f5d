"""DDPM noise schedules: ``make_schedule(name, T) -> Schedule`` (arrays indexed by step 0..T-1).

Step ``t`` (0-based) is the paper's step ``t + 1``: ``alpha_bars[t]`` is the fraction of the
signal left after ``t + 1`` noising steps. Schedules are computed in float64 NumPy and stored
as float32 constants, so building one inside ``jit`` yields no tracers.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

SCHEDULES = ("sigmoid", "linear", "cosine")


class Schedule(NamedTuple):
    """Per-step DDPM coefficients, each shaped [T]."""

    betas: jax.Array  # noise variance added at step t
    alphas: jax.Array  # 1 - betas
    alpha_bars: jax.Array  # cumulative product of alphas: x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps
    alpha_bars_prev: jax.Array  # alpha_bars shifted right, 1 at t = 0
    sqrt_alpha_bars: jax.Array
    sqrt_one_minus_alpha_bars: jax.Array
    posterior_variances: jax.Array  # variance of q(x_{t-1} | x_t, x_0) (0 at t = 0)

    @property
    def num_steps(self) -> int:
        return int(self.betas.shape[0])


def sigmoid_betas(
    T: int, beta_start: float = 1e-4, beta_end: float = 0.02, span: float = 6.0
) -> np.ndarray:
    """DBC's default: ``sigmoid(linspace(-span, span, T)) * (beta_end - beta_start) + beta_start``."""
    x = np.linspace(-span, span, T)
    return 1.0 / (1.0 + np.exp(-x)) * (beta_end - beta_start) + beta_start


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """Ho et al. (2020): betas evenly spaced from ``beta_start`` to ``beta_end``."""
    return np.linspace(beta_start, beta_end, T)


def cosine_betas(T: int, offset: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal (2021): ``alpha_bar(u) = cos^2((u + s) / (1 + s) * pi / 2)``; the betas
    are its step ratios, clipped to ``max_beta`` so the last steps stay invertible."""
    u = np.arange(T + 1) / T
    f = np.cos((u + offset) / (1 + offset) * np.pi / 2) ** 2
    return np.minimum(1.0 - f[1:] / f[:-1], max_beta)


_BETAS = {"sigmoid": sigmoid_betas, "linear": linear_betas, "cosine": cosine_betas}


def schedule_from_betas(betas: np.ndarray) -> Schedule:
    """All DDPM coefficients of a beta sequence."""
    betas = np.asarray(betas, np.float64)
    if betas.ndim != 1 or betas.size < 1:
        raise ValueError(f"betas must be a non-empty vector, got shape {betas.shape}")
    if not ((betas > 0) & (betas < 1)).all():
        raise ValueError("betas must lie in (0, 1)")
    alphas = 1.0 - betas
    alpha_bars = np.cumprod(alphas)
    prev = np.concatenate([[1.0], alpha_bars[:-1]])
    post = betas * (1.0 - prev) / (1.0 - alpha_bars)
    arrays = (betas, alphas, alpha_bars, prev, np.sqrt(alpha_bars), np.sqrt(1.0 - alpha_bars), post)
    return Schedule(*(jnp.asarray(a, jnp.float32) for a in arrays))


def make_schedule(name: str = "sigmoid", T: int = 1000) -> Schedule:
    """The ``name`` schedule (``sigmoid``, ``linear`` or ``cosine``) over ``T`` steps."""
    if name not in _BETAS:
        raise ValueError(f"unknown noise schedule {name!r}; choose from {SCHEDULES}")
    if not isinstance(T, int | np.integer) or T < 1:
        raise ValueError(f"the number of diffusion steps T must be a positive integer, got {T!r}")
    return schedule_from_betas(_BETAS[name](int(T)))
