import json
import subprocess
import sys

import pytest

from jaxbc.cli import main


def run_cli(capsys, *argv) -> dict:
    main(list(argv))
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_entry_point_envs_json():
    p = subprocess.run(
        [sys.executable, "-m", "jaxbc.cli", "envs", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    families = json.loads(p.stdout.strip().splitlines()[-1])
    assert "CartPole-v1" in families["classic"] and "brax/hopper" in families["brax"]


def test_experts_lists_cartpole(capsys):
    rows = run_cli(capsys, "experts", "--json")["experts"]
    assert any(r["env"] == "CartPole-v1" for r in rows)


def test_evaluate_cartpole_expert(capsys):
    res = run_cli(capsys, "evaluate", "--expert", "CartPole-v1", "--episodes", "20", "--json")
    assert res["episodes"] == 20 and res["mean_return"] >= 475 and "std_return" in res


def test_collect_then_load(capsys, tmp_path):
    out = tmp_path / "demos.npz"
    res = run_cli(
        capsys, "collect", "--env", "CartPole-v1", "--episodes", "2", "--out", str(out), "--json"
    )
    assert res["transitions"] == 1000 and out.exists()
    from jaxbc.data import load_dataset

    assert load_dataset(out, "CartPole-v1").num_episodes == 2


def test_quickstart_json(capsys):
    res = run_cli(capsys, "quickstart", "--json", "--eval-episodes", "20")
    by = {r["policy"]: r for r in res["results"]}
    assert set(by) == {"expert", "random", "BC"}
    assert by["expert"]["mean_return"] >= 475
    assert by["BC"]["mean_return"] > by["random"]["mean_return"]


def test_user_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--expert", "NoSuchEnv-v0", "--episodes", "2"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no expert at 'NoSuchEnv-v0'") and "Traceback" not in err


def test_bc_command_methods(capsys, tmp_path):
    data = tmp_path / "demos.npz"
    run_cli(
        capsys, "collect", "--env", "CartPole-v1", "--episodes", "2", "--out", str(data), "--json"
    )
    out = {}
    for method in ("bc", "swarm"):
        members = (
            ["--members", "3"] if method == "swarm" else []
        )  # --members with --method bc is refused
        out[method] = run_cli(
            capsys,
            "bc",
            "--dataset",
            str(data),
            "--method",
            method,
            *members,
            "--steps",
            "300",
            "--hidden",
            "32",
            "32",
            "--eval-episodes",
            "4",
            "--out",
            str(tmp_path / method),
            "--json",
        )
    for res in out.values():
        for k in ("mean_return", "scaled_return", "action_difference", "action_difference_visited"):
            assert k in res
    assert out["bc"]["members"] == 1 and out["bc"]["action_difference"] == 0.0
    assert (
        out["swarm"]["members"] == 3
        and out["swarm"]["tau"] == 0.25
        and out["swarm"]["action_difference"] > 0
    )
    from jaxbc.bc import load_policy

    assert load_policy(tmp_path / "swarm").config.members == 3


def test_dagger_command(capsys):
    res = run_cli(
        capsys,
        "dagger",
        "--env",
        "CartPole-v1",
        "--iterations",
        "2",
        "--steps-per-iteration",
        "128",
        "--num-envs",
        "8",
        "--bc-steps",
        "50",
        "--hidden",
        "16",
        "16",
        "--eval-episodes",
        "2",
        "--method",
        "ensemble",
        "--members",
        "3",
        "--gate-threshold",
        "0.01",
        "--json",
    )
    assert len(res["returns"]) == 3 and res["gated"] and res["members"] == 3
    assert res["iterations"][0]["expert_queries"] == 0 and res["total_expert_queries"] <= 2 * 128
    assert res["iterations"][2]["dataset_size"] >= res["iterations"][1]["dataset_size"]


def test_commands_pass_their_flags_to_one_library_function():
    """The thin commands hand every flag (but --json) to a library argument of the same name,
    which is also how a library error naming an argument prints as that flag."""
    import inspect

    from jaxbc import cli
    from jaxbc.bc.experiment import bc_experiment
    from jaxbc.dagger import dagger_experiment
    from jaxbc.experts import collect_demos
    from jaxbc.hades import hades_experiment

    # jaxbc hades's process coordinates go to jaxbc.distributed.initialize, before the run
    process_flags = {
        "coordinator_address",
        "num_processes",
        "process_id",
        "distributed",
        "distributed_timeout",
    }
    for command, fn, other in (
        (cli.bc, bc_experiment, set()),
        (cli.dagger, dagger_experiment, set()),
        (cli.hades, hades_experiment, process_flags),
        (cli.collect, collect_demos, set()),
    ):
        flags = set(inspect.signature(command).parameters) - {"json"}
        assert other <= flags
        missing = flags - other - set(inspect.signature(fn).parameters)
        assert not missing, (command.__name__, missing)


def test_library_errors_print_as_flags():
    from jaxbc.cli import bc
    from jaxbc.cli_output import flag_message
    from jaxbc.validation import ConfigError

    e = ConfigError("lambda_dm must be a finite number >= 0, got -1.0", "lambda_dm")
    assert flag_message(e, bc) == "--lambda-dm must be a finite number >= 0, got -1.0"
    e = ConfigError("BCConfig.lr must be a finite number > 0, got nan", "BCConfig.lr")
    assert flag_message(e, bc) == str(e)  # a config field, not an argument: unchanged
    e = ConfigError("num_chunks must be an integer >= 1, got 0", "num_chunks")
    assert flag_message(e, bc) == str(e)  # not a flag of this command: unchanged
