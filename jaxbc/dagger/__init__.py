"""DAgger on device: mixture rollouts, expert relabelling, aggregation and retraining in one jit."""

from jaxbc.dagger.core import (
    BETA_SCHEDULES,
    ITERATION_METRICS,
    Buffer,
    DAggerConfig,
    DAggerResult,
    append,
    beta_at,
    buffer_from,
    make_dagger,
    run_dagger,
)
from jaxbc.dagger.experiment import DAGGER_METHODS, dagger_experiment

__all__ = [
    "BETA_SCHEDULES",
    "DAGGER_METHODS",
    "Buffer",
    "DAggerConfig",
    "DAggerResult",
    "ITERATION_METRICS",
    "append",
    "beta_at",
    "buffer_from",
    "dagger_experiment",
    "make_dagger",
    "run_dagger",
]
