"""Nothing silently wrong: every bad or unusual input fails at once with a message
naming the field, flag or file (with ``--json``: one JSON error object as the last stdout
line), writes nothing, and leaves a checkpoint it refuses to resume untouched.

Most rows fail before any JAX compile, in-process through the tyro entry point."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxbc.cli import main
from jaxbc.cli_output import dumps
from jaxbc.data import Dataset, DatasetError, load_dataset, save_dataset
from jaxbc.envs import Box, Discrete
from jaxbc.experts.expert import ZOO_DIR

NAN = float("nan")


def cli(capsys, *argv: str) -> tuple[int, dict, str]:
    """Run ``jaxbc argv --json`` in-process: (exit code, last stdout line as JSON, stderr)."""
    code = 0
    try:
        main([*argv, "--json"])
    except SystemExit as e:
        code = e.code or 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, json.loads(lines[-1]) if lines else {}, captured.err


def _fake(
    env_id: str, space, obs_dim: int, n: int = 8, source: str = "expert:test", obs_dtype=np.float32
) -> Dataset:
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, obs_dim)).astype(obs_dtype)
    if isinstance(space, Discrete):
        act = (np.arange(n) % space.n).astype(np.int32)
    else:
        act = np.zeros((n, *space.shape), np.float32)
    return Dataset(
        obs,
        act,
        np.ones(n, np.float32),
        obs,
        np.zeros(n, bool),
        np.zeros(n, bool),
        np.zeros(n, np.int32),
        np.full(1, float(n), np.float32),
        env_id,
        space,
        (obs_dim,),
        (),
        source,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Small dataset files (no expert rollouts, no compile): good, tampered and foreign."""
    d = tmp_path_factory.mktemp("bad_inputs")
    good = save_dataset(_fake("CartPole-v1", Discrete(2), 4), d / "cartpole.npz")
    with np.load(good) as f:
        arrays = dict(f.items())
    meta = json.loads(str(arrays["__meta__"]))

    def write(name: str, **changes) -> Path:
        a = {**arrays, **changes}
        a = {k: v for k, v in a.items() if v is not None}
        np.savez(d / name, **a)
        return d / name

    out = {
        "good": good,
        "pendulum": save_dataset(_fake("Pendulum-v1", Box((-2.0,), (2.0,)), 3), d / "pendulum.npz"),
        "no_meta": write("no_meta.npz", __meta__=None),
        "meta_not_json": write("meta_not_json.npz", __meta__=np.asarray("{not json")),
        "meta_unknown_env": write(
            "meta_unknown_env.npz",
            __meta__=np.asarray(json.dumps({**meta, "env_id": "NoSuchEnv-v9"})),
        ),
        "meta_bad_space": write(
            "meta_bad_space.npz",
            __meta__=np.asarray(json.dumps({**meta, "action_space": "discrete"})),
        ),
        "meta_list": write("meta_list.npz", __meta__=np.asarray("[1, 2]")),
        # edited to another env with the same shapes in the file but not in the env
        "meta_other_env": write(
            "meta_other_env.npz", __meta__=np.asarray(json.dumps({**meta, "env_id": "Acrobot-v1"}))
        ),
        "not_npz": d / "not_npz.npz",
        "a_file": d / "a_file",
    }
    out["not_npz"].write_bytes(b"hello")
    out["a_file"].write_text("x")
    existing = d / "existing_policy"
    existing.mkdir()
    (existing / "artifact.json").write_text("{}")
    out["existing_policy"] = existing
    (d / "existing.npz").write_bytes(b"old")
    out["existing_npz"] = d / "existing.npz"
    return out


