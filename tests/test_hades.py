import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbc import envs
from jaxbc.bc import BCConfig, PolicyConfig, make_bc_train
from jaxbc.data import Dataset, load_dataset, save_dataset
from jaxbc.hades import (
    HadesConfig,
    HillClimber,
    distilled_dataset,
    episode_returns,
    fitness_shaping_fn,
    make_hades,
    make_strategy,
    paper_strategy_options,
    plot_dataset,
    run_hades,
    run_seconds,
    save_curves,
    solution_template,
    state_image,
)
from jaxbc.rollout import window_return_fn, window_score_fn

ROOT = Path(__file__).resolve().parent.parent
TINY_POLICY = PolicyConfig(hidden_sizes=(8, 8), activation="relu", torso="mlp", tanh_bounded=False)
TINY = HadesConfig(
    env_id="CartPole-v1",
    env_options=(("max_steps_in_episode", 50),),
    dataset_size=4,
    inner_steps=10,
    num_envs=2,
    policy=TINY_POLICY,
)


def _tiny(config: HadesConfig = TINY, name: str = "SNES", population: int = 8, **options):
    es = make_strategy(name, population, solution_template(config), **({"sigma": 0.5} | options))
    return make_hades(config, es)


def _leaves(tree):
    return [
        np.asarray(
            jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
        )
        for x in jax.tree.leaves(tree)
    ]


@pytest.mark.parametrize("episodes", ["first", "all", "last"])
def test_generation_summaries_and_member_fitness_is_independent_train_and_evaluate(episodes):
    h = _tiny(dataclasses.replace(TINY, fitness_episodes=episodes))
    state = jax.jit(h.init)(jax.random.key(0))
    new, info = jax.jit(h.generation)(state)
    s = info.summary
    assert all(np.isfinite(float(x)) for x in (s.best, s.mean, s.std))
    np.testing.assert_allclose(float(s.mean), float(info.returns.mean()), rtol=1e-6)
    assert float(s.best) == float(info.returns.max()) == float(new.best_fitness)
    assert int(new.generation) == 1 and info.returns.shape == (8,)
    assert info.population["obs"].shape == (8, 4, 4)  # [P, D, obs_dim]; CartPole: fixed labels only
    # member 5 again, outside any population vmap: BC from the init, then a plain rollout
    i = 5
    member = jax.tree.map(lambda x: x[i], info.population)
    init = jax.tree.map(lambda x: x[0], info.inits)
    k_eval = jax.random.split(info.eval_key, 1)[0]

    @jax.jit
    def train_then_evaluate(data, init, key):
        params = {"net": h.train(data, init)}
        if episodes != "first":  # episodes ending in the window (envs auto-reset)
            return window_return_fn(h.env, h.policy_fn(), TINY.num_envs, h.eval_steps, episodes)(
                params, key
            )
        return episode_returns(
            h.env, h.policy_fn(), params, key, TINY.num_envs, h.eval_steps
        ).mean()

    ret = train_then_evaluate(member, init, k_eval)
    np.testing.assert_allclose(float(ret), float(info.returns[i]), rtol=1e-5)
    # the best dataset is the best member's
    best = int(jnp.argmax(info.returns))
    np.testing.assert_array_equal(new.best_data["obs"], info.population["obs"][best])


def test_inner_loop_equals_bc_trainer_on_the_distilled_dataset():
    """HaDES's inner loop and the BC trainer with ``hades.bc_config()`` on the saved dataset
    train the same policy (one fit loop, same recipe)."""
    h = _tiny()
    state, _ = jax.jit(h.generation)(jax.jit(h.init)(jax.random.key(0)))
    ds = distilled_dataset(h, state, "best")
    direct = jax.jit(h.train)(state.best_data, state.fixed_init)
    init_net = jax.tree.map(lambda x: x[None], state.fixed_init)
    via_bc = jax.jit(make_bc_train(h.bc_config()))(jax.random.key(1), ds, None, init_net)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b[0], rtol=1e-5, atol=1e-6),
        direct,
        via_bc.params["net"],
    )


