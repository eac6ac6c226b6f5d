"""Execute the notebooks so they never rot."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
# the quickstart runs by default; the algorithm notebooks (40-60 s each on a 2-core CPU, their
# APIs covered by the unit tests) are `slow`, to keep the default suite near its budget
DEFAULT = {"quickstart"}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, id=p.stem, marks=() if p.stem in DEFAULT else pytest.mark.slow)
        for p in NOTEBOOKS
    ],
)
def test_notebook_runs(path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert not errors
