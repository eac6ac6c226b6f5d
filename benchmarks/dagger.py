"""The DAgger study: BC vs DAgger vs ensemble-gated DAgger, return per iteration.

    python benchmarks/dagger.py --scale cpu      # 9 min on the 2-core CPU (measured, shared)
    python benchmarks/dagger.py --scale paper    # GPU

Every run starts from the same few expert episodes (iteration 0: BC on them); seeds are
vmapped, one compiled program per (env, variant). Writes benchmarks/results/dagger.{md,csv,
json}, dagger.png and dagger_profiles.png, with rliable aggregates of BC, DAgger and gated
DAgger at the last iteration (``jaxbc.stats``). Readings: docs/results/dagger.md.
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

from jaxbc import studies
from jaxbc.bc import BCConfig, PolicyConfig
from jaxbc.bc.evaluation import reference_returns
from jaxbc.dagger import DAggerConfig, make_dagger
from jaxbc.data import collect
from jaxbc.experts import load_expert
from jaxbc.io import enable_compilation_cache


@dataclass(frozen=True)
class Scale(studies.Scale):
    demo_episodes: int
    dagger: DAggerConfig  # the DAgger variant (its BCConfig: the learner)
    gated: DAggerConfig  # the gated variant: an ensemble learner, expert queried by its gate


def _scale(envs, seeds, demos, hidden, steps, bc_steps, members, torso="auto", **kw) -> Scale:
    bc = BCConfig(
        PolicyConfig(hidden_sizes=hidden, torso=torso),
        steps=bc_steps,
        batch_size=kw.pop("batch", 256),
    )
    dagger = DAggerConfig(bc=bc, steps_per_iteration=steps, beta_schedule="linear", **kw)
    gated = dataclasses.replace(dagger, bc=bc.replace(members=members), gate_threshold=0.05)
    return Scale(envs, seeds, demos, dagger, gated)


ENVS = ("brax/hopper", "brax/walker2d", "Breakout-MinAtar")
SCALES = {  # torso mlp on the cpu: CPU convolutions are slow
    "cpu": _scale(ENVS, 3, 2, (64, 64), 2000, 1000, 4, "mlp", iterations=8, num_envs=16, eval_episodes=5),
    # (steps per iteration: a multiple of num_envs, as DAggerConfig requires; 10,000 was not)
    "paper": _scale(ENVS, 5, 4, (256, 256), 10_240, 10_000, 5, iterations=10, num_envs=64, eval_episodes=20),
    "smoke": _scale(("CartPole-v1",), 2, 1, (16, 16), 256, 50, 3, iterations=2, num_envs=8, eval_episodes=2, batch=64),
}  # fmt: skip
VARIANTS = ("dagger", "gated")


def study_env(env_id: str, sc: Scale, seed: int) -> list[dict]:
    expert = load_expert(env_id)
    env = expert.make_env()
    data = collect(expert, env, sc.demo_episodes, jax.random.key(seed))
    expert_ret, random_ret = reference_returns(env_id)
    rows = []
    keys = jax.random.split(jax.random.key(seed + 1), sc.seeds)
    for name in VARIANTS:
        cfg = getattr(sc, name)
        t0 = time.time()
        run = jax.jit(jax.vmap(make_dagger(cfg, env=env), in_axes=(0, None, None)))
        res = jax.device_get(run(keys, expert, data))
        dt = time.time() - t0
        print(f"{env_id} {name}: {dt:.0f} s", file=sys.stderr)
        for s in range(sc.seeds):
            for k in range(cfg.iterations + 1):
                r = float(res.returns[s, k])
                rows.append({
                    "env": env_id, "variant": name, "seed": s, "iteration": k, "return": r,
                    "scaled_return": studies.scaled(r, random_ret, expert_ret),
                    "dataset_size": int(res.dataset_size[s, k]),
                    "expert_queries": int(res.expert_queries[s, k]), "beta": float(res.beta[s, k]),
                    "expert_return": expert_ret, "random_return": random_ret, "wall_time_s": dt,
                })  # fmt: skip
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    keys = ("env", "variant", "iteration")
    return studies.group_stats(
        rows, keys, ("return", "scaled_return"), ("expert_queries", "dataset_size")
    )


COMPARISONS = (
    ("DAgger (last)", "BC (iteration 0)"),
    ("gated (last)", "BC (iteration 0)"),
    ("DAgger (last)", "gated (last)"),
)


def arm_scores(rows: list[dict]) -> tuple[dict[str, np.ndarray], list[str]]:
    """BC (iteration 0), DAgger and gated at the last iteration: scaled returns ``[seeds, envs]``."""
    last = max(r["iteration"] for r in rows)
    arms = {
        "BC (iteration 0)": ({"variant": "dagger", "iteration": 0}, "scaled_return"),
        "DAgger (last)": ({"variant": "dagger", "iteration": last}, "scaled_return"),
        "gated (last)": ({"variant": "gated", "iteration": last}, "scaled_return"),
    }
    scores, tasks = studies.score_matrix(rows, arms)
    return scores, [t[0] for t in tasks]


def write_outputs(out_dir: Path, name: str, rows: list[dict], sc: Scale, meta: dict) -> None:
    summary = summarize(rows)
    scores, envs = arm_scores(rows)
    stats = studies.aggregate(scores, COMPARISONS, envs)
    d, its = sc.dagger, sc.dagger.iterations + 1
    by = {(r["env"], r["variant"], r["iteration"]): r for r in summary}
    cells = [(env, var) for env in dict.fromkeys(r["env"] for r in summary) for var in VARIANTS]

    def it(k):  # a column: iteration k's scaled return
        return lambda c: studies.pm(by[(*c, k)]["scaled_return"], by[(*c, k)]["scaled_return_std"])

    columns = {"env": lambda c: c[0], "variant": lambda c: c[1], **{f"it {k}": it(k) for k in range(its)},
               "total queries": lambda c: f"{sum(by[(*c, k)]['expert_queries'] for k in range(its)):.0f}"}  # fmt: skip
    lines = studies.heading(
        "DAgger study",
        meta,
        f"seeds 0..{sc.seeds - 1}; wall time {meta['wall_time_s']:.0f} s; "
        f"{sc.demo_episodes} expert episodes to start; {d.iterations} iterations of "
        f"{d.steps_per_iteration} env steps; beta linear 1 -> 0; learner MLP {list(d.bc.policy.hidden_sizes)}, "
        f"{d.bc.steps} BC steps per iteration (from scratch); gated: {sc.gated.bc.members}-member ensemble, "
        f"expert queried where the members' action difference > {sc.gated.gate_threshold} (or where beta picks the expert)."
        " Scaled return, mean ± std over seeds; iteration 0: BC on the first demonstrations.",
    ) + ["", *studies.table(cells, columns), *studies.aggregates_section(stats, "Scaled return")]
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "summary": summary, "statistics": stats, "runs": rows}
    studies.write_report(out_dir, name, data, lines, rows)
    with studies.figure(out_dir / f"{name}.png", len(envs), size=(3.6, 2.8)) as axes:
        for ax, env in zip(axes[0], envs, strict=True):
            for var in VARIANTS:
                rs = [r for r in summary if r["env"] == env and r["variant"] == var]
                studies.band(ax, rs, "iteration", "scaled_return", var)
            ax.axhline(1.0, color="gray", lw=0.8, ls="--")
            ax.set(title=env, xlabel="iteration (0 = BC)", ylabel="scaled return")
        axes[0, 0].legend(fontsize=8)  # fmt: skip
    studies.profiles(scores, out_dir / f"{name}_profiles.png", f"DAgger study: {', '.join(envs)}")


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
    sc = SCALES[scale].only(envs)
    settings = {**studies.record(sc), "envs": None, "seed": seed}
    parts, wall = studies.run_units(
        out_dir / f"{name}_parts", sc.envs, settings,
        lambda env_id: {"rows": study_env(env_id, sc, seed)}, resume, "dagger study",
    )  # fmt: skip
    rows = [r for p in parts.values() for r in p["rows"]]
    meta = studies.metadata("benchmarks/dagger.py", scale, sc, wall, seed=seed)
    write_outputs(out_dir, name, rows, sc, meta)
    print((out_dir / f"{name}.md").read_text())


if __name__ == "__main__":
    studies.cli(main, multi_process=False)
