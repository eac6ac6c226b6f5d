"""The documentation: the site builds with no warning (mkdocs + mkdocstrings, docstrings
parsed statically), every public module has an API page, every link resolves, and README
and docs speak of the product only."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
INCLUDE = re.compile(r"^<!-- include (\S+?)(?::[\w-]+)? -->$", re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")
# words about how the work was organised, which the product's text never uses
ORGANISATION = re.compile(
    r"this session|session [0-9]|the issue|issue's|issue [0-9]|\blent\b|a helper", re.I
)


def doc_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def api_targets() -> set[str]:
    text = "\n".join(p.read_text() for p in (DOCS / "api").glob("*.md"))
    return set(re.findall(r"^::: ([\w.]+)$", text, flags=re.M))


def public_modules() -> set[str]:
    """``jaxbc.X`` for every top-level module and subpackage whose name is public."""
    pkg = ROOT / "jaxbc"
    names = {p.stem for p in pkg.glob("*.py") if p.stem != "__init__"}
    names |= {p.name for p in pkg.iterdir() if (p / "__init__.py").exists()}
    return {f"jaxbc.{n}" for n in names if not n.startswith("_")}


def module_exists(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_every_public_module_has_an_api_page():
    missing = public_modules() - api_targets()
    assert not missing, f"add these to a page under docs/api/: {sorted(missing)}"


def test_api_pages_reference_existing_modules():
    stale = sorted(t for t in api_targets() if not module_exists(t))
    assert not stale, f"docs/api names modules that no longer exist: {stale}"


def test_included_reports_exist():
    for page in doc_pages():
        for path in INCLUDE.findall(page.read_text()):
            assert (ROOT / path).is_file(), f"{page.relative_to(ROOT)} includes missing {path}"


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text()
    for target in LINK.findall(text):
        if "://" in target or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        assert (ROOT / path).exists(), f"README links {target}, which does not exist"


def test_no_words_about_how_the_work_was_organised():
    texts = {"README.md": (ROOT / "README.md").read_text()}
    for page in doc_pages():
        texts[str(page.relative_to(ROOT))] = page.read_text()
        for path in INCLUDE.findall(page.read_text()):
            texts[path] = (ROOT / path).read_text()
    found = [
        f"{name}: {m.group(0)!r}" for name, t in texts.items() for m in ORGANISATION.finditer(t)
    ]
    assert not found, found


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    p = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    api = "\n".join(f.read_text() for f in (site / "api").rglob("index.html"))
    for module in public_modules():
        assert f'id="{module}"' in api, module
    # the reports are included as their commands wrote them, figures and all
    swarm = (site / "results" / "swarm_bc" / "index.html").read_text()
    assert "python benchmarks/swarm_bc.py --scale cpu --resume" in swarm
    assert "Statistics over seeds" in swarm
    assert (site / "benchmarks" / "results" / "swarm_bc_returns.png").is_file()
    zoo = (site / "results" / "experts" / "index.html").read_text()
    assert "brax/hopper" in zoo and "zoo-table" not in zoo
