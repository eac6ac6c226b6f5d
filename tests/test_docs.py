"""The API docs site builds with no warning (mkdocs + mkdocstrings, docstrings parsed statically)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    p = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in (
        "jaxbc.bc.make_bc_train",
        "jaxbc.data.minari_io.from_minari",
        "jaxbc.stats.aggregate_scores",
        "jaxbc.video.render_rollout",
    ):
        assert f'id="{name}"' in api, name
