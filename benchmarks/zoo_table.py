"""Regenerate the README's expert-zoo table from the committed experts' metadata.

python benchmarks/zoo_table.py          # rewrite the table in README.md
python benchmarks/zoo_table.py --check  # exit 1 if README.md is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

import tyro

from jaxbc.experts import zoo_table

BEGIN, END = "<!-- zoo-table:begin -->", "<!-- zoo-table:end -->"


def markdown() -> str:
    lines = [
        "| env | return (mean ± std, 100 ep.) | random return | env steps | train time | machine | seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in zoo_table():
        lines.append(
            f"| {r['env']} | {r['mean_return']:.2f} ± {r['std_return']:.2f} | {r['random_return']:.2f} "
            f"| {r['env_steps']:,} | {r['wall_time_s']:.0f} s | {r['machine']} | {r['seed']} |"
        )
    return "\n".join(lines)


def main(readme: Path = Path("README.md"), check: bool = False) -> None:
    text = readme.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{markdown()}\n{END}{tail}"
    if check:
        if new != text:
            print(
                f"{readme} zoo table is out of date: run python benchmarks/zoo_table.py",
                file=sys.stderr,
            )
            raise SystemExit(1)
        return
    readme.write_text(new)


if __name__ == "__main__":
    tyro.cli(main)
