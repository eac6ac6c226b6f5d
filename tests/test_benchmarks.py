"""The benchmark scripts run end to end at their smallest scale (so they never rot)."""

import dataclasses
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from jaxbc import envs, studies
from jaxbc.bc import BCConfig
from jaxbc.envs.multimodal import TWO_GOALS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # a benchmark's smoke run (compiles its programs): ~1-2 min each
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
    assert (tmp_path / "swarm_bc_profiles.png").exists()
    stats = data["statistics"]
    assert len(stats["paired"]) == 2 * 3  # (CartPole, 1 and 2 episodes) x 3 comparisons
    assert set(stats["aggregate"]["metrics"]) == {"bc", "ensemble", "swarm"}
    runs = data["runs"]
    assert all(r["action_difference_expert"] == 0.0 for r in runs if r["method"] == "bc")
    assert all(r["action_difference_expert"] > 0.0 for r in runs if r["method"] != "bc")


def _benchmark_module(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses resolve annotations through it
    spec.loader.exec_module(mod)
    return mod


def _swarm_module():
    return _benchmark_module("swarm_bc")


def test_hades_study_aggregates_pair_the_variants_on_common_seeds():
    """Tasks both variants finished on the same seeds enter the score matrices ([seeds,
    tasks]); a task with one variant only, or other seeds, does not; F over R everywhere
    gives P(F > R) = 1."""
    mod = _benchmark_module("hades")
    rows = []
    for env, d, variants, seeds in (
        ("A", 4, "FR", (0, 1, 2)),
        ("B", 64, "FR", (0, 1, 2)),
        ("C", 4, "F", (0, 1, 2)),  # R not run yet
        ("D", 4, "FR", (0, 1)),  # F and R on 2 seeds only: the common seeds would be 2
    ):
        for v in variants:
            for s in seeds:
                new = 0.5 + 0.1 * s if v == "F" else 0.1 * s
                fixed = 0.9 if v == "F" else None
                rows.append(
                    {"env": env, "dataset_size": d, "variant": v, "seed": s,
                     "scaled_mean_data_new_inits": new, "scaled_mean_data_fixed_init": fixed}
                )  # fmt: skip
    scores, tasks = mod.variant_scores(rows)
    assert tasks == ["A D=4", "B D=64", "D D=4"]
    np.testing.assert_allclose(scores["HaDES-F, new inits"], [[0.5] * 3, [0.6] * 3])  # seeds 0, 1
    np.testing.assert_allclose(scores["HaDES-R, new inits"], [[0.0] * 3, [0.1] * 3])
    stats = mod.statistics(rows, reps=200)
    assert stats["probability_of_improvement"]["HaDES-F, new inits > HaDES-R, new inits"][
        "point"
    ] == pytest.approx(1.0)
    assert mod.variant_scores([r for r in rows if r["seed"] == 0]) == ({}, [])  # one seed


def test_hades_study_against_a_baseline_pairs_runs_on_seeds(tmp_path):
    """A re-run against an earlier folder: after - before per (env, D, variant) over the
    seeds both ran; +0.1 on every seed reads [0.1, 0.1], "supported"; a measure a variant
    lacks (R's fixed init) or a group with one shared seed is left out; another scale's
    folder is refused."""
    mod = _benchmark_module("hades")

    def row(env, v, s, new):
        fixed = None if v == "R" else new + 0.2
        return {"env": env, "dataset_size": 4, "variant": v, "seed": s,
                "scaled_mean_data_new_inits": new, "scaled_mean_data_fixed_init": fixed}  # fmt: skip

    before = [row("A", v, s, 0.1 * s) for v in "FR" for s in range(3)] + [row("B", "F", 0, 0.0)]
    after = [row("A", v, s, 0.1 * s + 0.1) for v in "FR" for s in range(3)]
    after += [row("B", "F", s, 0.5) for s in range(3)]  # seed 0 only in both folders
    (tmp_path / "hades.json").write_text(
        json.dumps({"meta": {"scale": "families"}, "runs": before})
    )
    cmp = mod.against_baseline(after, tmp_path, "families")
    got = {(r["env"], r["variant"], r["measure"]): r for r in cmp["rows"]}
    assert set(got) == {
        ("A", "F", "scaled_mean_data_fixed_init"),
        ("A", "F", "scaled_mean_data_new_inits"),
        ("A", "R", "scaled_mean_data_new_inits"),
    }
    for r in got.values():
        assert r["seeds"] == [0, 1, 2]
        assert r["after_minus_before"]["mean"] == pytest.approx(0.1)
        assert r["after_minus_before"]["ci"] == pytest.approx([0.1, 0.1])
        assert r["after_minus_before"]["reading"] == "supported"
    assert got[("A", "F", "scaled_mean_data_fixed_init")]["before"]["mean"] == pytest.approx(0.3)
    assert "| A | 4 | R | data, new inits (scaled) | 3 |" in "\n".join(mod.baseline_section(cmp))
    with pytest.raises(SystemExit, match="scale"):
        mod.against_baseline(after, tmp_path, "cpu")
    # nothing to pair: the report says so; --report-only and a one-seed run refuse the flag
    lone = mod.against_baseline([row("B", "F", 0, 0.5)], tmp_path, "families")
    assert lone["rows"] == [] and "nothing to pair" in mod.baseline_section(lone)[-1]
    out = tmp_path / "after"
    out.mkdir()
    (out / "hades.json").write_text(
        json.dumps({"meta": {"scale": "families"}, "runs": [row("B", "F", 0, 0.5)]})
    )
    with pytest.raises(SystemExit, match="nothing to pair"):
        mod.rewrite_report(out, "families", tmp_path)
    with pytest.raises(SystemExit, match="needs 2 or more; this run has 1"):
        mod.main(scale="cpu", baseline=tmp_path, out_dir=out)


def test_hades_study_ablates_one_preset_setting(tmp_path):
    """--obs-normalization / --eval-actions replace the preset's setting in every job's
    config, and only there (the rest of the preset stays); --report-only refuses them."""
    mod = _benchmark_module("hades")
    brax = [j for j in mod.SCALES["families"].jobs if j.env_id == "brax/walker2d"]
    assert {mod.job_config(j, "F").obs_normalization for j in brax} == {"constant", "running"}
    ablated = mod.ablate(brax, {"obs_normalization": "none", "deterministic_eval": True})
    for job, before in zip(ablated, brax, strict=True):
        cfg, ref = mod.job_config(job, "F"), mod.job_config(before, "F")
        assert cfg.obs_normalization == "none" and cfg.deterministic_eval
        assert not ref.deterministic_eval
        assert dataclasses.replace(cfg, obs_normalization=ref.obs_normalization, deterministic_eval=False) == ref  # fmt: skip
    with pytest.raises(SystemExit, match="drop --obs-normalization"):
        mod.main(scale="families", report_only=True, out_dir=tmp_path, obs_normalization="none")


def test_dbc_study_aggregates_every_arm_over_envs_and_seeds():
    mod = _benchmark_module("dbc")
    rows = [
        {"env": e, "method": m, "seed": s, "scaled_return": 0.1 * s + (0.5 if m == "dbc" else 0.0)}
        for e in ("A", "B")
        for m in ("bc", "dbc", "ensemble", "swarm", "dbc_sweep")
        for s in range(3)
    ]
    scores, envs = mod.arm_scores(rows)
    assert envs == ["A", "B"] and set(scores) == {"bc", "dbc", "ensemble", "swarm"}
    np.testing.assert_allclose(scores["dbc"], [[0.5, 0.5], [0.6, 0.6], [0.7, 0.7]])
    stats = mod.statistics(rows, reps=200)
    assert stats["tasks"] == ["A", "B"]
    assert stats["probability_of_improvement"]["dbc > bc"]["point"] > 0.5


def test_dbc_study_reports_how_much_the_diffusion_term_weighed():
    """lambda_DM L_DM / L_BC per seed, then the mean: a reader sees whether the term acted."""
    mod = _benchmark_module("dbc")
    base = {"env": "A", "mean_return": 1.0, "scaled_return": 0.5, "goal_reach": None, "crash": None}
    rows = [
        {**base, "method": "bc", "lambda_dm": None, "seed": 0, "bc_loss": 0.1, "dm_loss": None},
        {**base, "method": "dbc", "lambda_dm": 0.2, "seed": 0, "bc_loss": 0.1, "dm_loss": 0.05},
        {**base, "method": "dbc", "lambda_dm": 0.2, "seed": 1, "bc_loss": 0.2, "dm_loss": 0.05},
    ]
    by = {r["method"]: r for r in mod.summarize(rows)}
    assert by["bc"]["dm_term_ratio"] is None
    assert by["dbc"]["dm_term_ratio"] == pytest.approx((0.2 * 0.5 + 0.2 * 0.25) / 2)


def test_dbc_study_pairs_each_arm_with_its_baseline_per_env():
    """DBC 0.2 above BC on every seed of env A, level on B: A's CI excludes 0, B's is 0."""
    mod = _benchmark_module("dbc")
    rng = np.random.default_rng(0)
    rows = []
    for e, gain in (("A", 0.2), ("B", 0.0)):
        for s in range(5):
            base = float(rng.uniform(0.2, 0.8))
            rows += [
                {"env": e, "method": "bc", "seed": s, "scaled_return": base},
                {"env": e, "method": "dbc", "seed": s, "scaled_return": base + gain},
            ]
    by = {(d["env"], d["x"], d["y"]): d for d in mod.statistics(rows, reps=200)["paired"]}
    assert set(by) == {("A", "dbc", "bc"), ("B", "dbc", "bc")}  # no ensemble arms: skipped
    assert by[("A", "dbc", "bc")]["mean"] == pytest.approx(0.2)
    assert by[("A", "dbc", "bc")]["reading"] == "supported"
    assert by[("B", "dbc", "bc")]["ci"] == [0.0, 0.0]
    assert by[("B", "dbc", "bc")]["reading"] == "not supported at this budget"


def test_counts_statistics_pair_seeds_and_read_the_ci():
    """Swarm better than the ensemble by 0.1 on every seed and task: paired CIs above 0;
    BC equal to the ensemble: a zero CI and P = 0.5."""
    mod = _swarm_module()
    rng = np.random.default_rng(0)
    rows = []
    for env in ("A", "B"):
        for s in range(6):
            base = float(rng.uniform(0.2, 0.6))
            for m, v in (("bc", base), ("ensemble", base), ("swarm", base + 0.1)):
                rows.append({"env": env, "episodes": 1, "method": m, "seed": s, "scaled_return": v})
    stats = mod.counts_statistics(rows, resamples=2000)
    by = {(p["env"], p["x"], p["y"]): p for p in stats["paired"]}
    for env in ("A", "B"):
        assert by[(env, "swarm", "ensemble")]["reading"] == "supported"
        assert by[(env, "swarm", "ensemble")]["mean"] == pytest.approx(0.1)
        assert by[(env, "ensemble", "bc")]["ci"] == [0.0, 0.0]
    poi = stats["aggregate"]["probability_of_improvement"]
    # unpaired: a random swarm run against a random ensemble run (seeds' bases differ)
    assert poi["swarm > ensemble"]["point"] > 0.5
    assert poi["ensemble > bc"]["point"] == 0.5  # the same scores: ties count half


def test_swarm_paper_protocol_rules():
    m = _swarm_module()
    # calibration: the largest budget inside [0.1, 0.6], else the closest (ties: smaller)
    assert m.choose_budget({50: 0.05, 100: 0.2, 250: 0.5, 1000: 0.9}) == 250
    assert m.choose_budget({50: 0.7, 100: 0.9}) == 50
    assert m.choose_budget({50: 0.0, 100: 0.05, 250: 0.65}) == 100
    assert m.choose_budget({50: 0.05, 100: 0.65}) == 50
    # paired bootstrap CI of the difference; readings follow the CI and the claimed direction
    x = np.array([0.5, 0.6, 0.55, 0.7, 0.65])
    d = studies.paired_ci(x, x - 0.1, resamples=2000)
    assert d["mean"] == pytest.approx(0.1) and d["ci"] == pytest.approx([0.1, 0.1])
    assert (
        d["reading"] == "supported" and studies.paired_ci(x, x - 0.1, -1)["reading"] == "opposite"
    )
    assert studies.reading(-0.1, 0.2, 1) == "not supported at this budget"
    assert studies.reading(float("nan"), float("nan")) == "no CI (too few seeds)"


@pytest.mark.slow
def test_swarm_paper_protocol_smoke(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "benchmarks/swarm_bc.py",
            "--protocol",
            "paper",
            "--scale",
            "smoke",
            "--out-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    data = json.loads((tmp_path / "swarm_paper.json").read_text())
    assert data["meta"]["penalty_form"] == "paper"
    cal = data["calibration"]["Pendulum-v1"]
    assert cal["chosen_budget"] in cal["budgets"]
    assert {r["arm"] for r in data["summary"]} == {"linear_relu", "tanh_head"}
    assert all(
        r["diff_scaled_return"]["reading"] for r in data["summary"] if r["tau"] > 0
    )  # paired Swarm - ensemble per tau
    assert all(r["scaled_return"]["ci"] is not None for r in data["summary"])  # 2 seeds
    assert (tmp_path / "swarm_paper_Pendulum-v1.png").exists()
    assert (tmp_path / "swarm_paper.md").exists() and (tmp_path / "swarm_paper.csv").exists()


@pytest.mark.slow  # a benchmark's smoke run (compiles its programs): ~1-2 min each
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
    assert (tmp_path / "dagger_profiles.png").exists()
    assert set(data["statistics"]["metrics"]) == {
        "BC (iteration 0)",
        "DAgger (last)",
        "gated (last)",
    }


@pytest.mark.slow  # a benchmark's smoke run (compiles its programs): ~1-2 min each
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


@pytest.mark.slow  # a benchmark's smoke run (compiles its programs): ~1-2 min each
def test_sweep_benchmark_smoke(tmp_path):
    subprocess.run(
        [sys.executable, "benchmarks/sweep.py", "--scale", "smoke", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    row = json.loads((tmp_path / "sweep_smoke.json").read_text())
    assert row["runs"] == 4 and row["floor_ratio"] > 0 and row["tflop"] > 0


@pytest.mark.slow
def test_hades_study_resumes_in_pieces(tmp_path):
    """A study run in two pieces keeps the first piece's runs and adds the rest, with the
    over-seeds summary (mean and 95% CI) once a group has two seeds."""
    cmd = [
        sys.executable,
        "benchmarks/hades.py",
        "--scale",
        "smoke",
        "--envs",
        "CartPole-v1",
        "--variants",
        "F",
        "--resume",
        "--out-dir",
        str(tmp_path),
    ]
    subprocess.run([*cmd, "--seeds", "1"], cwd=ROOT, check=True, capture_output=True)
    first = json.loads((tmp_path / "hades.json").read_text())["runs"]
    subprocess.run([*cmd, "--seeds", "2"], cwd=ROOT, check=True, capture_output=True)
    data = json.loads((tmp_path / "hades.json").read_text())
    assert [r["seed"] for r in data["runs"]] == [0, 1]
    assert data["runs"][0] == first[0]  # kept, not re-run
    (group,) = data["summary"]
    assert group["seeds"] == [0, 1]
    lo, hi = group["final_population_mean"]["ci"]
    assert lo <= group["final_population_mean"]["mean"] <= hi
    assert "Over seeds" in (tmp_path / "hades.md").read_text()


def test_peer_summary_pairs_seeds_of_each_framework(tmp_path):
    """Seed files of one scale become one summary: per-seed returns, and jaxbc - brax paired
    by seed (a constant +100 on every seed has the CI [100, 100])."""
    mod = _benchmark_module("peers/run_peer")

    def run(seed, base):
        arms = {
            a: {
                "final_return": {"mean": base + (100.0 if a.startswith("jaxbc") else 0.0)},
                "grad_steps_per_s": 200.0 if a.startswith("jaxbc") else 100.0,
                "env_steps_per_s": 1000.0,
                "run_s": 1.0,
                "compile_s": 2.0,
            }
            for a in ("brax_bc", "brax_dagger", "jaxbc_bc", "jaxbc_dagger")
        }
        o = {
            "arms": arms,
            "settings": {"seed": seed, "num_envs": 2},
            "command": f"run --seed {seed}",
            "machine": "test",
            "expert_return": {"mean": 2000.0},
        }
        name = "brax_bc_cpu_learn" + (f"_s{seed}" if seed else "")
        (tmp_path / f"{name}.json").write_text(json.dumps(o))

    for seed, base in ((0, 300.0), (1, 500.0), (2, 400.0)):
        run(seed, base)
    (tmp_path / "brax_bc_cpu_learn_seeds.json").write_text("{}")  # an older summary: ignored
    mod.summarize_seeds("cpu_learn", tmp_path)
    out = json.loads((tmp_path / "brax_bc_cpu_learn_seeds.json").read_text())
    assert out["seeds"] == [0, 1, 2]
    assert out["arms"]["jaxbc_bc"]["final_return_per_seed"] == [400.0, 600.0, 500.0]
    for p in out["paired"]:
        assert p["return_difference"] == 100.0 and p["ci"] == [100.0, 100.0]
        assert p["grad_steps_per_s_ratio_median"] == 2.0
    assert (tmp_path / "brax_bc_cpu_learn_seeds.md").read_text().count("|") > 20
    # the cpu stem's files are not mixed with other scales'; stale runs are refused
    (tmp_path / "brax_bc.json").write_text((tmp_path / "brax_bc_cpu_learn.json").read_text())
    with pytest.raises(SystemExit, match=r"2\+ seeds"):
        mod.summarize_seeds("cpu", tmp_path)
    o = json.loads((tmp_path / "brax_bc_cpu_learn_s2.json").read_text())
    o["settings"]["num_envs"] = 4
    (tmp_path / "brax_bc_cpu_learn_s2.json").write_text(json.dumps(o))
    with pytest.raises(SystemExit, match="other settings"):
        mod.summarize_seeds("cpu_learn", tmp_path)


@pytest.mark.slow  # trains a smoke-size DDPM, BC and DBC (~1 min)
def test_dbc_study_without_ensemble_arms(tmp_path):
    """members = 0 (the cpu_large scale's setting): BC and DBC only, and the report's pairs
    and aggregates work without the ensemble arms."""

    mod = _benchmark_module("dbc")
    sc = dataclasses.replace(mod.SCALES["smoke"], members=0)
    rows, info = mod.study_env(mod.TWO_GOALS, sc, 0)
    assert {r["method"] for r in rows} == {"bc", "dbc", "dbc_sweep"} or {
        r["method"] for r in rows
    } == {"bc", "dbc"}
    meta = {"command": "test", "machine": "test", "scale": "smoke", "seed": 0, "wall_time_s": 0.0}
    mod.write_locomotion(tmp_path, "dbc", meta, sc, [info], rows)
    out = json.loads((tmp_path / "dbc.json").read_text())
    assert [(d["x"], d["y"]) for d in out["statistics"]["paired"]] == [("dbc", "bc")]
    assert "no ensemble arms" in (tmp_path / "dbc.md").read_text()


@pytest.mark.slow  # a benchmark's smoke run (compiles its programs): ~1-2 min each
def test_dbc_study_smoke(tmp_path):
    subprocess.run(
        [sys.executable, "benchmarks/dbc.py", "--scale", "smoke", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    data = json.loads((tmp_path / "dbc.json").read_text())
    assert data["meta"]["command"] == f"python benchmarks/dbc.py --scale smoke --out-dir {tmp_path}"
    assert data["meta"]["settings"]["bc"]["steps"] == 300  # the scale's BCConfig, recorded
    assert {r["method"] for r in data["summary"]} == {"bc", "dbc", "dbc_sweep", "ensemble", "swarm"}
    assert [(d["x"], d["y"]) for d in data["statistics"]["paired"]] == [
        ("dbc", "bc"),
        ("ensemble", "bc"),
        ("swarm", "ensemble"),
    ]
    for f in ("dbc.md", "dbc.csv", "dbc.png", "dbc_profiles.png"):
        assert (tmp_path / f).exists()
    assert data["meta"]["seeds"] >= 3
    runs = data["runs"]
    assert all(r["env"] == TWO_GOALS and 0.0 <= r["goal_reach"] <= 1.0 for r in runs)
    assert all(r["dm_loss"] is not None for r in runs if r["method"] == "dbc")
    assert all(np.isfinite(r["mean_return"]) for r in runs)
    md = (tmp_path / "dbc.md").read_text()
    assert "goal reach" in md and "paper return (reference)" in md
    assert (tmp_path / "dbc.png").stat().st_size > 0


@pytest.mark.slow  # three tasks' DDPMs, BC and DBC at smoke size (~2-5 min)
def test_dbc_multimodal_smoke(tmp_path):
    cmd = [sys.executable, "benchmarks/dbc.py", "--protocol", "multimodal", "--scale", "smoke"]
    subprocess.run([*cmd, "--out-dir", str(tmp_path)], cwd=ROOT, check=True, capture_output=True)
    data = json.loads((tmp_path / "dbc_multimodal.json").read_text())
    assert [(c["task"], c["lambda_dm"]) for c in data["comparisons"]] == [
        ("toy_visible", 0.05), ("toy_visible", 1.0), ("toy_visible", 30.0),
        ("toy_hidden", 0.05), ("toy_hidden", 1.0), ("toy_hidden", 30.0), ("maze", 30.0),
    ]  # fmt: skip
    for f in ("dbc_multimodal.md", "dbc_multimodal.png", "dbc_ddpm_samples.png"):
        assert (tmp_path / f).exists()


def test_scale_record_holds_the_configs():
    """A scale's record nests its real configs (every BCConfig field), tuples as lists."""

    @dataclasses.dataclass(frozen=True)
    class S(studies.Scale):
        bc: BCConfig

    sc = S(("A", "B"), 3, BCConfig(steps=7)).only(["B"])
    rec = studies.record(sc)
    assert rec["envs"] == ["B"] and rec["seeds"] == 3
    assert rec["bc"]["steps"] == 7 and rec["bc"]["policy"]["hidden_sizes"] == [256, 256]
    assert set(rec["bc"]) == {f.name for f in dataclasses.fields(BCConfig)}
    assert json.loads(json.dumps(rec)) == rec
    meta = studies.metadata("benchmarks/x.py", "smoke", sc, 1.5, seed=0)
    assert meta["command"].startswith("python benchmarks/x.py") and meta["seeds"] == 3
    assert meta["settings"] == rec and meta["wall_time_s"] == 1.5 and meta["machine"]


def test_run_units_saves_each_unit_and_resumes(tmp_path):
    """Each unit is saved as it finishes; --resume reuses saved units with equal settings
    (their wall time kept) and recomputes those made with other settings."""
    calls = []

    def compute(unit):
        calls.append(unit)
        return {"value": len(unit)}

    res, _ = studies.run_units(tmp_path, ["a/b", "cc"], {"k": (1, 2)}, compute, resume=True)
    assert res["a/b"]["value"] == 3 and calls == ["a/b", "cc"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-b.json", "cc.json"]
    res2, wall = studies.run_units(tmp_path, ["a/b", "cc"], {"k": [1, 2]}, compute, resume=True)
    assert calls == ["a/b", "cc"] and res2 == res  # nothing re-run
    assert wall == pytest.approx(sum(r["wall_time_s"] for r in res.values()))
    studies.run_units(tmp_path, ["cc"], {"k": 3}, compute, resume=True)
    studies.run_units(tmp_path, ["a/b"], {"k": [1, 2]}, compute, resume=False)
    assert calls == ["a/b", "cc", "cc", "a/b"]


def test_score_matrix_pairs_arms_on_common_seeds_and_tasks():
    rows = [
        {"env": e, "m": m, "seed": s, "v": 10 * i + s}
        for i, (e, m, seeds) in enumerate(
            [("A", "x", (0, 1, 2)), ("A", "y", (0, 1, 2)), ("B", "x", (0, 1)), ("B", "y", (0, 1)),
             ("C", "x", (0, 1, 2))]
        )
        for s in seeds
    ]  # fmt: skip
    arms = {"x": ({"m": "x"}, "v"), "y": ({"m": "y"}, "v"), "z": ({"m": "z"}, "v")}
    scores, tasks = studies.score_matrix(rows, arms)
    assert tasks == [("A",), ("B",)] and set(scores) == {"x", "y"}  # C: no y; z: never ran
    np.testing.assert_array_equal(scores["y"], [[10, 30], [11, 31]])  # seeds 0, 1 only
    assert studies.score_matrix(rows, arms, min_seeds=3) == ({}, [])
    pairs = studies.paired(rows, [("y", "x")], arm="m", value="v")
    assert [(p["env"], p["mean"], p["n"]) for p in pairs] == [("A", 10.0, 3), ("B", 10.0, 2)]
    assert studies.group_stats(rows[:3], ("env",), ("v",))[0] | {} == {
        "env": "A", "v": 1.0, "v_std": pytest.approx(np.std([0, 1, 2])), "n": 3
    }  # fmt: skip


def test_hades_parity_pairs_seeds_and_reads_generations(tmp_path):
    """Per-run JSONs become per-generation means with CIs per side, and jaxbc - official
    paired on common seeds at the report generations (+1 on every seed: the CI [1, 1])."""
    mod = _benchmark_module("peers/run_hades_parity")
    task = mod.Task(
        "Breakout-MinAtar", "Breakout-MinAtar", 16, "SNES", "constant", ("F",), 8, 6, (0, 1, 2)
    )
    (tmp_path / "runs").mkdir()
    for seed in task.seeds:
        curve = [float(g + seed) for g in range(task.generations)]
        sides = {"official": curve, "jaxbc": [c + 1.0 for c in curve]}
        for side, mean in sides.items():
            if side == "jaxbc" and seed == 2:
                continue  # not run yet: pairs use seeds 0 and 1 only
            run = {"mean": mean, "best": [m + 2 for m in mean], "seconds": 1.0}
            (tmp_path / "runs" / f"{mod.tag(side, task, 'F', seed)}.json").write_text(
                json.dumps(run)
            )
    group = mod.summarize(task, "F", mod.load_runs(tmp_path, task, "F"))
    assert group["seeds"] == {"official": [0, 1, 2], "jaxbc": [0, 1]}
    official = {c["generation"]: c for c in group["curves"]["official"]}
    assert official[3]["mean"] == pytest.approx(3.0) and official[3]["n"] == 3
    lo, hi = official[3]["ci"]
    assert 2.0 <= lo < 3.0 < hi <= 4.0
    assert [p["generation"] for p in group["paired_difference"]] == [5]  # 10, 20, 40 > 6 gens
    p = group["paired_difference"][0]
    assert p["seeds"] == [0, 1] and p["diff"] == 1.0 and p["ci"] == [1.0, 1.0]
    level = group["paired_difference_over_generations"]  # each seed's whole curve, paired
    assert level["seeds"] == [0, 1] and level["diff"] == 1.0 and level["ci"] == [1.0, 1.0]
    meta = {
        "command": "run",
        "machine": "test",
        "official_commit": "abc",
        "official_versions": {"evosax": "0.1.4"},
        "jaxbc_versions": {"jax": "x", "evosax": "y"},
        "jaxbc_obs_normalization": "none",
        "scale": "test",
        "jaxbc_moments_sha256": {task.env_id: mod.own_moments_digest(task, mod.Arm())},
    }
    mod.write_report(tmp_path / "parity", meta, [group])
    md = (tmp_path / "parity.md").read_text()
    assert "| 5 | 5.00 [" in md and "1.00 [1.00, 1.00] (2)" in md
    assert "| mean over generations 1-6 | - | - | 1.00 [1.00, 1.00] (2) |" in md
    rows = (tmp_path / "parity.csv").read_text().splitlines()
    assert len(rows) == 1 + 6 + 6  # header + each side's 6 generations
    # the notes name the arm; a report of imported runs names every file they came from
    arm = mod.notes(mod.Arm(moments="official", init="run-seed"))
    assert any("official: PRNGKey(seed);" in n for n in arm)
    assert any("the same on both sides" in n for n in arm)
    assert any("jaxbc, a fresh reset" in n for n in arm)
    plain = mod.notes(mod.Arm())
    assert not any("the same on both sides" in n for n in plain)
    assert any(
        "jaxbc, the env's first start state" in n for n in mod.notes(mod.Arm(restart="first"))
    )
    mod.write_report(tmp_path / "both", meta | {"imported_runs_from": ["a.json", "b.json"]}, [group])  # fmt: skip
    assert "Runs imported from `a.json`, `b.json` (per-seed curves)" in (tmp_path / "both.md").read_text()  # fmt: skip
    # the results file's per-seed curves rebuild the runs (--import-runs): the same report
    args = types.SimpleNamespace(work_dir=tmp_path / "work", arm=mod.Arm(), scale="test")
    (args.work_dir / "runs").mkdir(parents=True)
    assert mod.import_runs(tmp_path / "parity.json", (task,), args) == 5
    again = mod.summarize(task, "F", mod.load_runs(args.work_dir, task, "F"))
    for key in ("curves", "paired_difference", "paired_difference_over_generations", "seeds"):
        assert again[key] == group[key], key
    assert mod.import_runs(tmp_path / "parity.json", (task,), args) == 0  # kept runs win
    # another official arm: only the jaxbc side's runs are this command's
    args.work_dir, args.arm = tmp_path / "work2", mod.Arm(init="run-seed")
    (args.work_dir / "runs").mkdir(parents=True)
    assert mod.import_runs(tmp_path / "parity.json", (task,), args) == 2
    half = mod.load_runs(args.work_dir, task, "F", args.arm)
    assert sorted(half["jaxbc"]) == [0, 1] and half["official"] == {}
    # a jaxbc arm: only the official side's runs are imported
    args.work_dir, args.arm = tmp_path / "work3", mod.Arm(restart="first")
    (args.work_dir / "runs").mkdir(parents=True)
    assert mod.import_runs(tmp_path / "parity.json", (task,), args) == 3
    # jaxbc runs made on constant moments other than the package's now are not imported
    stale = meta | {"jaxbc_moments_sha256": {task.env_id: "0" * 64}}
    mod.write_report(tmp_path / "stale", stale, [group])
    args.work_dir, args.arm = tmp_path / "work4", mod.Arm()
    (args.work_dir / "runs").mkdir(parents=True)
    assert mod.import_runs(tmp_path / "stale.json", (task,), args) == 3
    assert mod.load_runs(args.work_dir, task, "F")["jaxbc"] == {}
    other = dataclasses.replace(task, population=64)
    with pytest.raises(SystemExit, match="population 8 x 6 generations, not a task"):
        mod.import_runs(tmp_path / "parity.json", (other,), args)


def test_hades_parity_official_moments_are_their_own_runs(tmp_path):
    """--jaxbc-moments official: the official flat .npy moments become an obs_stats file in
    the env's observation shape (C order), and only constant-moment jaxbc runs get their own
    file names (the official side and running-moment tasks are shared)."""
    mod = _benchmark_module("peers/run_hades_parity")
    breakout, hopper = mod.SCALES["cpu-r"]
    params = tmp_path / "repo" / "normalize_params"
    params.mkdir(parents=True)
    flat = np.arange(400, dtype=np.float32)
    np.save(params / "mean_Breakout-MinAtar.npy", flat)
    np.save(params / "var_Breakout-MinAtar.npy", flat + 1)
    args = type("A", (), dict(work_dir=tmp_path / "work", official_repo=tmp_path / "repo"))()
    with np.load(mod.official_moments(args, breakout)) as f:
        assert f["mean"].shape == (10, 10, 4) and f["mean"][0, 0, 1] == 1.0
        assert f["var"][0, 1, 0] == 5.0  # C order: index (0, 1, 0) is flat element 4
    # the gap to the package's moments: largest |differences|, std ratio over varying cells
    ours = np.load(envs.obs_stats_path("Breakout-MinAtar"))
    gap = mod.moments_gap(args, breakout)
    assert gap["max_abs_mean_difference"] == pytest.approx(
        np.abs(ours["mean"] - flat.reshape(10, 10, 4)).max()
    )
    varying = ours["var"] > 1e-6
    ratio = np.sqrt((flat + 1).reshape(10, 10, 4)[varying] / ours["var"][varying])
    assert (gap["std_ratio_min"], gap["std_ratio_max"]) == pytest.approx((ratio.min(), ratio.max()))
    official_moments = mod.Arm(moments="official")
    assert mod.tag("jaxbc", breakout, "R", 0, official_moments).startswith(
        "jaxbc-official-moments_"
    )
    # the official HaDES-F runs with a per-seed init are their own runs too (R has no fixed init)
    breakout_f = mod.SCALES["cpu"][0]
    per_seed = mod.Arm(init="run-seed")
    assert mod.tag("official", breakout_f, "F", 0, per_seed).startswith("official-init-per-seed_")
    plain = mod.tag("official", breakout, "R", 0)
    assert mod.tag("official", breakout, "R", 0, per_seed) == plain
    assert mod.tag("official", breakout, "R", 0, official_moments) == plain
    assert mod.tag("jaxbc", hopper, "R", 0, official_moments) == mod.tag("jaxbc", hopper, "R", 0)
    # restarting at the first start state changes jaxbc's Brax runs only
    first = mod.Arm(restart="first")
    assert mod.tag("jaxbc", hopper, "R", 0, first).startswith("jaxbc-restart-first_hopper")
    assert mod.tag("jaxbc", breakout, "R", 0, first) == mod.tag("jaxbc", breakout, "R", 0)
    assert mod.tag("official", hopper, "R", 0, first) == mod.tag("official", hopper, "R", 0)
    assert first.suffix() == "_restart-first" and mod.Arm().suffix() == ""


def test_hades_official_replays_the_stored_settings():
    """The official driver rebuilds the stored run's flags (MinAtar-only flags not passed to
    the Brax script) and refuses a rebuilt config that differs from the stored one."""
    mod = _benchmark_module("peers/hades_official")
    args = type("A", (), dict(popsize=16, generations=5, seed=1, work_dir=Path("/w")))()
    stored = {"LR": 0.005, "NUM_STEPS": 1024, "NET": "mlp", "OVERFIT": True, "NORMALIZE_OBS": True}
    es = {"dataset_size": 64, "rollouts_per_candidate": 1, "temperature": 20.0}
    argstring = mod.build_argstring("brax", stored, es, args).split()
    assert "--num_steps" not in argstring and "--net" not in argstring
    assert "--temperature" not in argstring and "--overfit" in argstring
    assert argstring[argstring.index("--normalize_obs") + 1] == "1"
    assert argstring[argstring.index("--popsize") + 1] == "16"
    minatar = mod.build_argstring("minatar", stored, es, args).split()
    assert "--num_steps" in minatar and "--temperature" in minatar
    mod.check_reproduced(stored, {**stored, "SEED": 3}, {"SEED"}, "config")
    with pytest.raises(SystemExit, match="LR"):
        mod.check_reproduced(stored, {**stored, "LR": 0.01}, set(), "config")
    with pytest.raises(SystemExit, match="no running"):
        mod.normalization_flags("minatar", "running", stored)


def test_brax_env_parity_compares_episodes_to_the_first_end():
    """One fixed action sequence until the first episode end on each side; the comparison
    covers the steps both sides took and reports each side's own length and return."""
    mod = _benchmark_module("peers/brax_env_parity")

    def side(end: int, drift: float):
        def reset(key):
            return np.zeros(2), 0

        def step(t, a):
            t += 1
            obs = np.full(2, t * (1.0 + drift)) + np.asarray(a)[:2]
            return obs, t, 1.0, t == end

        return mod.episode(reset, step, 3)

    official, ours = side(5, 0.0), side(4, 0.01)
    assert official["length"] == 5 and ours["length"] == 4 and len(ours["obs"]) == 5
    row = mod.compare(official, ours)
    assert row["official_return"] == 5.0 and row["jaxbc_return"] == 4.0
    assert row["max_obs_diff"] == pytest.approx(0.04, abs=1e-6)  # step 4: 4 * 0.01
    assert mod.compare(official, official)["max_obs_diff"] == 0.0


def test_obs_stats_ppo_source_keeps_a_running_normalisers_statistics(tmp_path):
    """--source ppo: the moments are those of a PPO run with the normaliser on, so a cell the
    run never saw set keeps the variance a normaliser started at (0, 1, count 1e-4) leaves,
    1e-4 / N: the signature of the official MinAtar files. The file loads as constant stats."""
    obs_stats = _benchmark_module("obs_stats")
    out = tmp_path / "breakout.npz"
    obs_stats.main(env=("Breakout-MinAtar",), total_timesteps=8192, out=out)
    meta = json.loads(out.with_suffix(".json").read_text())
    (count,) = meta["sources"].values()
    assert count == pytest.approx(8192, rel=1e-3)
    with np.load(out) as f:
        mean, var = f["mean"], f["var"]
    never = mean == 0.0  # e.g. the paddle channel above the bottom row
    assert never[..., 0].sum() >= 80
    np.testing.assert_allclose(var[never], 1e-4 / count, rtol=1e-2)
    seen = ~never
    np.testing.assert_allclose(var[seen], mean[seen] * (1 - mean[seen]), atol=1e-3)  # binary
    env = envs.make("Breakout-MinAtar", obs_normalization="constant", obs_stats=str(out))
    assert dict(env.options)["obs_stats"] == str(out)


def test_hades_speed_splits_a_generation_with_a_running_normaliser():
    """The smoke configuration (running observation moments, as paper_hopper) is timed whole
    and in parts: the generation, its fitness program and ES ask + tell, and the rest."""
    row = _benchmark_module("hades_speed").measure("smoke", 1)
    assert row["config"] == "smoke" and row["population"] == 8 and row["inits"] == 2
    for k in (
        "gen_s",
        "inner_only_s",
        "rollout_only_s",
        "env_only_s",
        "fitness_only_s",
        "es_only_s",
    ):
        assert row[k] > 0, k
    assert row["unattributed_s"] == pytest.approx(
        row["gen_s"] - row["fitness_only_s"] - row["es_only_s"]
    )
