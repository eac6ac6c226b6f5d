"""The package's import graph: acyclic, and no jaxbc import inside a function outside the
command-line modules (layers import downward only: envs -> rollout -> data -> training ->
bc/diffusion -> dagger/hades -> cli)."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "jaxbc"


def _modules() -> dict[str, Path]:
    mods = {}
    for f in PKG.rglob("*.py"):
        parts = f.relative_to(PKG.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return mods


def _targets(mods: dict[str, Path], module: str, node: ast.AST) -> set[str]:
    """The jaxbc modules an import statement names (a package's name counts as itself)."""
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            pkg = module.split(".")
            keep = len(pkg) - node.level + (1 if mods[module].name == "__init__.py" else 0)
            base = ".".join(pkg[:keep] + ([node.module] if node.module else []))
        names = [base] + [f"{base}.{a.name}" for a in node.names]
    elif isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        return set()
    out = set()
    for name in names:
        while name and name not in mods and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in mods and name != module:
            out.add(name)
    return out


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """Edges module -> imported jaxbc modules, and the function-level imports outside CLI
    modules (``module:line``)."""
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    inner = []
    for m, f in mods.items():
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            edges[m] |= _targets(mods, m, node)
        if "cli" in m.split(".")[-1]:
            continue
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner += [f"{m}:{n.lineno}" for n in ast.walk(fn) if _targets(mods, m, n)]
    return edges, inner


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle_and_no_function_level_imports():
    edges, inner = import_graph()
    assert len(edges) > 40 and edges["jaxbc.hades.core"] >= {"jaxbc.envs", "jaxbc.rollout"}
    assert cycles(edges) == []
    assert inner == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
