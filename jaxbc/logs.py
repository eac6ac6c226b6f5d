"""Live logs of runs that are compiled whole: loggers fed from inside ``jit``/``lax.scan``.

A :class:`Logger` is anything with ``log(step, metrics)`` and ``close()``. Its bound
``log`` is the ``progress`` hook of :func:`jaxbc.training.fit` (and of ``make_bc_train``,
``make_dagger``, ``make_ppo``): the compiled program calls it through ``jax.debug.callback``
every N steps, so metrics reach the terminal, a CSV file, TensorBoard or Weights & Biases
while the run is still on the device. Without a hook nothing is added to the program.

    logger = MultiLogger(CSVLogger("runs/bc/metrics.csv"), TensorBoardLogger("runs/bc"))
    train = make_bc_train(config, progress=logger.log, progress_every=100)
    result = jax.jit(train)(key, dataset)
    logger.close()

Host I/O happens only here, in the callbacks.
"""

from __future__ import annotations

import contextlib
import csv
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, TextIO

import jax
import numpy as np

from jaxbc.io import check_directory, check_output
from jaxbc.validation import ConfigError

CSV_FILE = "metrics.csv"


class Logger(Protocol):
    """Receives ``metrics`` (name -> float) recorded at ``step``; ``close`` flushes."""

    def log(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


def scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Metrics as Python floats; an array (an ensemble's per-member values) is averaged, so
    every logger sees one number per name."""
    return {str(k): float(np.mean(np.asarray(v))) for k, v in metrics.items()}


def host_callback(progress: Any) -> Any:
    """Wrap ``progress(step, metrics)`` for ``jax.debug.callback``: the device hands over
    arrays, loggers get an ``int`` step and float metrics."""

    def call(step: Any, metrics: Mapping[str, Any]) -> None:
        progress(int(np.asarray(step)), scalars(metrics))

    return call


class ProgressLogger:
    """A tqdm bar on stderr moved to ``step``, with the latest loss as its postfix."""

    def __init__(self, total: int, desc: str = "", unit: str = "step", file: TextIO | None = None):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, unit=unit, file=file or sys.stderr, mininterval=0.5)

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        self.bar.update(max(0, step - self.bar.n))  # vmapped runs report a step once per run
        shown = {k: f"{v:.4g}" for k, v in metrics.items() if k in ("loss", "return", "best")}
        if shown:
            self.bar.set_postfix(shown, refresh=False)

    def close(self) -> None:
        self.bar.close()


class CSVLogger:
    """One row per call (``step`` then the metrics); a row leaves the metrics it lacks empty,
    and a metric first seen later widens the header (the file is rewritten). Each row is
    written and flushed whole, so a reader (or a killed run) sees complete lines.
    ``append``: continue an existing file (a resumed run) under its header."""

    def __init__(self, path: str | Path, append: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.columns: list[str] | None = None
        if append and self.path.exists() and self.path.stat().st_size:
            with self.path.open(newline="") as f:
                self.columns = next(csv.reader(f), None)
        else:
            self.path.write_text("")
        self.file = self.path.open("a", newline="")

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        row = {"step": step, **metrics}
        if self.columns is None:
            self.columns = list(row)
            csv.writer(self.file).writerow(self.columns)
        elif any(k not in self.columns for k in row):
            self._widen([k for k in row if k not in self.columns])
        csv.writer(self.file).writerow([row.get(c, "") for c in self.columns])
        self.file.flush()

    def _widen(self, new: list[str]) -> None:
        """A metric first seen later (``eval_return`` after the training rows): rewrite the
        file under the wider header, earlier rows leaving it empty."""
        assert self.columns is not None
        self.file.close()
        with self.path.open(newline="") as f:
            rows = list(csv.reader(f))[1:]
        self.columns = self.columns + new
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with tmp.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(self.columns)
            w.writerows(r + [""] * len(new) for r in rows)
        tmp.replace(self.path)
        self.file = self.path.open("a", newline="")

    def close(self) -> None:
        self.file.close()


class TensorBoardLogger:
    """Scalars into a TensorBoard event file in ``log_dir`` (``tensorboard --logdir``)."""

    def __init__(self, log_dir: str | Path, flush_secs: int = 10):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(log_dir), flush_secs=flush_secs)

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, step)

    def close(self) -> None:
        self.writer.close()


def require_wandb() -> Any:
    """The ``wandb`` module, or an ImportError that says how to install it."""
    try:
        import wandb
    except ImportError:
        raise ImportError(
            "Weights & Biases logging needs the wandb package: pip install 'jaxbc[wandb]'"
        ) from None
    return wandb


class WandbLogger:
    """A Weights & Biases run (``wandb.init(project=..., **init)``); the package is imported
    only here, so it stays an optional extra."""

    def __init__(self, project: str, config: Mapping[str, Any] | None = None, **init: Any):
        self.run = require_wandb().init(project=project, config=dict(config or {}), **init)

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        self.run.log(dict(metrics), step=step)

    def close(self) -> None:
        self.run.finish()


class MultiLogger:
    """Fan out every call to several loggers."""

    def __init__(self, *loggers: Logger):
        self.loggers = loggers

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        for logger in self.loggers:
            logger.log(step, metrics)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def open_loggers(
    log_dir: str | Path | None = None,
    wandb_project: str | None = None,
    config: Mapping[str, Any] | None = None,
    append: bool = False,
) -> list[Logger]:
    """The file loggers the command line's ``--log-dir`` (CSV + TensorBoard there) and
    ``--wandb-project`` ask for (none: an empty list)."""
    loggers: list[Logger] = []
    if log_dir is not None:
        loggers += [CSVLogger(Path(log_dir) / CSV_FILE, append), TensorBoardLogger(log_dir)]
    if wandb_project is not None:
        extra = {"dir": str(log_dir)} if log_dir is not None else {}
        loggers.append(WandbLogger(wandb_project, config, **extra))
    return loggers


def check_logs(
    log_dir: str | Path | None,
    wandb_project: str | None,
    force: bool = False,
    append: bool = False,
) -> None:
    """Before any work: ``log_dir`` must be a writable directory whose ``metrics.csv`` is not
    overwritten without ``force`` (``append``: a resumed run continues it), and
    ``wandb_project`` needs a non-empty name and the wandb package."""
    if log_dir is not None:
        check_directory(log_dir, "log_dir")
        if not append:
            check_output(log_dir, force, "log_dir", files=(CSV_FILE,))
    if wandb_project is not None:
        if not wandb_project.strip():
            raise ConfigError("wandb_project needs a project name", "wandb_project")
        try:
            require_wandb()
        except ImportError as e:
            raise ConfigError(f"wandb_project: {e}", "wandb_project") from None


@contextlib.contextmanager
def open_logs(
    log_dir: str | Path | None,
    wandb_project: str | None,
    config: Mapping[str, Any] | None = None,
    bar: Logger | None = None,
    append: bool = False,
) -> Iterator[Logger | None]:
    """One logger for a run: the progress ``bar`` (a logger or ``None``), then CSV and
    TensorBoard in ``log_dir`` and a wandb run; ``None`` when nothing is asked for (the
    compiled program then has no callback). On exit every pending callback has run
    (``jax.effects_barrier``) before the loggers are closed, also when the run failed."""
    loggers = ([bar] if bar is not None else []) + open_loggers(
        log_dir, wandb_project, config, append
    )
    logger = MultiLogger(*loggers) if loggers else None
    try:
        yield logger
    finally:
        if logger is not None:
            jax.effects_barrier()
            logger.close()


__all__ = [
    "CSV_FILE",
    "CSVLogger",
    "Logger",
    "MultiLogger",
    "ProgressLogger",
    "TensorBoardLogger",
    "WandbLogger",
    "check_logs",
    "host_callback",
    "open_loggers",
    "open_logs",
    "require_wandb",
    "scalars",
]
