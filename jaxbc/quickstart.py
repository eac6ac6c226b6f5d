"""The main demo: zoo expert -> demonstrations -> behavioral cloning -> a table of returns."""

from __future__ import annotations

import sys
import time

import jax
from tqdm.auto import tqdm

from jaxbc.bc import BCConfig, make_bc_train
from jaxbc.data import collect
from jaxbc.experts import load_expert
from jaxbc.rollout import evaluate, random_return, scaled_return
from jaxbc.validation import check_int


def quickstart(
    env_id: str = "CartPole-v1",
    demo_episodes: int = 4,
    bc_steps: int = 2_000,
    eval_episodes: int = 50,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Run the demo and return its results (returns of expert, random and BC policies)."""
    for name, value, lo in (
        ("demo_episodes", demo_episodes, 1),
        ("bc_steps", bc_steps, 1),
        ("eval_episodes", eval_episodes, 1),
        ("seed", seed, 0),
    ):
        check_int(name, value, lo)
    t0 = time.time()
    key = jax.random.key(seed)
    k_demo, k_bc, k_eval = jax.random.split(key, 3)
    stages = ["load expert", "collect demos", "train BC", "evaluate"]
    with tqdm(total=len(stages), desc="quickstart", file=sys.stderr, disable=not progress) as bar:
        bar.set_postfix_str(stages[0])
        expert = load_expert(env_id)
        env = expert.make_env()
        bar.update()
        bar.set_postfix_str(stages[1])
        data = collect(expert, env, demo_episodes, k_demo)
        bar.update()
        bar.set_postfix_str(stages[2])
        result = jax.jit(make_bc_train(BCConfig(steps=bc_steps)))(k_bc, data)
        bar.update()
        bar.set_postfix_str(stages[3])
        ks = jax.random.split(k_eval, 3)
        ev_expert = evaluate(env, expert.policy_fn(), expert.params, ks[0], eval_episodes)
        ev_random = random_return(env, ks[1], eval_episodes)
        ev_bc = evaluate(env, result.policy_fn(), result.params, ks[2], eval_episodes)
        bar.update()

    def row(name, ev):
        return {
            "policy": name,
            "mean_return": float(ev.mean_return),
            "std_return": float(ev.std_return),
            "scaled_return": float(
                scaled_return(ev.mean_return, ev_random.mean_return, ev_expert.mean_return)
            ),
        }

    return {
        "env": env_id,
        "demo_episodes": demo_episodes,
        "demo_transitions": data.size,
        "bc_steps": bc_steps,
        "bc_final_loss": float(result.metrics["loss"][-1]),
        "eval_episodes": eval_episodes,
        "seed": seed,
        "results": [row("expert", ev_expert), row("random", ev_random), row("BC", ev_bc)],
        "wall_time_s": round(time.time() - t0, 1),
    }