# (argv with {placeholders}, text the message must contain). Every row must exit 2 before
# doing any work and write nothing.
CASES = [
    # bc: degenerate hyperparameters
    ("bc --dataset {good} --batch-size 0", "batch_size"),
    ("bc --dataset {good} --lr nan", "lr"),
    ("bc --dataset {good} --lr -1", "lr"),
    ("bc --dataset {good} --hidden 0", "hidden_sizes"),
    ("bc --dataset {good} --hidden 8 -3", "hidden_sizes"),
    ("bc --dataset {good} --hidden", "hidden_sizes"),
    ("bc --dataset {good} --steps 0", "steps"),
    ("bc --dataset {good} --eval-episodes 0", "--eval-episodes"),
    ("bc --dataset {good} --episodes 0", "--episodes"),
    ("bc --dataset {good} --episodes 5", "--episodes"),
    ("bc --dataset {good} --seed -1", "--seed"),
    ("bc --dataset {good} --method swarm --tau -1", "--tau"),
    ("bc --dataset {good} --method swarm --tau nan", "--tau"),
    ("bc --dataset {good} --method ensemble --members 1", "--members"),
    ("bc --dataset {good} --method ensemble --members 0", "--members"),
    # bc: flags that would be ignored
    ("bc --dataset {good} --method bc --members 8", "--members"),
    ("bc --dataset {good} --method dbc --members 8", "--members"),
    ("bc --dataset {good} --method ensemble --tau 0.5", "--tau"),
    ("bc --dataset {good} --tau 0.5", "--tau"),
    ("bc --dataset {good} --diffusion {good}", "--diffusion"),
    ("bc --dataset {good} --method swarm --lambda-dm 0.1", "--lambda-dm"),
    ("bc --dataset {good} --diffusion-steps 10", "--diffusion-steps"),
    (
        "bc --dataset {pendulum} --method dbc --diffusion {good} --diffusion-steps 10",
        "--diffusion-steps",
    ),
    ("bc --dataset {good} --method dbc --lambda-dm -1", "--lambda-dm"),
    ("bc --dataset {good} --policy gaussian", "--policy"),
    ("bc --dataset {pendulum} --policy categorical", "--policy"),
    ("bc --dataset {good} --method dbc", "continuous"),
    # bc: files
    ("bc --dataset {tmp}/missing.npz", "missing.npz"),
    ("bc --dataset {no_meta}", "__meta__"),
    ("bc --dataset {meta_not_json}", "__meta__"),
    ("bc --dataset {meta_unknown_env}", "NoSuchEnv-v9"),
    ("bc --dataset {meta_bad_space}", "__meta__"),
    ("bc --dataset {meta_list}", "__meta__"),
    ("bc --dataset {meta_other_env}", "Acrobot-v1"),
    ("bc --dataset {not_npz}", "not_npz.npz"),
    ("bc --dataset {good} --out {existing_policy}", "--force"),
    ("bc --dataset {good} --out {a_file}/sub", "a_file"),
    ("bc --dataset {good} --out {a_file}", "a_file"),
    # command-line syntax (tyro): still one JSON error
    ("bc --dataset {good} --batch-size x", "--batch-size"),
    ("bc --datasett {good}", "--datasett"),
    ("bc --dataset {good} --method nope", "--method"),
    # train-expert
    ("train-expert --env CartPole-v1 --lr nan --out {tmp}/e1", "lr"),
    ("train-expert --env CartPole-v1 --steps 0 --out {tmp}/e2", "total_timesteps"),
    ("train-expert --env CartPole-v1 --num-envs 0 --out {tmp}/e3", "num_envs"),
    ("train-expert --env CartPole-v1 --seed -1 --out {tmp}/e4", "--seed"),
    ("train-expert --env CartPole-v1 --eval-episodes 0 --out {tmp}/e5", "--eval-episodes"),
    ("train-expert --env CartPole-v1 --resume --out {tmp}/e6", "--checkpoint-dir"),
    ("train-expert --env CartPole-v1 --allow-config-change --out {tmp}/e7", "--resume"),
    ("train-expert --env CartPole-v1 --backend spring --out {tmp}/e8", "--backend"),
    ("train-expert --env CartPole-v1 --out {tmp}/e11 --checkpoint-dir {a_file}/ck", "a_file"),
    ("train-expert --env brax/hopper --backend warp --out {tmp}/e9", "--backend"),
    ("train-expert --env NoSuchEnv-v0 --out {tmp}/e10", "NoSuchEnv-v0"),
    ("train-expert --env CartPole-v1 --out " + str(ZOO_DIR / "CartPole-v1"), "--force"),
    # hades
    ("hades --env CartPole-v1 --population 1 --out {tmp}/h", "--population"),
    ("hades --env CartPole-v1 --sigma -1 --out {tmp}/h", "--sigma"),
    ("hades --env CartPole-v1 --sigma nan --out {tmp}/h", "--sigma"),
    ("hades --env CartPole-v1 --dataset-size 1 --out {tmp}/h", "dataset_size"),
    ("hades --env CartPole-v1 --dataset-size 0 --out {tmp}/h", "dataset_size"),
    ("hades --env CartPole-v1 --variant F --inits 4 --out {tmp}/h", "--inits"),
    ("hades --env CartPole-v1 --variant R --inits 0 --out {tmp}/h", "num_inits"),
    ("hades --env CartPole-v1 --generations 0 --out {tmp}/h", "--generations"),
    ("hades --env CartPole-v1 --checkpoint-every 0 --out {tmp}/h", "--checkpoint-every"),
    ("hades --env CartPole-v1 --resume --out {tmp}/h", "--checkpoint-dir"),
    ("hades --env CartPole-v1 --inner-steps 0 --out {tmp}/h", "inner_steps"),
    ("hades --env CartPole-v1 --eval-envs 0 --out {tmp}/h", "num_envs"),
    ("hades --env CartPole-v1 --eval-steps 0 --out {tmp}/h", "eval_steps"),
    ("hades --env CartPole-v1 --hidden 0 --out {tmp}/h", "hidden_sizes"),
    ("hades --env CartPole-v1 --strategy NoSuchES --out {tmp}/h", "NoSuchES"),
    ("hades --env CartPole-v1 --out {a_file}", "a_file"),
    ("hades --env CartPole-v1 --out {tmp}/h --checkpoint-dir {a_file}", "--checkpoint-dir"),
    # dagger
    ("dagger --env CartPole-v1 --steps-per-iteration 0", "steps_per_iteration"),
    ("dagger --env CartPole-v1 --steps-per-iteration 100", "steps_per_iteration"),
    ("dagger --env CartPole-v1 --beta0 2", "beta0"),
    ("dagger --env CartPole-v1 --beta0 nan", "beta0"),
    ("dagger --env CartPole-v1 --beta exponential --beta-decay 0", "beta_decay"),
    ("dagger --env CartPole-v1 --beta-decay 0.5", "--beta-decay"),
    ("dagger --env CartPole-v1 --iterations 0", "iterations"),
    ("dagger --env CartPole-v1 --num-envs 0", "num_envs"),
    ("dagger --env CartPole-v1 --bc-steps 0", "steps"),
    ("dagger --env CartPole-v1 --demo-episodes 0", "--demo-episodes"),
    ("dagger --env CartPole-v1 --members 3", "--members"),
    ("dagger --env CartPole-v1 --method ensemble --tau 0.1", "--tau"),
    ("dagger --env CartPole-v1 --gate-threshold 0.1", "--gate-threshold"),
    ("dagger --env CartPole-v1 --method ensemble --gate-threshold -1", "gate_threshold"),
    ("dagger --env CartPole-v1 --expert Acrobot-v1", "Acrobot-v1"),
    ("dagger --env CartPole-v1 --expert {tmp}/no_expert", "no_expert"),
    ("dagger --env CartPole-v1 --out {existing_policy}", "--force"),
    # collect / diffusion / evaluate / quickstart
    ("collect --env CartPole-v1 --episodes 0 --out {tmp}/c.npz", "--episodes"),
    ("collect --env CartPole-v1 --episodes 1 --out {existing_npz}", "--force"),
    ("collect --env CartPole-v1 --episodes 1 --backend spring --out {tmp}/c.npz", "--backend"),
    ("collect --env CartPole-v1 --episodes 1 --expert Acrobot-v1 --out {tmp}/c.npz", "Acrobot-v1"),
    ("collect --env CartPole-v1 --episodes 1 --out {a_file}/c.npz", "a_file"),
    ("diffusion --dataset {good} --out {tmp}/d", "continuous"),
    ("diffusion --dataset {pendulum} --steps 0 --out {tmp}/d", "steps"),
    ("diffusion --dataset {pendulum} --lr nan --out {tmp}/d", "lr"),
    ("diffusion --dataset {pendulum} --episodes 0 --out {tmp}/d", "--episodes"),
    ("evaluate", "--expert"),
    ("evaluate --expert CartPole-v1 --policy {existing_policy}", "--policy"),
    ("evaluate --expert CartPole-v1 --episodes 0", "--episodes"),
    ("evaluate --policy {tmp}/no_policy", "no_policy"),
    ("evaluate --expert NoSuchEnv-v0", "NoSuchEnv-v0"),
    ("quickstart --bc-steps 0", "--bc-steps"),
    ("quickstart --demo-episodes 0", "--demo-episodes"),
]


