"""DBC's diffusion pretraining end to end, as ``jaxbc diffusion`` runs it: a dataset file ->
a trained model saved atomically (checked before any work; a diverged model is refused)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax

from jaxbc.artifact import FILES as ARTIFACT_FILES
from jaxbc.data import Dataset, load_demos
from jaxbc.diffusion.train import (
    DiffusionConfig,
    DiffusionModel,
    check_continuous,
    make_diffusion_train,
    save,
)
from jaxbc.io import atomic_directory, check_output
from jaxbc.training import check_finite
from jaxbc.validation import check_int


def diffusion_experiment(
    dataset: Dataset | str | Path,
    out: str | Path,
    config: DiffusionConfig | None = None,
    episodes: int | None = None,
    seed: int = 0,
    force: bool = False,
) -> tuple[DiffusionModel, dict]:
    """Train a diffusion model of the (state, action) pairs of ``dataset`` (its first
    ``episodes`` episodes; continuous actions) and save it to ``out`` (not overwritten
    without ``force``; ``config``: default the DBC paper's model) for ``bc_experiment(..., method="dbc", diffusion=out)``.
    Returns the model and a report (final loss, mean loss of the last 10% of the steps)."""
    config = config or DiffusionConfig()
    check_int("seed", seed, 0)
    ds = load_demos(dataset, episodes)
    check_continuous(ds)
    check_output(out, force, files=ARTIFACT_FILES)
    t0 = time.time()
    print(
        f"training a diffusion model (T={config.T}, width {config.hidden}) for {config.steps} "
        f"steps on {ds.size} transitions",
        file=sys.stderr,
    )
    model = jax.block_until_ready(jax.jit(make_diffusion_train(config))(jax.random.key(seed), ds))
    train_s = time.time() - t0
    check_finite(model.params, "diffusion training")
    with atomic_directory(out) as tmp:
        save(model, tmp)
    losses = model.losses
    report = {
        "env": ds.env_id,
        "out": str(out),
        "steps": config.steps,
        "hidden": config.hidden,
        "blocks": config.blocks,
        "timesteps": config.T,
        "schedule": config.schedule,
        "demo_episodes": ds.num_episodes,
        "transitions": ds.size,
        "seed": seed,
        "final_loss": float(losses[-1]),
        "final_loss_mean": float(losses[-max(1, config.steps // 10) :].mean()),
        "train_time_s": round(train_s, 2),
    }
    return model, report
