"""Convert saved models from the per-kind formats (``policy.json``, ``expert.json``,
``diffusion.json`` next to ``params.msgpack``) to the one artifact format of
:mod:`jaxbc.artifact` (``artifact.json`` next to the same ``params.msgpack``).

The arrays are not touched: only the description is rewritten, then the old description is
removed. Each converted directory is loaded back; for experts (``--check``) the converted
expert's actions are compared with the old-format expert's on the same observations.

    python scripts/convert_artifacts.py jaxbc/experts/zoo/*      # the committed zoo
    python scripts/convert_artifacts.py --check-ref REF_DIR DIR   # compare actions with REF_DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from jaxbc.artifact import FORMAT, FORMAT_VERSION, SPEC_FILE
from jaxbc.experts.expert import Expert, load_expert
from jaxbc.experts.ppo import PPOConfig, make_network
from jaxbc.normalize import RunningStats

OLD = {"policy.json": "policy", "expert.json": "expert", "diffusion.json": "diffusion"}


def converted(kind: str, old: dict) -> dict:
    """The artifact description of an old-format description of ``kind``."""
    if kind == "policy":
        env = {
            "env_id": old["env_id"],
            "env_options": old.get("env_options", []),
            "observation_shape": old["observation_shape"],
            "action_space": old["action_space"],
        }
        meta: dict = {}
    elif kind == "expert":
        env, meta = old["env"], old.get("meta", {})
    else:
        env = {
            "env_id": old["env_id"],
            "observation_shape": old["observation_shape"],
            "act_dim": old["act_dim"],
        }
        meta = {}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "env": env,
        "config": old["config"],
        "meta": meta,
    }


def convert(directory: Path) -> str | None:
    """Rewrite ``directory``'s description; returns the kind, or None if nothing to do."""
    found = [name for name in OLD if (directory / name).exists()]
    if not found:
        return None
    if len(found) > 1 or (directory / SPEC_FILE).exists():
        raise SystemExit(f"{directory}: ambiguous ({found}, {SPEC_FILE}); convert by hand")
    old_path = directory / found[0]
    kind = OLD[found[0]]
    spec = converted(kind, json.loads(old_path.read_text()))
    (directory / SPEC_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    old_path.unlink()
    return kind


def check_expert(directory: Path, reference: Path | None) -> str:
    """Load the converted expert; with ``reference`` (an old-format copy) run both on 256
    observations from the env and require identical actions (deterministic and sampled)."""
    ex = load_expert(directory)
    if reference is None:
        return "loads"
    old = _load_old_expert(reference)
    env = ex.make_env()
    obs, _ = jax.vmap(env.reset)(jax.random.split(jax.random.key(0), 256))
    keys = jax.random.split(jax.random.key(1), 256)
    for det in (True, False):
        new_a = jax.vmap(ex.policy_fn(det, env), in_axes=(None, 0, 0))(ex.params, obs, keys)
        old_a = jax.vmap(old.policy_fn(det, env), in_axes=(None, 0, 0))(old.params, obs, keys)
        if not np.array_equal(np.asarray(new_a), np.asarray(old_a)):
            raise SystemExit(f"{directory}: actions differ from {reference} (deterministic={det})")
    return "same actions as the old format on 256 states (deterministic and sampled)"


def _load_old_expert(directory: Path):
    """An expert read from the old ``expert.json`` layout (for the check only)."""
    spec = json.loads((directory / "expert.json").read_text())
    config = PPOConfig.from_dict(spec["config"])
    env = config.make_env()
    template = {
        "net": make_network(config, env).init(
            jax.random.key(0), jnp.zeros((1, *env.observation_shape))
        ),
        "obs_stats": {
            "mean": jnp.zeros(env.observation_shape),
            "var": jnp.zeros(env.observation_shape),
            "count": jnp.zeros(()),
        },
    }
    state = serialization.from_bytes(template, (directory / "params.msgpack").read_bytes())
    s = state["obs_stats"]
    stats = RunningStats(jnp.asarray(s["mean"]), jnp.asarray(s["var"]), jnp.asarray(s["count"]))
    return Expert(config, {"net": state["net"], "obs_stats": stats}, spec.get("meta", {}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument(
        "--check-ref",
        type=Path,
        default=None,
        help="a folder holding old-format copies of the expert directories (same names)",
    )
    args = parser.parse_args(argv)
    for d in args.dirs:
        kind = convert(d)
        note = ""
        if kind == "expert":
            ref = None if args.check_ref is None else args.check_ref / d.name
            note = ": " + check_expert(d, ref)
        print(f"{d}: {kind or 'nothing to convert'}{note}", file=sys.stderr)


if __name__ == "__main__":
    main()