@pytest.mark.parametrize("argv,needle", CASES, ids=[c[0][:70] for c in CASES])
def test_cli_bad_input(capsys, tmp_path, files, argv, needle):
    before = sorted(p.name for p in tmp_path.iterdir())
    names = {k: str(v) for k, v in files.items()}
    args = [a.format(tmp=tmp_path, **names) for a in argv.split()]
    code, out, err = cli(capsys, *args)
    assert code == 2, (code, out, err[-2000:])
    assert set(out) == {"error"} and set(out["error"]) == {"type", "message"}, out
    message = out["error"]["message"]
    assert needle.format(tmp=tmp_path, **names) in message, message
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_plain_mode_error_is_one_line(capsys, files):
    with pytest.raises(SystemExit) as e:
        main(["bc", "--dataset", str(files["good"]), "--batch-size", "0"])
    assert e.value.code == 2
    captured = capsys.readouterr()
    assert (
        captured.out == ""
        and captured.err.strip() == "error: BCConfig.batch_size must be an integer >= 1, got 0"
    )


# --- the Python API gets the same checks ---------------------------------------------------


def _api_cases():
    from jaxbc.bc import BCConfig, PolicyConfig
    from jaxbc.dagger import DAggerConfig
    from jaxbc.diffusion import DiffusionConfig
    from jaxbc.experts.ppo import PPOConfig
    from jaxbc.hades import HadesConfig

    return [
        (lambda: BCConfig(batch_size=0), "BCConfig.batch_size"),
        (lambda: BCConfig(batch_size=-5), "BCConfig.batch_size"),
        (lambda: BCConfig(steps=0), "BCConfig.steps"),
        (lambda: BCConfig(members=0), "BCConfig.members"),
        (lambda: BCConfig(lr=NAN), "BCConfig.lr"),
        (lambda: BCConfig(lr=0.0), "BCConfig.lr"),
        (lambda: BCConfig(weight_decay=-1.0), "BCConfig.weight_decay"),
        (lambda: BCConfig(max_grad_norm=math.inf), "BCConfig.max_grad_norm"),
        (lambda: BCConfig(warmup_steps=-1), "BCConfig.warmup_steps"),
        (lambda: BCConfig(schedule="step"), "BCConfig.schedule"),
        (lambda: BCConfig(eval_every=3, steps=10), "eval_every"),
        (lambda: BCConfig(eval_episodes=0), "BCConfig.eval_episodes"),
        (lambda: PolicyConfig(hidden_sizes=(0,)), "PolicyConfig.hidden_sizes"),
        (lambda: PolicyConfig(hidden_sizes=(-4, 8)), "PolicyConfig.hidden_sizes"),
        (lambda: PolicyConfig(kind="beta"), "PolicyConfig.kind"),
        (lambda: PolicyConfig(activation="nope"), "PolicyConfig.activation"),
        (lambda: PolicyConfig(init_log_std=NAN), "PolicyConfig.init_log_std"),
        (lambda: HadesConfig(dataset_size=0), "HadesConfig.dataset_size"),
        (lambda: HadesConfig(inner_steps=0), "HadesConfig.inner_steps"),
        (lambda: HadesConfig(inner_lr=NAN), "HadesConfig.inner_lr"),
        (lambda: HadesConfig(num_envs=-1), "HadesConfig.num_envs"),
        (lambda: HadesConfig(max_grad_norm=0.0), "HadesConfig.max_grad_norm"),
        (lambda: HadesConfig(variant="X"), "variant"),
        (lambda: HadesConfig(member_block=-1), "HadesConfig.member_block"),
        (lambda: HadesConfig(num_devices=0), "HadesConfig.num_devices"),
        (lambda: DAggerConfig(steps_per_iteration=0), "DAggerConfig.steps_per_iteration"),
        (lambda: DAggerConfig(beta0=2.0), "DAggerConfig.beta0"),
        (
            lambda: DAggerConfig(beta_schedule="exponential", beta_decay=0.0),
            "DAggerConfig.beta_decay",
        ),
        (lambda: DAggerConfig(iterations=0), "DAggerConfig.iterations"),
        (lambda: DAggerConfig(capacity=0), "DAggerConfig.capacity"),
        (lambda: PPOConfig(lr=NAN), "PPOConfig.lr"),
        (lambda: PPOConfig(gamma=1.5), "PPOConfig.gamma"),
        (lambda: PPOConfig(num_envs=0), "PPOConfig.num_envs"),
        (lambda: PPOConfig(hidden_sizes=(0,)), "PPOConfig.hidden_sizes"),
        (lambda: DiffusionConfig(steps=0), "steps"),
        (lambda: DiffusionConfig(lr=-1.0), "DiffusionConfig.lr"),
    ]


