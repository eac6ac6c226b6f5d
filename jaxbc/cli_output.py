"""What every ``jaxbc`` command shares: the ``--json`` and ``--force`` flags, how results and
errors are printed, and the checks of output paths that run before any work starts.

A module of its own so that command modules (``jaxbc.cli``, ``jaxbc.hades.cli``) can import
it without importing each other.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import tyro

JsonFlag = Annotated[
    bool, tyro.conf.arg(name="json", help="print one JSON object as the last line")
]
ForceFlag = Annotated[bool, tyro.conf.arg(name="force", help="overwrite an existing output")]


class UsageError(ValueError):
    """A command line that cannot do what it asks (a flag that does not apply, a bad path)."""


def jsonable(obj: Any) -> Any:
    """``obj`` with NaN/inf floats as ``None`` (strict JSON has no NaN) and numpy scalars as
    Python numbers."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bool | int | str) or obj is None:
        return obj
    if getattr(obj, "ndim", 0) and hasattr(obj, "tolist"):
        return jsonable(obj.tolist())
    try:
        f = float(obj)
    except (TypeError, ValueError):
        return str(obj)
    if isinstance(obj, int) or (hasattr(obj, "dtype") and "int" in str(obj.dtype)):
        return int(obj)
    return f if math.isfinite(f) else None


def dumps(obj: Any) -> str:
    return jsonlib.dumps(jsonable(obj), allow_nan=False)


def emit(result: dict[str, Any], as_json: bool, text: str) -> None:
    """Print ``result`` as one JSON line (``--json``) or ``text`` for people."""
    if as_json:
        print(dumps(result))
    else:
        print(text)


def error_json(exc: BaseException, message: str | None = None) -> str:
    """The ``--json`` error line: ``{"error": {"type": ..., "message": ...}}``."""
    return dumps(
        {
            "error": {
                "type": type(exc).__name__,
                "message": message if message is not None else str(exc),
            }
        }
    )


def reject(flag: str, why: str) -> None:
    """Refuse a flag that would have no effect (``why`` says when it applies)."""
    raise UsageError(f"{flag} {why}")


def _writable_parent(path: Path) -> Path:
    """The nearest existing ancestor of ``path``; it must be a writable directory."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"cannot write {str(path)!r}: {str(parent)!r} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {str(path)!r}: directory {str(parent)!r} is not writable")
    return parent


def check_output(
    path: Path | str | None,
    force: bool = False,
    flag: str = "--out",
    files: tuple[str, ...] | None = None,
) -> None:
    """Before any work: ``path`` must be creatable and must not be overwritten unless
    ``force``. ``files``: ``path`` is a directory and these are the names the command writes
    into it (only they count as a collision); ``None``: ``path`` is one file. Raises
    :class:`UsageError` naming the path."""
    if path is None:
        return
    path = Path(path)
    if files is not None:
        if path.exists() and not path.is_dir():
            raise UsageError(
                f"{flag} {str(path)!r} is a file, but this command writes a directory there"
            )
        taken = [f for f in files if (path / f).exists()]
        if taken and not force:
            raise UsageError(
                f"{flag} {str(path)!r} already holds {', '.join(taken)}; pass --force to overwrite or choose another path"
            )
        target = path / files[0] if path.is_dir() else path
    else:
        if path.is_dir():
            raise UsageError(f"{flag} {str(path)!r} is a directory, expected a file path")
        if path.exists() and not force:
            raise UsageError(
                f"{flag} {str(path)!r} already exists; pass --force to overwrite or choose another path"
            )
        target = path
    parent = _writable_parent(target)
    if target.parent.exists() and not os.access(target.parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {str(path)!r}: directory {str(parent)!r} is not writable")


def check_directory(path: Path | str | None, flag: str) -> None:
    """A directory a command writes into as it goes (checkpoints): if it exists it must be a
    writable directory, else it must be creatable."""
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {str(path)!r} is a file, not a directory")
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {str(path)!r} is not writable")
    _writable_parent(path / "x")


@contextlib.contextmanager
def atomic_directory(path: Path | str) -> Iterator[Path]:
    """Write a directory's files into a temporary sibling, then move each into ``path`` with
    one rename: nothing appears unless the whole block succeeds, and every file is whole.
    Other entries of ``path`` (a checkpoint folder, say) are left alone."""
    path = Path(path)
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path, prefix=".partial.", suffix=".tmp"))
    ok = False
    try:
        yield tmp
        for entry in sorted(tmp.iterdir()):
            target = path / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
        ok = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not ok and created and not any(path.iterdir()):
            path.rmdir()


def table(rows: list[dict], columns: list[str]) -> str:
    """A plain-text table of ``rows`` (dicts) with the given ``columns``."""

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.2f}"
        return "-" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [
        max(len(c), *(len(row[i]) for row in cells)) if cells else len(c)
        for i, c in enumerate(columns)
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def check_logs(
    log_dir: Path | str | None,
    wandb_project: str | None,
    force: bool = False,
    append: bool = False,
) -> None:
    """Before any work: ``--log-dir`` must be a writable directory whose ``metrics.csv`` is
    not overwritten without ``force`` (``append``: a resumed run continues it), and
    ``--wandb-project`` needs a non-empty name and the wandb package."""
    from jaxbc.logs import CSV_FILE, require_wandb

    if log_dir is not None:
        check_directory(log_dir, "--log-dir")
        if not append:
            check_output(log_dir, force, "--log-dir", files=(CSV_FILE,))
    if wandb_project is not None:
        if not wandb_project.strip():
            raise UsageError("--wandb-project needs a project name")
        try:
            require_wandb()
        except ImportError as e:
            raise UsageError(f"--wandb-project: {e}") from None


def open_logs(
    log_dir: Path | str | None,
    wandb_project: str | None,
    config: dict[str, Any] | None = None,
    bar: Any = None,
    append: bool = False,
) -> Any:
    """One logger for a command: the progress ``bar`` (a logger or ``None``), then CSV and
    TensorBoard in ``log_dir`` and a wandb run; ``None`` when nothing is asked for (the
    compiled program then has no callback)."""
    from jaxbc.logs import MultiLogger, open_loggers

    loggers = ([bar] if bar is not None else []) + open_loggers(
        log_dir, wandb_project, config, append
    )
    return MultiLogger(*loggers) if loggers else None
