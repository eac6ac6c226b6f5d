"""mkdocs hook: the results pages show the committed reports under ``benchmarks/results``.

* A page line ``<!-- include benchmarks/results/NAME.md -->`` is replaced by that report as
  its command wrote it (its title dropped, its headings one level down), so a page never
  restates a table by hand. ``<!-- include README.md:zoo-table -->`` includes the README's
  generated block between ``<!-- zoo-table:begin -->`` and ``<!-- zoo-table:end -->``.
* Every figure (``.png``) under ``benchmarks/results`` is added to the site at its repository
  path, and a page links it by its path relative to the page's source file
  (``../../benchmarks/results/x.png``), which a code host renders too.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
RESULTS = "benchmarks/results"
INCLUDE = re.compile(r"^<!-- include (\S+?)(?::([\w-]+))? -->$", re.M)
LINK = re.compile(r"(\]\()([^)\s]+)(\))")
HEADING = re.compile(r"^(#{1,5}) ", re.M)


class IncludeError(ValueError):
    """An include directive names a file or block that does not exist."""


def on_files(files: Files, config) -> Files:
    for path in sorted((ROOT / RESULTS).rglob("*.png")):
        files.append(
            File.generated(config, path.relative_to(ROOT).as_posix(), abs_src_path=str(path))
        )
    return files


def _included(path: str, block: str | None) -> str:
    source = ROOT / path
    if not source.is_file():
        raise IncludeError(f"include: {path} does not exist")
    text = source.read_text()
    if block is not None:
        begin, end = f"<!-- {block}:begin -->", f"<!-- {block}:end -->"
        if begin not in text or end not in text:
            raise IncludeError(f"include: {path} has no block {block!r}")
        return text.split(begin, 1)[1].split(end, 1)[0].strip("\n")
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return HEADING.sub(lambda m: "#" + m.group(1) + " ", "\n".join(lines)).strip("\n")


def _relink(markdown: str, page_src_uri: str) -> str:
    """Point links written relative to the page's source file at the figures in the site."""
    page_dir = posixpath.dirname(page_src_uri)
    repo_dir = posixpath.join("docs", page_dir)

    def fix(m: re.Match) -> str:
        target = m.group(2)
        if "://" in target or target.startswith("#"):
            return m.group(0)
        repo_target = posixpath.normpath(posixpath.join(repo_dir, target))
        if not repo_target.startswith(RESULTS + "/"):
            return m.group(0)
        return m.group(1) + posixpath.relpath(repo_target, page_dir or ".") + m.group(3)

    return LINK.sub(fix, markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:
    markdown = INCLUDE.sub(lambda m: _included(m.group(1), m.group(2)), markdown)
    return _relink(markdown, page.file.src_uri)