@pytest.mark.parametrize("i", range(len(_api_cases())))
def test_api_bad_config(i):
    build, needle = _api_cases()[i]
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
        build()


def test_api_strategy_and_template_checks():
    from jaxbc.hades import HadesConfig, make_strategy, solution_template

    template = solution_template(HadesConfig(dataset_size=4))
    with pytest.raises(ValueError, match="population_size"):
        make_strategy("SNES", 1, template)
    with pytest.raises(ValueError, match="sigma"):
        make_strategy("SNES", 8, template, sigma=-1.0)
    with pytest.raises(ValueError, match="dataset_size"):
        solution_template(HadesConfig(dataset_size=1))
    assert solution_template(HadesConfig(dataset_size=1, learn_labels=True))["logits"].shape == (
        1,
        2,
    )


def test_api_resume_needs_a_directory():
    from jaxbc.experts import preset, train_expert

    with pytest.raises(ValueError, match="checkpoint_dir"):
        train_expert(preset("CartPole-v1"), resume=True, progress=False)
    with pytest.raises(ValueError, match="total_timesteps"):
        preset(
            "CartPole-v1", total_timesteps=10
        )  # less than one update would silently train 2048 steps


def test_edited_policy_file(capsys, tmp_path):
    (tmp_path / "pol").mkdir()
    spec = {"format": "jaxbc-artifact", "format_version": 1, "kind": "policy", "meta": {}}
    spec |= {"env": {}, "config": {"no_such_field": 1}}
    (tmp_path / "pol" / "artifact.json").write_text(json.dumps(spec))
    (tmp_path / "pol" / "params.msgpack").write_bytes(b"")
    code, res, err = cli(capsys, "evaluate", "--policy", str(tmp_path / "pol"))
    assert code == 2 and "artifact.json" in res["error"]["message"] and "Traceback" not in err


