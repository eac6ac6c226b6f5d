"""Trained experts: parameters + observation normaliser + recipe + measured returns.

On disk an expert is an ``"expert"`` artifact (:mod:`jaxbc.artifact`): ``params.msgpack``
holds ``{"net": ActorCritic params, "obs_stats": {"mean", "var", "count"}}``;
``artifact.json`` its ``env`` (id, spaces), ``config`` (the :class:`PPOConfig`) and ``meta``
(seed, steps, wall time, machine, mean/std return over N episodes, random return, command).

The committed zoo lives in ``jaxbc/experts/zoo/<env id with '/' as '-'>/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from jaxbc.artifact import (
    SPEC_FILE,
    ArtifactError,
    is_artifact,
    read_spec,
    read_state,
    save_artifact,
)
from jaxbc.bc.acting import ActionHead, ActorNet, ObsNormalizer, policy_function
from jaxbc.envs import Env, space_from_dict
from jaxbc.experts.ppo import ActorCritic, PPOConfig, PPOState, make_network, policy_kind
from jaxbc.normalize import OBS_CLIP, RunningStats
from jaxbc.rollout import PolicyFn

ZOO_DIR = Path(__file__).parent / "zoo"


def zoo_name(env_id: str) -> str:
    return env_id.replace("/", "-")


@dataclass(frozen=True, eq=False)
class Expert:
    """A trained policy. ``expert.params`` + ``expert.policy_fn()`` plug into rollouts."""

    config: PPOConfig
    params: dict  # {"net": ..., "obs_stats": RunningStats}
    meta: dict = field(default_factory=dict)

    @property
    def env_id(self) -> str:
        return self.config.env_id

    def make_env(self) -> Env:
        return self.config.make_env()

    def network(self, env: Env | None = None) -> ActorCritic:
        return make_network(self.config, env or self.make_env())

    def policy_fn(self, deterministic: bool = True, env: Env | None = None) -> PolicyFn:
        """``(params, obs, key) -> action`` for ONE observation; argmax/mean if deterministic."""
        return _policy_fn(self.config, env or self.make_env(), deterministic)

    def act(self, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
        return self.policy_fn(deterministic)(self.params, obs, key)

    # --- persistence -------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the expert as an ``"expert"`` artifact (:mod:`jaxbc.artifact`)."""
        env = self.make_env()
        return save_artifact(
            directory,
            "expert",
            _to_state(self.params),
            env.spec(),
            self.config.to_dict(),
            self.meta,
        )


# An Expert is a pytree (its params are the leaves), so it can be passed into jitted
# functions such as DAgger's ``run(key, expert, dataset)``; config and metadata are static.
jax.tree_util.register_pytree_node(
    Expert,
    lambda e: ((e.params,), (e.config, json.dumps(e.meta, sort_keys=True))),
    lambda aux, leaves: Expert(aux[0], leaves[0], json.loads(aux[1])),
)


def _to_state(params: dict) -> dict:
    stats = params["obs_stats"]
    return {
        "net": params["net"],
        "obs_stats": {"mean": stats.mean, "var": stats.var, "count": stats.count},
    }


def _policy_fn(config: PPOConfig, env: Env, deterministic: bool) -> PolicyFn:
    """The :func:`jaxbc.bc.acting.policy_function` of the actor (argmax/mean if
    deterministic, else an unclipped sample) with the params' running ``obs_stats``, the
    z-scores clipped to +-``OBS_CLIP`` as PPO trained it."""
    return policy_function(
        ActorNet(make_network(config, env)),
        ActionHead(policy_kind(env)),
        deterministic,
        ObsNormalizer("running", clip=OBS_CLIP) if config.normalize_obs else None,
    )


def expert_from_ppo(state: PPOState, config: PPOConfig, meta: dict | None = None) -> Expert:
    """Wrap the final PPO state of a (non-vmapped) run as an :class:`Expert`."""
    params = {"net": state.train_state.params, "obs_stats": state.obs_stats}
    return Expert(config, jax.device_get(params), dict(meta or {}))


def load_expert(source: str | Path) -> Expert:
    """Load an expert from a directory, or from the zoo by env id (e.g. ``"CartPole-v1"``)."""
    directory = Path(source)
    if not is_artifact(directory, "expert"):
        zoo_dir = ZOO_DIR / zoo_name(str(source))
        if is_artifact(zoo_dir, "expert"):
            directory = zoo_dir
        elif not (directory / SPEC_FILE).exists():
            raise FileNotFoundError(
                f"no expert at {str(source)!r}: not a directory with {SPEC_FILE}, and not a zoo "
                f"env id (zoo has: {', '.join(zoo_env_ids()) or 'nothing'})"
            )
    spec = read_spec(directory, "expert")
    try:
        config = PPOConfig.from_dict(spec["config"])
    except (KeyError, TypeError) as e:
        raise ArtifactError(
            f"{directory / SPEC_FILE} is not a valid expert description: {e}"
        ) from e
    env = config.make_env()
    stored_env = spec["env"]
    if stored_env and (
        tuple(stored_env["observation_shape"]) != env.observation_shape
        or space_from_dict(stored_env["action_space"]) != env.action_space
    ):
        raise ArtifactError(
            f"expert at {directory} was saved for {stored_env} but {config.env_id} now has "
            f"observation shape {env.observation_shape} and action space {env.action_space}"
        )
    net = make_network(config, env)
    template = {
        "net": net.init(jax.random.key(0), jnp.zeros((1, *env.observation_shape))),
        "obs_stats": {
            "mean": jnp.zeros(env.observation_shape),
            "var": jnp.zeros(env.observation_shape),
            "count": jnp.zeros(()),
        },
    }
    state = read_state(directory, template)
    s = state["obs_stats"]
    params = {
        "net": state["net"],
        "obs_stats": RunningStats(
            jnp.asarray(s["mean"]), jnp.asarray(s["var"]), jnp.asarray(s["count"])
        ),
    }
    return Expert(config, params, spec["meta"])


def _zoo_specs() -> list[dict]:
    """The descriptions of the experts committed in the package, by directory name."""
    return [
        json.loads((d / SPEC_FILE).read_text())
        for d in sorted(ZOO_DIR.iterdir())
        if is_artifact(d, "expert")
    ]


def zoo_meta(env_id: str) -> dict | None:
    """The ``meta`` of the zoo's expert for ``env_id`` (measured returns), or ``None``."""
    directory = ZOO_DIR / zoo_name(env_id)
    return read_spec(directory, "expert")["meta"] if is_artifact(directory, "expert") else None


def zoo_env_ids() -> list[str]:
    """Env ids of the experts committed in the package."""
    return [spec["config"]["env_id"] for spec in _zoo_specs()]


def zoo_table() -> list[dict[str, Any]]:
    """One row per committed expert, from its metadata (what `jaxbc experts` prints)."""
    rows = []
    for spec in _zoo_specs():
        meta = spec["meta"]
        rows.append(
            {
                "env": spec["config"]["env_id"],
                "mean_return": meta.get("mean_return"),
                "std_return": meta.get("std_return"),
                "eval_episodes": meta.get("eval_episodes"),
                "random_return": meta.get("random_return"),
                "env_steps": meta.get("env_steps"),
                "wall_time_s": meta.get("wall_time_s"),
                "machine": meta.get("machine"),
                "seed": meta.get("seed"),
            }
        )
    return rows
