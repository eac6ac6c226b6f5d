"""``jaxbc import-minari`` / ``jaxbc export-minari``: local Minari datasets <-> dataset files."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import tyro

from jaxbc.cli_output import JsonFlag, UsageError, emit


def _minari_io() -> ModuleType:
    from jaxbc.data import minari_io

    try:
        minari_io.require_minari()
    except ImportError as e:
        raise UsageError(str(e)) from None
    return minari_io


def import_minari(
    source: tyro.conf.Positional[str],
    env: str,
    out: Path,
    root: Path | None = None,
    json: JsonFlag = False,
) -> None:
    """Convert a local Minari dataset into a jaxbc dataset file (.npz); never downloads.

    The dataset must belong to --env: its jaxbc env id (datasets written by export-minari)
    or its Gymnasium env id (see the README's mapping) and its spaces are checked.

    Args:
        source: a Minari dataset directory, or a dataset id under --root.
        env: the jaxbc environment id the data belongs to.
        out: output dataset file (.npz).
        root: Minari's datasets directory (default: $MINARI_DATASETS_PATH or ~/.minari/datasets).
    """
    from jaxbc.data import save_dataset

    ds = _minari_io().from_minari(source, env, root=root)
    path = save_dataset(ds, out)
    result: dict[str, Any] = {"source": str(source), "env": ds.env_id, "out": str(path)}
    result.update(episodes=ds.num_episodes, transitions=ds.size)
    result.update(mean_return=float(ds.episode_returns.mean()))
    text = f"wrote {ds.size} transitions ({ds.num_episodes} episodes) of {ds.env_id} to {path}"
    emit(result, json, text)


def export_minari(
    dataset: tyro.conf.Positional[Path],
    out: str,
    root: Path | None = None,
    author: str | None = None,
    description: str | None = None,
    json: JsonFlag = False,
) -> None:
    """Write a jaxbc dataset file as a local Minari dataset that minari.load_dataset(out) reads.

    Envs with a Gymnasium counterpart get its env_spec; every dataset keeps our env id,
    env options and episode returns in the Minari metadata under "jaxbc".

    Args:
        dataset: dataset file (.npz) from `jaxbc collect` (consecutive transitions).
        out: the Minari dataset id, (namespace/)name-v(version), e.g. jaxbc/cartpole/expert-v0.
        root: Minari's datasets directory (default: $MINARI_DATASETS_PATH or ~/.minari/datasets).
        author: author stored in the Minari metadata.
        description: description stored in the Minari metadata.
    """
    mio = _minari_io()
    from jaxbc.data import load_dataset

    ds = load_dataset(dataset)
    mds = mio.to_minari(ds, out, root=root, author=author, description=description)
    spec = mds.env_spec.id if mds.env_spec is not None else None
    path = str(Path(mds.storage.data_path).parent)
    result: dict[str, Any] = {"dataset": str(dataset), "env": ds.env_id, "minari_id": out}
    result["path"] = path
    result.update(gymnasium_env=spec, episodes=int(mds.total_episodes))
    result.update(transitions=int(mds.total_steps))
    text = (
        f"wrote Minari dataset {out!r} ({result['episodes']} episodes, {result['transitions']} "
        f"steps, env_spec {spec or 'none'}) to {path}"
    )
    emit(result, json, text)
