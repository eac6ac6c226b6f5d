"""Expert demonstrations end to end, as ``jaxbc collect`` runs them: a teacher (zoo id or
expert directory) checked against the env -> episodes on that env -> a dataset file."""

from __future__ import annotations

from pathlib import Path

import jax

from jaxbc import envs
from jaxbc.data import Dataset, collect, save_dataset
from jaxbc.experts.expert import Expert, load_expert
from jaxbc.io import check_output
from jaxbc.validation import ConfigError, check_int


def teacher(env: str, expert: str | Path | None = None) -> Expert:
    """The expert at ``expert`` (a directory or zoo id; default the zoo expert of ``env``),
    refused (``ConfigError`` naming ``expert``) if it was trained on another env."""
    ex = load_expert(expert or env)
    if ex.env_id != env:
        raise ConfigError(
            f"expert {str(expert)!r} was trained on {ex.env_id}, not on env {env}", "expert"
        )
    return ex


def collect_demos(
    env: str,
    episodes: int,
    out: str | Path,
    expert: str | Path | None = None,
    seed: int = 0,
    stochastic: bool = False,
    backend: str | None = None,
    force: bool = False,
) -> tuple[Dataset, dict]:
    """Collect ``episodes`` complete episodes of :func:`teacher` on ``env`` (its recorded env
    options, or another Brax ``backend``), mode/mean actions unless ``stochastic``, and save
    them to the dataset file ``out`` (not overwritten without ``force``). Returns the dataset
    and a report (transitions, mean and std episode return)."""
    check_int("episodes", episodes, 1)
    check_int("seed", seed, 0)
    if backend is not None and not env.startswith("brax/"):
        raise ConfigError(f"backend applies only to Brax envs, not {env}", "backend")
    check_output(out, force)
    ex = teacher(env, expert)
    options = {**dict(ex.config.env_options), **({"backend": backend} if backend else {})}
    ds = collect(ex, envs.make(env, **options), episodes, jax.random.key(seed), not stochastic)
    path = save_dataset(ds, out)
    returns = ds.episode_returns
    report = {"env": env, "out": str(path), "episodes": ds.num_episodes, "transitions": ds.size}
    report.update(mean_return=float(returns.mean()), std_return=float(returns.std()))
    return ds, report
