"""What every benchmark study shares, so a study script keeps only its experiment and tables.

* :class:`Scale`: a study's size, holding the real configs its runs train with (``BCConfig``,
  ``DiffusionConfig``, ``DAggerConfig``, ...); studies subclass it to add their configs and
  counts, and :func:`record` turns it into the JSON the results carry.
* :func:`run_units`: the resumable loop: each unit (an env, or an (env, arm, seed) run) is
  saved to ``<out>/<name>_parts/<unit>.json`` as it finishes; ``--resume`` keeps the saved
  units made with equal settings and runs the rest.
* :func:`metadata`: the record every results file carries (command, machine, scale, seeds,
  wall time, settings).
* :func:`group_stats`, :func:`score_matrix`, :func:`aggregate`, :func:`paired` and
  :func:`mean_ci`: rows -> per-group summaries, rliable score matrices and paired
  differences, every interval from ``jaxbc.stats``'s bootstrap.
* :func:`table` (a Markdown table from column specs), :func:`write_report` and
  :func:`figure`: one table builder, one writer for the json/csv/md files and one plot
  skeleton, all written atomically; :func:`log`: progress to stderr.
* :func:`cli`: a study's command line with ``jaxbc hades``'s process flags; with several
  processes, process 0 alone reads and writes files (:func:`write`, through which every
  writer here goes).

Pure functions of rows in the middle; files and plots only at the edges.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import inspect
import io
import json
import re
import sys
import time
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import docstring_parser
import jax
import numpy as np
import tyro

from jaxbc import distributed
from jaxbc.hades.cli import PROCESS_FLAGS, join_processes
from jaxbc.hades.cli import hades as hades_command
from jaxbc.io import (
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_json,
    command_line,
    machine_description,
    save_result,
    saved_result,
)
from jaxbc.stats import (
    aggregate_scores,
    markdown_table,
    paired_difference,
    plot_performance_profiles,
)

# --- scale -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Scale:
    """A study's size: its envs and seeds; subclasses add the configs their runs train with
    (real ``BCConfig``/``DiffusionConfig``/... objects, never copies of their fields)."""

    envs: tuple[str, ...]
    seeds: int

    def only(self, envs: Sequence[str] | None) -> Scale:
        """This scale on a subset of envs (``--envs``), or itself."""
        return dataclasses.replace(self, envs=tuple(envs)) if envs else self


def record(obj: Any) -> Any:
    """JSON form of a scale or config: dataclasses as dicts (nested), tuples as lists,
    anything else that JSON cannot hold by its type name."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: record(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): record(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [record(v) for v in obj]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    return type(obj).__name__


# --- metadata ----------------------------------------------------------------------------


def metadata(
    script: str, scale: str | None, sc: Any = None, wall_time_s: float | None = None, **extra: Any
) -> dict:
    """The record every results file carries: how to re-run it (``command``), where it ran,
    the scale's name and settings, the seeds and the wall time; ``extra`` adds fields."""
    meta: dict[str, Any] = {
        "command": command_line(f"python {script}"),
        "machine": machine_description(),
    }
    if scale is not None:
        meta["scale"] = scale
    if sc is not None:
        meta["settings"] = record(sc)
        if hasattr(sc, "seeds"):
            meta["seeds"] = sc.seeds
    if wall_time_s is not None:
        meta["wall_time_s"] = wall_time_s
    return meta | extra


# --- the resumable loop ------------------------------------------------------------------