def test_member_blocks_give_the_same_fitness():
    """Blocked population evaluation (lax.map over blocks, vmap inside; block 1: no vmap) of
    the inner loop and of the rollouts equals the plain vmap, and each member's fitness is
    :meth:`Hades.fitness` of its data alone."""
    fits = {}
    for train, member in ((0, 0), (1, 1), (3, 3), (1, 4)):  # 3 leaves a remainder
        h = _tiny(dataclasses.replace(TINY, member_block=member, train_block=train, variant="R"))
        state = jax.jit(h.init)(jax.random.key(0))
        _, info = jax.jit(h.generation)(state)
        fits[train, member] = np.asarray(info.returns)
    for blocks, f in fits.items():
        np.testing.assert_allclose(f, fits[0, 0], rtol=1e-5, atol=1e-5, err_msg=str(blocks))
    one = jax.jit(h.fitness)(
        jax.tree.map(lambda x: x[5], info.population), info.inits, info.eval_key
    )
    np.testing.assert_allclose(one, fits[0, 0][5], rtol=1e-5, atol=1e-5)
    for name in ("member_block", "train_block"):
        with pytest.raises(ValueError, match=name):
            HadesConfig(**{name: -1}).validate()


def test_hades_f_fixed_init_and_hades_r_fresh_inits():
    f = _tiny()
    gen_f = jax.jit(f.generation)
    s0 = jax.jit(f.init)(jax.random.key(1))
    s0_again = jax.jit(f.init)(jax.random.key(1))
    for a, b in zip(_leaves(s0), _leaves(s0_again), strict=True):
        np.testing.assert_array_equal(a, b)  # deterministic given the key
    s1, i1 = gen_f(s0)
    _, i2 = gen_f(s1)
    assert jax.tree.leaves(i1.inits)[0].shape[0] == 1
    for a, b, c in zip(_leaves(i1.inits), _leaves(i2.inits), _leaves(s0.fixed_init), strict=True):
        np.testing.assert_array_equal(a, b)  # the same init every generation ...
        np.testing.assert_array_equal(a[0], c)  # ... the one drawn at init
    r = _tiny(dataclasses.replace(TINY, variant="R", num_inits=2))
    gen_r = jax.jit(r.generation)
    r0 = jax.jit(r.init)(jax.random.key(1))
    assert r0.fixed_init is None
    r1, j1 = gen_r(r0)
    _, j2 = gen_r(r1)
    w1, w2 = j1.inits["params"]["Dense_0"]["kernel"], j2.inits["params"]["Dense_0"]["kernel"]
    assert w1.shape[0] == 2 and not np.allclose(w1[0], w1[1])  # two different inits ...
    assert not np.allclose(w1, w2)  # ... fresh every generation
    assert not np.allclose(np.asarray(j1.returns), np.asarray(i1.returns))


def test_hades_r_fitness_pools_the_episodes_of_its_inits():
    """HaDES-R's "all" fitness is the mean return of every episode that both inits' policies
    finished (the official code's pooling), not the mean of the two per-init means."""
    cfg = dataclasses.replace(
        TINY, variant="R", fitness_episodes="all", eval_steps=120, deterministic_eval=False
    )
    h = _tiny(cfg)
    _, info = jax.jit(h.generation)(jax.jit(h.init)(jax.random.key(0)))
    score = window_score_fn(h.env, h.policy_fn(), cfg.num_envs, 120, "all")

    @jax.jit
    def one_init(data, inits, j, key):
        return score({"net": h.train(data, jax.tree.map(lambda x: x[j], inits))}, key)

    data = jax.tree.map(lambda x: x[0], info.population)
    keys = jax.random.split(info.eval_key, 2)
    parts = [one_init(data, info.inits, j, keys[j]) for j in range(2)]
    totals = np.array([float(p.total) for p in parts])
    counts = np.array([float(p.count) for p in parts])
    assert counts[0] != counts[1]  # the inits' policies finish different numbers of episodes
    pooled = totals.sum() / counts.sum()
    np.testing.assert_allclose(float(info.returns[0]), pooled, rtol=1e-5)
    assert abs(pooled - np.mean(totals / counts)) > 1.0


@pytest.mark.parametrize("name", ["SNES", "Open_ES", "SimpleGA"])
def test_evosax_algorithms_by_name(name):
    h = _tiny(
        name=name, **({"lr": 0.05, "fitness_shaping": "z_score"} if name == "Open_ES" else {})
    )
    state, summary = h.run(jax.random.key(0), 2)
    assert summary.mean.shape == (2,) and np.isfinite(np.asarray(summary.mean)).all()
    assert int(state.generation) == 2
    mean = h.mean_data(state)
    assert mean["obs"].shape == (4, 4) and np.isfinite(np.asarray(mean["obs"])).all()


