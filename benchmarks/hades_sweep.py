"""How the cpu-scale Breakout recipe of ``benchmarks/hades.py`` was chosen: short HaDES-F
runs on Breakout-MinAtar (D = 16, SNES or Open_ES, population 64, 2x64 ReLU, 64 inner
steps, 4 envs per fitness) that differ in one setting at a time.

    python benchmarks/hades_sweep.py                   # all settings, 150 generations (~20 min)
    python benchmarks/hades_sweep.py --only snes_s0.1  # one setting

Reports the population mean return averaged over each chunk of 25 generations and one
fitness evaluation of the final ES mean (fixed init, 4 envs: noisy). One seed; a sweep to
pick settings, not a result. Writes ``hades_sweep.{json,md}`` to ``--out-dir``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import jax

from jaxbc import studies
from jaxbc.hades import hades_preset, make_hades, make_strategy, solution_template
from jaxbc.hades.strategies import softmax_rank_weights
from jaxbc.io import enable_compilation_cache

# name -> (HadesConfig overrides, strategy name, strategy options); "temperature" -> softmax rank weights
SETTINGS: dict[str, tuple[dict, str, dict]] = {
    "paper_first_L1000": (
        {"fitness_episodes": "first", "eval_steps": 1000},
        "SNES",
        {"sigma": 0.5, "temperature": 20.0},
    ),
    "paper_all_L500": ({}, "SNES", {"sigma": 0.5, "temperature": 20.0}),
    "softmax_T5": ({}, "SNES", {"sigma": 0.5, "temperature": 5.0}),
    "evosax_weights": ({}, "SNES", {"sigma": 0.5}),
    "evosax_weights_first": ({"fitness_episodes": "first"}, "SNES", {"sigma": 0.5}),
    "snes_s0.2": ({}, "SNES", {"sigma": 0.2}),
    "snes_s0.1": ({}, "SNES", {"sigma": 0.1}),
    "snes_s0.05": ({}, "SNES", {"sigma": 0.05}),
    "snes_s0.5_D3": ({"dataset_size": 3}, "SNES", {"sigma": 0.5}),
    "open_es_s0.2_lr0.05": (
        {},
        "Open_ES",
        {"sigma": 0.2, "lr": 0.05, "fitness_shaping": "centered_ranks"},
    ),
    "open_es_s0.1_lr0.03": (
        {},
        "Open_ES",
        {"sigma": 0.1, "lr": 0.03, "fitness_shaping": "centered_ranks"},
    ),
}
BASE = dict(
    dataset_size=16, variant="F", inner_steps=64, num_envs=4, eval_steps=500, fitness_episodes="all"
)


def run_setting(name: str, generations: int, chunk: int, population: int, seed: int) -> dict:
    overrides, strategy, options = SETTINGS[name]
    cfg = hades_preset("Breakout-MinAtar", **{**BASE, **overrides})
    cfg = dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, hidden_sizes=(64, 64)))
    options = dict(options)
    if "temperature" in options:
        options["weights"] = softmax_rank_weights(population, options.pop("temperature"))
    hades = make_hades(cfg, make_strategy(strategy, population, solution_template(cfg), **options))
    state = jax.jit(hades.init)(jax.random.key(seed))
    t0, means = time.time(), []
    for _ in range(generations // chunk):
        state, summary = hades.step_generations(state, chunk)
        means.append(round(float(summary.mean.mean()), 2))
        print(
            f"{name}: generation {len(means) * chunk}, population mean {means[-1]:.2f}",
            file=sys.stderr,
        )
    final = float(hades.evaluate_data(state, hades.mean_data(state), jax.random.key(seed + 1)))
    return {
        "setting": name,
        "strategy": strategy,
        "options": SETTINGS[name][2],
        "config": {**BASE, **overrides},
        "chunk_means": means,
        "mean_data_fixed_init": round(final, 2),
        "wall_s": round(time.time() - t0, 1),
    }


def main(
    only: list[str] | None = None,
    generations: int = 150,
    chunk: int = 25,
    population: int = 64,
    seed: int = 0,
    out_dir: Path = Path("benchmarks/results"),
) -> None:
    """Run the sweep (``only``: these settings) and write hades_sweep.{json,md}."""
    enable_compilation_cache()
    unknown = set(only or []) - set(SETTINGS)
    if unknown:
        raise SystemExit(f"unknown setting(s) {sorted(unknown)}; choose from {sorted(SETTINGS)}")
    rows = [run_setting(n, generations, chunk, population, seed) for n in (only or SETTINGS)]
    meta = studies.metadata(
        "benchmarks/hades_sweep.py", None, generations=generations, population=population,
        seed=seed, jax_version=jax.__version__,
    )  # fmt: skip
    table = []
    for r in rows:
        fit = f"{r['config']['fitness_episodes']} episode(s), {r['config']['eval_steps']} steps"
        if r["config"]["dataset_size"] != BASE["dataset_size"]:
            fit += f", D = {r['config']['dataset_size']}"
        table.append(
            [
                r["setting"],
                r["strategy"],
                r["options"],
                fit,
                r["chunk_means"],
                f"{r['mean_data_fixed_init']:.2f}",
                r["wall_s"],
            ]
        )
    lines = [
        "# HaDES Breakout-MinAtar recipe sweep (HaDES-F, D = 16, population 64, one seed)",
        "",
        f"Command: `{meta['command']}`; machine: {meta['machine']}; seed {seed}; {generations} generations.",
        "",
        f"Population mean return averaged over each chunk of {chunk} generations; then one fitness evaluation of the "
        "final ES mean with the fixed init (4 envs, noisy). Random play scores 0.42, the zoo expert 27.5.",
        "",
        *studies.md_table(["setting", "strategy", "options", "fitness", "population mean per chunk", "final mean data", "wall s"], table),
    ]  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    studies.write_report(out_dir, "hades_sweep", {"meta": meta, "rows": rows}, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    studies.cli(main, multi_process=False)