def unit_file(unit: str) -> str:
    """A unit's part-file name (env ids hold ``/``)."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", unit) + ".json"


def run_units(
    parts: Path,
    units: Sequence[str],
    settings: Any,
    compute: Callable[[str], dict],
    resume: bool,
    desc: str = "study",
) -> tuple[dict[str, dict], float]:
    """``({unit: compute(unit)}, summed wall time)``, each result saved to
    ``parts/<unit>.json`` with ``settings`` as it finishes; with ``resume`` a saved unit
    made with equal settings is reused (it keeps the wall time it took when it ran; a
    result that reports its own ``wall_time_s`` keeps that). How a long study that is killed
    continues where it stopped."""

    def timed(unit: str) -> dict:
        t0 = time.time()
        out = compute(unit)
        return out if "wall_time_s" in out else {**out, "wall_time_s": time.time() - t0}

    results, wall = {}, 0.0
    for i, unit in enumerate(units):
        res, reused = _resumable(parts / unit_file(unit), settings, partial(timed, unit), resume)
        print(
            f"{desc}: {unit} ({i + 1}/{len(units)}){' reused' if reused else ''}", file=sys.stderr
        )
        results[unit] = res
        wall += res["wall_time_s"]
    return results, wall


def load_saved(path: Path, **expected: Any) -> dict:
    """A study's saved results (``<name>.json``) for a report-only rewrite, refused if it is
    missing or its meta holds other values than ``expected`` (e.g. ``scale="cpu"``)."""
    if not path.exists():
        raise SystemExit(f"error: no {path}: nothing to report (run the study first)")
    saved = json.loads(path.read_text())
    if other := {k: saved["meta"].get(k) for k, v in expected.items() if saved["meta"].get(k) != v}:
        held = ", ".join(f"{k} {v!r}" for k, v in other.items())
        raise SystemExit(f"error: {path} holds {held}, not {expected}")
    return saved


def read_csv(path: Path) -> list[dict]:
    """A CSV written by :func:`write_report` back as rows, numbers parsed where they are."""

    def parse(v: str) -> Any:
        for cast in (int, float):
            try:
                return cast(v)
            except ValueError:
                pass
        return v

    with open(path) as f:
        return [{k: parse(v) for k, v in r.items()} for r in csv.DictReader(f)]


# --- statistics --------------------------------------------------------------------------


def groups(rows: Iterable[dict], keys: Sequence[str]) -> dict[tuple, list[dict]]:
    """Rows by the values of ``keys``, in first-seen order."""
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in keys), []).append(r)
    return out


def group_stats(
    rows: Iterable[dict],
    keys: Sequence[str],
    metrics: Sequence[str],
    means: Sequence[str] = (),
    ci: bool = False,
    reps: int = 2000,
) -> list[dict]:
    """Per group of ``keys``: each metric's mean and std over the group's runs (``m``,
    ``m_std``; None where no run has it), or with ``ci`` its mean and 95% bootstrap CI
    (:func:`mean_ci`; None where a run lacks it); ``means``: the mean only; and ``n``."""
    out = []
    for k, rs in groups(rows, keys).items():
        agg: dict[str, Any] = dict(zip(keys, k, strict=True))
        for m in metrics:
            v = [r[m] for r in rs if r.get(m) is not None]
            if ci:
                agg[m] = mean_ci(v, reps) if len(v) == len(rs) else None
            else:
                agg[m], agg[m + "_std"] = (
                    (float(np.mean(v)), float(np.std(v))) if v else (None, None)
                )
        for m in means:
            agg[m] = float(np.mean([r[m] for r in rs]))
        agg["n"] = len(rs)
        out.append(agg)
    return out


def mean_ci(values: Sequence[float], reps: int = 2000) -> dict:
    """Mean and 95% bootstrap CI over seeds (``jaxbc.stats``; one seed: no interval)."""
    if len(values) < 2:
        return {"mean": float(values[0]), "ci": None, "n": len(values)}
    res = aggregate_scores({"x": values}, metrics=("mean",), comparisons=[], reps=reps)
    m = res["metrics"]["x"]["mean"]
    return {"mean": m["point"], "ci": m["ci"], "n": len(values)}


def score_matrix(
    rows: Sequence[dict],
    arms: Mapping[str, tuple[Mapping[str, Any], str]],
    task: Sequence[str] = ("env",),
    min_seeds: int = 1,
    sort_tasks: bool = False,
) -> tuple[dict[str, np.ndarray], list[tuple]]:
    """rliable score matrices ``{arm: [seeds, tasks]}`` from run rows.

    ``arms``: name -> (the fields a row of that arm matches, the score field). Arms with no
    row are left out; a task enters when every arm ran there on the same seeds, and the
    seeds are those every task has, so the arms are paired. Fewer than ``min_seeds``
    seeds: ``({}, [])``. Tasks: tuples of the ``task`` fields, first-seen (or sorted) order.
    """
    seeds: dict[tuple[str, tuple], set] = {}
    by: dict[tuple, Any] = {}
    present = []
    for name, (where, value) in arms.items():
        for r in rows:
            if all(r.get(f) == v for f, v in where.items()):
                t = tuple(r[f] for f in task)
                seeds.setdefault((name, t), set()).add(r["seed"])
                by[(name, t, r["seed"])] = r[value]
        if any(a == name for a, _ in seeds):
            present.append(name)
    all_tasks = list(dict.fromkeys(tuple(r[f] for f in task) for r in rows))
    tasks = [
        t
        for t in (sorted(all_tasks) if sort_tasks else all_tasks)
        if present
        and all(seeds.get((a, t)) == seeds.get((present[0], t)) for a in present)
        and seeds.get((present[0], t))
    ]
    common = sorted(set.intersection(*(seeds[(present[0], t)] for t in tasks))) if tasks else []
    if len(common) < max(min_seeds, 1):
        return {}, []
    scores = {a: np.array([[by[(a, t, s)] for t in tasks] for s in common]) for a in present}
    return scores, tasks


def aggregate(
    scores: Mapping[str, np.ndarray],
    comparisons: Sequence[tuple[str, str]],
    tasks: Sequence[Any],
    reps: int = 10_000,
    metrics: Sequence[str] = ("iqm", "mean", "optimality_gap"),
) -> dict:
    """``jaxbc.stats.aggregate_scores`` (stratified bootstrap over seeds) of the score
    matrices, P(X > Y) for the comparisons whose arms are present, and the task names."""
    pairs = [(x, y) for x, y in comparisons if x in scores and y in scores]
    out = aggregate_scores(scores, metrics=metrics, comparisons=pairs, reps=reps)
    out["tasks"] = list(tasks)
    return out


def scaled(ret: float, random: float, expert: float) -> float:
    """A return on the expert's scale: ``(R - R_random) / (R_expert - R_random)``."""
    return (ret - random) / (expert - random)


