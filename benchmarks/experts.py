"""Retrain zoo experts with their committed recipes (the presets in jaxbc.experts.presets).

    python benchmarks/experts.py --envs CartPole-v1 Breakout-MinAtar [--seed 0] [--zoo]

Without ``--zoo`` experts go to runs/experts/<env>; with it they replace the committed ones.
Each expert's metadata records the command, seed, steps, wall time, machine and returns.
"""

from __future__ import annotations

from pathlib import Path

import tyro

from jaxbc.experts import preset, train_expert
from jaxbc.experts.expert import ZOO_DIR, zoo_name
from jaxbc.io import command_line, enable_compilation_cache


def main(envs: list[str], seed: int = 0, zoo: bool = False, eval_episodes: int = 100) -> None:
    enable_compilation_cache()
    for env_id in envs:
        out = (ZOO_DIR if zoo else Path("runs/experts")) / zoo_name(env_id)
        command = command_line("python benchmarks/experts.py")
        ex = train_expert(
            preset(env_id),
            seed=seed,
            out=out,
            eval_episodes=eval_episodes,
            command=command,
            force=zoo,  # --zoo replaces the committed expert on purpose
        )
        m = ex.meta
        print(
            f"{env_id}: {m['mean_return']:.2f} +- {m['std_return']:.2f} (random {m['random_return']:.2f}) "
            f"in {m['wall_time_s']} s -> {out}",
            flush=True,
        )


if __name__ == "__main__":
    tyro.cli(main)
