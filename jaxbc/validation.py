"""Generic checks for config fields, used by every config's ``__post_init__`` (each config
validates itself beside its definition) and by the CLI. A leaf: it imports nothing of jaxbc.

Each helper raises :class:`ConfigError` (a ``ValueError``) whose message names the field
(``BCConfig.lr``) and the allowed range. Values that are JAX tracers (a hyperparameter
vmapped or traced inside ``jit``) are not concrete and are skipped: only Python and NumPy
numbers (and concrete arrays) are checked.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import jax
import numpy as np


class ConfigError(ValueError):
    """A config field (or command-line flag) outside its allowed range; ``field`` names it."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def concrete(value: Any) -> Any:
    """``value`` as a Python number if it is concrete, else ``None`` (JAX tracers, objects)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Number):
        return value
    if isinstance(value, jax.core.Tracer):
        return None
    try:  # numpy / concrete jax scalars
        arr = np.asarray(value)
        if arr.ndim == 0 and np.issubdtype(arr.dtype, np.number):
            return arr.item()
    except Exception:
        return None
    return None


def _range_text(lo, hi, lo_open: bool, hi_open: bool) -> str:
    lo, hi = (None if x is None else f"{x:g}" for x in (lo, hi))
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi}"
    return "finite"


def check_int(
    name: str, value: Any, lo: int | None = None, hi: int | None = None, allow_none: bool = False
) -> None:
    """``value`` must be an integer in ``[lo, hi]`` (``None`` allowed with ``allow_none``)."""
    if value is None and allow_none:
        return
    if _is_tracer(value):
        return
    v = concrete(value)
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise ConfigError(
            f"{name} must be an integer {_range_text(lo, hi, False, False)}, got {value!r}", name
        )
    v = int(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ConfigError(
            f"{name} must be an integer {_range_text(lo, hi, False, False)}, got {v}", name
        )


def check_float(
    name: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    allow_none: bool = False,
) -> None:
    """``value`` must be a finite number in the range (``lo_open``: strictly above ``lo``)."""
    if value is None and allow_none:
        return
    if _is_tracer(value):
        return
    v = concrete(value)
    rng = _range_text(lo, hi, lo_open, hi_open)
    what = f"a finite number {rng}" if rng != "finite" else "a finite number"
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        raise ConfigError(f"{name} must be {what}, got {value!r}", name)
    v = float(v)
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ConfigError(f"{name} must be {what}, got {v}", name)
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ConfigError(f"{name} must be {what}, got {v}", name)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(
            f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}", name
        )


def check_sizes(name: str, value: Any, allow_empty: bool = True) -> None:
    """A tuple of layer widths, each an integer >= 1."""
    try:
        sizes = tuple(value)
    except TypeError:
        raise ConfigError(f"{name} must be a tuple of integers >= 1, got {value!r}", name) from None
    if not sizes and not allow_empty:
        raise ConfigError(
            f"{name} must name at least one layer width (integers >= 1), got ()", name
        )
    for s in sizes:
        if isinstance(s, bool) or not isinstance(concrete(s), numbers.Integral) or concrete(s) < 1:
            raise ConfigError(
                f"{name} must be a tuple of integers >= 1, got {tuple(value)!r}", name
            )


def _is_tracer(value: Any) -> bool:
    return isinstance(value, jax.core.Tracer)


def checkable(value: Any) -> bool:
    """True if ``value`` should be range-checked: a concrete number, not a tracer or an
    arbitrary object (pytree machinery may rebuild configs with placeholders)."""
    if _is_tracer(value):
        return False
    return concrete(value) is not None or value is None or isinstance(value, str)
