"""What a HaDES run leaves behind: the distilled dataset, fitness curves, pictures.

The distilled dataset is a regular :class:`jaxbc.data.Dataset` (one "episode" of ``D``
transitions), so ``save_dataset`` writes it and ``jaxbc bc`` trains on it like on expert
demonstrations.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import jax
import numpy as np

from jaxbc.data import Dataset, validate
from jaxbc.envs import Box
from jaxbc.hades.core import Hades, HadesState
from jaxbc.io import atomic_write_bytes

# distinct colours for MinAtar channels (tab10 order)
CHANNEL_COLORS = np.array(
    [
        [0.12, 0.47, 0.71],
        [1.00, 0.50, 0.05],
        [0.17, 0.63, 0.17],
        [0.84, 0.15, 0.16],
        [0.58, 0.40, 0.74],
        [0.55, 0.34, 0.29],
        [0.89, 0.47, 0.76],
        [0.50, 0.50, 0.50],
        [0.74, 0.74, 0.13],
        [0.09, 0.75, 0.81],
    ],
    np.float32,
)


def distilled_data(hades: Hades, state: HadesState, which: str = "best") -> dict:
    """The synthetic dataset pytree: ``best`` (highest fitness seen) or ``mean`` (the ES mean)."""
    if which == "best":
        return jax.device_get(state.best_data)
    if which == "mean":
        return jax.device_get(hades.mean_data(state))
    raise ValueError(f"which must be 'best' or 'mean', got {which!r}")


def distilled_dataset(
    hades: Hades,
    state: HadesState,
    which: str = "best",
    fitness: float | None = None,
    key: jax.Array | None = None,
) -> Dataset:
    """The distilled data as a :class:`Dataset` in the expert-demonstration format.

    What is stored: the evolved states; continuous actions clipped to the action bounds
    (the format requires it; the env clips executed actions anyway); discrete labels, with
    learned soft labels stored as their argmax. ``episode_returns`` holds the fitness of
    the data AS STORED: ``fitness`` if given, the tracked best fitness for ``best``, else a
    fresh evaluation with ``key``; whenever clipping or the argmax changed the data, a fresh
    evaluation of the stored data (``key``) replaces both. ``train_recipe`` records
    :meth:`Hades.bc_config`, the BC config that trains exactly like the inner loop. Rewards
    are zeros, ``next_obs`` copies ``obs``, one episode (id 0), no termination.
    """
    data = distilled_data(hades, state, which)
    env = hades.env
    obs = np.asarray(data["obs"], np.float32)
    action = np.asarray(hades.labels(data))
    saved = {"obs": obs}  # the data as the file will hold it, in the solution's form
    if isinstance(env.action_space, Box):
        action = np.clip(action, env.action_space.low, env.action_space.high).astype(np.float32)
        saved["action"] = action
    else:
        action = action.astype(np.int32)
        if "logits" in data:  # soft labels are stored as their argmax: one-hot targets
            saved["logits"] = 1e4 * np.eye(env.action_space.n, dtype=np.float32)[action]
    changed = "logits" in data or (
        "action" in data and not np.array_equal(saved["action"], np.asarray(data["action"]))
    )
    if fitness is None or changed:
        if which == "best" and not changed and fitness is None:
            fitness = float(state.best_fitness)
        else:  # the stored fitness must belong to the stored data
            fitness = float(
                hades.evaluate_data(state, saved, key if key is not None else jax.random.key(0))
            )
    d = obs.shape[0]
    ds = Dataset(
        obs=obs,
        action=action,
        reward=np.zeros((d,), np.float32),
        next_obs=obs.copy(),
        terminated=np.zeros((d,), bool),
        truncated=np.zeros((d,), bool),
        episode_id=np.zeros((d,), np.int32),
        episode_returns=np.asarray([fitness], np.float32),
        env_id=env.id,
        action_space=env.action_space,
        observation_shape=tuple(env.observation_shape),
        env_options=tuple(env.options),
        source=f"hades:{hades.config.variant}:{getattr(hades.strategy, 'name', type(hades.strategy).__name__)}:{which}",
        train_recipe=json.dumps(hades.bc_config().to_dict(), sort_keys=True),
    )
    return validate(ds, where="distilled dataset")


def save_curves(
    history: dict[str, np.ndarray],
    csv_path: str | Path,
    png_path: str | Path | None = None,
    title: str = "",
) -> None:
    """Fitness curves (population best/mean +- std per generation) as CSV and a plot."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["generation", "best", "mean", "std"])
    for row in zip(
        history["generation"], history["best"], history["mean"], history["std"], strict=True
    ):
        w.writerow([int(row[0]), *(f"{float(v):.6g}" for v in row[1:])])
    atomic_write_bytes(csv_path, buf.getvalue().encode())
    if png_path is None:
        return
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    g = np.asarray(history["generation"])
    mean, std = np.asarray(history["mean"]), np.asarray(history["std"])
    ax.plot(g, history["best"], label="best", lw=1.2)
    ax.plot(g, mean, label="mean", lw=1.2)
    ax.fill_between(g, mean - std, mean + std, alpha=0.2, color="C1")
    ax.set(xlabel="generation", ylabel="return", title=title or "HaDES fitness")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _savefig(fig, png_path)


def state_image(obs: np.ndarray) -> np.ndarray:
    """RGB picture of one ``(H, W, C)`` state: each cell coloured by its strongest channel,
    brightness = that channel's value clipped to [0, 1] (black where all are <= 0)."""
    obs = np.asarray(obs, np.float32)
    top = obs.argmax(-1)
    level = np.clip(obs.max(-1), 0.0, 1.0)[..., None]
    colors = CHANNEL_COLORS[top % len(CHANNEL_COLORS)]
    return colors * level


def plot_dataset(dataset: Dataset, path: str | Path, title: str = "") -> None:
    """Pictures of distilled states: an image grid for ``(H, W, C)`` states, a heat-map
    (rows = synthetic states, labelled with their actions) for vector states."""
    plt = _pyplot()
    obs = np.asarray(dataset.obs)
    actions = np.asarray(dataset.action)
    d = obs.shape[0]

    def label(i):
        a = actions[i]
        return (
            f"a={int(a)}"
            if dataset.discrete
            else "a=[" + ", ".join(f"{x:.2f}" for x in np.atleast_1d(a)[:3]) + "]"
        )

    if obs.ndim == 4:
        cols = min(d, 8)
        rows = -(-d // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows + 0.4), squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i < d:
                ax.imshow(state_image(obs[i]), interpolation="nearest")
                ax.set_title(label(i), fontsize=8)
    else:
        flat = obs.reshape(d, -1)
        fig, ax = plt.subplots(figsize=(max(3.0, 0.5 * flat.shape[1] + 2), max(2.0, 0.35 * d + 1)))
        lim = float(np.abs(flat).max()) or 1.0
        im = ax.imshow(
            flat, cmap="coolwarm", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest"
        )
        ax.set_yticks(range(d), [label(i) for i in range(d)], fontsize=7)
        ax.set_xlabel("state feature")
        fig.colorbar(im, ax=ax)
    fig.suptitle(title or f"{dataset.env_id}: {d} distilled states", fontsize=9)
    fig.tight_layout()
    _savefig(fig, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _savefig(fig, path: str | Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    _pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())
