"""docs/benchmarks.md is written by several generators, each owning one marked section.

Each generator replaces only the text between ``<!-- begin NAME -->`` and ``<!-- end NAME -->``
(appending the section when it is not there yet), so re-running one benchmark never drops the
results of another.
"""

from __future__ import annotations

from pathlib import Path


def write(path: Path, name: str, text: str) -> None:
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    old = path.read_text() if path.exists() else ""
    i, j = old.find(begin), old.find(end)
    if i >= 0 and j > i:
        new = old[:i] + block + old[j + len(end):]
    else:
        new = old.rstrip() + ("\n\n" if old.strip() else "") + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)