def test_unknown_algorithm_and_options_are_clear_errors():
    t = solution_template(TINY)
    with pytest.raises(ValueError, match="unknown evosax algorithm 'NoSuchES'.*SNES"):
        make_strategy("NoSuchES", 8, t)
    with pytest.raises(ValueError, match="unknown option.*bogus"):
        make_strategy("SNES", 8, t, bogus=1)
    with pytest.raises(ValueError, match="unknown fitness shaping"):
        make_strategy("Open_ES", 8, t, fitness_shaping="softmax")
    with pytest.raises(ValueError, match="lacks 'init'"):
        make_hades(TINY, object())
    with pytest.raises(ValueError, match="unknown HaDES variant"):
        make_hades(dataclasses.replace(TINY, variant="X"), HillClimber(8))
    with pytest.raises(ValueError, match="unknown fitness_episodes 'best'"):
        make_hades(dataclasses.replace(TINY, fitness_episodes="best"), HillClimber(8))


def test_custom_strategy_and_fitness_shaping():
    h = make_hades(TINY, HillClimber(8, sigma=0.5))
    state, summary = h.run(jax.random.key(0), 2)
    assert np.isfinite(np.asarray(summary.best)).all()
    # a (1, lambda) climber moves its incumbent to the generation's best child exactly
    new, info = jax.jit(h.generation)(state)
    best = int(jnp.argmax(info.returns))
    np.testing.assert_array_equal(new.es_state["obs"], info.population["obs"][best])
    from jaxbc.hades import fitness_shaping_fn

    f = jnp.array([3.0, 1.0, 2.0, 10.0])
    np.testing.assert_allclose(
        fitness_shaping_fn("centered_ranks")(None, f, None, None),
        [1 / 6, -0.5, -1 / 6, 0.5],
        rtol=1e-6,
    )
    z = fitness_shaping_fn("z_score")(None, f, None, None)
    np.testing.assert_allclose([float(z.mean()), float(z.std())], [0.0, 1.0], atol=1e-5)
    np.testing.assert_array_equal(fitness_shaping_fn("raw")(None, f, None, None), f)


def test_distillation_improves_cartpole():
    cfg = HadesConfig(
        env_id="CartPole-v1",
        env_options=(("max_steps_in_episode", 100),),
        dataset_size=4,
        inner_steps=20,
        num_envs=2,
        policy=PolicyConfig(
            hidden_sizes=(16, 16), activation="relu", torso="mlp", tanh_bounded=False
        ),
    )
    h = make_hades(cfg, make_strategy("SNES", 16, solution_template(cfg), sigma=0.05))
    _, summary = h.run(jax.random.key(0), 30)
    mean = np.asarray(summary.mean)
    # starts far from the 100-step cap (near-zero states barely steer the policy), ends near it
    assert mean[-3:].mean() > mean[:3].mean() + 25, mean
    assert mean[-3:].mean() > 80, mean