def reading(lo: float, hi: float, direction: int = 1) -> str:
    """ "supported" if the CI excludes 0 in the claimed direction (+1: X above Y),
    "opposite" if it excludes 0 the other way, else "not supported at this budget"."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "no CI (too few seeds)"
    if direction * lo > 0 and direction * hi > 0:
        return "supported"
    if direction * lo < 0 and direction * hi < 0:
        return "opposite"
    return "not supported at this budget"


def paired_ci(
    x: Sequence[float], y: Sequence[float], direction: int = 1, resamples: int = 9999
) -> dict:
    """Mean of the paired differences ``x - y`` (seed ``i`` with seed ``i``), its 95%
    percentile bootstrap CI (``jaxbc.stats.paired_difference``) and its :func:`reading`."""
    mean, lo, hi = paired_difference(x, y, resamples=resamples)
    return {"mean": mean, "ci": [lo, hi], "n": len(x), "reading": reading(lo, hi, direction)}


def paired(
    rows: Sequence[dict],
    comparisons: Sequence[tuple[str, str]],
    group: Sequence[str] = ("env",),
    arm: str = "method",
    value: str = "scaled_return",
    resamples: int = 9999,
    min_seeds: int = 2,
) -> list[dict]:
    """Per group and comparison (X, Y): :func:`paired_ci` of X - Y over the seeds both arms
    ran (fewer than ``min_seeds``: skipped)."""
    by = {(tuple(r[g] for g in group), r[arm], r["seed"]): r[value] for r in rows}
    out = []
    for g in dict.fromkeys(tuple(r[k] for k in group) for r in rows):
        for x, y in comparisons:
            seeds = sorted(s for (gg, a, s) in by if gg == g and a == x and (g, y, s) in by)
            if len(seeds) < min_seeds:
                continue
            d = paired_ci(
                [by[(g, x, s)] for s in seeds], [by[(g, y, s)] for s in seeds], 1, resamples
            )
            out.append({**dict(zip(group, g, strict=True)), "x": x, "y": y, **d})
    return out


# --- reports and plots -------------------------------------------------------------------


def log(msg: str, since: float | None = None) -> float:
    """Progress to stderr (with the seconds since ``since``); returns the time now, so a
    study times its steps as ``t = log("step", t)``."""
    print(msg + ("" if since is None else f" {time.time() - since:.0f} s"), file=sys.stderr)
    return time.time()


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A Markdown table's lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


Column = str | Callable[[Any], Any]


def cell(row: Any, spec: Column) -> Any:
    """One cell of :func:`table`: ``spec`` is ``"field"`` (the value through :func:`fmt`),
    ``"field:format"`` (e.g. ``"ret:.1f"``; None: "–") or a function of the row."""
    if not isinstance(spec, str):
        return spec(row)
    field, _, form = spec.partition(":")
    return fmt(row[field]) if not form or row[field] is None else format(row[field], form)


def table(
    rows: Iterable[Any], columns: Mapping[str, Column] | Sequence[tuple[str, Column]]
) -> list[str]:
    """A Markdown table of ``rows`` from column specs ``{header: spec}`` (see :func:`cell`;
    as ``(header, spec)`` pairs where two columns share a header)."""
    cols = list(columns.items() if isinstance(columns, Mapping) else columns)
    return md_table([h for h, _ in cols], ([cell(r, c) for _, c in cols] for r in rows))


def signed_ci(mean: float, ci: Sequence[float], spec: str = "+.2f") -> str:
    """A difference and its interval: ``+0.10 [+0.02, +0.18]``."""
    return f"{mean:{spec}} [{ci[0]:{spec}}, {ci[1]:{spec}}]"


def fmt(v: Any, spec: str = ".2f") -> str:
    """A cell: "–" for None, floats by ``spec``."""
    if v is None:
        return "–"
    return format(v, spec) if isinstance(v, float) else str(v)


def pm(mean: float | None, std: float | None, spec: str = ".2f") -> str:
    """``mean ± std`` (or "–")."""
    return "–" if mean is None else f"{mean:{spec}} ± {std:{spec}}"


def ci_cell(v: Mapping[str, Any] | None, digits: int = 2) -> str:
    """A :func:`mean_ci` result as ``mean [lo, hi]``."""
    if v is None:
        return "-"
    if v["ci"] is None:
        return f"{v['mean']:.{digits}f}"
    lo, hi = v["ci"]
    return f"{v['mean']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def heading(title: str, meta: Mapping[str, Any], details: str) -> list[str]:
    """A report's first lines: the title, the command that wrote it, the machine and
    ``details`` (the scale in words)."""
    lines = [f"# {title}", "", f"Command: `{meta['command']}`  "]
    if "report_command" in meta:
        lines.append(f"Report rewritten from its saved runs by: `{meta['report_command']}`  ")
    return lines + [f"Machine: {meta['machine']}; {details}"]


def aggregates_section(stats: Mapping[str, Any], what: str, digits: int = 2) -> list[str]:
    """A report's section on :func:`aggregate`'s result: heading, one line and the table."""
    tasks = ", ".join(
        " ".join(map(str, t)) if isinstance(t, list) else str(t) for t in stats["tasks"]
    )
    return [
        "",
        f"## Aggregates over {len(stats['tasks'])} tasks ({tasks})",
        "",
        f"{what}; point [95% stratified bootstrap CI over seeds] (`jaxbc.stats`, rliable's "
        "metrics); performance profiles: the `_profiles.png` beside this file.",
        "",
        markdown_table(stats, digits=digits),
    ]


def write_report(
    out_dir: Path,
    name: str,
    data: Mapping[str, Any] | None = None,
    md: Sequence[str] | None = None,
    csv: Sequence[dict] | None = None,
) -> None:
    """``<name>.json`` (``data``), ``<name>.csv`` (rows) and ``<name>.md`` (lines), each
    written atomically; what is None is left as it is."""
    if data is not None:
        write(atomic_write_json, out_dir / f"{name}.json", data)
    if csv:
        write(atomic_write_csv, out_dir / f"{name}.csv", list(csv))
    if md is not None:
        write(atomic_write_bytes, out_dir / f"{name}.md", ("\n".join(md) + "\n").encode())


def save_figure(fig: Any, path: Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    plt.close(fig)
    write(atomic_write_bytes, path, buf.getvalue())
    return path


@contextmanager
def figure(
    path: Path,
    panels: int,
    cols: int | None = None,
    size: tuple[float, float] = (3.3, 2.8),
    dpi: int = 110,
) -> Iterator[np.ndarray]:
    """The plot skeleton: yields a ``[rows, cols]`` array of axes for ``panels`` panels
    (``size`` each; unused ones hidden), then lays the figure out and saves it to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = cols or panels
    rows = -(-panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)
    yield axes
    for ax in list(axes.flat)[panels:]:
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path, dpi)


