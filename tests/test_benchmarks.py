"""The benchmark scripts run end to end at their smallest scale (so they never rot)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_swarm_study_smoke(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "benchmarks/swarm_bc.py",
            "--scale",
            "smoke",
            "--envs",
            "CartPole-v1",
            "--out-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    data = json.loads((tmp_path / "swarm_bc.json").read_text())
    assert {r["method"] for r in data["summary"]} == {"bc", "ensemble", "swarm"}
    assert (tmp_path / "swarm_bc.md").exists() and (tmp_path / "swarm_bc_returns.png").exists()
    runs = data["runs"]
    assert all(r["action_difference_expert"] == 0.0 for r in runs if r["method"] == "bc")
    assert all(r["action_difference_expert"] > 0.0 for r in runs if r["method"] != "bc")


def test_speed_json_keys():
    p = subprocess.run(
        [
            sys.executable,
            "benchmarks/speed.py",
            "--steps",
            "20",
            "--repeats",
            "1",
            "--members",
            "2",
            "--json",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    res = json.loads(p.stdout.strip().splitlines()[-1])
    for k in (
        "bc_steps_per_s",
        "ensemble_member_steps_per_s",
        "swarm_member_steps_per_s",
        "compile_s",
        "dagger_10_iters_s",
        "ceiling_steps_per_s",
        "hades_gen_s",
        "hades_env_steps_per_s",
    ):
        assert res[k] > 0


@pytest.mark.slow
def test_dagger_study_smoke(tmp_path):
    subprocess.run(
        [sys.executable, "benchmarks/dagger.py", "--scale", "smoke", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    data = json.loads((tmp_path / "dagger.json").read_text())
    assert {r["variant"] for r in data["summary"]} == {"dagger", "gated"}
    assert (tmp_path / "dagger.png").exists() and (tmp_path / "dagger.md").exists()


def test_hades_sweep_smoke(tmp_path):
    cmd = [
        sys.executable,
        "benchmarks/hades_sweep.py",
        "--generations",
        "2",
        "--chunk",
        "1",
        "--population",
        "8",
        "--out-dir",
        str(tmp_path),
        "--only",
    ]
    subprocess.run(
        [*cmd, "snes_s0.1", "evosax_weights_first"], cwd=ROOT, check=True, capture_output=True
    )
    data = json.loads((tmp_path / "hades_sweep.json").read_text())
    assert [r["setting"] for r in data["rows"]] == ["snes_s0.1", "evosax_weights_first"]
    assert [r["config"]["fitness_episodes"] for r in data["rows"]] == ["all", "first"]
    assert all(len(r["chunk_means"]) == 2 for r in data["rows"])
    assert "snes_s0.1" in (tmp_path / "hades_sweep.md").read_text()
    bad = subprocess.run([*cmd, "no_such_setting"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown setting(s) ['no_such_setting']" in bad.stderr


def test_sweep_benchmark_smoke(tmp_path):
    subprocess.run(
        [sys.executable, "benchmarks/sweep.py", "--scale", "smoke", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    row = json.loads((tmp_path / "sweep_smoke.json").read_text())
    assert row["runs"] == 4 and row["floor_ratio"] > 0 and row["tflop"] > 0
