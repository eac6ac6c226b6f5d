"""Multi-process runs: 2 processes x 2 CPU devices against 1 process x 4, over localhost
(``jax.distributed`` with gloo CPU collectives). The file is also the worker the tests start:
``python tests/test_multihost.py MODE PROCESS_ID NUM_PROCESSES PORT DIR``."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
POPULATION, GENERATIONS = 16, 4


def _worker(mode: str, pid: int, nproc: int, port: int, work: Path) -> None:
    import jax
    import numpy as np

    from jaxbc.distributed import initialize, sync

    if nproc > 1:
        initialize(f"127.0.0.1:{port}", nproc, pid, timeout_s=60)
    from jaxbc.hades import HadesConfig, make_strategy, run_hades, solution_template

    seed = 1 if mode == "mismatch" and pid == 1 else 0
    config = HadesConfig(
        env_id="CartPole-v1", dataset_size=4, inner_steps=16, num_envs=2, eval_steps=100
    )
    es = make_strategy("SNES", POPULATION, solution_template(config), sigma=0.5)
    # each process gets a directory of its own: only process 0's may ever hold files
    ckpt = work / f"ckpt_p{pid}"
    generations = {"first": GENERATIONS // 2, "relayout": GENERATIONS + 2}.get(mode, GENERATIONS)
    run = run_hades(
        config,
        es,
        jax.random.key(seed),
        generations,
        checkpoint_dir=ckpt,
        checkpoint_every=2,
        resume=True,
        progress=False,
    )
    out = {
        "es_state": [np.asarray(x).tolist() for x in jax.tree.leaves(run.state.es_state)],
        "history": {k: run.history[k].tolist() for k in ("best", "mean", "std")},
        "resumed_from": run.resumed_from,
        "changes": list(run.config_changes),
    }
    if mode in ("second", "reference"):
        out["sweep"] = _sweep(work / f"policies_p{pid}", pid == 0)
    sync("worker done")  # process 1 waits while process 0 evaluates and saves its slices
    print("RESULT " + json.dumps(out), flush=True)
    if nproc > 1:  # leave together now, before any exit handler can delay one process
        jax.distributed.shutdown()


def _sweep(save_dir: Path, primary: bool) -> list:
    """A BC sweep over 4 devices; the primary evaluates and saves two of its slices."""
    from functools import partial

    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxbc.bc import BCConfig, PolicyConfig, load_policy, make_bc_train, swarm_bc_loss
    from jaxbc.bc.evaluation import evaluate_bc
    from jaxbc.data import collect
    from jaxbc.experts import load_expert
    from jaxbc.sweep import grid, sweep

    ex = load_expert("Pendulum-v1")
    env = ex.make_env()
    data = collect(ex, env, 2, jax.random.key(0))
    base = BCConfig(policy=PolicyConfig(hidden_sizes=(16, 16)), members=2, steps=20, batch_size=32)

    def run(key, tau):
        return make_bc_train(base, partial(swarm_bc_loss, tau=tau))(key, data)

    keys, taus = grid(jax.random.split(jax.random.key(0), 3), jnp.array([0.0, 0.5]))
    results = sweep(run, keys, taus, devices=4)  # 6 runs padded to 8 over 4 devices
    if primary:
        for i in (0, 5):
            one = results[i]
            ev = evaluate_bc(one, jax.random.key(1), episodes=2, dataset=data, env=env)
            assert np.isfinite(ev["mean_return"])
            one.save(save_dir / f"run{i}")
            back = load_policy(save_dir / f"run{i}")
            np.testing.assert_array_equal(
                jax.tree.leaves(back.params)[0], np.asarray(jax.tree.leaves(one.params)[0])
            )
    return [np.asarray(x).tolist() for x in jax.tree.leaves(results.params)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(
    mode: str, nproc: int, devices: int, work: Path, timeout: int = 600, command=None
) -> list:
    """Start ``nproc`` worker processes (or ``command(process_id, port)``) with ``devices``
    CPU devices each; their exit status, stdout and stderr."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
    }
    port = _free_port()
    # output to files, not pipes: an undrained pipe of one process would block it before
    # the shutdown barrier while the test waits on another
    logs = [
        work.parent / f"{work.name}_{mode}_p{i}.{k}" for i in range(nproc) for k in ("out", "err")
    ]
    procs = []
    for i in range(nproc):
        with open(logs[2 * i], "w") as out, open(logs[2 * i + 1], "w") as err:
            cmd = [sys.executable, __file__, mode, str(i), str(nproc), str(port), str(work)]
            cmd = command(i, port) if command else cmd
            procs.append(
                subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err, text=True)
            )
    for p in procs:
        p.wait(timeout=timeout)
    return [
        (p.returncode, logs[2 * i].read_text(), logs[2 * i + 1].read_text())
        for i, p in enumerate(procs)
    ]