def band(ax: Any, rows: Iterable[dict], x: str, y: str, label: str) -> None:
    """A line of the rows' ``y`` (summaries: mean over seeds) against ``x``, with the
    ``y_std`` band around it."""
    rs = sorted(rows, key=lambda r: r[x])
    xs = np.array([r[x] for r in rs])
    mean, std = (np.array([r[k] for r in rs]) for k in (y, y + "_std"))
    ax.plot(xs, mean, marker="o", label=label)
    ax.fill_between(xs, mean - std, mean + std, alpha=0.2)


def profiles(scores: Mapping[str, Any], path: Path, title: str) -> Path:
    """Performance profiles of the score matrices (``jaxbc.stats``), saved atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(6, 4))
    plot_performance_profiles(scores, ax=ax, title=title)
    ax.figure.tight_layout()
    return save_figure(ax.figure, path, dpi=120)


# --- several processes -------------------------------------------------------------------
# Every study takes `jaxbc hades`'s process flags (read from that command's definition) and
# joins the run they describe before it starts; then process 0 alone reads and writes files.


def add_process_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` with ``jaxbc hades``'s process flags (``--coordinator-address``,
    ``--num-processes``, ``--process-id``, ``--distributed``: the coordinates jax detects on
    SLURM / TPU pods / MPI / Kubernetes, ``--distributed-timeout``), their types, defaults
    and help as that command defines them; :func:`join` joins the run they describe."""
    params = inspect.signature(hades_command).parameters
    hints = typing.get_type_hints(hades_command)
    docs = {p.arg_name: p.description for p in docstring_parser.parse(hades_command.__doc__).params}
    group = parser.add_argument_group("processes (as `jaxbc hades`)")
    for name in PROCESS_FLAGS:
        flag, default, doc = "--" + name.replace("_", "-"), params[name].default, docs[name]
        if hints[name] is bool:
            group.add_argument(flag, action="store_true", help=doc)
            continue
        (kind,) = (t for t in typing.get_args(hints[name]) or (hints[name],) if t is not type(None))
        text = f"{doc} (default: {default})"
        group.add_argument(
            flag, type=kind, default=default, help=text, metavar=kind.__name__.upper()
        )
    return parser


