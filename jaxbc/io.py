"""Small side-effect helpers: atomic file writes, the checks of output paths that run
before any work, and the persistent compilation cache.

Kept here: the standard library has no atomic replace-write (``tempfile`` + ``os.replace``
is the idiom) and ``csv``/``json`` do the formatting; a dependency would add nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jaxbc.validation import ConfigError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` so readers see the old file or the whole new one, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def resumable(
    path: str | os.PathLike, settings: Any, compute: Callable[[], Any], resume: bool
) -> tuple[Any, bool]:
    """``(compute(), False)``, saved atomically to ``path`` with ``settings``; with ``resume``,
    ``(saved result, True)`` when ``path`` holds one made with equal settings. How a long
    study that is killed continues where it stopped. Results and settings must be JSON."""
    if resume:
        found, result = saved_result(path, settings)
        if found:
            return result, True
    result = compute()
    save_result(path, settings, result)
    return result, False


def saved_result(path: str | os.PathLike, settings: Any) -> tuple[bool, Any]:
    """``(True, result)`` when ``path`` holds a :func:`resumable` result saved with equal
    ``settings``, else ``(False, None)``."""
    path = Path(path)
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("settings") == json.loads(json.dumps(settings)):  # tuples -> lists
            return True, saved["result"]
    return False, None


def save_result(path: str | os.PathLike, settings: Any, result: Any) -> Path:
    """Save a :func:`resumable` result with its ``settings``, atomically."""
    return atomic_write_json(path, {"settings": settings, "result": result})


def resumable_timed(
    path: str | os.PathLike, settings: Any, compute: Callable[[], dict], resume: bool
) -> tuple[dict, bool]:
    """:func:`resumable` for a ``compute`` returning a dict, with its wall time added as
    ``"wall_time_s"`` (a reused result keeps the time it took when it ran), so a resumed
    study still reports its compute time."""

    def timed() -> dict:
        t0 = time.time()
        return {**compute(), "wall_time_s": time.time() - t0}

    return resumable(path, settings, timed, resume)


def atomic_write_csv(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Rows of dicts (the first row's keys are the columns) as a CSV file, atomically."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_bytes(path, buf.getvalue().encode())


def _writable_parent(path: Path, name: str) -> Path:
    """The nearest existing ancestor of ``path``; it must be a writable directory."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(
            f"{name} cannot be written at {str(path)!r}: {str(parent)!r} is not a directory", name
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{name} cannot be written at {str(path)!r}: {str(parent)!r} is not writable", name
        )
    return parent


def check_output(
    path: str | os.PathLike | None,
    force: bool = False,
    name: str = "out",
    files: tuple[str, ...] | None = None,
) -> None:
    """Before any work: ``path`` must be creatable and is not overwritten unless ``force``.
    ``files``: ``path`` is a directory and these are the names written into it (only they
    count as a collision); ``None``: ``path`` is one file. Raises :class:`ConfigError` whose
    message starts with ``name`` (the argument that holds the path)."""
    if path is None:
        return
    path = Path(path)
    if files is not None:
        if path.exists() and not path.is_dir():
            raise ConfigError(
                f"{name} {str(path)!r} is a file, but a directory is written there", name
            )
        taken = [f for f in files if (path / f).exists()]
        if taken and not force:
            raise ConfigError(
                f"{name} {str(path)!r} already holds {', '.join(taken)}; overwrite with "
                "--force (force=True) or choose another path",
                name,
            )
        target = path / files[0] if path.is_dir() else path
    else:
        if path.is_dir():
            raise ConfigError(f"{name} {str(path)!r} is a directory, expected a file path", name)
        if path.exists() and not force:
            raise ConfigError(
                f"{name} {str(path)!r} already exists; overwrite with --force (force=True) "
                "or choose another path",
                name,
            )
        target = path
    _writable_parent(target, name)


def check_directory(path: str | os.PathLike | None, name: str) -> None:
    """A directory written into as a run goes (checkpoints, logs): if it exists it must be a
    writable directory, else it must be creatable."""
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{name} {str(path)!r} is a file, not a directory", name)
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{name} {str(path)!r} is not writable", name)
    _writable_parent(path / "x", name)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
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


def enable_compilation_cache(path: str | os.PathLike | None = None) -> None:
    """Turn on JAX's persistent compilation cache (``$JAXBC_CACHE_DIR`` or ``~/.cache/jaxbc/xla``)."""
    import jax

    path = path or os.environ.get("JAXBC_CACHE_DIR") or Path.home() / ".cache" / "jaxbc" / "xla"
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def command_line(prog: str = "jaxbc") -> str:
    """This process's command line as a user would retype it, recorded with results."""
    import shlex
    import sys

    return " ".join([prog, *(shlex.quote(a) for a in sys.argv[1:])])


def machine_description() -> str:
    """A short human-readable name of the machine, recorded with results."""
    import platform

    import jax

    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return f"CPU ({os.cpu_count()} cores, {platform.machine()})"
    return f"{dev.device_kind} x{jax.device_count()}"


def best_time(fn: Any, *args: Any, repeats: int = 3) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn(*args)`` after one warm-up call
    (compilation); results are blocked on, so device work is timed too."""
    import jax

    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def parse_header(
    text: str,
    where: str,
    fmt: str,
    version: int,
    error: type[Exception] = ValueError,
    what: str = "JSON header",
) -> dict:
    """A file's JSON header as a dict, checked to be of format ``fmt`` version ``version``
    (the one check of datasets' ``__meta__`` and artifacts' descriptions); ``error`` names
    what is wrong and where."""
    try:
        head = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as e:
        raise error(f"{where} is not a valid {what}: {e}") from e
    if not isinstance(head, dict):
        raise error(f"{where}: must hold a JSON object, got {type(head).__name__}")
    if head.get("format") != fmt or head.get("format_version") != version:
        raise error(
            f"{where}: format {head.get('format')!r} v{head.get('format_version')} is not "
            f"{fmt!r} v{version}"
        )
    return head
