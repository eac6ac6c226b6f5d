"""HaDES's cost per generation against the floor the arithmetic and memory traffic allow,
all measured in the same run on this machine.

    python benchmarks/hades_speed.py                    # the CPU-sized configurations
    python benchmarks/hades_speed.py --paper            # + paper-scale generations (GPU)
    python benchmarks/hades_speed.py --configs minatar64 paper_breakout paper_hopper

Per configuration (``CONFIGS``; each in its own process, so its peak device memory is its
own): seconds per generation, the same shapes' inner training, fitness rollouts and env
steps alone, the generation's fitness program (training + rollouts, as the generation runs
them) and ES ask + tell alone (``unattributed_s``: the rest), FLOPs counted from the config, and floors: FLOPs / the measured rate of a
member-blocked MLP chain of the rollout's shapes (``flop_floor_s``), policy-weight bytes
streamed per rollout step / measured bandwidth (``bandwidth_floor_s``); ``floor_s`` = env
time + the FLOP floor (CPU) or + the larger of the two (GPU); ``floor_ratio`` = measured /
floor. Writes ``hades_speed_<backend>.json``; readings in docs/results/speed.md.
"""

from __future__ import annotations

import json as jsonlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbc import studies
from jaxbc.bc import PolicyConfig
from jaxbc.envs import ENV_AXIS
from jaxbc.hades import make_hades, make_strategy, solution_template
from jaxbc.hades.core import hades_preset, map_members
from jaxbc.hades.strategies import paper_strategy_options
from jaxbc.io import atomic_write_json, best_time, enable_compilation_cache

_2X64 = PolicyConfig(hidden_sizes=(64, 64), activation="relu", torso="mlp")


def _config(env: str, strategy: str, population: int, variant: str, **config: Any) -> dict:
    return dict(env=env, strategy=strategy, population=population, variant=variant, config=config)


CONFIGS: dict[str, dict[str, Any]] = {
    "minatar64": _config("Breakout-MinAtar", "SNES", 64, "F", dataset_size=16, num_envs=8, eval_steps=1024, inner_steps=64),
    "hopper16": _config("brax/hopper", "Open_ES", 16, "F", dataset_size=64, num_envs=4, eval_steps=256, inner_steps=200),
    # speed.py's CartPole generation: tiny nets, many members
    "cartpole256": _config("CartPole-v1", "SNES", 256, "F", dataset_size=4, num_envs=4, eval_steps=500, inner_steps=64),
    # the families study's MinAtar policy size
    "minatar64_2x64": _config("Breakout-MinAtar", "SNES", 64, "F", dataset_size=16, num_envs=8, eval_steps=1024, inner_steps=64, policy=_2X64),
    # the cpu-scale HaDES study's Breakout job (benchmarks/hades.py)
    "breakout_cpu": _config("Breakout-MinAtar", "SNES", 64, "F", dataset_size=16, num_envs=4, eval_steps=500, inner_steps=64, policy=_2X64),
    # the families study's Freeway job (few envs, a long window)
    "freeway_families": _config("Freeway-MinAtar", "SNES", 64, "F", dataset_size=16, num_envs=2, eval_steps=2500, inner_steps=64, policy=_2X64),
    # plumbing, with the running observation normaliser paper_hopper's fitness rollouts use
    "smoke": _config("CartPole-v1", "SNES", 8, "R", dataset_size=4, num_envs=2, eval_steps=50, inner_steps=5, obs_normalization="running"),
    "paper_breakout": _config("Breakout-MinAtar", "SNES", 2048, "R", dataset_size=16, num_envs=8, eval_steps=1024, inner_steps=64),
    "paper_hopper": _config("brax/hopper", "Open_ES", 2048, "R", dataset_size=64, num_envs=4, eval_steps=1024, inner_steps=200),
}  # fmt: skip


def layer_sizes(hades) -> tuple[int, ...]:
    env, cfg = hades.env, hades.config
    out = env.action_space.n if env.discrete else env.action_space.shape[0]
    return (int(np.prod(env.observation_shape)), *cfg.policy.hidden_sizes, out)


