"""Aggregate scores over runs and tasks with stratified bootstrap confidence intervals (rliable).

Scores are normalised per task (e.g. our scaled return: 0 random, 1 expert) and given per
method as a ``[num_runs, num_tasks]`` matrix (a 1-D array is one task). Following Agarwal
et al. (2021), "Deep RL at the Edge of the Statistical Precipice":

* IQM: the mean of the middle 50% of all runs x tasks scores (``rliable.metrics.aggregate_iqm``);
* mean, median (of per-task means);
* optimality gap: ``gamma`` minus the mean of ``min(score, gamma)`` (lower is better);
* probability of improvement ``P(X > Y)``: per task, the chance that a random run of X beats
  a random run of Y (ties count half; the Mann-Whitney U statistic over ``n_x * n_y``),
  averaged over tasks;
* performance profiles: the fraction of runs x tasks with score above ``tau``.

Confidence intervals come from a stratified bootstrap: every replicate resamples the runs
of each task with replacement (tasks are kept), and the interval is the percentile
interval of the metric over the replicates. This is what ``rliable.library`` does with its
defaults (``method="percentile"``, ``task_bootstrap=False``); the resampling is done here in
numpy because ``rliable.library`` needs ``arch<8``, whose releases do not import with pandas
3. Point estimates use ``rliable.metrics``. Optional extra: ``pip install "jaxbc[stats]"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

METRICS = ("iqm", "mean", "median", "optimality_gap")


def _rliable_metrics() -> Any:
    try:
        from rliable import metrics
    except ImportError as e:
        raise ImportError(
            f'jaxbc.stats needs the optional extra "stats": pip install "jaxbc[stats]" ({e})'
        ) from e
    return metrics


def _as_matrix(name: str, scores: Any) -> np.ndarray:
    x = np.asarray(scores, np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(
            f"scores of {name!r} must be [num_runs, num_tasks], got shape {np.shape(scores)}"
        )
    if not np.isfinite(x).all():
        raise ValueError(f"scores of {name!r} contain NaN/inf")
    return x


def _metric_fn(name: str, gamma: float) -> Callable[[np.ndarray], float]:
    """rliable's metric of one ``[num_runs, num_tasks]`` matrix."""
    m = _rliable_metrics()
    fns: dict[str, Callable[[np.ndarray], float]] = {
        "iqm": m.aggregate_iqm,
        "mean": m.aggregate_mean,
        "median": m.aggregate_median,
        "optimality_gap": lambda s: m.aggregate_optimality_gap(s, gamma),
    }
    if name not in fns:
        raise ValueError(f"unknown metric {name!r}; choose from {METRICS}")
    return fns[name]


def _batched_metric(name: str, gamma: float) -> Callable[[np.ndarray], np.ndarray]:
    """The same metric for a batch ``[reps, num_runs, num_tasks]`` (one value per replicate)."""
    from scipy.stats import trim_mean

    fns: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "iqm": lambda b: trim_mean(b.reshape(b.shape[0], -1), 0.25, axis=1),
        "mean": lambda b: b.mean(axis=1).mean(axis=1),
        "median": lambda b: np.median(b.mean(axis=1), axis=1),
        "optimality_gap": lambda b: gamma - np.minimum(b, gamma).mean(axis=(1, 2)),
    }
    return fns[name]


