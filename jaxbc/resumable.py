"""The one resumable chunk driver: run ``total`` steps in compiled chunks, checkpoint after
each, resume from the newest checkpoint.

PPO experts (:mod:`jaxbc.experts.train`) and HaDES runs (:mod:`jaxbc.hades.run`) both drive
their jitted programs through :func:`run_chunks`. A run's state carries its PRNG key, so a
resumed run replays exactly the programs an unbroken one executes and ends in the same
state bit for bit.

Multi-process runs (:mod:`jaxbc.distributed`): every process steps; process 0 alone checks
the directory, restores (broadcasting the state to the others) and writes checkpoints, the
history and the run's settings. The directory records the process layout; a resume under
another one (process or device count) continues from the same state and is recorded as a
change in ``run.json`` (sums split over devices may round differently; see the README's
"Multi-host" section).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
from tqdm.auto import tqdm

from jaxbc.checkpoint import (
    RUN_FILE,
    check_run_settings,
    latest_checkpoint,
    restore_checkpoint,
    save_checkpoint,
    settings_diff,
    write_run_settings,
)
from jaxbc.distributed import (
    broadcast_from_primary,
    check_same_settings,
    host_local,
    is_primary,
    layout,
    on_primary,
    sync,
)
from jaxbc.io import atomic_write_json


@dataclass
class Chunked:
    """Where a driven run ended."""

    state: Any
    done: int  # steps completed (== total)
    resumed_from: int  # steps restored from a checkpoint (0: fresh start)
    changes: list[dict] = field(default_factory=list)  # settings changed on resume
    history: dict[str, list] = field(default_factory=dict)


def run_chunks(
    init: Callable[[], Any],
    total: int,
    chunk: int,
    step: Callable[[Any, int], tuple[Any, Any]],
    *,
    on_chunk: Callable[[int, int, Any, dict[str, list]], dict | None] | None = None,
    checkpoint_dir: str | Path | None = None,
    settings: dict | None = None,
    resume: bool = False,
    allow_config_change: bool = False,
    what: str = "run",
    history: dict[str, list] | None = None,
    history_file: str | None = None,
    before_restore: Callable[[Path], None] | None = None,
    files: dict[str, Any] | None = None,
    progress: bool = True,
    desc: str = "",
    unit: str = "step",
) -> Chunked:
    """Drive ``step(state, n) -> (state, out)`` for ``total`` steps in chunks of ``chunk``,
    from ``init()`` (called after the directory's checks; also the template of a restore).

    * ``on_chunk(done_before, n, out, history)`` runs after every chunk on every process
      (grow ``history`` there: lists with one entry per step); it may return the progress
      bar's postfix.
    * ``checkpoint_dir``: after every chunk the primary writes ``history`` (to
      ``history_file``, first: it may run ahead of the newest checkpoint, never behind) and
      the state. ``settings`` (JSON-able, plus the process layout) are checked against the
      directory's record before anything is written or compiled
      (:func:`jaxbc.checkpoint.check_run_settings`), then recorded with ``files``
      (name -> JSON, written once at the start).
    * ``resume``: continue from the newest checkpoint (a fresh start if there is none);
      ``before_restore(directory)`` may refuse it first. A restored history keeps the
      entries of the restored steps (missing keys: NaN).

    Every process must be given the same ``settings`` (checked through one all-gather)."""
    if total < 1:
        raise ValueError(f"total must be >= 1, got {total}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir to resume from")
    directory = Path(checkpoint_dir) if checkpoint_dir is not None else None
    history = {k: list(v) for k, v in (history or {}).items()}
    check_same_settings(settings or {}, what)
    all_settings = {**(settings or {}), PROCESSES: layout().to_dict()}
    changes: list[dict] = []
    if directory is not None:  # before any compile or write: a refused resume leaves it untouched
        changes = on_primary(
            _check_settings, directory, all_settings, resume, allow_config_change, what
        )
    state = init()
    done = 0
    if directory is not None and resume:
        found = on_primary(_restore, directory, history, history_file, before_restore)
        if found is not None:
            done, history = found["done"], found["history"]
            state = _restore_state(Path(found["path"]), state)
            if progress and is_primary():
                print(f"resumed from {directory} at {unit} {done}/{total}", file=sys.stderr)
        elif progress and is_primary():
            print(f"no checkpoint in {directory} yet: starting a fresh run there", file=sys.stderr)
    if directory is not None and is_primary():
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in (files or {}).items():
            atomic_write_json(directory / name, content)
        write_run_settings(directory, all_settings, changes)
    resumed_from = done
    with tqdm(
        total=total,
        initial=min(done, total),
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not (progress and is_primary()),
    ) as bar:
        while done < total:
            n = min(chunk, total - done)
            state, out = step(state, n)
            postfix = on_chunk(done, n, out, history) if on_chunk is not None else None
            done += n
            if directory is not None:
                save(directory, state, done, history, history_file)
            bar.update(n)
            if postfix:
                bar.set_postfix(**postfix)
    sync("run_chunks: the primary has written the last checkpoint")
    return Chunked(state, done, resumed_from, changes, history)


def save(directory: Path, state: Any, step: int, history: dict, history_file: str | None) -> None:
    """Checkpoint ``state`` at ``step`` (and ``history``): written by the primary only."""
    # numpy leaves (typed keys as their key data, as checkpoints store them): orbax writes
    # them from one process; gathering is a collective where the state spans processes
    state = host_local(jax.tree.map(_key_data, state))
    if not is_primary():
        return
    if history_file is not None:
        atomic_write_json(directory / history_file, history)
    save_checkpoint(directory, state, step)


PROCESSES = "processes"  # the settings' key of the process layout


def _check_settings(
    directory: Path, settings: dict, resume: bool, allow_config_change: bool, what: str
) -> list[dict]:
    """(primary) :func:`check_run_settings`, the process layout apart: a resume under
    another layout is allowed and recorded as a change (the state is the same on every
    process; only the rounding of partitioned sums may differ, see the README)."""
    saved_layout = None
    run_file = directory / RUN_FILE
    if resume and run_file.exists():
        try:
            saved_layout = json.loads(run_file.read_text())["settings"].get(PROCESSES)
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            saved_layout = None  # check_run_settings names the damage
    current = settings[PROCESSES]
    compared = {**settings, PROCESSES: saved_layout if saved_layout is not None else current}
    changes = check_run_settings(directory, compared, resume, allow_config_change, what)
    if saved_layout is not None and saved_layout != current:
        latest = latest_checkpoint(directory)
        changed = settings_diff({PROCESSES: saved_layout}, {PROCESSES: current})
        changes.append({"at_step": latest[1] if latest else 0, "changed": changed})
    return changes


def _key_data(x: Any) -> Any:
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(x)
    return x


def _restore(
    directory: Path,
    history: dict[str, list],
    history_file: str | None,
    before_restore: Callable[[Path], None] | None,
) -> dict | None:
    """(primary) The newest checkpoint's step and history; None if there is none."""
    latest = latest_checkpoint(directory)
    if latest is None:
        return None
    if before_restore is not None:
        before_restore(directory)
    ckpt, step = latest
    kept = {k: [] for k in history}
    path = directory / history_file if history_file is not None else None
    if path is not None and path.exists():
        saved = json.loads(path.read_text())
        rows = min(step, len(next(iter(saved.values()), [])))
        kept = {k: list(saved.get(k, [float("nan")] * rows))[:rows] for k in history}
    return {"done": step, "history": kept, "path": str(ckpt)}


def _restore_state(path: Path, template: Any) -> Any:
    """The state checkpointed at ``path``, read by the primary and sent to every process
    (a damaged checkpoint fails every process)."""
    restored: list = []

    def read() -> None:
        restored.append(restore_checkpoint(path, template))

    on_primary(read)
    return broadcast_from_primary(restored[0] if restored else template)
