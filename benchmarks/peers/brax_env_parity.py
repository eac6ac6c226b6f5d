"""The Brax envs under jaxbc against the brax the official HaDES code runs on.

    python benchmarks/peers/brax_env_parity.py    # --peer-python: the official HaDES venv

The official HaDES code steps brax 0.9.4 (``requirements-hades-official.txt``); jaxbc steps
brax 0.14.2 through ``jaxbc.envs.make``. Both sides start hopper and walker2d (positional
backend) from the same state (``reset_noise_scale=0``: the reset noise is drawn differently
by the two brax versions) and take one fixed action sequence until the episode ends; the
results give, per env, the largest observation difference, each side's episode length and
return. Writes ``benchmarks/results/peers/brax_env_parity.{json,md}``.

With ``--side official`` it runs in the official venv and imports nothing from jaxbc.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ENVS = ("hopper", "walker2d")
STEPS = 400  # at most; each side stops at its first episode end
OUT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "peers"


def actions(action_size: int) -> np.ndarray:
    """The fixed action sequence, ``[STEPS, action_size]`` in [-0.5, 0.5]."""
    t = np.arange(STEPS)[:, None]
    return (0.5 * np.sin(np.arange(action_size)[None] + 0.1 * t)).astype(np.float32)


def episode(reset, step, action_size: int) -> dict:
    """Observations, rewards and length of one episode under :func:`actions`."""
    obs, state = reset(jax.random.PRNGKey(0))
    observations, rewards = [np.asarray(obs).tolist()], []
    for a in actions(action_size):
        obs, state, reward, done = step(state, jnp.asarray(a))
        observations.append(np.asarray(obs).tolist())
        rewards.append(float(reward))
        if done:
            break
    return {"obs": observations, "rewards": rewards, "length": len(rewards)}


def official_side(env_name: str) -> dict:
    """brax's own API, as the official code's ``BraxGymnaxWrapper`` calls it."""
    from brax import envs  # the official venv's brax

    env = envs.get_environment(env_name, backend="positional", reset_noise_scale=0.0)
    step = jax.jit(env.step)

    def reset(key):
        s = env.reset(key)
        return s.obs, s

    def step_fn(s, a):
        s = step(s, a)
        return s.obs, s, s.reward, bool(s.done > 0.5)

    return episode(reset, step_fn, env.action_size)


def jaxbc_side(env_name: str) -> dict:
    from jaxbc import envs

    env = envs.make(f"brax/{env_name}", reset_noise_scale=0.0)
    step = jax.jit(env.step)

    def step_fn(s, a):
        obs, s, reward, terminated, truncated, info = step(jax.random.PRNGKey(1), s, a)
        return info["final_observation"], s, reward, bool(terminated | truncated)

    return episode(jax.jit(env.reset), step_fn, env.action_space.shape[0])


def compare(official: dict, ours: dict) -> dict:
    n = min(len(official["obs"]), len(ours["obs"]))
    diff = np.abs(np.asarray(official["obs"][:n]) - np.asarray(ours["obs"][:n])).max(axis=1)
    return {
        "official_length": official["length"],
        "jaxbc_length": ours["length"],
        "official_return": float(np.sum(official["rewards"])),
        "jaxbc_return": float(np.sum(ours["rewards"])),
        "max_obs_diff": float(diff.max()),
        "max_obs_diff_first_10_steps": float(diff[:11].max()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--side", choices=("both", "official"), default="both")
    p.add_argument("--peer-python", type=Path, default=Path("/tmp/hades_official_venv/bin/python"))
    p.add_argument("--out-dir", type=Path, default=OUT)
    args = p.parse_args()
    from importlib import metadata

    if args.side == "official":
        episodes = {env: official_side(env) for env in ENVS}
        json.dump({"brax": metadata.version("brax"), "envs": episodes}, sys.stdout)
        return

    from jaxbc.io import atomic_write_json, command_line, machine_description

    peer = subprocess.run(
        [str(args.peer_python), __file__, "--side", "official"],
        check=True,
        capture_output=True,
        text=True,
    )
    official = json.loads(peer.stdout)
    rows = {env: compare(official["envs"][env], jaxbc_side(env)) for env in ENVS}
    meta = {
        "command": command_line("python benchmarks/peers/brax_env_parity.py"),
        "machine": machine_description(),
        "official_brax": official["brax"],
        "jaxbc_brax": metadata.version("brax"),
        "backend": "positional",
        "start": "reset key PRNGKey(0), reset_noise_scale=0 on both sides",
        "actions": f"a_t[i] = 0.5 sin(i + 0.1 t), at most {STEPS} steps, to the first episode end",
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out_dir / "brax_env_parity.json", {"meta": meta, "envs": rows})
    lines = [
        "# Brax envs: jaxbc against the official HaDES code's brax",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}  ",
        f"brax {meta['official_brax']} (official venv) against {meta['jaxbc_brax']} "
        f"(jaxbc), {meta['backend']} backend; {meta['start']}; actions {meta['actions']}.",
        "",
        "| env | episode length (official / jaxbc) | return (official / jaxbc) | largest observation difference | in the first 10 steps |",
        "|---|---|---|---|---|",
    ]
    for env, r in rows.items():
        lines.append(
            f"| {env} | {r['official_length']} / {r['jaxbc_length']} | "
            f"{r['official_return']:.2f} / {r['jaxbc_return']:.2f} | {r['max_obs_diff']:.2g} | "
            f"{r['max_obs_diff_first_10_steps']:.2g} |"
        )
    (args.out_dir / "brax_env_parity.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
