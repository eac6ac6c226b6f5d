"""Throughput of the BC trainers, after compilation.

    python benchmarks/speed.py --json

Setting: continuous actions (HalfCheetah-sized: obs 17, act 6), a
20,000-transition dataset, batch 256, a 2x256 ReLU MLP, Adam. Reports gradient steps/s of
one policy, member-steps/s of an 8-member ensemble and of 8-member Swarm BC, and the
compile time of the single-policy program, and the steps/s of the barest flax + optax loop
for the same problem (``ceiling_steps_per_s``, this machine's speed today). Each figure is the best of ``repeats`` timed
runs of ``steps`` steps (the machine is shared, best-of is the least noisy estimate).
"""

from __future__ import annotations

import json as jsonlib
import sys
import time
from functools import partial
from pathlib import Path
from typing import Annotated

import jax
import numpy as np
import tyro

from jaxbc.bc import BCConfig, PolicyConfig, make_bc_train, swarm_bc_loss
from jaxbc.data import Dataset
from jaxbc.envs import Box
from jaxbc.io import atomic_write_json, command_line, enable_compilation_cache, machine_description


def synthetic_dataset(
    n: int = 20_000, obs_dim: int = 17, act_dim: int = 6, seed: int = 0
) -> Dataset:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    act = np.tanh(obs[:, :act_dim] + 0.1 * rng.normal(size=(n, act_dim))).astype(np.float32)
    return Dataset.from_pairs(obs, act, "synthetic", Box((-1.0,) * act_dim, (1.0,) * act_dim))


def time_train(cfg: BCConfig, loss, data: Dataset, repeats: int) -> tuple[float, float]:
    """(compile seconds, best run seconds) of ``cfg.steps`` steps."""
    train = jax.jit(make_bc_train(cfg, loss))
    t0 = time.perf_counter()
    compiled = train.lower(jax.random.key(0), data).compile()
    compile_s = time.perf_counter() - t0
    best = float("inf")
    for r in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(jax.random.key(r), data).params)
        best = min(best, time.perf_counter() - t0)
    return compile_s, best


def ceiling_steps_per_s(steps: int, repeats: int) -> float:
    """Steps/s of the barest loop for the same problem (flax MLP, MSE, Adam, random
    minibatches, one ``scan``): what this machine can do today, so the figures above can be
    read against it (a shared CPU's speed drifts by 10-20% between hours)."""
    import flax.linen as nn
    import jax.numpy as jnp
    import optax

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Dense(256)(x))
            return nn.Dense(6)(nn.relu(nn.Dense(256)(x)))

    data = synthetic_dataset()
    x, y = jnp.asarray(data.obs), jnp.asarray(data.action)
    net, tx = MLP(), optax.adam(1e-3)

    def train(key):
        params = net.init(key, x[:1])

        def step(carry, k):
            p, s = carry
            idx = jax.random.randint(k, (256,), 0, x.shape[0])
            g = jax.grad(lambda p: ((net.apply(p, x[idx]) - y[idx]) ** 2).mean())(p)
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, tx.init(params)), jax.random.split(key, steps))[0]

    compiled = jax.jit(train).lower(jax.random.key(0)).compile()
    best = float("inf")
    for r in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(jax.random.key(r)))
        best = min(best, time.perf_counter() - t0)
    return round(steps / best, 1)