def _succeeded(outs: list) -> list:
    for i, (rc, _, _) in enumerate(outs):
        tails = "\n".join(f"--- process {j}:\n{e[-2000:]}" for j, (_, _, e) in enumerate(outs))
        assert rc == 0, f"process {i} exited with {rc}\n{tails}"
    return outs


def _results(outs: list) -> list[dict]:
    _succeeded(outs)
    return [
        json.loads(next(line[7:] for line in o.splitlines() if line.startswith("RESULT ")))
        for _, o, _ in outs
    ]


def _files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


@pytest.mark.slow
def test_two_processes_equal_one_process_and_only_process_0_writes(tmp_path):
    multi, single = tmp_path / "multi", tmp_path / "single"
    first = _results(_launch("first", 2, 2, multi))
    assert [r["resumed_from"] for r in first] == [0, 0]
    second = _results(_launch("second", 2, 2, multi))  # resumes process 0's checkpoints
    assert [r["resumed_from"] for r in second] == [GENERATIONS // 2] * 2
    assert second[0] == second[1]  # every process ends in the same state
    (ref,) = _results(_launch("reference", 1, 4, single))
    assert ref["resumed_from"] == 0
    # the same 4 devices and the same per-device programs: every member's fitness and the
    # sweep are bit-equal, resumed or not; the ES update's sums over the population are
    # all-reduced across processes (gloo) rather than inside one, so the ES state agrees to
    # float32 rounding (a few ulp of values of order 1)
    for a, b in zip(second[0]["es_state"], ref["es_state"], strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=2e-7)
    assert second[0]["history"] == ref["history"]
    assert second[0]["sweep"] == ref["sweep"]
    assert second[0]["changes"] == [] and ref["changes"] == []
    # process 0 wrote checkpoints, history, settings and the saved sweep slices; process 1
    # nothing at all
    written = _files(multi / "ckpt_p0")
    assert {"run.json", "hades_history.json", "hades_config.json"} <= set(written)
    assert any(f.startswith("step_000000004") for f in written)
    assert _files(multi / "policies_p0") and not _files(multi / "policies_p1")
    assert not (multi / "ckpt_p1").exists() and not (multi / "policies_p1").exists()
    settings = json.loads((multi / "ckpt_p0" / "run.json").read_text())["settings"]
    assert settings["processes"] == {"num_processes": 2, "local_devices": 2, "global_devices": 4}
    # another layout (1 process x 4 devices) resumes the same state and records the change
    (relayout,) = _results(_launch("relayout", 1, 4, multi))
    assert relayout["resumed_from"] == GENERATIONS
    assert relayout["changes"] == [
        {
            "at_step": GENERATIONS,
            "changed": {
                "processes.local_devices": [2, 4],
                "processes.num_processes": [2, 1],
            },
        }
    ]
    assert relayout["history"]["mean"][:GENERATIONS] == ref["history"]["mean"]


@pytest.mark.slow
def test_processes_with_different_settings_are_refused(tmp_path):
    outs = _launch("mismatch", 2, 2, tmp_path)
    for rc, _, stderr in outs:
        assert rc != 0
        assert "started with different HaDES run settings" in stderr
    assert not any(tmp_path.rglob("step_*"))


def _study(out: Path, seeds: int, nproc: int = 1):
    """``benchmarks/hades.py`` at its smoke scale (CartPole-v1, HaDES-F) in pieces: process
    ``i`` of ``nproc`` gets the output directory ``out/p<i>``."""

    def command(i: int, port: int) -> list[str]:
        cmd = [sys.executable, "benchmarks/hades.py", "--scale", "smoke", "--envs", "CartPole-v1"]
        cmd += ["--variants", "F", "--seeds", str(seeds), "--resume"]
        cmd += ["--out-dir", str(out / f"p{i}")]
        if nproc > 1:
            cmd += ["--coordinator-address", f"127.0.0.1:{port}", "--num-processes", str(nproc)]
            cmd += ["--process-id", str(i), "--distributed-timeout", "60"]
        return cmd

    return command


@pytest.mark.slow
def test_hades_study_over_two_processes_equals_one_process(tmp_path):
    """benchmarks/hades.py over 2 processes x 2 CPU devices, run in two pieces (--resume:
    process 0 reads the first piece's runs and sends them to process 1, which has no files),
    against 1 process x 4 devices: equal fitness curves and run numbers; process 0 alone
    writes (the report, datasets, curves, checkpoints) and prints the report."""
    multi, single = tmp_path / "multi", tmp_path / "single"
    for seeds in (1, 2):
        outs = _succeeded(_launch(f"study{seeds}", 2, 2, multi, command=_study(multi, seeds, 2)))
    _succeeded(_launch("study", 1, 4, single, command=_study(single, 2)))
    assert not (multi / "p1").exists()  # process 1 wrote nothing, not even a directory
    assert "# HaDES behaviour distillation" in outs[0][1]
    assert "# HaDES behaviour distillation" not in outs[1][1]
    got = json.loads((multi / "p0" / "hades.json").read_text())
    ref = json.loads((single / "p0" / "hades.json").read_text())
    assert [r["seed"] for r in got["runs"]] == [0, 1] == [r["seed"] for r in ref["runs"]]
    assert got["meta"]["command"].endswith("--distributed-timeout 60")
    # the fitness of every generation is bit-equal (as in the test above); what derives from
    # the ES state (the distilled data's returns) agrees to that test's tolerance
    assert (multi / "p0" / "hades.csv").read_text() == (single / "p0" / "hades.csv").read_text()
    for a, b in zip(got["runs"], ref["runs"], strict=True):
        assert a.keys() == b.keys()
        for k in a.keys() - {"wall_time_s", "dataset"}:
            if isinstance(a[k], float):
                np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=2e-7, err_msg=k)
            else:
                assert a[k] == b[k], k
    written = _files(multi / "p0")
    assert {"hades.md", "hades_datasets/CartPole-v1_D4_F_s1.npz"} <= set(written)
    assert any(f.startswith("hades_checkpoints/CartPole-v1_D4_F_s1/step_") for f in written)


