"""Resumable-run checkpoints with orbax's ``CheckpointManager`` (atomic writes, rotation).

Typed PRNG keys are stored as their raw key data and re-wrapped on restore, since array
checkpoint formats store plain arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxbc.io import atomic_write_json


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _unwrap_keys(tree: Any) -> Any:
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _rewrap_keys(template: Any, restored: Any) -> Any:
    return jax.tree.map(
        lambda t, r: jax.random.wrap_key_data(r, impl=jax.random.key_impl(t)) if _is_key(t) else r,
        template,
        restored,
    )


def _manager(directory: Path) -> Any:
    """orbax's manager for ``directory``: steps as ``step_<9 digits>``, the newest two kept.
    In a multi-process run only process 0 uses it (:mod:`jaxbc.resumable`), so orbax is
    told that process 0 is the only one taking part (no barriers with the others)."""
    import orbax.checkpoint as ocp

    multiprocess: dict = {"create": True}
    if jax.process_count() > 1:  # orbax then leaves creating the directory to its caller
        directory.mkdir(parents=True, exist_ok=True)
        multiprocess = {
            "create": False,
            "multiprocessing_options": ocp.options.MultiprocessingOptions(
                primary_host=jax.process_index(), active_processes={jax.process_index()}
            ),
        }
    options = ocp.CheckpointManagerOptions(
        max_to_keep=2, step_prefix="step", step_format_fixed_length=9, **multiprocess
    )
    return ocp.CheckpointManager(directory.absolute(), options=options)


def _step_dir(directory: Path, step: int) -> Path:
    """Where the manager above puts ``step`` (its ``step_prefix`` and fixed length)."""
    return directory / f"step_{step:09d}"


def save_checkpoint(directory: str | Path, state: Any, step: int) -> Path:
    """Save ``state`` as ``directory/step_<step>`` and keep only the newest two (orbax's
    ``CheckpointManager``: written to a temporary directory, then renamed)."""
    import orbax.checkpoint as ocp

    directory = Path(directory).absolute()
    with _manager(directory) as mngr:
        mngr.save(step, args=ocp.args.StandardSave(_unwrap_keys(state)), force=True)
        mngr.wait_until_finished()
    return _step_dir(directory, step)


def latest_checkpoint(directory: str | Path) -> tuple[Path, int] | None:
    """Newest complete checkpoint in ``directory`` as (path, step), or None."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    with _manager(directory) as mngr:
        step = mngr.latest_step()
    return None if step is None else (_step_dir(directory, int(step)), int(step))


def restore_checkpoint(path: str | Path, template: Any) -> Any:
    """Restore a checkpoint (``directory/step_<step>``) into the structure (and key types) of
    ``template``."""
    import orbax.checkpoint as ocp

    path = Path(path)
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype), _unwrap_keys(template)
    )
    try:
        with _manager(path.parent) as mngr:
            restored = mngr.restore(int(path.name[5:]), args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # orbax raises many types for damaged files and mismatched shapes
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"cannot restore checkpoint {str(path)!r}: damaged, or written by a run of other sizes ({first})"
        ) from e
    return _rewrap_keys(template, restored)


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be resumed: damaged, or from another run."""


RUN_FILE = "run.json"


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def settings_diff(saved: dict, current: dict) -> dict[str, list]:
    """``{"config.lr": [old, new], ...}`` for every setting that differs (dotted paths)."""
    import json

    a, b = _flatten(json.loads(json.dumps(saved))), _flatten(json.loads(json.dumps(current)))
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def check_run_settings(
    directory: str | Path,
    settings: dict,
    resume: bool,
    allow_config_change: bool = False,
    what: str = "run",
) -> list[dict]:
    """Compare ``settings`` (JSON-able) with the run recorded in ``directory`` before
    anything is written there. Returns the change log to record (earlier changes plus, when
    ``allow_config_change`` lets a changed resume through, this one).

    * not ``resume`` and ``directory`` holds checkpoints: refused (a fresh run would mix its
      checkpoints with the old run's);
    * ``resume`` with other settings: refused unless ``allow_config_change``.
    """
    import json

    directory = Path(directory)
    latest = latest_checkpoint(directory) if directory.is_dir() else None
    if latest is None:
        return []
    if not resume:
        raise CheckpointError(
            f"checkpoint directory {str(directory)!r} already holds a {what} (step {latest[1]}); "
            "pass --resume to continue it, or use another (or empty) checkpoint directory"
        )
    run_file = directory / RUN_FILE
    if not run_file.exists():
        return []  # written by an older version: nothing to compare against
    try:
        saved = json.loads(run_file.read_text())
        saved_settings, changes = saved["settings"], list(saved.get("changes", []))
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(
            f"{run_file} is damaged ({e}); cannot tell which run the checkpoints belong to"
        ) from e
    diff = settings_diff(saved_settings, settings)
    if diff:
        listed = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in diff.items())
        if not allow_config_change:
            raise CheckpointError(
                f"checkpoint directory {str(directory)!r} holds a {what} with another config ({listed}); "
                "resume with the same settings, use another checkpoint directory, or pass "
                "--allow-config-change (allow_config_change=True) to continue under the new ones "
                "(the change is recorded)"
            )
        changes.append({"at_step": latest[1], "changed": diff})
    return changes


def write_run_settings(directory: str | Path, settings: dict, changes: list[dict]) -> None:
    """Record the settings (and the change log) of the run checkpointed in ``directory``."""
    atomic_write_json(Path(directory) / RUN_FILE, {"settings": settings, "changes": changes})
