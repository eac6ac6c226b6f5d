"""Resumable HaDES runs at the edge: chunks of generations, progress, checkpoints.

Each chunk of ``checkpoint_every`` generations is one jitted ``lax.scan``; after every
chunk the whole :class:`HadesState` (ES state, PRNG key, policy init, best dataset) is saved
with orbax. Since the PRNG key lives in the state, a resumed run replays exactly the
programs an uninterrupted run executes, so it ends in the same ES state bit for bit.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxbc.checkpoint import RUN_FILE
from jaxbc.distributed import is_primary
from jaxbc.envs import Env
from jaxbc.hades.core import Hades, HadesConfig, HadesState, make_hades
from jaxbc.logs import Logger
from jaxbc.resumable import run_chunks

HISTORY_FILE = "hades_history.json"
CONFIG_FILE = "hades_config.json"
SUMMARY_KEYS = ("best", "mean", "std")
# history key: wall seconds since the run first started, at each generation's chunk end
RUN_SECONDS = "run_seconds"


@dataclass(frozen=True)
class HadesRun:
    """A finished (or resumed and finished) run: final state and per-generation curves."""

    hades: Hades
    state: HadesState
    history: dict[str, np.ndarray]  # generation (1-based), best, mean, std, run_seconds: each [G]
    resumed_from: int  # generations restored from a checkpoint (0: fresh start)
    config_changes: tuple = ()  # settings changed on resume (allow_config_change), oldest first


def run_settings(
    config: HadesConfig, strategy: Any, key: jax.Array, extra: dict | None = None
) -> dict:
    """What identifies a run in its checkpoint directory: the config (not the device count),
    the strategy (name, population, a digest of its parameters), the PRNG key, and ``extra``."""
    import hashlib

    cfg = json.loads(json.dumps(config.to_dict()))
    cfg.pop("num_devices", None)  # resuming elsewhere is fine
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(getattr(strategy, "default_params", None)):
        digest.update(np.asarray(leaf).tobytes())
    strat = {
        "name": getattr(strategy, "name", type(strategy).__name__),
        "population_size": int(getattr(strategy, "population_size", 0)),
        "params_digest": digest.hexdigest()[:16],
    }
    if hasattr(strategy, "sigma"):
        strat["sigma"] = float(strategy.sigma)
    key_data = np.asarray(
        jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    )
    return {"config": cfg, "strategy": strat, "key": key_data.ravel().tolist(), **(extra or {})}


def _empty_history() -> dict[str, list]:
    return {"generation": [], **{k: [] for k in SUMMARY_KEYS}, RUN_SECONDS: []}


def run_seconds(history: dict) -> float | None:
    """Wall seconds the run took, across resumes (None for runs saved before this was kept)."""
    secs = history.get(RUN_SECONDS)
    if secs is None or not len(secs) or not np.isfinite(secs[-1]):
        return None
    return float(secs[-1])


def _check_older_config(config: HadesConfig) -> Any:
    """Runs saved before ``run.json`` was written only recorded their config: compare it."""

    def check(directory: Path) -> None:
        saved_config = directory / CONFIG_FILE
        if not saved_config.exists() or (directory / RUN_FILE).exists():
            return
        saved = json.loads(saved_config.read_text())
        current = json.loads(json.dumps(config.to_dict()))
        saved.pop("num_devices", None)  # resuming elsewhere is fine
        current.pop("num_devices", None)
        if saved != current:
            raise ValueError(
                f"{directory} holds a HaDES run with another config ({saved_config}); "
                "resume with the same config or use a new checkpoint_dir"
            )

    return check


def run_hades(
    config: HadesConfig,
    strategy: Any,
    key: jax.Array,
    generations: int,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 10,
    resume: bool = False,
    progress: bool = True,
    env: Env | None = None,
    allow_config_change: bool = False,
    settings: dict | None = None,
    logger: Logger | None = None,
) -> HadesRun:
    """Run HaDES for ``generations`` generations in chunks of ``checkpoint_every``.

    With ``checkpoint_dir`` the state is saved after every chunk; ``resume=True`` continues
    from the newest checkpoint there (a fresh start if there is none) and reaches exactly the
    state of an uninterrupted run with the same ``key``. Progress goes to stderr.

    The directory records the run's settings (:func:`run_settings`: config, strategy,
    population, key, plus ``settings``): resuming with other ones is refused before anything
    is written unless ``allow_config_change`` (the change is then recorded in the directory's
    ``run.json`` and in ``HadesRun.config_changes``); a fresh run (no ``resume``) refuses a
    directory that already holds checkpoints.

    ``logger`` (:mod:`jaxbc.logs`) gets one row per generation (``best``, ``mean``, ``std``)
    after each chunk; the caller closes it.
    """
    if generations < 1:
        raise ValueError(f"generations must be >= 1, got {generations}")
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir to resume from")
    all_settings = run_settings(config, strategy, key, settings)
    hades = make_hades(config, strategy, env)
    primary = is_primary()
    start = time.perf_counter()
    prior: list[float] = []  # seconds spent before this process (nan if unknown), at chunk 1

    def step(state: HadesState, n: int) -> tuple[HadesState, Any]:
        return hades.step_generations(state, n)

    def on_chunk(done: int, n: int, summary: Any, history: dict[str, list]) -> dict:
        if not prior:  # history holds the restored generations only: a resumed run's total
            prior.append(history[RUN_SECONDS][-1] if history[RUN_SECONDS] else 0.0)
        summary = jax.device_get(summary)
        history["generation"] += list(range(done + 1, done + n + 1))
        for k in SUMMARY_KEYS:
            history[k] += [float(v) for v in getattr(summary, k)]
        history[RUN_SECONDS] += [prior[0] + time.perf_counter() - start] * n
        if logger is not None and primary:
            for i in range(len(history["generation"]) - n, len(history["generation"])):
                logger.log(history["generation"][i], {k: history[k][i] for k in SUMMARY_KEYS})
        return {"best": f"{history['best'][-1]:.1f}", "mean": f"{history['mean'][-1]:.1f}"}

    driven = run_chunks(
        lambda: hades.initial_state(key),
        generations,
        checkpoint_every,
        step,
        on_chunk=on_chunk,
        checkpoint_dir=checkpoint_dir,
        settings=all_settings,
        resume=resume,
        allow_config_change=allow_config_change,
        what="HaDES run",
        history=_empty_history(),
        history_file=HISTORY_FILE,
        before_restore=None if allow_config_change else _check_older_config(config),
        files={CONFIG_FILE: config.to_dict()},
        progress=progress,
        desc="hades",
        unit="gen",
    )
    dtypes = {"generation": np.int64, RUN_SECONDS: np.float64}
    arrays = {k: np.asarray(v, dtypes.get(k, np.float32)) for k, v in driven.history.items()}
    return HadesRun(hades, driven.state, arrays, driven.resumed_from, tuple(driven.changes))
