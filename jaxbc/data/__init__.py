"""Demonstration datasets: collect, save/load (validated ``.npz``), normalisation statistics."""

from jaxbc.data.dataset import (
    Dataset,
    DatasetError,
    NormStats,
    collect,
    collect_policy,
    load_dataset,
    load_demos,
    normalization_stats,
    save_dataset,
    validate,
)

__all__ = [
    "Dataset",
    "DatasetError",
    "NormStats",
    "collect",
    "collect_policy",
    "load_dataset",
    "load_demos",
    "normalization_stats",
    "save_dataset",
    "validate",
]