def flops(hades, population: int) -> dict[str, float]:
    sizes, cfg = layer_sizes(hades), hades.config
    fwd_row = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    policies = population * cfg.inits_per_generation
    inner = 3.0 * fwd_row * cfg.dataset_size * cfg.inner_steps * policies
    rollout = float(fwd_row) * cfg.num_envs * hades.eval_steps * policies
    return {"inner": inner, "rollout": rollout, "total": inner + rollout}


def chain_rate(
    sizes: tuple[int, ...], members: int, rows: int, steps: int = 64, block: int = 4
) -> float:
    """FLOP/s of the rollout's MLP chain: ``members`` policies (own weights) on ``rows``
    inputs for ``steps`` dependent steps, processed in blocks of ``block`` members (vmap
    inside a block, the time scan inside, ``lax.map`` over blocks)."""
    keys = jax.random.split(jax.random.key(0), len(sizes) - 1)
    ws = [
        jax.random.normal(k, (members, a, b)) / np.sqrt(a)
        for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]
    x0 = jnp.ones((members, rows, sizes[0]))

    def one(w, x):
        def body(x, _):
            h = x
            for wi in w:
                h = jnp.tanh(h @ wi)
            return x + h.sum() * 1e-6, None  # the next input depends on this output

        return jax.lax.scan(body, x, None, length=steps)[0]

    block = max(1, min(block, members))
    nb = members // block

    @jax.jit
    def run(ws, x0):
        wb = [w[: nb * block].reshape(nb, block, *w.shape[1:]) for w in ws]
        xb = x0[: nb * block].reshape(nb, block, *x0.shape[1:])
        return jax.lax.map(lambda a: jax.vmap(one)(a[0], a[1]), (wb, xb))

    per_row = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    return per_row * rows * steps * nb * block / best_time(run, ws, x0, repeats=2)


def matmul_rate(n: int) -> float:
    a = jax.random.normal(jax.random.key(1), (n, n))
    f = jax.jit(lambda a: a @ a)
    return 2.0 * n**3 / best_time(f, a, repeats=3)


def bandwidth(gib: float) -> float:
    """Bytes/s of an elementwise pass over ``gib`` GiB (bytes read + written)."""
    x = jnp.ones((int(gib * 2**30 / 4),), jnp.float32)
    f = jax.jit(lambda x: x * 1.0001)
    return 2.0 * x.nbytes / best_time(f, x, repeats=3)