def test_sharded_population_equals_single_device():
    script = textwrap.dedent(
        """
        import dataclasses, json, sys
        import jax, numpy as np
        from jaxbc.bc import PolicyConfig
        from jaxbc.hades import HadesConfig, make_hades, make_strategy, solution_template
        assert jax.device_count() == 4, jax.devices()
        cfg = HadesConfig(env_id="CartPole-v1", env_options=(("max_steps_in_episode", 50),), dataset_size=4,
                          inner_steps=10, num_envs=2, policy=PolicyConfig(hidden_sizes=(8, 8), torso="mlp", tanh_bounded=False))
        es = make_strategy("SNES", 8, solution_template(cfg), sigma=0.5)
        out = {}
        for n in (4, 1):
            h = make_hades(dataclasses.replace(cfg, num_devices=n), es)
            state, summary = h.run(jax.random.key(0), 2)
            out[n] = [np.asarray(x).tolist() for x in (*summary, state.es_state.mean, state.es_state.std, state.best_data["obs"])]
            out[f"mesh{n}"] = None if h.mesh is None else dict(h.mesh.shape)
        print(json.dumps(out))
        """
    )
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu"
    )
    p = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert (
        out["mesh4"] == {"population": 4} and out["mesh1"] is None
    )  # split over 4 devices vs. plain vmap
    for a, b in zip(out["4"], out["1"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_checkpoint_kill_and_resume_equals_uninterrupted(tmp_path):
    def strategy():
        return make_strategy("SNES", 8, solution_template(TINY), sigma=0.5)

    key = jax.random.key(3)

    def run(directory: str, generations: int, resume: bool = False):
        return run_hades(
            TINY,
            strategy(),
            key,
            generations,
            checkpoint_dir=tmp_path / directory,
            checkpoint_every=2,
            resume=resume,
            progress=False,
        )

    full = run("a", 4)
    first = run("b", 2)
    assert first.resumed_from == 0 and int(first.state.generation) == 2
    resumed = run("b", 4, resume=True)
    assert resumed.resumed_from == 2 and int(resumed.state.generation) == 4
    for a, b in zip(_leaves(full.state), _leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(a, b)
    for k in ("generation", "best", "mean", "std"):
        np.testing.assert_array_equal(full.history[k], resumed.history[k])
    # wall seconds run across the resume: the first process's chunk is kept, the total grows
    secs = resumed.history["run_seconds"]
    assert secs.shape == (4,) and secs[1] == pytest.approx(first.history["run_seconds"][-1])
    assert np.all(np.diff(secs) >= 0) and run_seconds(resumed.history) > secs[1] > 0
    # a history saved before run_seconds was kept: unknown, not a wrong (partial) total
    hist_file = tmp_path / "b" / "hades_history.json"
    old_hist = json.loads(hist_file.read_text())
    del old_hist["run_seconds"]
    hist_file.write_text(json.dumps(old_hist))
    older = run("b", 6, resume=True)
    assert np.isnan(older.history["run_seconds"][:4]).all() and run_seconds(older.history) is None
    with pytest.raises(ValueError, match="another config"):
        run_hades(
            dataclasses.replace(TINY, inner_steps=11),
            strategy(),
            key,
            6,
            checkpoint_dir=tmp_path / "b",
            resume=True,
            progress=False,
        )
    with pytest.raises(ValueError, match="needs a checkpoint_dir"):
        run_hades(TINY, strategy(), key, 2, resume=True)
    # outputs of the run: dataset file in the expert-demo format, curves, pictures
    ds = distilled_dataset(full.hades, full.state, "best")
    assert (
        ds.size == 4
        and ds.num_episodes == 1
        and float(ds.episode_returns[0]) == float(full.state.best_fitness)
    )
    np.testing.assert_array_equal(ds.action, [0, 1, 0, 1])
    path = save_dataset(ds, tmp_path / "distilled.npz")
    back = load_dataset(path, envs.make("CartPole-v1", max_steps_in_episode=50))
    for k in ("obs", "action", "reward", "next_obs", "terminated", "episode_id", "episode_returns"):
        np.testing.assert_array_equal(getattr(back, k), getattr(ds, k))
    assert back.source.startswith("hades:F:SNES")
    mean_ds = distilled_dataset(full.hades, full.state, "mean", key=jax.random.key(0))
    assert np.isfinite(mean_ds.episode_returns).all()
    save_curves(full.history, tmp_path / "c.csv", tmp_path / "c.png")
    assert (tmp_path / "c.csv").read_text().splitlines()[0] == "generation,best,mean,std"
    assert (
        len((tmp_path / "c.csv").read_text().splitlines()) == 5
        and (tmp_path / "c.png").stat().st_size > 0
    )
    plot_dataset(ds, tmp_path / "d.png")
    assert (tmp_path / "d.png").stat().st_size > 0
    # `jaxbc bc` trains on it like on expert demonstrations
    res = jax.jit(
        make_bc_train(BCConfig(steps=5, batch_size=4, policy=PolicyConfig(hidden_sizes=(8,))))
    )(jax.random.key(0), back)
    assert np.isfinite(np.asarray(res.metrics["bc_loss"])).all()


def test_continuous_actions_and_minatar_pictures(tmp_path):
    cfg = dataclasses.replace(
        TINY, env_id="Pendulum-v1", env_options=(("max_steps_in_episode", 20),)
    )
    h = _tiny(cfg)
    assert set(h.template) == {"obs", "action"} and h.template["action"].shape == (4, 1)
    assert h.policy.kind == "gaussian"
    state, summary = h.run(jax.random.key(0), 1)
    assert np.isfinite(np.asarray(summary.mean)).all()
    ds = distilled_dataset(h, state, "best")
    assert ds.action.dtype == np.float32 and np.all(np.abs(ds.action) <= 2.0)
    save_dataset(ds, tmp_path / "pendulum.npz")
    # discrete with learned labels: soft-label logits are part of the solution
    lh = make_hades(dataclasses.replace(TINY, learn_labels=True), HillClimber(8))
    assert lh.template["logits"].shape == (4, 2)
    np.testing.assert_array_equal(lh.labels(lh.template), [0, 1, 0, 1])
    trained = lh.train(lh.template, lh.policy.init(jax.random.key(0)))  # soft-label targets
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(trained))
    with pytest.raises(ValueError, match="discrete actions only"):
        make_hades(dataclasses.replace(cfg, learn_labels=True), HillClimber(8))
    # MinAtar-shaped states become an image grid (argmax channel, coloured)
    obs = np.zeros((3, 10, 10, 4), np.float32)
    obs[0, 2, 3, 1] = 1.0
    img = state_image(obs[0])
    assert img.shape == (10, 10, 3) and img[2, 3].sum() > 0 and img[0, 0].sum() == 0
    fake = Dataset(
        obs,
        np.array([0, 1, 2], np.int32),
        np.zeros(3, np.float32),
        obs,
        np.zeros(3, bool),
        np.zeros(3, bool),
        np.zeros(3, np.int32),
        np.zeros(1, np.float32),
        "Breakout-MinAtar",
        envs.Discrete(3),
        (10, 10, 4),
    )
    plot_dataset(fake, tmp_path / "minatar.png")
    assert (tmp_path / "minatar.png").stat().st_size > 0


def test_cli_prints_json(tmp_path, capsys, monkeypatch):
    from jaxbc.hades.cli import hades
    from jaxbc.io import machine_description

    monkeypatch.setattr(sys, "argv", ["jaxbc", "hades", "--env", "CartPole-v1", "--out", "a b"])
    hades(
        "CartPole-v1",
        population=8,
        generations=2,
        checkpoint_every=2,
        inner_steps=5,
        hidden=(8,),
        eval_envs=2,
        eval_steps=50,
        out=tmp_path,
        checkpoint_dir=tmp_path / "ckpt",
        json=True,
    )
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (
        res["generations"] == 2
        and np.isfinite(res["final_best"])
        and np.isfinite(res["final_mean"])
    )
    assert Path(res["dataset"]).exists() and load_dataset(res["dataset"]).size == 4
    assert (tmp_path / "curves.png").exists() and (tmp_path / "distilled.png").exists()
    # the saved result says how it was made and where
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["command"] == "jaxbc hades --env CartPole-v1 --out 'a b'"
    assert saved["machine"] == machine_description() and saved["wall_time_s"] > 0


@pytest.mark.slow  # runs the study script end to end (~90 s); -m slow
def test_benchmark_smoke(tmp_path):
    p = subprocess.run(
        [
            sys.executable,
            "benchmarks/hades.py",
            "--scale",
            "smoke",
            "--envs",
            "CartPole-v1",
            "--transfer",
            "--out-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    data = json.loads((tmp_path / "hades.json").read_text())
    assert {(r["env"], r["variant"]) for r in data["runs"]} >= {
        ("CartPole-v1", "F"),
        ("CartPole-v1", "R"),
    }
    assert (tmp_path / "hades.md").exists() and (tmp_path / "hades.csv").exists()
    assert list(tmp_path.glob("hades_curves_*.png")) and list(tmp_path.glob("hades_data_*.png"))
    assert list((tmp_path / "hades_datasets").glob("*.npz"))
    assert {r["policy"] for r in data["transfer"]} == {"same", "1x8 tanh"}
    # a GPU run records its peak device memory; the CPU reports none
    cpu = jax.default_backend() == "cpu"
    assert all((r["device_peak_gib"] is None) == cpu for r in data["runs"])


def test_benchmark_memory_plan(tmp_path):
    p = subprocess.run(
        [
            sys.executable,
            "benchmarks/hades.py",
            "--scale",
            "smoke",
            "--envs",
            "CartPole-v1",
            "--memory",
            "--out-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    job = json.loads((tmp_path / "hades_memory_smoke.json").read_text())["jobs"][0]
    assert job["population"] == 8 and job["inits"] == 2 and job["total_gib"] > 0
    assert not (tmp_path / "hades.json").exists()  # nothing was run


def test_benchmark_report_only_rewrites_the_report_from_saved_runs(tmp_path):
    """A finished study's report again from its hades.json: nothing runs, the summary puts
    the paper's result on our scale, and flags that would run something are refused."""
    shutil.copy(ROOT / "benchmarks/results/hades_families/hades.json", tmp_path / "hades.json")

    def report(*flags: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "benchmarks/hades.py", "--out-dir", str(tmp_path), *flags]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)

    p = report("--scale", "families", "--report-only")
    assert p.returncode == 0, p.stderr[-3000:]
    saved = json.loads((tmp_path / "hades.json").read_text())
    md = (tmp_path / "hades.md").read_text()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["hades.json", "hades.md"] + (
        ["hades_profiles.png"] if saved["statistics"] else []
    )
    g = next(g for g in saved["summary"] if g["paper_population_mean"] is not None)
    expected = (g["paper_population_mean"] - g["random_return"]) / (
        g["expert_return"] - g["random_return"]
    )
    assert g["paper_scaled"] == pytest.approx(expected)
    assert f"| {g['paper_population_mean']} ({expected:.2f}) |" in md
    assert md.count(f"| {g['env']} | {g['dataset_size']} | {g['variant']} |") == 1 + sum(
        (r["env"], r["dataset_size"], r["variant"]) == (g["env"], g["dataset_size"], g["variant"])
        for r in saved["runs"]
    )  # one summary row plus one row per run
    refused = report("--scale", "families", "--report-only", "--resume")
    assert refused.returncode != 0 and "drop --resume" in refused.stderr
    other_scale = report("--scale", "cpu", "--report-only")
    assert other_scale.returncode != 0 and "holds scale 'families'" in other_scale.stderr


def test_distilled_dataset_stores_its_recipe_and_the_fitness_of_what_it_stores(tmp_path, capsys):
    """Clipped actions: the stored fitness is the clipped data's; the stored recipe is the
    inner loop's, and `jaxbc bc` trains with it by default."""
    from jaxbc.cli import main

    cfg = HadesConfig(
        env_id="Pendulum-v1",
        env_options=(("max_steps_in_episode", 20),),
        dataset_size=4,
        inner_steps=5,
        num_envs=2,
        policy=TINY_POLICY,
    )
    h = _tiny(cfg, sigma=5.0)  # a wide search: actions far outside [-2, 2]
    state, _ = jax.jit(h.generation)(jax.jit(h.init)(jax.random.key(0)))
    assert np.abs(np.asarray(state.best_data["action"])).max() > 2
    ds = distilled_dataset(h, state, "best", key=jax.random.key(7))
    clipped = {
        "obs": state.best_data["obs"],
        "action": jnp.clip(state.best_data["action"], -2.0, 2.0),
    }
    expected = float(h.evaluate_data(state, clipped, jax.random.key(7)))
    assert float(ds.episode_returns[0]) == pytest.approx(expected, rel=1e-5)
    path = save_dataset(ds, tmp_path / "distilled.npz")
    back = load_dataset(path)
    assert BCConfig.from_dict(json.loads(back.train_recipe)) == h.bc_config()
    try:
        main(["bc", "--dataset", str(path), "--eval-episodes", "1", "--no-progress", "--json"])
    except SystemExit as e:
        assert e.code in (0, None)
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["steps"] == cfg.inner_steps  # the recipe, not the 5000-step default


def test_ordinal_weights_break_ties_in_population_order():
    """The paper's SNES shaping: tied members take consecutive ranks in population order
    (a stable argsort), so a population that mostly ties still puts the full weight on its
    top members; evosax 0.3's own weights give every tied member their mean rank."""
    params = SimpleNamespace(weights=jnp.asarray([0.4, 0.3, 0.2, 0.1]))
    fitness = jnp.asarray([1.0, 0.0, 0.0, 0.0])  # minimised: members 1-3 tie for best
    shaped = fitness_shaping_fn("ordinal_weights")(None, fitness, None, params)
    np.testing.assert_allclose(shaped, [0.1, 0.4, 0.3, 0.2])
    assert float(shaped.sum()) == pytest.approx(1.0)
    es = make_strategy("SNES", 8, solution_template(TINY), **paper_strategy_options("SNES", 8))
    assert es.es.fitness_shaping_fn is fitness_shaping_fn("ordinal_weights")