def main(
    steps: int = 2000,
    members: int = 8,
    repeats: int = 3,
    out: Path | None = None,
    json: Annotated[bool, tyro.conf.arg(name="json")] = False,
) -> dict:
    """Args:
    steps: gradient steps per timed run.
    members: ensemble size.
    repeats: timed runs per setting (best is reported).
    out: also write the results (with the command and date) to this JSON file.
    json: print one JSON object as the last stdout line.
    """
    data = synthetic_dataset()
    policy = PolicyConfig(hidden_sizes=(256, 256), activation="relu")
    single = BCConfig(policy=policy, steps=steps, batch_size=256, lr=1e-3)
    ensemble = BCConfig(policy=policy, steps=steps, batch_size=256, lr=1e-3, members=members)
    results: dict = {
        "machine": machine_description(),
        "jax": jax.__version__,
        "steps": steps,
        "members": members,
    }
    compile_s, t = time_train(single, partial(swarm_bc_loss, tau=0.0), data, repeats)
    results["compile_s"] = round(compile_s, 2)
    results["bc_steps_per_s"] = round(steps / t, 1)
    print(
        f"single policy: {results['bc_steps_per_s']} steps/s (compile {compile_s:.1f} s)",
        file=sys.stderr,
    )
    _, t = time_train(ensemble, partial(swarm_bc_loss, tau=0.0), data, repeats)
    results["ensemble_member_steps_per_s"] = round(steps * members / t, 1)
    print(
        f"ensemble x{members}: {results['ensemble_member_steps_per_s']} member-steps/s",
        file=sys.stderr,
    )
    _, t = time_train(ensemble, partial(swarm_bc_loss, tau=0.25), data, repeats)
    results["swarm_member_steps_per_s"] = round(steps * members / t, 1)
    print(
        f"swarm x{members}: {results['swarm_member_steps_per_s']} member-steps/s", file=sys.stderr
    )
    results["ceiling_steps_per_s"] = ceiling_steps_per_s(steps, repeats)
    print(
        f"bare flax/optax loop (ceiling): {results['ceiling_steps_per_s']} steps/s", file=sys.stderr
    )
    for fn in EXTRA.values():
        results.update(fn(repeats=repeats))
    if out is not None:
        record = {
            "command": command_line("python benchmarks/speed.py"),
            "date": time.strftime("%Y-%m-%d"),
            **results,
        }
        atomic_write_json(out, record)
    if json:
        print(jsonlib.dumps(results))
    else:
        print("\n".join(f"{k}: {v}" for k, v in results.items()))
    return results


def dagger_speed(repeats: int = 3) -> dict:
    """Wall time of a DAgger run on CartPole-v1: 10 iterations x (2,000 env steps, 200 BC
    steps of batch 256 on a 2x256 MLP, a 10-episode evaluation), plus the initial BC fit."""
    from jaxbc.dagger import DAggerConfig, make_dagger
    from jaxbc.data import collect
    from jaxbc.experts import load_expert

    expert = load_expert("CartPole-v1")
    data = collect(expert, expert.make_env(), 1, jax.random.key(0))
    cfg = DAggerConfig(
        bc=BCConfig(policy=PolicyConfig(hidden_sizes=(256, 256)), steps=200, batch_size=256),
        iterations=10,
        steps_per_iteration=2000,
        num_envs=16,
    )
    run = jax.jit(make_dagger(cfg))
    t0 = time.perf_counter()
    compiled = run.lower(jax.random.key(0), expert, data).compile()
    compile_s = time.perf_counter() - t0
    best = float("inf")
    for r in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(jax.random.key(r), expert, data).returns)
        best = min(best, time.perf_counter() - t0)
    print(f"DAgger 10 iterations: {best:.2f} s (compile {compile_s:.1f} s)", file=sys.stderr)
    return {"dagger_10_iters_s": round(best, 3), "dagger_compile_s": round(compile_s, 2)}


def hades_speed(repeats: int = 3, generations: int = 2) -> dict:
    """Seconds per HaDES generation on CartPole-v1 (SNES, population 256, D = 4, 64 inner
    full-batch steps, 4 envs x 500 steps, HaDES-F) and the env steps/s that implies."""
    from jaxbc.hades import HadesConfig, make_hades, make_strategy, solution_template

    cfg = HadesConfig(
        env_id="CartPole-v1",
        dataset_size=4,
        inner_steps=64,
        num_envs=4,
        eval_steps=500,
        num_devices=1,
    )
    population = 256
    hades = make_hades(cfg, make_strategy("SNES", population, solution_template(cfg)))
    state = jax.jit(hades.init)(jax.random.key(0))
    t0 = time.perf_counter()
    compiled = jax.jit(hades.scan_generations, static_argnums=1).lower(state, generations).compile()
    compile_s = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, summary = compiled(state)
        jax.block_until_ready(summary)
        best = min(best, time.perf_counter() - t0)
    gen_s = best / generations
    env_steps = population * cfg.inits_per_generation * cfg.num_envs * cfg.eval_steps
    print(
        f"HaDES generation: {gen_s:.2f} s, {env_steps / gen_s:,.0f} env steps/s (compile {compile_s:.1f} s)",
        file=sys.stderr,
    )
    return {
        "hades_gen_s": round(gen_s, 3),
        "hades_env_steps_per_s": round(env_steps / gen_s),
        "hades_compile_s": round(compile_s, 2),
    }


# Measurements of other capabilities: () -> dict, merged into the results.
EXTRA: dict = {"dagger": dagger_speed, "hades": hades_speed}


if __name__ == "__main__":
    enable_compilation_cache()
    tyro.cli(main)
