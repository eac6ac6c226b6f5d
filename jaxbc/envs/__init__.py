"""Functional environments: ``make(env_id)`` for gymnax classic control, MinAtar and Brax."""

from jaxbc.envs.core import ENV_AXIS, ActionSpace, Box, Discrete, Env, space_from_dict
from jaxbc.envs.normalization import (
    OBS_NORMALIZATIONS,
    env_state,
    load_obs_stats,
    obs_stats_path,
    one_env,
)
from jaxbc.envs.registry import BRAX_BACKENDS, family_of, known_env_ids, list_envs, make

__all__ = [
    "ENV_AXIS",
    "OBS_NORMALIZATIONS",
    "ActionSpace",
    "BRAX_BACKENDS",
    "Box",
    "Discrete",
    "Env",
    "family_of",
    "known_env_ids",
    "list_envs",
    "load_obs_stats",
    "obs_stats_path",
    "env_state",
    "make",
    "one_env",
    "space_from_dict",
]
