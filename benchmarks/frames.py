"""Frame strips: the zoo expert, a BC policy cloned from it and a uniformly random policy,
all from the same start state.

    python benchmarks/frames.py                       # classic, minatar and brax strips
    python benchmarks/frames.py --families classic    # one family

BC: ``BCConfig(steps=bc_steps)`` on ``demos`` expert episodes (``FAMILIES``). Writes
``benchmarks/results/frames_<family>.png``: one row per policy, ``--frames`` columns over
``--steps`` env steps (each frame shows the step and the episode's return so far; the title,
each policy's reward over all steps and its episode ends). Brax frames come from MuJoCo's
renderer where an OpenGL context can be made (EGL on headless Linux), else jaxbc.video's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import jax
import numpy as np
import tyro

import jaxbc.video as video  # before MuJoCo loads (jaxbc.experts does): sets MUJOCO_GL
from jaxbc.bc import BCConfig, train_bc
from jaxbc.data import collect
from jaxbc.experts import load_expert
from jaxbc.rollout import random_policy

# family -> (env, steps shown, expert episodes BC is cloned from, BC gradient steps)
FAMILIES = {
    "classic": ("CartPole-v1", 150, 2, 2000),
    "minatar": ("Breakout-MinAtar", 150, 4, 3000),
    "brax": ("brax/hopper", 200, 4, 3000),
}


def strip(
    env_id: str, steps: int, frames: int, seed: int, demos: int, bc_steps: int
) -> tuple[list[str], np.ndarray, str]:
    expert = load_expert(env_id)
    env = expert.make_env()
    key = jax.random.key(seed)
    k_demo, k_bc = jax.random.split(jax.random.fold_in(key, 1))
    bc = train_bc(BCConfig(steps=bc_steps), k_bc, collect(expert, env, demos, k_demo))
    idx = np.linspace(0, steps, frames).round().astype(int)
    rows, labels = [], []
    for label, policy, params in (
        ("expert", expert.policy_fn(True, env), expert.params),
        (f"BC ({demos} demos)", bc.policy_fn(), bc.params),
        ("random", random_policy(env.action_space), None),
    ):
        rec = video.record_rollout(env, policy, params, key, steps)
        rows.append(video.frames_from_recording(env, rec, indices=idx))
        labels.append(
            f"{label} (reward over {steps} steps {float(rec.reward.sum()):.1f}, {int(rec.done.sum())} episode end(s))"
        )
    return labels, np.stack(rows), env_id


def save_strip(labels: list[str], rows: np.ndarray, env_id: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols, h, w = rows.shape[:4]
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(2.2 * n_cols * w / h, 2.2 * n_rows + 0.4), squeeze=False
    )
    for r in range(n_rows):
        for c in range(n_cols):
            axes[r, c].imshow(rows[r, c])
            axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(labels[r].split(" (")[0], fontsize=11)
    fig.suptitle(f"{env_id}: " + "; ".join(labels), fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(
    families: tuple[Literal["classic", "minatar", "brax"], ...] = ("classic", "minatar", "brax"),
    frames: int = 6,
    seed: int = 0,
    out_dir: Path = Path("benchmarks/results"),
) -> None:
    """Write one frame strip per family (expert vs BC vs random policy, same start state)."""
    for fam in families:
        env_id, steps, demos, bc_steps = FAMILIES[fam]
        labels, rows, _ = strip(env_id, steps, frames, seed, demos, bc_steps)
        path = out_dir / f"frames_{fam}.png"
        save_strip(labels, rows, env_id, path)
        print(f"wrote {path}: {'; '.join(labels)}")


if __name__ == "__main__":
    tyro.cli(main)
