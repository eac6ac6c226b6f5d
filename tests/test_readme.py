"""The README's Python examples run as pasted: every ```python block, in order, in one
namespace (a reader's first paste must work)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_blocks():
    blocks = python_blocks()
    assert len(blocks) >= 5 and all(
        compile(b, f"README block {i}", "exec") for i, b in enumerate(blocks)
    )


@pytest.mark.slow
def test_readme_python_blocks_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write demos.npz, policy/ and ckpt/
    namespace: dict = {}
    for i, block in enumerate(python_blocks()):
        exec(compile(block, f"README python block {i + 1}", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "demos.npz").exists() and (tmp_path / "policy" / "artifact.json").exists()
    assert (tmp_path / "run.mp4").exists() and (tmp_path / "profiles.png").exists()