def join(args: argparse.Namespace, multi_process: bool = True) -> None:
    """Join the run that :func:`add_process_flags`'s flags in ``args`` describe (none given:
    one process, and JAX is left untouched). A study whose runs are not split over devices
    (``multi_process=False``) refuses the flags. Errors are ``ValueError`` naming the flag."""
    given = {n: getattr(args, n) for n in PROCESS_FLAGS}
    defaults = inspect.signature(join_processes).parameters
    used = ["--" + n.replace("_", "-") for n, v in given.items() if v != defaults[n].default]
    if used and not multi_process:
        raise distributed.DistributedError(
            f"{sys.argv[0]} runs in one process (its runs are not split over devices): "
            f"drop {', '.join(used)}"
        )
    if used:
        join_processes(**given)


def cli(main: Callable[..., Any], multi_process: bool = True) -> Any:
    """``tyro.cli(main)`` that also takes the process flags (:func:`add_process_flags`)
    and joins their run (:func:`join`) before ``main`` runs; a bad combination exits with
    status 2 and one line naming the flag. With several processes, every one waits at the
    end until process 0 has written everything."""
    parser = argparse.ArgumentParser(
        prog=Path(sys.argv[0]).name, add_help=False, allow_abbrev=False
    )
    flags, rest = add_process_flags(parser).parse_known_args()
    if {"-h", "--help"} & set(rest):  # main's flags (tyro), then the process flags
        try:
            tyro.cli(main, args=rest)
        finally:
            print(parser.format_help().split("\n\n", 1)[-1])
    _join_or_exit(parser, flags, multi_process)
    result = tyro.cli(main, args=rest)
    if jax.distributed.is_initialized():  # leave together, once process 0 has written all
        distributed.sync("study done")
        jax.distributed.shutdown()
    return result


def parse_args(parser: argparse.ArgumentParser, multi_process: bool = True) -> argparse.Namespace:
    """An argparse study's ``parser.parse_args()`` with the process flags, their run joined
    as in :func:`cli`."""
    args = add_process_flags(parser).parse_args()
    _join_or_exit(parser, args, multi_process)
    return args


def _join_or_exit(parser: argparse.ArgumentParser, args: argparse.Namespace, multi: bool) -> None:
    try:
        join(args, multi)
    except ValueError as e:
        parser.error(str(e))


def write(writer: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``writer(*args, **kwargs)`` on process 0 only (None elsewhere): every file a study
    writes goes through here, so with several processes one alone writes."""
    return writer(*args, **kwargs) if distributed.is_primary() else None


def show(path: Path) -> None:
    """Print a report written by :func:`write` (process 0; the others print nothing)."""
    if distributed.is_primary():
        print(path.read_text())


def _resumable(
    path: Path, settings: Any, compute: Callable[[], dict], resume: bool
) -> tuple[dict, bool]:
    """:func:`jaxbc.io.resumable` with process 0 alone reading and writing ``path``: it
    tells the others whether it reuses a saved result, and sends it."""
    if resume:
        found, result = distributed.on_primary(saved_result, path, settings)
        if found:
            return result, True
    result = compute()
    write(save_result, path, settings, result)
    return result, False
