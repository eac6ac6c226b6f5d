"""Minari datasets <-> jaxbc datasets (optional extra ``minari``: ``pip install "jaxbc[minari]"``).

* :func:`to_minari` writes a jaxbc :class:`~jaxbc.data.Dataset` as a local Minari dataset that
  ``minari.load_dataset(dataset_id)`` reads back (one Minari episode per jaxbc episode).
* :func:`from_minari` turns a local Minari dataset (a directory or a dataset id; nothing is
  ever downloaded) into a jaxbc dataset of a given env, after checking that it belongs to it.

Env ids: our envs whose observation and action spaces equal a Gymnasium env's are listed in
:data:`GYMNASIUM_IDS`; an exported dataset of such an env carries that Gymnasium ``env_spec``.
Every exported dataset also carries our env id, env options and episode returns under the
metadata key ``"jaxbc"``; envs without a Gymnasium counterpart (MinAtar, most Brax envs, the
toy tasks) are exported without an ``env_spec``. Import checks, in this order: our env id
in the ``"jaxbc"`` metadata, else the dataset's Gymnasium ``env_spec`` id against
:data:`GYMNASIUM_IDS`, and always the observation/action spaces; a mismatch is a
:class:`~jaxbc.data.DatasetError` naming both envs.

A Minari episode stores ``T + 1`` observations for ``T`` steps: ``obs`` then the episode's
last ``next_obs``. Our ``next_obs[t]`` (before auto-reset) can differ from ``obs[t + 1]`` in
the last bit (XLA computes the two in different fusions), so when any episode does not chain
bit-exactly the exact ``next_obs`` also goes into the step infos as ``"next_observation"``
(``T + 1`` entries like Minari's infos: entry ``t + 1`` belongs to step ``t``) and import
reads it from there; the round trip is exact either way. Datasets whose transitions do not
chain at all (``next_obs[t]`` far from ``obs[t + 1]``, e.g. HaDES' synthetic datasets)
cannot be exported.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from jaxbc.data.dataset import Dataset, DatasetError, _cast, validate
from jaxbc.envs import Box, Discrete, Env
from jaxbc.envs import make as make_env

#: Our env id -> the Gymnasium env id with the same observation and action spaces (shape,
#: bounds, time limit). Classic control is the same task; the Brax entries are
#: MuJoCo-like (same observation layout and action bounds, a different simulator and
#: reward details), so returns are not comparable across the two.
GYMNASIUM_IDS: dict[str, str] = {
    "CartPole-v1": "CartPole-v1",
    "Acrobot-v1": "Acrobot-v1",
    "MountainCar-v0": "MountainCar-v0",
    "Pendulum-v1": "Pendulum-v1",
    "MountainCarContinuous-v0": "MountainCarContinuous-v0",
    "brax/hopper": "Hopper-v5",
    "brax/halfcheetah": "HalfCheetah-v5",
    "brax/walker2d": "Walker2d-v5",
    "brax/swimmer": "Swimmer-v5",
}

#: Gymnasium ids accepted on import besides :data:`GYMNASIUM_IDS` (same spaces, older version).
_ALSO_ACCEPTED: dict[str, tuple[str, ...]] = {
    "brax/hopper": ("Hopper-v4",),
    "brax/halfcheetah": ("HalfCheetah-v4",),
    "brax/walker2d": ("Walker2d-v4",),
    "brax/swimmer": ("Swimmer-v4",),
}

META_KEY = "jaxbc"


def require_minari() -> Any:
    """Import ``minari`` or raise an ImportError that names the extra to install."""
    try:
        import minari
    except ImportError as e:
        raise ImportError(
            'Minari support needs the optional extra "minari": pip install "jaxbc[minari]" '
            f"(import failed: {e})"
        ) from e
    return minari


@contextlib.contextmanager
def _datasets_root(root: str | Path | None) -> Iterator[None]:
    """Point Minari's ``MINARI_DATASETS_PATH`` at ``root`` for the duration of the block."""
    if root is None:
        yield
        return
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(
        Path(root).expanduser().resolve()
    )  # Minari needs it absolute
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


