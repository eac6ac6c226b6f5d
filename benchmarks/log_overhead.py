"""What live logs cost: steps/s of one jitted BC run without a logger, with a no-op hook
and with CSV + TensorBoard (jaxbc.logs) fed every ``--every`` steps from inside the scan.

Each variant is compiled first, then timed ``--repeats`` times, interleaved (so load from
other processes hits all variants alike); the fastest (least disturbed) is reported.

    python benchmarks/log_overhead.py --steps 5000 --every 100 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import jax

from jaxbc import envs, studies
from jaxbc.bc import BCConfig, PolicyConfig, make_bc_train
from jaxbc.data import collect
from jaxbc.experts import load_expert
from jaxbc.io import atomic_write_json
from jaxbc.logs import CSVLogger, MultiLogger, TensorBoardLogger


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out", type=Path, default=None, help="also write the result JSON here")
    args = studies.parse_args(p, multi_process=False)

    ex = load_expert("CartPole-v1")
    data = collect(ex, envs.make("CartPole-v1"), 2, jax.random.key(0))
    cfg = BCConfig(
        policy=PolicyConfig(hidden_sizes=tuple(args.hidden)),
        steps=args.steps,
        batch_size=args.batch_size,
    )
    log_dir = Path(tempfile.mkdtemp(prefix="jaxbc_log_overhead_"))
    files = MultiLogger(CSVLogger(log_dir / "metrics.csv"), TensorBoardLogger(log_dir))
    hooks = {"off": None, "noop": lambda step, metrics: None, "csv+tensorboard": files.log}
    runs = {
        name: jax.jit(make_bc_train(cfg, progress=hook, progress_every=args.every))
        for name, hook in hooks.items()
    }

    def timed(run) -> float:
        t0 = time.perf_counter()
        jax.block_until_ready(run(jax.random.key(1), data).params)
        jax.effects_barrier()
        return time.perf_counter() - t0

    for run in runs.values():
        timed(run)  # compile
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            times[name].append(timed(run))
    files.close()
    rate = {name: args.steps / min(t) for name, t in times.items()}
    result = {
        "steps": args.steps,
        "every": args.every,
        "repeats": args.repeats,
        "hidden": args.hidden,
        "batch_size": args.batch_size,
        "device": str(jax.devices()[0]),
        "steps_per_s": {k: round(v, 1) for k, v in rate.items()},
        "overhead_pct": {k: round(100 * (rate["off"] / v - 1), 2) for k, v in rate.items()},
    }
    if args.out is not None:
        result |= studies.metadata("benchmarks/log_overhead.py", None)
        atomic_write_json(args.out, result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
