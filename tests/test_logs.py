"""Live logs: loggers fed from inside jitted runs (jaxbc.logs), and --log-dir on the CLI."""

import csv
import json
import struct
import sys
from functools import partial
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxbc import envs
from jaxbc.bc import BCConfig, PolicyConfig, make_bc_train, swarm_bc_loss
from jaxbc.cli import main
from jaxbc.data import collect, save_dataset
from jaxbc.experts import load_expert
from jaxbc.logs import CSVLogger, MultiLogger, TensorBoardLogger

CFG = BCConfig(policy=PolicyConfig(hidden_sizes=(8,)), steps=25, batch_size=16)


class Recorder:
    """A logger that keeps what it is given."""

    def __init__(self):
        self.rows: list[tuple[int, dict]] = []
        self.closed = False

    def log(self, step, metrics):
        self.rows.append((step, dict(metrics)))

    def close(self):
        self.closed = True


@pytest.fixture(scope="module")
def demos():
    ex = load_expert("CartPole-v1")
    return ex, collect(ex, envs.make("CartPole-v1"), 1, jax.random.key(0))


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Scalars of the TensorBoard event files in ``log_dir`` (TFRecord framing: length,
    its crc, the Event proto, its crc), parsed with tensorboardX's own protos."""
    from tensorboardX.proto.event_pb2 import Event

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (n,) = struct.unpack("<Q", data[pos : pos + 8])
            event = Event.FromString(data[pos + 12 : pos + 12 + n])
            pos += 12 + n + 4
            for v in event.summary.value:
                out.setdefault(v.tag, []).append((event.step, v.simple_value))
    return out


