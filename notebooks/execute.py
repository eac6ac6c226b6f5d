"""Execute the tutorial notebooks top to bottom and store their outputs in the .ipynb files.

The docs site renders the stored outputs (it does not execute), so after changing a notebook
or the library, re-run::

    python notebooks/execute.py                 # all notebooks
    python notebooks/execute.py 01_train.ipynb  # some of them

The kernel imports ``jaxbc`` from this checkout (``PYTHONPATH`` is set to the repository
root) and uses the persistent XLA compilation cache (``$JAXBC_CACHE_DIR``, default
``.jax_cache/`` in the repository). Outputs carry no timestamps or timings, and every random
number comes from a fixed ``jax.random.key``, so a re-run on the same machine and library
version stores the same numbers. Each notebook's wall time is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def kernel_env(root: Path = ROOT) -> dict[str, str]:
    """Environment of the notebook kernel: this checkout's jaxbc, the compilation cache."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault(
        "JAX_COMPILATION_CACHE_DIR", env.get("JAXBC_CACHE_DIR", str(root / ".jax_cache"))
    )
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures as outputs
    # tqdm.auto warns in a kernel without ipywidgets; its text bars work there all the same
    env["PYTHONWARNINGS"] = ",".join(
        filter(None, [env.get("PYTHONWARNINGS"), "ignore:IProgress not found"])
    )
    return env


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Run every cell of ``nb`` in a fresh kernel (in ``cwd``); outputs replace old ones.

    No timing metadata is recorded, so the stored file changes only when outputs do."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(cwd)}},
    )
    saved = dict(os.environ)
    os.environ.update(kernel_env())  # the kernel process inherits this environment
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebook files (default: all in notebooks/)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = [(p if p.exists() else HERE / p) for p in map(Path, args.notebooks)] or sorted(
        HERE.glob("*.ipynb")
    )
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        execute(nb, path.parent, args.timeout)
        nbformat.write(nb, path)
        print(f"{path.name}: {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
