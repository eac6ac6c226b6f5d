"""What every ``jaxbc`` command shares: the ``--json`` and ``--force`` flags, how results and
errors are printed, and how a library error that names an argument reads as its flag.

A module of its own so that command modules (``jaxbc.cli``, ``jaxbc.hades.cli``) can import
it without importing each other. The checks of output paths and log directories that run
before any work live with the library functions that write them (:mod:`jaxbc.io`,
:mod:`jaxbc.logs`).
"""

from __future__ import annotations

import inspect
import json as jsonlib
import math
from collections.abc import Callable
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
    print(dumps(result) if as_json else text)


def error_json(exc: BaseException, message: str | None = None) -> str:
    """The ``--json`` error line: ``{"error": {"type": ..., "message": ...}}``."""
    text = message if message is not None else str(exc)
    return dumps({"error": {"type": type(exc).__name__, "message": text}})


def library_args(flags: dict[str, Any], *cli_only: str) -> dict[str, Any]:
    """A command's flags (its ``locals()`` before anything else is bound) as keyword
    arguments of the library function it calls, which takes the same names; ``json`` and
    the ``cli_only`` flags (handled by the command itself) are left out."""
    return {k: v for k, v in flags.items() if k not in ("json", *cli_only)}


def flag_message(exc: BaseException, command: Callable | None) -> str:
    """The message of ``exc``, its leading argument name spelled as the flag when it names
    one of ``command``'s parameters: library functions take the flags' names as arguments
    and raise :class:`jaxbc.validation.ConfigError` (``field``) starting with that name, so
    ``members must be ...`` reads ``--members must be ...`` on the command line."""
    field, text = getattr(exc, "field", ""), str(exc)
    params = inspect.signature(command).parameters if command is not None else {}
    if field in params and text.startswith(field):
        return "--" + field.replace("_", "-") + text[len(field) :]
    return text


def reject(flag: str, why: str) -> None:
    """Refuse a flag that would have no effect (``why`` says when it applies)."""
    raise UsageError(f"{flag} {why}")


def table(rows: list[dict], columns: list[str]) -> str:
    """A plain-text table of ``rows`` (dicts) with the given ``columns``."""

    def fmt(v):
        return f"{v:.2f}" if isinstance(v, float) else "-" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)
