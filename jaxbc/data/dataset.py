"""Demonstration datasets: collection from any policy, one validated ``.npz`` file format.

File format (``numpy.savez_compressed``, loadable without pickle)::

    obs          float32 [N, *obs_shape]   observation before the step
    action       int32 [N] (discrete) | float32 [N, act_dim] (continuous, clipped to bounds)
    reward       float32 [N]
    next_obs     float32 [N, *obs_shape]   observation after the step, before auto-reset
    terminated   bool    [N]
    truncated    bool    [N]               time-limit end that is not a termination
    episode_id   int32   [N]               0..E-1, transitions of an episode are contiguous
    episode_returns float32 [E]
    __meta__     str (JSON): format, format_version, env_id, env_options, observation_shape,
                 action_space, source, created_utc

A dataset is a flax struct (a pytree with static env information), so it can be passed
into jitted trainers as it is.
"""

from __future__ import annotations

import functools
import io
import json
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxbc.envs import ActionSpace, Box, Discrete, Env, family_of, space_from_dict
from jaxbc.io import atomic_write_bytes, parse_header
from jaxbc.rollout import PolicyFn, init_carry, rollout_steps
from jaxbc.validation import ConfigError, check_int

FORMAT = "jaxbc-dataset"
FORMAT_VERSION = 1
ARRAY_KEYS = ("obs", "action", "reward", "next_obs", "terminated", "truncated", "episode_id")


class DatasetError(ValueError):
    """A dataset file or array that cannot be used, with the reason in the message."""


@struct.dataclass
class Dataset:
    obs: Any
    action: Any
    reward: Any
    next_obs: Any
    terminated: Any
    truncated: Any
    episode_id: Any
    episode_returns: Any
    env_id: str = struct.field(pytree_node=False)
    action_space: ActionSpace = struct.field(pytree_node=False)
    observation_shape: tuple[int, ...] = struct.field(pytree_node=False)
    env_options: tuple = struct.field(pytree_node=False, default=())
    source: str = struct.field(pytree_node=False, default="")
    # How its producer trains on this data (HaDES: its inner loop's full-batch BC config),
    # as canonical JSON of an object (:func:`recipe_text`; a string because static fields
    # must hash); "" for demonstrations. Opaque here: the trainer that reads it parses it
    # (``jaxbc.bc.BCConfig.from_recipe``).
    train_recipe: str = struct.field(pytree_node=False, default="")

    @property
    def recipe(self) -> dict | None:
        """The stored training recipe as a dict, or ``None`` if there is none."""
        return json.loads(self.train_recipe) if self.train_recipe else None

    @classmethod
    def from_pairs(
        cls, obs: Any, action: Any, env_id: str, action_space: ActionSpace, **fields: Any
    ) -> Dataset:
        """State-action pairs without rewards or episode boundaries (one episode of return
        0, ``next_obs = obs``): what BC needs when the data comes from elsewhere.
        ``fields`` sets any other field (``env_options``, ``source``, ...)."""
        xp = jnp if isinstance(obs, jax.Array) else np
        n = obs.shape[0]
        return cls(
            obs=obs,
            action=action,
            reward=xp.zeros(n, xp.float32),
            next_obs=obs,
            terminated=xp.zeros(n, bool),
            truncated=xp.zeros(n, bool),
            episode_id=xp.zeros(n, xp.int32),
            episode_returns=xp.zeros(1, xp.float32),
            env_id=env_id,
            action_space=action_space,
            observation_shape=fields.pop("observation_shape", tuple(obs.shape[1:])),
            **fields,
        )

    @property
    def size(self) -> int:
        return int(self.reward.shape[0])

    @property
    def num_episodes(self) -> int:
        return int(self.episode_returns.shape[0])

    @property
    def discrete(self) -> bool:
        return isinstance(self.action_space, Discrete)

    def __len__(self) -> int:
        return self.size

    def first_episodes(self, n: int) -> Dataset:
        """The sub-dataset made of episodes ``0..n-1`` (for studies over demo counts)."""
        if not 1 <= n <= self.num_episodes:
            raise DatasetError(f"asked for {n} episodes but the dataset has {self.num_episodes}")
        keep = np.asarray(self.episode_id) < n
        arrays = {k: np.asarray(getattr(self, k))[keep] for k in ARRAY_KEYS}
        return self.replace(**arrays, episode_returns=np.asarray(self.episode_returns)[:n])

    def check_env(self, env: Env) -> None:
        """Raise :class:`DatasetError` if this dataset does not belong to ``env``."""
        if env.id != self.env_id:
            raise DatasetError(f"dataset was collected on {self.env_id!r}, not on {env.id!r}")
        if (
            tuple(env.observation_shape) != tuple(self.observation_shape)
            or env.action_space != self.action_space
        ):
            raise DatasetError(
                f"dataset spaces (obs {self.observation_shape}, actions {self.action_space}) do not "
                f"match env {env.id} (obs {env.observation_shape}, actions {env.action_space})"
            )