def measure(
    name: str, generations: int, member_block: int | None = None, train_block: int | None = None
) -> dict:
    spec = CONFIGS[name]
    cfg = hades_preset(spec["env"], variant=spec["variant"], num_devices=1, member_block=member_block,
                       train_block=train_block, **spec["config"])  # fmt: skip
    options = paper_strategy_options(spec["strategy"], spec["population"])
    es = make_strategy(spec["strategy"], spec["population"], solution_template(cfg), **options)
    hades = make_hades(cfg, es)
    pop, k = spec["population"], cfg.inits_per_generation
    gpu = jax.default_backend() != "cpu"

    sizes = layer_sizes(hades)
    chain_args = (sizes, min(pop * k, 4096 if gpu else 64), cfg.num_envs)
    chain_kw = dict(block=pop * k if gpu else 4)
    chain_rates = [chain_rate(*chain_args, **chain_kw)]  # before, between and after the timings

    t0 = time.perf_counter()
    state = jax.jit(hades.init)(jax.random.key(0))
    state, _ = hades.step_generations(state, 1)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(generations):
        state, summary = hades.step_generations(state, 1)
    jax.block_until_ready(state)
    gen_s = (time.perf_counter() - t0) / generations

    population, _ = es.ask(jax.random.key(1), state.es_state, es.default_params)
    inits = jax.vmap(hades.policy.init)(jax.random.split(jax.random.key(2), k))

    # over the population as the generation does it: training in train_block blocks, the
    # rollouts of the trained policies in member_block blocks
    @jax.jit
    def inner(population, inits):
        trained = map_members(lambda d: hades.train_inits(d, inits), population, hades.train_block)
        return sum(jnp.sum(x) for x in jax.tree.leaves(trained))

    member_params = jax.tree.map(lambda x: jnp.broadcast_to(x, (pop, *x.shape)), inits)

    @jax.jit
    def rollout(params, key):
        return map_members(lambda p: hades.mean_return(p, key), params, hades.member_block).sum()

    env, shape = hades.env, (pop * k, cfg.num_envs)
    zero_action = jnp.zeros(env.action_space.shape, env.action_space.dtype)
    # each member's envs are one batch on ENV_AXIS, as in the fitness rollout (a running
    # observation normaliser reduces over it)
    reset = jax.vmap(jax.vmap(env.reset, axis_name=ENV_AXIS))
    step = jax.vmap(jax.vmap(env.step, in_axes=(0, 0, None), axis_name=ENV_AXIS), (0, 0, None))

    @jax.jit
    def env_only(key):
        obs, st = reset(jax.random.split(key, shape))

        def body(c, kk):
            st, tot = c
            _, st, r, _, _, _ = step(jax.random.split(kk, shape), st, zero_action)
            return (st, tot + r.sum()), None

        return jax.lax.scan(body, (st, 0.0), jax.random.split(key, hades.eval_steps))[0][1]

    # the generation's two halves as the generation runs them: the population's fitness
    # (training and rollouts in one program) and the strategy's ask + tell; what the
    # generation takes beyond them is its scan and bookkeeping
    @jax.jit
    def fitness_only(population, inits, key):
        return hades.evaluate_population(population, inits, key).sum()

    @jax.jit
    def es_only(es_state, key):
        k_ask, k_fit, k_tell = jax.random.split(key, 3)
        population, es_state = es.ask(k_ask, es_state, hades.params)
        fitness = jax.random.normal(k_fit, (pop,))
        return es.tell(k_tell, population, fitness, es_state, hades.params)[0]

    chain_rates.append(chain_rate(*chain_args, **chain_kw))
    inner_s = best_time(inner, population, inits, repeats=1)
    rollout_s = best_time(rollout, member_params, jax.random.key(3), repeats=1)
    env_s = best_time(env_only, jax.random.key(4), repeats=1)
    fitness_s = best_time(fitness_only, population, inits, jax.random.key(5), repeats=1)
    es_s = best_time(es_only, state.es_state, jax.random.key(6), repeats=1)
    chain_rates.append(chain_rate(*chain_args, **chain_kw))

    f = flops(hades, pop)
    # the fastest of the repeats: the floor is what this machine can do, not its worst moment
    crate = max(chain_rates)
    mrate = matmul_rate(8192 if gpu else 2048)
    bw = bandwidth(4.0 if gpu else 0.5)
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    bytes_per_step = pop * k * n_params * 4
    flop_floor = f["total"] / crate
    bw_floor = hades.eval_steps * bytes_per_step / bw
    # CPU: the floor (FLOPs at the chain rate; the weights of a member block stay in
    # cache). GPU: every member's weights stream from memory each step, so the larger bound.
    floor = env_s + (max(flop_floor, bw_floor) if gpu else flop_floor)
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return {
        "config": name, "member_block": hades.member_block, "train_block": hades.train_block,
        "env": spec["env"], "strategy": spec["strategy"], "population": pop, "inits": k,
        "variant": spec["variant"], "dataset_size": cfg.dataset_size,
        "hidden": list(cfg.policy.hidden_sizes), "inner_steps": cfg.inner_steps,
        "num_envs": cfg.num_envs, "eval_steps": hades.eval_steps, "generations_timed": generations,
        "compile_and_first_gen_s": round(compile_s, 1), "gen_s": gen_s, "inner_only_s": inner_s,
        "rollout_only_s": rollout_s, "env_only_s": env_s, "fitness_only_s": fitness_s,
        "es_only_s": es_s, "unattributed_s": gen_s - fitness_s - es_s,
        "tflop": {k_: v / 1e12 for k_, v in f.items()}, "chain_tflops": crate / 1e12,
        "chain_tflops_repeats": [r / 1e12 for r in chain_rates], "matmul_tflops": mrate / 1e12,
        "bandwidth_gbs": bw / 1e9, "policy_params": n_params,
        "rollout_weight_bytes_per_step": bytes_per_step, "flop_floor_s": flop_floor,
        "bandwidth_floor_s": bw_floor, "floor_s": floor, "floor_ratio": gen_s / floor,
        "last_population_mean": float(summary.mean[-1]), "device": str(jax.devices()[0].device_kind),
        "device_peak_gib": None if peak is None else peak / 2**30,
    }  # fmt: skip


