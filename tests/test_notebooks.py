"""The tutorial notebooks: the committed files hold their outputs (the docs site renders them
without executing), and executing each one still works and still shows what its text says."""

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

NB_DIR = Path(__file__).resolve().parent.parent / "notebooks"
_spec = importlib.util.spec_from_file_location("notebooks_execute", NB_DIR / "execute.py")
execute_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute_script)

# Appended to a copy of each notebook before it runs, in the same kernel: it prints the facts
# the test checks as one JSON line (the notebook's own variables, nothing recomputed).
FACTS = {
    "01_train": """{
        "returns": [e["mean_return"] for e in evals],
        "scaled": [e["scaled_return"] for e in evals],
        "random": expert.meta["random_return"],
        "loaded_same_actions": bool(same),
    }""",
    "02_evaluate": """{
        "bc_scaled": float(per_episode.mean()),
        "dagger_scaled": float(scaled_return(ev_dagger.mean_return, r_random, r_expert)),
        "bc_error_demos": action_error(bc, demos.obs),
        "bc_error_visited": action_error(bc, visited),
        "dagger_returns": [float(x) for x in dagger.returns],
    }""",
    "03_compare": """{
        "scores": {k: [float(x) for x in v] for k, v in scores.items()},
        "diffs": {f"{x} - {y}": list(v) for (x, y), v in diffs.items()},
        "iqm": {k: v["iqm"] for k, v in agg["metrics"].items()},
    }""",
    "04_sweep": """{
        "shape": list(results.batch_shape),
        "second_compiles": compiles.count,
        "score": score.tolist(),
    }""",
    "05_distil": """{
        "best_fitness": float(run.state.best_fitness),
        "returns": {k: [float(x) for x in v] for k, v in returns.items()},
        "random": r_random,
        "dataset_size": int(distilled.size),
    }""",
}


def check_train(f):
    # every seed balances the pole far longer than random play (~22 steps); the expert: 500
    assert min(f["scaled"]) > 0.8, f
    assert min(f["returns"]) > 10 * f["random"], f
    assert f["loaded_same_actions"]


def check_evaluate(f):
    # the text's story: BC from one episode fails, its error is larger on the states it visits
    # than on the demonstration's, and DAgger reaches near the expert
    assert f["bc_error_visited"] > 2 * f["bc_error_demos"], f
    assert f["dagger_scaled"] > 0.8, f
    assert f["dagger_scaled"] > f["bc_scaled"] + 0.5, f
    assert len(f["dagger_returns"]) == 5


def check_compare(f):
    scores = f["scores"]
    assert list(scores) == ["BC", "ensemble BC", "Swarm BC", "DBC"]
    for name, s in scores.items():
        assert len(s) == 8 and all(-2 < x < 1.5 for x in s), (name, s)
        assert sum(s) / len(s) > 0.2, (name, s)  # every method learns something from 4 episodes
    for name, (mean, lo, hi) in f["diffs"].items():
        assert lo <= mean <= hi and hi - lo > 0, (name, mean, lo, hi)
    for name, m in f["iqm"].items():
        assert m["ci"][0] <= m["point"] <= m["ci"][1], (name, m)


def check_sweep(f):
    assert f["shape"] == [4, 3, 4]
    assert f["second_compiles"] == 0  # new learning rates are data: nothing recompiles
    mean = [[sum(s) / len(s) for s in row] for row in f["score"]]  # [sizes][lrs]
    assert mean[3][1] > 0.8, mean  # 8 episodes at lr 1e-3: near the expert
    assert mean[3][1] > mean[0][1] + 0.5, mean  # more demonstrations help


def check_distil(f):
    assert f["dataset_size"] == 4
    assert f["best_fitness"] > 400, f
    distilled = f["returns"]["4 distilled states"]
    expert4 = f["returns"]["4 expert states"]
    assert min(distilled) > 10 * f["random"], f
    assert sum(distilled) / 8 > sum(expert4) / 8, f


CHECKS = {
    "01_train": check_train,
    "02_evaluate": check_evaluate,
    "03_compare": check_compare,
    "04_sweep": check_sweep,
    "05_distil": check_distil,
}
# 01_train runs in the default suite; the others (1-3 min each on a 2-core CPU) are `slow`
FAST = {"01_train"}
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))


def test_every_notebook_is_checked():
    assert {p.stem for p in NOTEBOOKS} == set(CHECKS) == set(FACTS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_holds_outputs(path):
    """The docs render stored outputs: every code cell ran, in order, in one kernel, without
    error, and the notebook shows at least one figure."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), (
        f"{path.name} is not executed top to bottom: run python notebooks/execute.py {path.name}"
    )
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure stored"
    assert all(c.outputs for c in code[1:]), "a code cell after the imports shows nothing"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, id=p.stem, marks=() if p.stem in FAST else pytest.mark.slow)
        for p in NOTEBOOKS
    ],
)
def test_notebook_runs(path, monkeypatch):
    # as `python notebooks/execute.py` runs them: XLA's optimisations on (conftest turns them
    # off for the unit tests' tiny programs; these notebooks' training runs are compute-bound)
    monkeypatch.setenv("JAX_DISABLE_MOST_OPTIMIZATIONS", "0")
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(
        nbformat.v4.new_code_cell(f"import json\nprint(json.dumps({FACTS[path.stem]}))")
    )
    execute_script.execute(nb, path.parent)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    text = "".join(o.text for o in nb.cells[-1].outputs if o.output_type == "stream")
    CHECKS[path.stem](json.loads(text.strip().splitlines()[-1]))