class NormStats(NamedTuple):
    """Per-feature mean/std of observations and (continuous) actions."""

    obs_mean: jax.Array
    obs_std: jax.Array
    action_mean: jax.Array
    action_std: jax.Array


def normalization_stats(
    dataset: Dataset, num_valid: jax.Array | int | None = None, min_std: float = 1e-6
) -> NormStats:
    """Mean and std from a dataset; constant features get std 1 so normalising is safe.

    ``num_valid``: only the first ``num_valid`` transitions count (fixed-capacity buffers,
    padded datasets); may be a traced value.
    """

    def stats(x):
        x = jnp.asarray(x, jnp.float32)
        if num_valid is None:
            mean, std = x.mean(0), x.std(0)
        else:
            w = (jnp.arange(x.shape[0]) < num_valid).astype(jnp.float32)
            w = w.reshape(-1, *([1] * (x.ndim - 1))) / w.sum()
            mean = (x * w).sum(0)
            std = jnp.sqrt((((x - mean) ** 2) * w).sum(0))
        return mean, jnp.where(std < min_std, 1.0, std)

    om, os_ = stats(dataset.obs)
    if dataset.discrete:
        am, as_ = jnp.zeros(()), jnp.ones(())
    else:
        am, as_ = stats(dataset.action)
    return NormStats(om, os_, am, as_)


# --- collection ----------------------------------------------------------------------------


def collect_policy(
    env: Env,
    policy_fn: PolicyFn,
    params: Any,
    num_episodes: int,
    key: jax.Array,
    max_parallel: int = 64,
    source: str = "",
) -> Dataset:
    """Run ``num_episodes`` complete episodes of ``policy_fn`` and keep every transition.

    Episodes run in parallel batches of ``max_parallel`` envs for ``env.max_episode_steps``
    steps (the time limit guarantees completion); each env contributes its first episode.
    """
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    batches = []
    remaining, k = num_episodes, key
    while remaining > 0:
        n = min(remaining, max_parallel)
        k, sub = jax.random.split(k)
        batches.append(jax.device_get(_first_episodes(env, policy_fn, n)(params, sub)))
        remaining -= n
    parts = {name: [] for name in ARRAY_KEYS}
    returns = []
    episode = 0
    for traj, first, ep_ret in batches:
        # time-major [L, E] -> episode-major, keep each env's first episode
        for e in range(first.shape[1]):
            sel = first[:, e]
            for name in ARRAY_KEYS[:-1]:
                parts[name].append(np.asarray(getattr(traj, name))[:, e][sel])
            parts["episode_id"].append(np.full(int(sel.sum()), episode, np.int32))
            returns.append(ep_ret[e])
            episode += 1
    arrays = {name: np.concatenate(v) for name, v in parts.items()}
    if isinstance(env.action_space, Box):
        arrays["action"] = np.clip(arrays["action"], env.action_space.low, env.action_space.high)
    arrays = _cast(arrays, env.action_space)
    return Dataset(
        **arrays,
        episode_returns=np.asarray(returns, np.float32),
        env_id=env.id,
        action_space=env.action_space,
        observation_shape=tuple(env.observation_shape),
        env_options=tuple(env.options),
        source=source,
    )


def _first_episodes(env: Env, policy_fn: PolicyFn, num_envs: int):
    return functools.partial(_first_episodes_jit, env, policy_fn, num_envs)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _first_episodes_jit(env: Env, policy_fn: PolicyFn, num_envs: int, params, key):
    k_reset, k_run = jax.random.split(key)
    carry = init_carry(env, k_reset, num_envs)
    _, res = rollout_steps(env, policy_fn, params, k_run, carry, env.max_episode_steps)
    done = res.episode_end
    ends_before = jnp.cumsum(done, 0) - done  # episode ends strictly before t
    first = ends_before == 0
    return res.trajectory, first, (res.episode_return * (done & first)).sum(0)


def collect(
    expert, env: Env, num_episodes: int, key: jax.Array, deterministic: bool = True
) -> Dataset:
    """Demonstrations of an :class:`~jaxbc.experts.Expert` on ``env``. An expert that acts on
    more than the observation (the hidden-mode toy task's) brings its own ``demonstrations``."""
    if expert.env_id != env.id:
        raise DatasetError(f"expert was trained on {expert.env_id!r}, cannot collect on {env.id!r}")
    own = getattr(expert, "demonstrations", None)
    if own is not None:
        return own(env, num_episodes, key, deterministic)
    source = f"expert:{expert.env_id}:{'deterministic' if deterministic else 'sampled'}"
    return collect_policy(
        env, expert.policy_fn(deterministic, env), expert.params, num_episodes, key, source=source
    )


