"""What a live log shows: one Swarm BC run on CartPole logged from inside its compiled scan
(CSV + TensorBoard, jaxbc.logs) and drawn from the CSV, the same scalars TensorBoard shows.

    python benchmarks/log_view.py   # ~1 min on the 2-core CPU

Writes benchmarks/results/log_view.{png,json} (the json: command, machine, the logged
rows); the event files go to --log-dir (``tensorboard --logdir`` it to see them live).
"""

from __future__ import annotations

import csv
from pathlib import Path

import jax
import matplotlib

from jaxbc import envs, studies
from jaxbc.bc import BCConfig, PolicyConfig, make_bc_train, swarm_bc_loss
from jaxbc.data import collect
from jaxbc.experts import load_expert
from jaxbc.io import atomic_write_json
from jaxbc.logs import CSVLogger, MultiLogger, TensorBoardLogger

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(
    log_dir: Path = Path("runs/log_view"),
    out_dir: Path = Path("benchmarks/results"),
    steps: int = 3000,
    every: int = 50,
) -> None:
    """Train, log, draw.

    Args:
        log_dir: where the CSV and TensorBoard event files go.
        out_dir: where log_view.{png,json} go.
        steps: training steps (evaluated every steps / 6).
        every: log every this many steps.
    """
    data = collect(load_expert("CartPole-v1"), envs.make("CartPole-v1"), 1, jax.random.key(0))
    cfg = BCConfig(
        policy=PolicyConfig(hidden_sizes=(64, 64)),
        members=4,
        steps=steps,
        batch_size=128,
        eval_every=steps // 6,
        eval_episodes=8,
    )
    log_dir.mkdir(parents=True, exist_ok=True)
    logger = MultiLogger(CSVLogger(log_dir / "metrics.csv"), TensorBoardLogger(log_dir))
    train = make_bc_train(
        cfg, lambda *a: swarm_bc_loss(*a, tau=0.25), progress=logger.log, progress_every=every
    )
    jax.block_until_ready(jax.jit(train)(jax.random.key(1), data).params)
    jax.effects_barrier()  # every callback has run
    logger.close()
    with (log_dir / "metrics.csv").open() as f:
        rows = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]
    names = [k for k in rows[0] if k != "step"] + ["eval_return"]
    names = list(dict.fromkeys(names))
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8))
    for ax, name in zip(axes, names, strict=True):
        pts = [(r["step"], r[name]) for r in rows if name in r]
        ax.plot(*zip(*pts, strict=True), marker="o" if name == "eval_return" else None, ms=3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        if name != "eval_return" and min(v for _, v in pts) > 0:
            ax.set_yscale("log")
    fig.suptitle(
        "Swarm BC (4 members, tau 0.25), CartPole, 1 episode: live log (jaxbc.logs CSV)",
        fontsize=10,
    )
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "log_view.png", dpi=90)
    atomic_write_json(
        out_dir / "log_view.json",
        {
            **studies.metadata("benchmarks/log_view.py", None),
            "config": {"members": 4, "tau": 0.25, "steps": steps, "every": every},
            "rows": rows,
        },
    )
    print(out_dir / "log_view.png")


if __name__ == "__main__":
    studies.cli(main, multi_process=False)