def test_study_scripts_refuse_bad_process_flags():
    """The benchmark scripts take jaxbc hades's process flags and refuse a bad combination
    (or, where the study's runs are not split over devices, any of them) with one line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    for script, flags, message in (
        ("hades", ["--num-processes", "2"], "missing: coordinator_address, process_id"),
        ("hades", ["--distributed-timeout", "5"], "applies only to a multi-process run"),
        ("dagger", ["--distributed"], "runs in one process (its runs are not split over devices): drop --distributed"),
    ):  # fmt: skip
        cmd = [sys.executable, f"benchmarks/{script}.py", "--scale", "smoke", *flags]
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 2, p.stderr[-2000:]
        assert f"{script}.py: error: " in p.stderr and message in p.stderr, p.stderr[-2000:]


def test_initialize_errors_name_what_to_fix():
    from jaxbc.distributed import DistributedError, initialize

    with pytest.raises(DistributedError, match="missing: num_processes, process_id"):
        initialize("127.0.0.1:1234")
    with pytest.raises(DistributedError, match="HOST:PORT"):
        initialize("localhost", 2, 0)
    with pytest.raises(DistributedError, match=r"process_id must be in \[0, 1\]"):
        initialize("127.0.0.1:1234", 2, 2)
    with pytest.raises(DistributedError, match="not both"):
        initialize("127.0.0.1:1234", 2, 0, auto=True)
    assert initialize().num_processes == 1  # no coordinates: a single-process run


def test_unreachable_coordinator_times_out_with_a_clear_error():
    """A worker (process 1 of 2) whose coordinator never comes up gives up after the timeout."""
    code = (
        "from jaxbc.distributed import initialize\n"
        f"initialize('127.0.0.1:{_free_port()}', 2, 1, timeout_s=3)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    p = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert p.returncode != 0
    assert "DistributedError: could not join the multi-process run through coordinator" in p.stderr
    assert "within 3 s" in p.stderr


def test_cli_refuses_a_population_not_divisible_by_the_devices():
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
    }
    cmd = [sys.executable, "-m", "jaxbc.cli", "hades", "--env", "CartPole-v1"]
    p = subprocess.run(
        [*cmd, "--population", "6", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 2
    err = json.loads(p.stdout.strip().splitlines()[-1])["error"]
    assert "--population 6 is not a multiple of the 4 devices" in err["message"]
    p = subprocess.run(
        [*cmd, "--process-id", "0", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 2
    err = json.loads(p.stdout.strip().splitlines()[-1])["error"]
    assert "missing: coordinator_address, num_processes" in err["message"]


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