def test_traced_hyperparameters_are_not_checked():
    """A vmapped/traced lr passes through the config (checked only when concrete)."""
    import dataclasses

    from jaxbc.bc import BCConfig

    def f(lr):
        return dataclasses.replace(BCConfig(), lr=lr).lr * 2

    np.testing.assert_allclose(
        jax.vmap(f)(np.array([1e-3, 2e-3], np.float32)), [2e-3, 4e-3], rtol=1e-6
    )


def test_json_output_has_no_nan():
    line = dumps(
        {"a": NAN, "b": [1.0, math.inf], "c": np.float32(2.5), "d": np.int64(3), "e": np.arange(2)}
    )
    assert json.loads(line) == {"a": None, "b": [1.0, None], "c": 2.5, "d": 3, "e": [0, 1]}


def test_method_table_is_one_definition():
    from jaxbc.bc import DEFAULT_MEMBERS, Method, method_config
    from jaxbc.dagger import DAGGER_METHODS
    from jaxbc.validation import ConfigError

    assert DEFAULT_MEMBERS == 8
    assert method_config("bc") == Method("bc", members=1, tau=0.0, lambda_dm=0.0)
    assert (method_config("ensemble").members, method_config("ensemble").tau) == (8, 0.0)
    swarm = method_config("swarm", members=3)
    assert (swarm.members, swarm.tau, swarm.lambda_dm) == (3, 0.25, 0.0)
    dbc = method_config("dbc")
    assert (dbc.members, dbc.tau, dbc.lambda_dm) == (1, 0.0, 0.2)
    for kwargs, field in (
        ({"name": "bc", "members": 2}, "members"),
        ({"name": "ensemble", "members": 1}, "members"),
        ({"name": "ensemble", "tau": 0.1}, "tau"),
        ({"name": "swarm", "tau": -1.0}, "tau"),
        ({"name": "swarm", "lambda_dm": 0.1}, "lambda_dm"),
        ({"name": "dbc", "methods": DAGGER_METHODS}, "method"),
    ):
        with pytest.raises(ConfigError) as e:
            method_config(**kwargs)
        assert e.value.field == field and str(e.value).startswith(field), str(e.value)