def stratified_bootstrap(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """``reps`` resampled copies ``[reps, num_runs, num_tasks]``: runs drawn with replacement
    independently within each task."""
    n, t = scores.shape
    idx = rng.integers(0, n, size=(reps, n, t))
    return np.take_along_axis(np.broadcast_to(scores, (reps, n, t)), idx, axis=1)


def paired_difference(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    resamples: int = 9999,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(mean, lo, hi)``: the mean of ``x - y`` over paired runs (seed ``i`` of X with seed
    ``i`` of Y) and its percentile bootstrap CI, the pairs resampled together
    (``scipy.stats.bootstrap(paired=True)``). Fewer than 2 pairs: no CI (nan); the same
    difference in every pair: the CI is that difference."""
    from scipy.stats import bootstrap

    a, b = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"paired scores must be two 1-D arrays of one length, got {a.shape}, {b.shape}"
        )
    d = a - b
    if len(d) < 2:
        return float(d.mean()) if len(d) else float("nan"), float("nan"), float("nan")
    if np.ptp(d) == 0:  # the resampled mean cannot move
        return float(d[0]), float(d[0]), float(d[0])
    ci = bootstrap(
        (a, b),
        lambda u, v, axis=-1: np.mean(u - v, axis=axis),
        paired=True,
        vectorized=True,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    ).confidence_interval
    return float(d.mean()), float(ci.low), float(ci.high)


def _interval(values: np.ndarray, confidence: float) -> list[float]:
    a = (1.0 - confidence) / 2.0
    lo, hi = np.percentile(values, [100 * a, 100 * (1 - a)], axis=0)
    return [float(lo), float(hi)]


def _prob_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 per task, averaged over tasks; leading batch dims allowed."""
    gt = (x[..., :, None, :] > y[..., None, :, :]).mean(axis=(-3, -2))
    eq = (x[..., :, None, :] == y[..., None, :, :]).mean(axis=(-3, -2))
    return (gt + 0.5 * eq).mean(axis=-1)


def aggregate_scores(
    score_dict: Mapping[str, Any],
    metrics: Sequence[str] = METRICS,
    comparisons: Sequence[tuple[str, str]] | None = None,
    reps: int = 2000,
    confidence: float = 0.95,
    gamma: float = 1.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Point estimates and stratified-bootstrap CIs of aggregate metrics, and P(X > Y).

    Args:
        score_dict: method name -> normalised scores ``[num_runs, num_tasks]`` (runs may
            differ between methods, tasks must not).
        metrics: any of ``"iqm"``, ``"mean"``, ``"median"``, ``"optimality_gap"``.
        comparisons: pairs ``(X, Y)`` for the probability of improvement of X over Y;
            default: every pair in ``score_dict``'s order (first over second).
        reps: bootstrap replicates.
        confidence: coverage of the intervals (0.95: the 2.5th-97.5th percentiles).
        gamma: optimality-gap threshold (1 = the expert's score).
        seed: seed of the resampling (results are reproducible).

    Returns:
        JSON-able ``{"metrics": {method: {metric: {"point": p, "ci": [lo, hi]}}},
        "probability_of_improvement": {"X > Y": {"point": p, "ci": [lo, hi]}},
        "reps": reps, "confidence": confidence, "num_runs": {method: n}, "num_tasks": t}``.

    Examples:
        >>> s = {"BC": [[0.2, 0.5], [0.4, 0.7]], "Swarm": [[0.6, 0.9], [0.8, 1.0]]}
        >>> res = aggregate_scores(s, comparisons=[("Swarm", "BC")], reps=200)
        >>> res["probability_of_improvement"]["Swarm > BC"]["point"]
        1.0
    """
    if not score_dict:
        raise ValueError("score_dict is empty")
    scores = {k: _as_matrix(k, v) for k, v in score_dict.items()}
    tasks = {v.shape[1] for v in scores.values()}
    if len(tasks) != 1:
        raise ValueError(
            f"every method needs the same number of tasks, got { ({k: v.shape[1] for k, v in scores.items()}) }"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    fns = {name: _metric_fn(name, gamma) for name in metrics}
    batched = {name: _batched_metric(name, gamma) for name in metrics}
    rng = np.random.default_rng(seed)
    boots = {k: stratified_bootstrap(v, reps, rng) for k, v in scores.items()}
    out: dict[str, Any] = {"metrics": {}, "probability_of_improvement": {}}
    for method, s in scores.items():
        out["metrics"][method] = {
            name: {"point": float(fn(s)), "ci": _interval(batched[name](boots[method]), confidence)}
            for name, fn in fns.items()
        }
    pairs = list(combinations(scores, 2)) if comparisons is None else list(comparisons)
    m = _rliable_metrics()
    for x, y in pairs:
        if x not in scores or y not in scores:
            raise ValueError(
                f"comparison ({x!r}, {y!r}) names a method not in score_dict ({list(scores)})"
            )
        point = float(m.probability_of_improvement(scores[x], scores[y]))
        out["probability_of_improvement"][f"{x} > {y}"] = {
            "point": point,
            "ci": _interval(_prob_improvement(boots[x], boots[y]), confidence),
        }
    out.update(
        reps=reps,
        confidence=confidence,
        num_runs={k: int(v.shape[0]) for k, v in scores.items()},
        num_tasks=tasks.pop(),
    )
    return out


_METRIC_NAMES = {
    "iqm": "IQM",
    "mean": "mean",
    "median": "median",
    "optimality_gap": "optimality gap",
}


def markdown_table(result: Mapping[str, Any], digits: int = 2) -> str:
    """:func:`aggregate_scores`'s result as two Markdown tables: each method's metrics as
    ``point [lo, hi]`` and each probability of improvement."""
    first = next(iter(result["metrics"].values()))
    metrics = list(first)

    def cell(v: Mapping[str, Any]) -> str:
        return f"{v['point']:.{digits}f} [{v['ci'][0]:.{digits}f}, {v['ci'][1]:.{digits}f}]"

    lines = [
        "| method | " + " | ".join(_METRIC_NAMES.get(m, m) for m in metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    lines += [
        f"| {name} | " + " | ".join(cell(ms[m]) for m in metrics) + " |"
        for name, ms in result["metrics"].items()
    ]
    if result.get("probability_of_improvement"):
        lines += ["", "| probability of improvement | P [95% CI] |", "|---|---|"]
        lines += [f"| {k} | {cell(v)} |" for k, v in result["probability_of_improvement"].items()]
    return "\n".join(lines)


def performance_profiles(
    score_dict: Mapping[str, Any],
    taus: Any = None,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Score distributions: for each method, the fraction of all runs x tasks with score > tau.

    Returns ``(taus, profiles, cis)``: ``profiles[m]`` is ``[len(taus)]``, ``cis[m]`` is
    ``[2, len(taus)]`` (lower, upper; stratified bootstrap percentile interval). Default
    ``taus``: 101 points from 0 to the largest score (at least 1).
    """
    scores = {k: _as_matrix(k, v) for k, v in score_dict.items()}
    if taus is None:
        top = max(1.0, max(float(v.max()) for v in scores.values()))
        taus = np.linspace(0.0, top, 101)
    taus = np.asarray(taus, np.float64)
    rng = np.random.default_rng(seed)
    a = (1.0 - confidence) / 2.0
    profiles, cis = {}, {}
    for k, s in scores.items():
        profiles[k] = (s[..., None] > taus).mean(axis=(0, 1))
        boot = (stratified_bootstrap(s, reps, rng)[..., None] > taus).mean(axis=(1, 2))
        cis[k] = np.percentile(boot, [100 * a, 100 * (1 - a)], axis=0)
    return taus, profiles, cis


def plot_performance_profiles(
    score_dict: Mapping[str, Any],
    path: str | Path | None = None,
    taus: Any = None,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    ax: Any = None,
    xlabel: str = r"scaled return ($\tau$)",
    title: str | None = None,
) -> Any:
    """Plot performance profiles with their bootstrap bands (``rliable.plot_utils``).

    Args:
        score_dict: method name -> normalised scores ``[num_runs, num_tasks]``.
        path: save the figure here (PNG, PDF, ... by suffix) when given.
        taus: thresholds (default: see :func:`performance_profiles`).
        reps: bootstrap replicates of the bands.
        confidence: coverage of the bands.
        seed: seed of the resampling.
        ax: draw into this matplotlib axes (default: a new 6 x 4 inch figure).
        xlabel: x-axis label.
        title: axes title.

    Returns:
        The matplotlib axes.
    """
    _rliable_metrics()
    import matplotlib

    if ax is None and path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from rliable import plot_utils

    taus, profiles, cis = performance_profiles(score_dict, taus, reps, confidence, seed)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    plot_utils.plot_performance_profiles(
        profiles,
        taus,
        performance_profile_cis=cis,
        ax=ax,
        xlabel=xlabel,
        ylabel=r"fraction of runs with score $> \tau$",
        labelsize="medium",
        ticklabelsize="medium",
    )
    ax.legend(loc="upper right", fontsize="small")
    if title:
        ax.set_title(title)
    if path is not None:
        ax.figure.tight_layout()
        ax.figure.savefig(path, dpi=120)
    return ax
