"""One program for a whole BC sweep: seeds x learning rates x Swarm taus, timed against
the arithmetic floor measured in the same run.

    python benchmarks/sweep.py --scale cpu     # 16 runs x 2,000 steps (2-core CPU)
    python benchmarks/sweep.py --scale gpu     # 1,024 runs x 10,000 steps (one GPU)

Setting: a 2x256 ReLU MLP, batch 256, Adam with per-member clipping,
HalfCheetah-sized synthetic data (obs 17, act 6, 20,000 transitions); every run is a
2-member ensemble trained with the Swarm BC loss (paper form), so ``tau`` is live. The
sweep is ``jaxbc.sweep.sweep`` (``jit(vmap(run))``; ``--devices N`` splits the runs over N
devices). FLOPs are counted from the shapes (matmuls only: forward 2*B*sum(in*out) per
member, backward twice that); the floor rate is a batched matmul of the same shapes
(runs x members as the batch, [256, 256] @ [256, 256]) timed in the same process.
Writes ``sweep_<scale>.json`` (``--out-dir``).
"""

from __future__ import annotations

import json as jsonlib
import sys
import time
from functools import partial
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxbc import studies
from jaxbc.bc import BCConfig, PolicyConfig, make_bc_train, swarm_bc_loss
from jaxbc.io import atomic_write_json, best_time, enable_compilation_cache
from jaxbc.sweep import grid, sweep

SCALES = {
    "cpu": dict(seeds=4, lrs=2, taus=2, steps=2_000),
    "gpu": dict(seeds=16, lrs=8, taus=8, steps=10_000),
    "smoke": dict(seeds=2, lrs=1, taus=2, steps=20),
}
HIDDEN, BATCH, MEMBERS, OBS, ACT = (256, 256), 256, 2, 17, 6


def synthetic_dataset(n: int = 20_000):
    sys.path.insert(0, str(Path(__file__).parent))
    from speed import synthetic_dataset as make  # the speed benchmark's data

    return make(n, OBS, ACT)


def train_flops(steps: int, runs: int) -> float:
    sizes = (OBS, *HIDDEN, ACT)
    per_row = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    return 3.0 * per_row * BATCH * MEMBERS * steps * runs


def matmul_rate(batch: int, n: int = 256, reps: int = 64) -> float:
    """FLOP/s of ``reps`` chained batched [n, n] @ [n, n] matmuls (the sweep's shape)."""
    k1, k2 = jax.random.split(jax.random.key(0))
    a = jax.random.normal(k1, (batch, n, n)) / np.sqrt(n)
    w = jax.random.normal(k2, (batch, n, n)) / np.sqrt(n)

    @jax.jit
    def chain(a, w):
        return jax.lax.fori_loop(0, reps, lambda _, x: jnp.tanh(x @ w), a)

    return 2.0 * batch * n**3 * reps / best_time(chain, a, w)


def main(
    scale: Literal["smoke", "cpu", "gpu"] = "cpu",
    devices: int | None = None,
    out_dir: Path = Path("benchmarks/results"),
    json: bool = False,
) -> None:
    """Time one sweep of BC runs (seeds x lr x tau) compiled as one program."""
    enable_compilation_cache()
    s = SCALES[scale]
    data = synthetic_dataset()
    base = BCConfig(
        policy=PolicyConfig(hidden_sizes=HIDDEN),
        members=MEMBERS,
        steps=s["steps"],
        batch_size=BATCH,
    )

    def run(key, lr, tau):
        return make_bc_train(base.replace(lr=lr), partial(swarm_bc_loss, tau=tau))(
            key, data
        ).metrics["bc_loss"][-1]

    keys = jax.random.split(jax.random.key(0), s["seeds"])
    lrs = jnp.geomspace(3e-4, 3e-3, s["lrs"])
    taus = (
        jnp.concatenate([jnp.zeros(1), jnp.geomspace(0.01, 10.0, s["taus"] - 1)])
        if s["taus"] > 1
        else jnp.zeros(1)
    )
    args = grid(keys, lrs, taus)
    runs = int(args[1].shape[0])
    t0 = time.perf_counter()
    jax.block_until_ready(sweep(run, *args, devices=devices))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    final_loss = jax.block_until_ready(sweep(run, *args, devices=devices))
    wall = time.perf_counter() - t0
    flops = train_flops(s["steps"], runs)
    rate = matmul_rate(min(runs * MEMBERS, 2048))
    row = {
        "scale": scale,
        "runs": runs,
        "steps": s["steps"],
        "members": MEMBERS,
        "hidden": list(HIDDEN),
        "batch": BATCH,
        "devices": devices or 1,
        "first_call_s": round(first, 2),
        "wall_s": round(wall, 3),
        "runs_per_s": runs / wall,
        "run_steps_per_s": runs * s["steps"] / wall,
        "tflop": flops / 1e12,
        "achieved_tflops": flops / wall / 1e12,
        "floor_matmul_tflops": rate / 1e12,
        "floor_s": flops / rate,
        "floor_ratio": wall / (flops / rate),
        "final_bc_loss_range": [float(jnp.min(final_loss)), float(jnp.max(final_loss))],
        "device": str(jax.devices()[0].device_kind),
        "jax": jax.__version__,
        **studies.metadata("benchmarks/sweep.py", scale),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / f"sweep_{scale}.json", row)
    print(
        f"{runs} runs x {s['steps']} steps in {wall:.2f} s ({runs / wall:.1f} runs/s, "
        f"{row['achieved_tflops']:.2f} TFLOP/s; floor {row['floor_s']:.2f} s -> ratio {row['floor_ratio']:.2f})",
        file=sys.stderr,
    )
    print(jsonlib.dumps(row) if json else jsonlib.dumps(row, indent=1))


if __name__ == "__main__":
    studies.cli(main, multi_process=False)