# --- file format -----------------------------------------------------------------------------


def _cast(arrays: dict, space: ActionSpace) -> dict:
    out = dict(arrays)
    for k in ("obs", "next_obs", "reward"):
        out[k] = np.asarray(out[k], np.float32)
    for k in ("terminated", "truncated"):
        out[k] = np.asarray(out[k], bool)
    out["episode_id"] = np.asarray(out["episode_id"], np.int32)
    out["action"] = np.asarray(
        out["action"], np.int32 if isinstance(space, Discrete) else np.float32
    )
    return out


def recipe_text(recipe: dict | None) -> str:
    """A training recipe (a JSON-able dict) as the canonical text a :class:`Dataset` stores
    ("" for none)."""
    return "" if recipe is None else json.dumps(recipe, sort_keys=True)


def _recipe(meta: dict, path: Any) -> str:
    """The stored training recipe: a JSON object, kept as data ("" if none)."""
    recipe = meta.get("train_recipe")
    if recipe is not None and not isinstance(recipe, dict):
        raise DatasetError(
            f"{path}: __meta__ train_recipe must be a JSON object, got {type(recipe).__name__}"
        )
    return recipe_text(recipe)


def save_dataset(dataset: Dataset, path: str | Path) -> Path:
    """Validate and write ``dataset`` to ``path`` (``.npz``) atomically."""
    validate(dataset)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "env_id": dataset.env_id,
        "env_options": [list(kv) for kv in dataset.env_options],
        "observation_shape": list(dataset.observation_shape),
        "action_space": dataset.action_space.to_dict(),
        "source": dataset.source,
        **({"train_recipe": dataset.recipe} if dataset.train_recipe else {}),
        "num_transitions": dataset.size,
        "num_episodes": dataset.num_episodes,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    buf = io.BytesIO()
    arrays = {k: np.asarray(getattr(dataset, k)) for k in (*ARRAY_KEYS, "episode_returns")}
    np.savez_compressed(buf, __meta__=np.asarray(json.dumps(meta)), **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load_dataset(path: str | Path, env: Env | str | None = None) -> Dataset:
    """Load and validate a dataset file; with ``env`` also check it belongs to that env."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            files = dict(f.items())
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise DatasetError(
            f"{path}: not a readable .npz dataset (truncated or corrupt file?): {e}"
        ) from e
    if "__meta__" not in files:
        raise DatasetError(f"{path}: no __meta__ entry; not a {FORMAT} file")
    meta = parse_header(
        str(files.pop("__meta__")), f"{path}: __meta__", FORMAT, FORMAT_VERSION, DatasetError
    )
    missing = [k for k in (*ARRAY_KEYS, "episode_returns") if k not in files]
    if missing:
        raise DatasetError(f"{path}: missing arrays {missing}")
    try:
        space = space_from_dict(meta["action_space"])
        obs_shape = tuple(int(d) for d in meta["observation_shape"])
        env_id = str(meta["env_id"])
        env_options = tuple(tuple(kv) for kv in meta.get("env_options", []))
        hash(env_options)
        if any(len(kv) != 2 or not isinstance(kv[0], str) for kv in env_options):
            raise ValueError(
                f"env_options must be [name, value] pairs, got {meta.get('env_options')!r}"
            )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DatasetError(
            f"{path}: incomplete or damaged __meta__: {type(e).__name__}: {e}"
        ) from e
    try:
        family_of(env_id)
    except ValueError as e:
        raise DatasetError(f"{path}: __meta__ names {e}") from e
    files = _cast_on_load(files, space, path)
    ds = Dataset(
        **{k: files[k] for k in ARRAY_KEYS},
        episode_returns=files["episode_returns"],
        env_id=env_id,
        action_space=space,
        observation_shape=obs_shape,
        env_options=env_options,
        source=str(meta.get("source", "")),
        train_recipe=_recipe(meta, path),
    )
    validate(ds, where=str(path))
    if env is not None:
        if isinstance(env, str):
            if env != ds.env_id:
                raise DatasetError(
                    f"{path}: dataset was collected on {ds.env_id!r}, not on {env!r}"
                )
        else:
            ds.check_env(env)
    return ds


def load_demos(dataset: Dataset | str | Path, episodes: int | None = None) -> Dataset:
    """``dataset`` (a Dataset or a dataset file) cut to its first ``episodes`` episodes
    (``None``: all); asking for more than it has is a ``ConfigError`` naming ``episodes``."""
    check_int("episodes", episodes, 1, allow_none=True)
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    if episodes is None or episodes == ds.num_episodes:
        return ds
    if episodes > ds.num_episodes:
        where = "the dataset" if isinstance(dataset, Dataset) else f"dataset {str(dataset)!r}"
        raise ConfigError(
            f"episodes {episodes}, but {where} has only {ds.num_episodes} episode(s)", "episodes"
        )
    return ds.first_episodes(episodes)


def _cast_on_load(files: dict, space: ActionSpace, path: Path) -> dict:
    """Arrays in the file format's dtypes. Other float widths (float64 from a foreign tool)
    and integer widths are cast, with a warning naming the arrays; values that do not
    survive the cast (e.g. float64 beyond float32's range) are caught by :func:`validate`."""
    want = {
        "obs": np.float32,
        "next_obs": np.float32,
        "reward": np.float32,
        "episode_returns": np.float32,
        "episode_id": np.int32,
        "action": np.int32 if isinstance(space, Discrete) else np.float32,
    }
    out, cast = dict(files), []
    for name, dtype in want.items():
        x = np.asarray(out[name])
        same_kind = (
            np.issubdtype(x.dtype, np.floating)
            if dtype == np.float32
            else np.issubdtype(x.dtype, np.integer)
        )
        if same_kind and x.dtype != dtype:
            if dtype == np.int32 and x.size and (x.min() < -(2**31) or x.max() >= 2**31):
                continue  # would wrap around: left for validate() to reject by range
            with np.errstate(over="ignore"):
                out[name] = x.astype(dtype)
            cast.append(f"{name} {x.dtype}")
    if cast:
        warnings.warn(f"{path}: cast {', '.join(cast)} to the format's float32/int32", stacklevel=3)
    return out


_DTYPES = {
    "obs": np.floating,
    "next_obs": np.floating,
    "reward": np.floating,
    "terminated": np.bool_,
    "truncated": np.bool_,
    "episode_id": np.integer,
    "episode_returns": np.floating,
}


def validate(ds: Dataset, where: str = "dataset") -> Dataset:
    """Check shapes, dtypes, finiteness and action ranges; raise :class:`DatasetError`."""
    n = np.shape(ds.reward)[0] if np.ndim(ds.reward) else -1
    if n < 1:
        raise DatasetError(
            f"{where}: reward must have shape [N] with N >= 1, got {np.shape(ds.reward)}"
        )
    act_shape = ds.action_space.shape
    expected = {
        "obs": (n, *ds.observation_shape),
        "next_obs": (n, *ds.observation_shape),
        "action": (n, *act_shape),
        "reward": (n,),
        "terminated": (n,),
        "truncated": (n,),
        "episode_id": (n,),
    }
    for name, shape in expected.items():
        got = tuple(np.shape(getattr(ds, name)))
        if got != shape:
            raise DatasetError(f"{where}: {name} has shape {got}, expected {shape} for {ds.env_id}")
    for name, kind in _DTYPES.items():
        dt = np.asarray(getattr(ds, name)).dtype
        if not np.issubdtype(dt, kind):
            raise DatasetError(f"{where}: {name} has dtype {dt}, expected {kind.__name__}")
    act = np.asarray(ds.action)
    if isinstance(ds.action_space, Discrete):
        if not np.issubdtype(act.dtype, np.integer):
            raise DatasetError(f"{where}: discrete actions must be integers, got dtype {act.dtype}")
        if act.min() < 0 or act.max() >= ds.action_space.n:
            raise DatasetError(f"{where}: actions outside [0, {ds.action_space.n}) for {ds.env_id}")
    else:
        if not np.issubdtype(act.dtype, np.floating):
            raise DatasetError(f"{where}: continuous actions must be floats, got dtype {act.dtype}")
    for name in ("obs", "next_obs", "reward", "action", "episode_returns"):
        x = np.asarray(getattr(ds, name))
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            bad = int((~np.isfinite(x)).sum())
            raise DatasetError(f"{where}: {name} contains {bad} NaN/inf value(s)")
    if isinstance(ds.action_space, Box):
        lo, hi = np.asarray(ds.action_space.low), np.asarray(ds.action_space.high)
        if (act < lo - 1e-5).any() or (act > hi + 1e-5).any():
            raise DatasetError(f"{where}: actions outside the bounds [{lo}, {hi}] of {ds.env_id}")
    ep = np.asarray(ds.episode_id)
    n_ep = np.shape(ds.episode_returns)[0]
    if ep.min() < 0 or ep.max() >= n_ep or (np.diff(ep) < 0).any():
        raise DatasetError(
            f"{where}: episode_id must be sorted and in [0, {n_ep}) (episode_returns has {n_ep} entries)"
        )
    return ds