def test_diverged_parameters_are_refused():
    from jaxbc.training import check_finite as _check_finite

    _check_finite({"w": np.ones(3)}, "x")
    with pytest.raises(FloatingPointError, match="diverged"):
        _check_finite({"w": np.array([1.0, NAN])}, "BC training")


# --- foreign files ----------------------------------------------------------------------------


def test_float64_dataset_is_cast_with_a_warning(tmp_path):
    ds = _fake("CartPole-v1", Discrete(2), 4, obs_dtype=np.float64)
    arrays = {
        k: np.asarray(getattr(ds, k))
        for k in (
            "obs",
            "action",
            "reward",
            "next_obs",
            "terminated",
            "truncated",
            "episode_id",
            "episode_returns",
        )
    }
    arrays["obs"] = arrays["obs"].astype(np.float64)
    arrays["action"] = arrays["action"].astype(np.int64)
    good = save_dataset(_fake("CartPole-v1", Discrete(2), 4), tmp_path / "g.npz")
    with np.load(good) as f:
        meta = f["__meta__"]
    np.savez(tmp_path / "f64.npz", __meta__=meta, **arrays)
    with pytest.warns(UserWarning, match="obs float64"):
        back = load_dataset(tmp_path / "f64.npz")
    assert back.obs.dtype == np.float32 and back.action.dtype == np.int32
    arrays["obs"][0, 0] = 1e300  # not representable in float32: refused, not silently inf
    np.savez(tmp_path / "huge.npz", __meta__=meta, **arrays)
    with warnings.catch_warnings(), pytest.raises(DatasetError, match="NaN/inf"):
        warnings.simplefilter("ignore")
        load_dataset(tmp_path / "huge.npz")


# --- honest reports, new commands ------------------------------------------------------------


def test_bc_on_distilled_data_has_no_fake_expert(capsys, tmp_path):
    """MountainCar-v0 has no zoo expert: a HaDES dataset's "returns" are fitness values, so
    there is no expert return and no scaled return; the saved policy evaluates via --policy."""
    ds = _fake("MountainCar-v0", Discrete(3), 2, n=6, source="hades:F:SNES:best")
    path = save_dataset(ds, tmp_path / "distilled.npz")
    code, res, err = cli(
        capsys,
        "bc",
        "--dataset",
        str(path),
        "--steps",
        "20",
        "--batch-size",
        "4",
        "--hidden",
        "8",
        "--eval-episodes",
        "1",
        "--out",
        str(tmp_path / "pol"),
        "--no-progress",
    )
    assert code == 0, err[-2000:]
    assert (
        res["expert_return"] is None
        and res["scaled_return"] is None
        and res["expert_return_from"] is None
    )
    assert res["dataset_source"] == "hades:F:SNES:best"
    code, ev, err = cli(capsys, "evaluate", "--policy", str(tmp_path / "pol"), "--episodes", "2")
    assert code == 0, err[-2000:]
    assert ev["env"] == "MountainCar-v0" and ev["episodes"] == 2 and ev["members"] == 1
    # an existing output is not overwritten without --force, and nothing else is touched
    before = (tmp_path / "pol" / "params.msgpack").read_bytes()
    code, res, _ = cli(
        capsys, "bc", "--dataset", str(path), "--steps", "20", "--out", str(tmp_path / "pol")
    )
    assert code == 2 and "--force" in res["error"]["message"]
    assert (tmp_path / "pol" / "params.msgpack").read_bytes() == before