def test_bc_run_logs_from_inside_jit(demos, tmp_path):
    """Swarm BC (2 members) logs every 10 steps and after the last; the CSV and the event
    file hold the metrics the run returns for those steps."""
    _, data = demos
    rec = Recorder()
    logger = MultiLogger(rec, CSVLogger(tmp_path / "metrics.csv"), TensorBoardLogger(tmp_path))
    cfg = CFG.replace(members=2)
    train = make_bc_train(cfg, partial(swarm_bc_loss, tau=0.1), logger.log, progress_every=10)
    result = jax.jit(train)(jax.random.key(1), data)
    jax.block_until_ready(result.params)
    jax.effects_barrier()
    logger.close()
    assert rec.closed and [s for s, _ in rec.rows] == [10, 20, 25]
    rows = read_csv(tmp_path / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [10, 20, 25]
    for r in rows:
        i = int(r["step"]) - 1
        for name in ("loss", "bc_loss", "swarm_penalty", "action_difference"):
            assert np.isfinite(float(r[name]))
            np.testing.assert_allclose(float(r[name]), result.metrics[name][i], rtol=1e-6)
    scalars = read_scalars(tmp_path)
    assert {"loss", "bc_loss", "swarm_penalty"} <= set(scalars)
    assert [s for s, _ in scalars["loss"]] == [10, 20, 25]
    np.testing.assert_allclose(
        [v for _, v in scalars["loss"]], np.asarray(result.metrics["loss"])[[9, 19, 24]]
    )


def test_chunked_run_reports_global_steps_and_eval_returns(demos):
    _, data = demos
    rec = Recorder()
    cfg = CFG.replace(steps=20, eval_every=10, eval_episodes=1)
    result = jax.jit(make_bc_train(cfg, progress=rec.log, progress_every=4))(
        jax.random.key(1), data
    )
    jax.effects_barrier()
    train = [s for s, m in rec.rows if "loss" in m]
    evals = [(s, m["eval_return"]) for s, m in rec.rows if "eval_return" in m]
    assert train == [4, 8, 10, 14, 18, 20]  # every 4 steps of each chunk, and its end
    assert [s for s, _ in evals] == [10, 20]
    np.testing.assert_allclose([r for _, r in evals], result.eval_returns)


def test_no_logger_adds_no_callback(demos):
    _, data = demos
    off = str(jax.make_jaxpr(make_bc_train(CFG))(jax.random.key(0), data))
    on = str(jax.make_jaxpr(make_bc_train(CFG, progress=Recorder().log))(jax.random.key(0), data))
    assert "callback" not in off and "callback" in on


def test_hades_logger_gets_one_row_per_generation(tmp_path):
    from jaxbc.hades import HadesConfig, make_strategy, run_hades, solution_template

    cfg = HadesConfig(
        env_id="CartPole-v1",
        env_options=(("max_steps_in_episode", 20),),
        dataset_size=4,
        inner_steps=5,
        num_envs=2,
        policy=PolicyConfig(hidden_sizes=(8,), tanh_bounded=False),
    )
    es = make_strategy("SNES", 4, solution_template(cfg), sigma=0.5)
    rec = Recorder()
    logger = MultiLogger(rec, CSVLogger(tmp_path / "metrics.csv"))
    run = run_hades(
        cfg, es, jax.random.key(0), 3, checkpoint_every=2, progress=False, logger=logger
    )
    logger.close()
    assert [s for s, _ in rec.rows] == [1, 2, 3]
    rows = read_csv(tmp_path / "metrics.csv")
    assert list(rows[0]) == ["step", "best", "mean", "std"]
    np.testing.assert_allclose([float(r["best"]) for r in rows], run.history["best"], rtol=1e-6)


def test_dagger_logs_every_iteration(demos):
    from jaxbc.dagger import ITERATION_METRICS, DAggerConfig, make_dagger

    ex, data = demos
    cfg = DAggerConfig(
        bc=CFG.replace(steps=5), iterations=2, steps_per_iteration=16, num_envs=4, eval_episodes=1
    )
    rec = Recorder()
    res = jax.jit(make_dagger(cfg, progress=rec.log))(jax.random.key(0), ex, data)
    jax.effects_barrier()
    assert [s for s, _ in rec.rows] == [0, 1, 2]
    assert set(rec.rows[0][1]) == set(ITERATION_METRICS)
    np.testing.assert_allclose([m["return"] for _, m in rec.rows], res.returns)
    np.testing.assert_allclose([m["beta"] for _, m in rec.rows], res.beta)


def test_ppo_logs_every_update():
    from jaxbc.experts import train_expert
    from jaxbc.experts.ppo import PPOConfig

    cfg = PPOConfig(
        env_id="CartPole-v1", total_timesteps=3 * 4 * 8, num_envs=4, num_steps=8, num_minibatches=2
    )
    rec = Recorder()
    train_expert(cfg, eval_episodes=1, num_chunks=2, progress=False, logger=rec)
    updates = [(s, m) for s, m in rec.rows if "pg_loss" in m]
    assert [s for s, _ in updates] == [1, 2, 3]
    assert all(np.isfinite(m["v_loss"]) for _, m in updates)
    assert rec.rows[-1] == (3, {"eval_return": rec.rows[-1][1]["eval_return"]})


def run_cli(capsys, *argv) -> dict:
    main(list(argv))
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_cli_bc_log_dir_writes_csv_and_tensorboard(demos, capsys, tmp_path):
    _, data = demos
    path = save_dataset(data, tmp_path / "demos.npz")
    argv = ["bc", "--dataset", str(path), "--steps", "200", "--hidden", "8", "--eval-episodes", "1"]
    res = run_cli(capsys, *argv, "--log-dir", str(tmp_path / "logs"), "--no-progress", "--json")
    rows = read_csv(tmp_path / "logs" / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(2, 201, 2))  # every 1% of the steps
    assert float(rows[-1]["bc_loss"]) == pytest.approx(res["final_loss"], rel=1e-6)
    assert res["log_dir"] == str(tmp_path / "logs")
    assert len(read_scalars(tmp_path / "logs")["bc_loss"]) == 100
    # checked before any work: an existing metrics.csv (without --force), a file as the dir
    (tmp_path / "file").write_text("x")
    for log_dir, message in (
        (tmp_path / "logs", "already holds metrics.csv"),
        (tmp_path / "file", "is a file"),
    ):
        with pytest.raises(SystemExit):
            main([*argv, "--log-dir", str(log_dir), "--json"])
        error = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
        assert message in error["message"] and "--log-dir" in error["message"]


def wandb_history(run_dir: Path) -> list[dict]:
    """The history rows of an offline W&B run, read from its ``run-*.wandb`` file.

    wandb >= 0.18 has no Python reader, so this walks the file's documented framing: a
    7-byte ``:W&B`` header, then LevelDB-log chunks (crc32 4, length 2, type 1: FULL=1,
    FIRST=2, MIDDLE=3, LAST=4) in 32 KiB blocks, each record a ``wandb_internal_pb2.Record``.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    data = next(run_dir.glob("wandb/offline-run-*/run-*.wandb")).read_bytes()
    assert data[:4] == b":W&B"
    rows, pos, buf, block = [], 7, b"", 32768
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        if kind == 0:
            break
        buf, pos = buf + data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(buf)
            buf = b""
            if record.WhichOneof("record_type") == "history":
                items = record.history.item
                rows.append(
                    {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in items}
                )
    return rows


def test_cli_bc_wandb_offline_run_holds_the_losses(demos, capsys, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    _, data = demos
    path = save_dataset(data, tmp_path / "demos.npz")
    argv = ["bc", "--dataset", str(path), "--steps", "100", "--hidden", "8", "--eval-episodes", "1"]
    res = run_cli(capsys, *argv, "--wandb-project", "p", "--no-progress", "--json")
    rows = [r for r in wandb_history(tmp_path) if "bc_loss" in r]
    assert [r["_step"] for r in rows] == list(range(1, 101))  # every 1% of the steps
    assert rows[-1]["bc_loss"] == pytest.approx(res["final_loss"], rel=1e-6)


def test_cli_wandb_without_the_package_is_a_clear_error(demos, capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` now raises ImportError
    _, data = demos
    path = save_dataset(data, tmp_path / "demos.npz")
    with pytest.raises(SystemExit):
        main(["bc", "--dataset", str(path), "--wandb-project", "p", "--json"])
    error = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
    assert "--wandb-project" in error["message"] and "pip install" in error["message"]


@pytest.mark.parametrize(
    "argv",
    [
        ["dagger", "--env", "CartPole-v1"],
        ["hades", "--env", "CartPole-v1"],
        ["train-expert", "--env", "CartPole-v1"],
    ],
)
def test_cli_log_dir_that_is_a_file_is_refused_up_front(argv, capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit):
        main([*argv, "--out", str(tmp_path / "out"), "--log-dir", str(tmp_path / "file"), "--json"])
    error = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
    assert "--log-dir" in error["message"] and "is a file" in error["message"]
    assert not (tmp_path / "out").exists()


def test_csv_logger_widens_for_a_metric_first_seen_later(tmp_path):
    """Evaluation returns arrive in their own rows after the training rows: the CSV keeps
    them (header widened, earlier rows empty there), and appending continues the header."""
    import csv

    from jaxbc.logs import CSVLogger

    path = tmp_path / "metrics.csv"
    log = CSVLogger(path)
    log.log(10, {"loss": 1.0})
    log.log(20, {"loss": 0.5})
    log.log(20, {"eval_return": 42.0})
    log.log(30, {"loss": 0.25, "eval_return": 50.0})
    log.close()
    rows = list(csv.DictReader(path.open()))
    assert [r["step"] for r in rows] == ["10", "20", "20", "30"]
    assert [r["eval_return"] for r in rows] == ["", "", "42.0", "50.0"]
    assert [r["loss"] for r in rows] == ["1.0", "0.5", "", "0.25"]
    again = CSVLogger(path, append=True)
    again.log(40, {"loss": 0.125, "eval_return": 60.0})
    again.close()
    assert list(csv.DictReader(path.open()))[-1] == {
        "step": "40",
        "loss": "0.125",
        "eval_return": "60.0",
    }
