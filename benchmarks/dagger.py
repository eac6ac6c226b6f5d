"""The DAgger study: BC vs DAgger vs ensemble-gated DAgger, return per iteration.

    python benchmarks/dagger.py --scale cpu      # 9 min on the 2-core CPU (measured, shared)
    python benchmarks/dagger.py --scale paper    # GPU

Every run starts from the same few expert episodes; iteration 0 of each run is plain BC on
them (the BC baseline). Seeds are vmapped: one compiled program per (env, variant).
Writes benchmarks/results/dagger.{md,csv,json}, dagger.png (return per iteration) and
dagger_profiles.png. Statistics (``jaxbc.stats``, rliable's estimators): BC (iteration 0 of
the DAgger runs), DAgger and gated DAgger at the last iteration, over the envs as tasks and
the seeds as runs: IQM, mean and optimality gap of the scaled return with stratified
bootstrap 95% CIs, P(X > Y), and their performance profiles. With 3 seeds the CIs are wide
and the percentile bootstrap is narrower than it should be: read them as rough.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import jax
import numpy as np
import tyro
from tqdm.auto import tqdm

from jaxbc.bc import BCConfig, PolicyConfig
from jaxbc.bc.evaluation import reference_returns
from jaxbc.dagger import DAggerConfig, make_dagger
from jaxbc.data import collect
from jaxbc.experts import load_expert
from jaxbc.experts.expert import zoo_name
from jaxbc.io import (
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_json,
    enable_compilation_cache,
    machine_description,
    resumable_timed,
)
from jaxbc.stats import aggregate_scores, markdown_table, plot_performance_profiles


@dataclass(frozen=True)
class Scale:
    envs: tuple[str, ...]
    demo_episodes: int
    seeds: int
    iterations: int
    steps_per_iteration: int
    num_envs: int
    bc_steps: int
    batch_size: int
    hidden: tuple[int, ...]
    members: int  # ensemble size of the gated variant's learner
    gate_threshold: float
    eval_episodes: int
    image_torso: str = (
        "auto"  # PolicyConfig.torso: auto (cnn for MinAtar images) or mlp (cpu: CPU convs are slow)
    )


ENVS = ("brax/hopper", "brax/walker2d", "Breakout-MinAtar")
SCALES = {
    "cpu": Scale(ENVS, 2, 3, 8, 2000, 16, 1000, 256, (64, 64), 4, 0.05, 5, "mlp"),
    "paper": Scale(ENVS, 4, 5, 10, 10_000, 64, 10_000, 256, (256, 256), 5, 0.05, 20),
    "smoke": Scale(("CartPole-v1",), 1, 2, 2, 256, 8, 50, 64, (16, 16), 3, 0.05, 2),
}


def study_env(env_id: str, sc: Scale, seed: int) -> list[dict]:
    expert = load_expert(env_id)
    env = expert.make_env()
    data = collect(expert, env, sc.demo_episodes, jax.random.key(seed))
    expert_ret, random_ret = reference_returns(env_id)
    bc = BCConfig(
        policy=PolicyConfig(hidden_sizes=sc.hidden, torso=sc.image_torso),
        steps=sc.bc_steps,
        batch_size=sc.batch_size,
    )
    base = DAggerConfig(
        bc=bc,
        iterations=sc.iterations,
        steps_per_iteration=sc.steps_per_iteration,
        num_envs=sc.num_envs,
        beta_schedule="linear",
        eval_episodes=sc.eval_episodes,
    )
    variants = {
        "dagger": base,
        "gated": dataclasses.replace(
            base, bc=dataclasses.replace(bc, members=sc.members), gate_threshold=sc.gate_threshold
        ),
    }
    rows = []
    keys = jax.random.split(jax.random.key(seed + 1), sc.seeds)
    for name, cfg in variants.items():
        t0 = time.time()
        run = jax.jit(jax.vmap(make_dagger(cfg, env=env), in_axes=(0, None, None)))
        res = jax.device_get(run(keys, expert, data))
        dt = time.time() - t0
        print(f"{env_id} {name}: {dt:.0f} s", file=sys.stderr)
        for s in range(sc.seeds):
            for k in range(sc.iterations + 1):
                r = float(res.returns[s, k])
                rows.append(
                    {
                        "env": env_id,
                        "variant": name,
                        "seed": s,
                        "iteration": k,
                        "return": r,
                        "scaled_return": (r - random_ret) / (expert_ret - random_ret),
                        "dataset_size": int(res.dataset_size[s, k]),
                        "expert_queries": int(res.expert_queries[s, k]),
                        "beta": float(res.beta[s, k]),
                        "expert_return": expert_ret,
                        "random_return": random_ret,
                        "wall_time_s": dt,
                    }
                )
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["env"], r["variant"], r["iteration"]), []).append(r)
    out = []
    for (env, var, it), rs in groups.items():
        sr = np.array([r["scaled_return"] for r in rs])
        ret = np.array([r["return"] for r in rs])
        out.append(
            {
                "env": env,
                "variant": var,
                "iteration": it,
                "return": float(ret.mean()),
                "return_std": float(ret.std()),
                "scaled_return": float(sr.mean()),
                "scaled_return_std": float(sr.std()),
                "expert_queries": float(np.mean([r["expert_queries"] for r in rs])),
                "dataset_size": float(np.mean([r["dataset_size"] for r in rs])),
                "n": len(rs),
            }
        )
    return out


ARMS = {  # arm -> (variant, iteration; -1 = the last)
    "BC (iteration 0)": ("dagger", 0),
    "DAgger (last)": ("dagger", -1),
    "gated (last)": ("gated", -1),
}
COMPARISONS = (
    ("DAgger (last)", "BC (iteration 0)"),
    ("gated (last)", "BC (iteration 0)"),
    ("DAgger (last)", "gated (last)"),
)


def arm_scores(rows: list[dict]) -> tuple[dict[str, np.ndarray], list[str]]:
    """arm -> scaled returns ``[seeds, envs]`` (the rliable layout)."""
    envs = list(dict.fromkeys(r["env"] for r in rows))
    last = max(r["iteration"] for r in rows)
    seeds = sorted({r["seed"] for r in rows})
    by = {(r["env"], r["variant"], r["iteration"], r["seed"]): r["scaled_return"] for r in rows}
    scores = {
        arm: np.array([[by[(e, var, last if it < 0 else it, s)] for e in envs] for s in seeds])
        for arm, (var, it) in ARMS.items()
    }
    return scores, envs


def statistics(rows: list[dict], reps: int = 10_000) -> dict:

    scores, envs = arm_scores(rows)
    out = aggregate_scores(
        scores, metrics=("iqm", "mean", "optimality_gap"), comparisons=COMPARISONS, reps=reps
    )
    out["tasks"] = envs
    return out


def write_outputs(
    out_dir: Path, name: str, rows: list[dict], summary: list[dict], meta: dict
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = statistics(rows)
    atomic_write_json(
        out_dir / f"{name}.json",
        {"meta": meta, "summary": summary, "statistics": stats, "runs": rows},
    )
    atomic_write_csv(out_dir / f"{name}.csv", rows)
    lines = [
        "# DAgger study",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; seeds 0..{meta['seeds'] - 1}; wall time {meta['wall_time_s']:.0f} s; "
        f"{meta['demo_episodes']} expert episodes to start; {meta['iterations']} iterations of "
        f"{meta['steps_per_iteration']} env steps; beta linear 1 -> 0; learner MLP {meta['hidden']}, "
        f"{meta['bc_steps']} BC steps per iteration (from scratch); gated: {meta['members']}-member ensemble, "
        f"expert queried where the members' action difference > {meta['gate_threshold']} (or where beta picks the expert).",
        "",
        "Scaled return (mean ± std over seeds). Iteration 0 is BC on the initial demonstrations; "
        "queries are the expert calls of that iteration (labels and executed expert actions).",
        "",
        "| env | variant | "
        + " | ".join(f"it {k}" for k in range(meta["iterations"] + 1))
        + " | total queries |",
        "|---|---|" + "---|" * (meta["iterations"] + 2),
    ]
    by = {(r["env"], r["variant"], r["iteration"]): r for r in summary}
    for env in dict.fromkeys(r["env"] for r in summary):
        for var in ("dagger", "gated"):
            cells = [
                f"{by[(env, var, k)]['scaled_return']:.2f} ± {by[(env, var, k)]['scaled_return_std']:.2f}"
                for k in range(meta["iterations"] + 1)
            ]
            total_q = sum(
                by[(env, var, k)]["expert_queries"] for k in range(meta["iterations"] + 1)
            )
            lines.append(f"| {env} | {var} | " + " | ".join(cells) + f" | {total_q:.0f} |")
    lines += [
        "",
        f"## Statistics ({stats['num_runs']['DAgger (last)']} seeds x {stats['num_tasks']} envs, "
        "stratified bootstrap 95% CIs, `jaxbc.stats`)",
        "",
        markdown_table(stats),
    ]
    atomic_write_bytes(out_dir / f"{name}.md", ("\n".join(lines) + "\n").encode())
    plot(summary, out_dir / f"{name}.png")
    plot_performance_profiles(
        arm_scores(rows)[0],
        out_dir / f"{name}_profiles.png",
        title=f"DAgger study: {', '.join(stats['tasks'])}",
    )


def plot(summary: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(r["env"] for r in summary))
    fig, axes = plt.subplots(1, len(envs), figsize=(3.6 * len(envs), 2.8), squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        for var in ("dagger", "gated"):
            rs = sorted(
                (r for r in summary if r["env"] == env and r["variant"] == var),
                key=lambda r: r["iteration"],
            )
            x = np.array([r["iteration"] for r in rs])
            y = np.array([r["scaled_return"] for r in rs])
            s = np.array([r["scaled_return_std"] for r in rs])
            ax.plot(x, y, marker="o", label=var)
            ax.fill_between(x, y - s, y + s, alpha=0.2)
        ax.axhline(1.0, color="gray", lw=0.8, ls="--")
        ax.set(title=env, xlabel="iteration (0 = BC)", ylabel="scaled return")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(
    scale: Literal["cpu", "paper", "smoke"] = "cpu",
    envs: list[str] | None = None,
    seed: int = 0,
    out_dir: Path = Path("benchmarks/results"),
    name: str = "dagger",
    resume: bool = False,
) -> None:
    """Args:
    scale: cpu (9 min measured on 2 cores), paper (GPU), smoke (seconds).
    envs: subset of envs.
    seed: base PRNG seed.
    out_dir: where results go.
    name: file stem of the results.
    resume: reuse per-env results a killed run left in ``<out_dir>/<name>_parts/`` (same
        scale and seed); each finished env is saved there as it completes.
    """
    enable_compilation_cache()
    sc = SCALES[scale]
    if envs:
        sc = dataclasses.replace(sc, envs=tuple(envs))
    rows, wall = [], 0.0
    for env_id in tqdm(sc.envs, desc="dagger study", file=sys.stderr):
        part = out_dir / f"{name}_parts" / f"{zoo_name(env_id)}.json"
        settings = {**dataclasses.asdict(sc), "envs": None, "seed": seed}
        res, _ = resumable_timed(
            part, settings, lambda env_id=env_id: {"rows": study_env(env_id, sc, seed)}, resume
        )
        rows += res["rows"]
        wall += res["wall_time_s"]
    meta = {
        "command": "python benchmarks/dagger.py " + " ".join(sys.argv[1:]),
        "machine": machine_description(),
        "scale": scale,
        "wall_time_s": wall,
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(sc).items()},
    }
    write_outputs(out_dir, name, rows, summarize(rows), meta)
    print((out_dir / f"{name}.md").read_text())


if __name__ == "__main__":
    tyro.cli(main)