def test_dagger_with_an_expert_directory(capsys, tmp_path):
    teacher = tmp_path / "teacher"
    shutil.copytree(ZOO_DIR / "CartPole-v1", teacher)
    code, res, err = cli(
        capsys,
        "dagger",
        "--env",
        "CartPole-v1",
        "--expert",
        str(teacher),
        "--iterations",
        "1",
        "--steps-per-iteration",
        "64",
        "--num-envs",
        "8",
        "--bc-steps",
        "20",
        "--hidden",
        "8",
        "--eval-episodes",
        "1",
        "--batch-size",
        "16",
    )
    assert code == 0, err[-2000:]
    assert (
        res["expert"] == str(teacher) and len(res["returns"]) == 2 and res["expert_return"] == 500.0
    )


# --- resume: refused with other settings, checkpoint untouched ----------------------------------


def _snapshot(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        + str(p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


HADES_TINY = [
    "--env",
    "CartPole-v1",
    "--generations",
    "2",
    "--checkpoint-every",
    "2",
    "--inner-steps",
    "3",
    "--hidden",
    "8",
    "--eval-envs",
    "2",
    "--eval-steps",
    "20",
]


def test_hades_resume_with_other_settings(capsys, tmp_path):
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    code, first, err = cli(
        capsys,
        "hades",
        *HADES_TINY,
        "--population",
        "8",
        "--checkpoint-dir",
        str(ckpt),
        "--out",
        str(out),
    )
    assert code == 0, err[-2000:]
    assert first["dataset_size"] == 4 and first["config_changes"] == []
    snap = _snapshot(ckpt)
    for change, needle in (
        (["--population", "16"], "population_size"),
        (["--population", "8", "--seed", "1"], "seed"),
        (["--population", "8", "--sigma", "0.2"], "sigma"),
    ):
        code, res, _ = cli(
            capsys,
            "hades",
            *HADES_TINY,
            *change,
            "--checkpoint-dir",
            str(ckpt),
            "--resume",
            "--out",
            str(tmp_path / "out2"),
        )
        assert (
            code == 2
            and needle in res["error"]["message"]
            and "--allow-config-change" in res["error"]["message"]
        )
        assert _snapshot(ckpt) == snap and not (tmp_path / "out2").exists()
    # a fresh run (no --resume) would mix its checkpoints with the old ones
    code, res, _ = cli(
        capsys,
        "hades",
        *HADES_TINY,
        "--population",
        "8",
        "--checkpoint-dir",
        str(ckpt),
        "--out",
        str(tmp_path / "out3"),
    )
    assert code == 2 and "--resume" in res["error"]["message"] and _snapshot(ckpt) == snap
    # the out directory holds a finished run: not overwritten without --force
    code, res, _ = cli(capsys, "hades", *HADES_TINY, "--population", "8", "--out", str(out))
    assert code == 2 and "--force" in res["error"]["message"]
    # explicitly allowed: continues, and the change is recorded
    code, res, err = cli(
        capsys,
        "hades",
        *HADES_TINY[:2],
        "--generations",
        "4",
        *HADES_TINY[4:],
        "--population",
        "8",
        "--seed",
        "1",
        "--checkpoint-dir",
        str(ckpt),
        "--resume",
        "--allow-config-change",
        "--out",
        str(tmp_path / "out4"),
    )
    assert code == 0, err[-2000:]
    assert res["resumed_from"] == 2 and res["generations"] == 4
    (change,) = res["config_changes"]
    assert change["at_step"] == 2 and change["changed"]["cli.seed"] == [0, 1]
    assert (
        json.loads((tmp_path / "out4" / "result.json").read_text())["config_changes"]
        == res["config_changes"]
    )
    assert json.loads((ckpt / "run.json").read_text())["changes"] == res["config_changes"]


def test_hades_preset_sizes_are_not_overridden(capsys, tmp_path, monkeypatch):
    """`--dataset-size` left out keeps the preset's D (MinAtar: the n * (16 // n) states the
    official D=16 trains on, 15 for Breakout's 3 actions; classic control 4)."""
    from jaxbc.hades import cli as hades_cli

    seen = {}

    def stop(config, *a, **k):
        seen["config"] = config
        raise ValueError("stop here")

    monkeypatch.setattr("jaxbc.hades.experiment.run_hades", stop)
    for env_id, d in (("Breakout-MinAtar", 15), ("CartPole-v1", 4)):
        with pytest.raises(ValueError, match="stop here"):
            hades_cli.hades(env_id, out=tmp_path / env_id, population=4)
        assert seen["config"].dataset_size == d and seen["config"].num_inits == 2


def test_train_expert_resume_with_other_settings(capsys, tmp_path):
    ckpt = tmp_path / "ckpt"
    base = [
        "train-expert",
        "--env",
        "CartPole-v1",
        "--steps",
        "4096",
        "--eval-episodes",
        "1",
        "--checkpoint-dir",
        str(ckpt),
    ]
    code, res, err = cli(capsys, *base, "--out", str(tmp_path / "e0"))
    assert code == 0, err[-2000:]
    snap = _snapshot(ckpt)
    for change, needle in ((["--lr", "0.001"], "config.lr"), (["--seed", "1"], "seed")):
        code, res, _ = cli(capsys, *base, *change, "--resume", "--out", str(tmp_path / "e1"))
        assert code == 2 and needle in res["error"]["message"], res
        assert _snapshot(ckpt) == snap and not (tmp_path / "e1").exists()
    code, res, _ = cli(
        capsys, *base, "--out", str(tmp_path / "e1")
    )  # fresh run into a used directory
    assert code == 2 and "--resume" in res["error"]["message"] and _snapshot(ckpt) == snap
    # allowed explicitly: the expert's artifact.json records the change next to the new command
    code, res, err = cli(
        capsys,
        *base,
        "--lr",
        "0.001",
        "--resume",
        "--allow-config-change",
        "--out",
        str(tmp_path / "e2"),
    )
    assert code == 0, err[-2000:]
    meta = json.loads((tmp_path / "e2" / "artifact.json").read_text())["meta"]
    assert (
        meta["config_changes"][0]["changed"]["config.lr"] == [0.0025, 0.001]
        and meta["resumed_from_update"] == 2
    )
    # a damaged checkpoint: a clear error naming it, not an orbax traceback
    newest = sorted(ckpt.glob("step_*"))[-1]
    for f in newest.rglob("*"):
        if f.is_file() and f.stat().st_size > 0:
            f.write_bytes(b"garbage")
    code, res, err = cli(capsys, *base, "--lr", "0.001", "--resume", "--out", str(tmp_path / "e3"))
    assert code == 2 and newest.name in res["error"]["message"] and "Traceback" not in err, (
        res,
        err[-2000:],
    )
    assert not (tmp_path / "e3").exists()


def test_stochastic_needs_a_policy_that_samples(capsys, files, tmp_path):
    from jaxbc.bc import BCConfig, PolicyConfig, make_bc_train

    data = load_dataset(files["pendulum"])
    res = make_bc_train(BCConfig(steps=1, batch_size=2, policy=PolicyConfig(hidden_sizes=(4,))))(
        jax.random.key(0), data
    )
    res.save(tmp_path / "pol")
    code, out, _ = cli(capsys, "evaluate", "--policy", str(tmp_path / "pol"), "--stochastic")
    assert (
        code == 2
        and "--stochastic" in out["error"]["message"]
        and "deterministic head" in out["error"]["message"]
    )


def test_more_devices_than_visible_is_refused():
    from jaxbc.hades.core import make_mesh
    from jaxbc.sweep import sweep

    too_many = jax.device_count() + 1
    needle = f"num_devices must be between 1 and the {jax.device_count()} visible"
    with pytest.raises(ValueError, match=needle):
        make_mesh(too_many)
    with pytest.raises(ValueError, match=needle):
        sweep(lambda x: x * 2, jax.numpy.arange(4.0), devices=too_many)