def main(
    paper: bool = False,
    configs: list[str] | None = None,
    generations: int = 3,
    only: str | None = None,
    member_blocks: list[int] | None = None,
    train_blocks: list[int] | None = None,
    member_block: int | None = None,
    train_block: int | None = None,
    out_dir: Path = Path("benchmarks/results"),
    timeout_s: int = 900,
) -> None:
    """Time HaDES generations against their floors (each configuration in its own process).

    Args:
        paper: also the paper-scale configurations (population 2048, k=2).
        configs: only these configurations.
        generations: generations timed after the compiling one.
        only: internal: measure one configuration in this process and print its JSON row.
        member_blocks: measure each configuration with each of these ``HadesConfig.member_block``
            values (0: the whole population in one vmap, the old program); default: automatic only.
        train_blocks: the ``HadesConfig.train_block`` of each of ``member_blocks`` (paired in
            order; default: automatic for each).
        member_block: internal: the block for ``--only``.
        train_block: internal: the inner loop's block for ``--only``.
        out_dir: where hades_speed_<backend>.json goes.
        timeout_s: per-configuration limit.
    """
    enable_compilation_cache()
    if only:
        print(jsonlib.dumps(measure(only, generations, member_block, train_block)))
        return
    blocks = list(member_blocks or [None])
    trains = list(train_blocks or [None] * len(blocks))
    if len(trains) != len(blocks):
        raise SystemExit(
            f"error: --train-blocks needs one value per --member-blocks value ({len(blocks)}), got {len(trains)}"
        )
    names = configs or [n for n in CONFIGS if n != "smoke" and (paper or not n.startswith("paper"))]
    rows: list[dict] = []
    meta = studies.metadata("benchmarks/hades_speed.py", None, jax=jax.__version__)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, block, train in [(n, *bt) for n in names for bt in zip(blocks, trains, strict=True)]:
        cmd = [sys.executable, __file__, "--only", name, "--generations", str(generations)]
        cmd += [] if block is None else ["--member-block", str(block)]
        cmd += [] if train is None else ["--train-block", str(train)]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
            ok = p.returncode == 0
            last = p.stdout.strip().splitlines()[-1] if ok else ""
            row = jsonlib.loads(last) if ok else {"config": name, "error": p.stderr[-2000:]}
        except subprocess.TimeoutExpired:
            row = {"config": name, "error": f"timed out after {timeout_s} s"}
        rows.append(row)
        print(jsonlib.dumps(row), file=sys.stderr, flush=True)
        atomic_write_json(
            out_dir / f"hades_speed_{jax.default_backend()}.json", {"meta": meta, "rows": rows}
        )
    for r in rows:
        if "error" in r:
            print(f"{r['config']}: ERROR {r['error'][-300:]}")
        else:
            print(
                f"{r['config']} (train / member block {r['train_block']} / {r['member_block']}): {r['gen_s']:.2f} s/gen (inner {r['inner_only_s']:.2f}, rollout {r['rollout_only_s']:.2f}, "
                f"env {r['env_only_s']:.2f}; fitness {r['fitness_only_s']:.2f}, es {r['es_only_s']:.2f}); floor {r['floor_s']:.2f} s (flop {r['flop_floor_s']:.2f}, "
                f"bw {r['bandwidth_floor_s']:.2f}) -> ratio {r['floor_ratio']:.2f}; peak {r['device_peak_gib']}"
            )


if __name__ == "__main__":
    studies.cli(main, multi_process=False)