@contextlib.contextmanager
def _removed_on_error(dataset_id: str) -> Iterator[None]:
    """Delete a half-written dataset directory if writing it fails (Minari never overwrites)."""
    from minari.storage.datasets_root_dir import get_dataset_path

    path = Path(get_dataset_path(dataset_id))
    existed = path.exists()
    try:
        yield
    except BaseException:
        if not existed and path.exists():
            shutil.rmtree(path, ignore_errors=True)
        raise


def _spaces(dataset: Dataset) -> tuple[Any, Any]:
    from gymnasium import spaces

    obs_space = spaces.Box(-np.inf, np.inf, tuple(dataset.observation_shape), np.float32)
    space = dataset.action_space
    if isinstance(space, Discrete):
        act_space: Any = spaces.Discrete(space.n)
    else:
        act_space = spaces.Box(
            np.asarray(space.low, np.float32), np.asarray(space.high, np.float32), dtype=np.float32
        )
    return obs_space, act_space


def _episode_slices(dataset: Dataset) -> list[slice]:
    ep = np.asarray(dataset.episode_id)
    ids, starts = np.unique(ep, return_index=True)
    if not np.array_equal(ids, np.arange(dataset.num_episodes)):
        raise DatasetError(
            f"episodes {sorted(set(range(dataset.num_episodes)) - set(ids.tolist()))} have no "
            "transitions; a Minari dataset cannot store empty episodes"
        )
    ends = np.append(starts[1:], ep.shape[0])
    return [slice(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def to_minari(
    dataset: Dataset,
    dataset_id: str,
    root: str | Path | None = None,
    *,
    author: str | None = None,
    description: str | None = None,
    data_format: str = "hdf5",
) -> Any:
    """Write ``dataset`` as the local Minari dataset ``dataset_id`` and return it (a ``MinariDataset``).

    Args:
        dataset: a jaxbc dataset whose transitions chain inside each episode.
        dataset_id: Minari id, ``(namespace/)name-v(version)``, e.g. ``jaxbc/cartpole/expert-v0``.
        root: Minari's datasets directory (default: ``$MINARI_DATASETS_PATH`` or
            ``~/.minari/datasets``); read it back with ``MINARI_DATASETS_PATH=root``.
        author: stored in the Minari metadata.
        description: stored in the Minari metadata (default: one line naming the source).
        data_format: Minari storage, ``"hdf5"`` (needs h5py) or ``"arrow"`` (needs pyarrow).
    """
    minari = require_minari()
    import gymnasium as gym
    from minari.data_collector.episode_buffer import EpisodeBuffer

    validate(dataset)
    obs, next_obs = np.asarray(dataset.obs), np.asarray(dataset.next_obs)
    slices = _episode_slices(dataset)
    exact = True
    for i, sl in enumerate(slices):
        o, no = obs[sl], next_obs[sl]
        if not np.allclose(no[:-1], o[1:], rtol=1e-5, atol=1e-6):
            bad = ~np.isclose(no[:-1], o[1:], rtol=1e-5, atol=1e-6).reshape(len(o) - 1, -1).all(
                axis=1
            )
            t = int(np.argmax(bad))
            raise DatasetError(
                f"episode {i}: next_obs[{t}] != obs[{t + 1}]; Minari stores one observation sequence "
                "per episode, so only datasets of consecutive transitions (collected, not synthetic) "
                "can be exported"
            )
        exact = exact and np.array_equal(no[:-1], o[1:])
    buffers = []
    for i, sl in enumerate(slices):
        o, no = obs[sl], next_obs[sl]
        infos = {} if exact else {"next_observation": np.concatenate([o[:1], no])}
        buffers.append(
            EpisodeBuffer(
                id=i,
                observations=np.concatenate([o, no[-1:]]),
                actions=np.asarray(dataset.action)[sl],
                rewards=np.asarray(dataset.reward)[sl],
                terminations=np.asarray(dataset.terminated)[sl],
                truncations=np.asarray(dataset.truncated)[sl],
                infos=infos,
            )
        )
    obs_space, act_space = _spaces(dataset)
    gym_id = GYMNASIUM_IDS.get(dataset.env_id)
    jaxbc_meta = {
        "env_id": dataset.env_id,
        "env_options": [list(kv) for kv in dataset.env_options],
        "source": dataset.source,
        "episode_returns": [float(r) for r in np.asarray(dataset.episode_returns, np.float32)],
        "gymnasium_id": gym_id,
        "next_obs_in_infos": not exact,
    }
    with _datasets_root(root), warnings.catch_warnings(), _removed_on_error(dataset_id):
        warnings.simplefilter("ignore")  # Minari warns about every metadata field left out
        mds = minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            env=None,
            observation_space=obs_space,
            action_space=act_space,
            algorithm_name=dataset.source or None,
            author=author,
            description=description
            or f"jaxbc dataset of {dataset.env_id} ({dataset.source or 'unknown source'})",
            data_format=data_format,
            jpeg_encoding=False,
        )
        extra: dict[str, Any] = {META_KEY: jaxbc_meta}
        if gym_id is not None:
            extra["env_spec"] = gym.spec(gym_id).to_json()
        mds.storage.update_metadata(extra)
    return minari.load_dataset(dataset_id) if root is None else _load_local(dataset_id, root)


def _load_local(dataset_id: str, root: str | Path) -> Any:
    minari = require_minari()
    with _datasets_root(root):
        return minari.load_dataset(dataset_id, download=False)


def open_minari(source: str | Path, root: str | Path | None = None) -> Any:
    """A local ``MinariDataset`` from a directory (the dataset's or its ``data/``) or a dataset id.

    Ids are looked up in ``root`` (default ``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``);
    nothing is downloaded.
    """
    minari = require_minari()
    path = Path(source)
    for data_dir in (path / "data", path):
        if (data_dir / "metadata.json").is_file():
            return minari.MinariDataset(data_dir)
    with _datasets_root(root):
        try:
            return minari.load_dataset(str(source), download=False)
        except FileNotFoundError as e:
            where = root or os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")
            raise FileNotFoundError(
                f"{source!r} is neither a Minari dataset directory nor a dataset id under {where} "
                "(jaxbc never downloads; fetch it with `minari download` first)"
            ) from e


def _check_env(mds: Any, env: Env) -> dict:
    """Raise DatasetError unless the Minari dataset belongs to ``env``; return our metadata."""
    meta = mds.storage.metadata
    ours = meta.get(META_KEY) or {}
    name = f"Minari dataset {mds.id!r}"
    if ours.get("env_id"):
        if ours["env_id"] != env.id:
            raise DatasetError(
                f"{name} was exported from jaxbc env {ours['env_id']!r}, not {env.id!r}"
            )
    elif mds.env_spec is not None:
        gym_id = mds.env_spec.id
        accepted = (
            (GYMNASIUM_IDS[env.id], *_ALSO_ACCEPTED.get(env.id, ()))
            if env.id in GYMNASIUM_IDS
            else ()
        )
        if not accepted:
            raise DatasetError(
                f"{name} was recorded on Gymnasium env {gym_id!r}; {env.id!r} has no Gymnasium "
                f"counterpart (mapped envs: {', '.join(sorted(GYMNASIUM_IDS))})"
            )
        if gym_id not in accepted:
            raise DatasetError(
                f"{name} was recorded on Gymnasium env {gym_id!r}, but {env.id!r} corresponds to "
                f"{' / '.join(accepted)}"
            )
    # always: the spaces
    from gymnasium import spaces

    obs_space, act_space = mds.observation_space, mds.action_space
    if not isinstance(obs_space, spaces.Box) or tuple(obs_space.shape) != tuple(
        env.observation_shape
    ):
        raise DatasetError(
            f"{name}: observation space {obs_space} does not fit {env.id} (obs shape {env.observation_shape})"
        )
    space = env.action_space
    if isinstance(space, Discrete):
        ok = (
            isinstance(act_space, spaces.Discrete)
            and int(act_space.n) == space.n
            and int(act_space.start) == 0
        )
    else:
        ok = (
            isinstance(act_space, spaces.Box)
            and tuple(act_space.shape) == space.shape
            and np.allclose(act_space.low, space.low)
            and np.allclose(act_space.high, space.high)
        )
    if not ok:
        raise DatasetError(
            f"{name}: action space {act_space} does not fit {env.id} (actions {space})"
        )
    return ours


def from_minari(source: Any, env: Env | str, root: str | Path | None = None) -> Dataset:
    """Convert a local Minari dataset into a jaxbc :class:`~jaxbc.data.Dataset` of ``env``.

    Args:
        source: a ``MinariDataset``, a dataset directory or a local dataset id (see :func:`open_minari`).
        env: the jaxbc env (or its id) the data must belong to; checked as described in the
            module docstring, a mismatch raises :class:`~jaxbc.data.DatasetError`.
        root: Minari's datasets directory for ids (default ``$MINARI_DATASETS_PATH``).

    Observations are cast to float32, discrete actions to int32; ``truncated`` is cleared
    where ``terminated`` is set (our convention). Episode returns come from the ``"jaxbc"``
    metadata when present (exact), else are summed from the rewards.
    """
    require_minari()
    if isinstance(env, str):
        env = make_env(env)
    mds = source if hasattr(source, "iterate_episodes") else open_minari(source, root)
    ours = _check_env(mds, env)
    parts: dict[str, list] = {
        k: []
        for k in ("obs", "next_obs", "action", "reward", "terminated", "truncated", "episode_id")
    }
    returns: list[Any] = []
    for ep in mds.iterate_episodes():
        n = len(ep.rewards)
        if n == 0:
            continue
        o = np.asarray(ep.observations)
        parts["obs"].append(o[:-1])
        exact_next = (
            (ep.infos or {}).get("next_observation") if ours.get("next_obs_in_infos") else None
        )
        parts["next_obs"].append(o[1:] if exact_next is None else np.asarray(exact_next)[1:])
        parts["action"].append(np.asarray(ep.actions).reshape(n, *env.action_space.shape))
        parts["reward"].append(np.asarray(ep.rewards, np.float32))
        term = np.asarray(ep.terminations, bool)
        parts["terminated"].append(term)
        parts["truncated"].append(np.asarray(ep.truncations, bool) & ~term)
        parts["episode_id"].append(np.full(n, len(returns), np.int32))
        returns.append(np.asarray(ep.rewards, np.float32).sum(dtype=np.float32))
    if not returns:
        raise DatasetError(f"Minari dataset {mds.id!r} has no steps")
    stored = ours.get("episode_returns")
    if stored is not None and len(stored) == len(returns):
        returns = stored
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    if isinstance(env.action_space, Box):
        arrays["action"] = np.clip(arrays["action"], env.action_space.low, env.action_space.high)
    arrays = _cast(arrays, env.action_space)
    ds = Dataset(
        **arrays,  # type: ignore[arg-type]  # the arrays are named fields
        episode_returns=np.asarray(returns, np.float32),
        env_id=env.id,
        action_space=env.action_space,
        observation_shape=tuple(env.observation_shape),
        env_options=tuple(tuple(kv) for kv in ours.get("env_options", [])) or tuple(env.options),
        source=ours.get("source") or f"minari:{mds.id}",
    )
    return validate(ds, where=f"Minari dataset {mds.id!r}")
