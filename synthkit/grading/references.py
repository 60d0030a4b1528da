"""The reference code of each coding exercise, taken from its solution notebook.

The solution notebook is the one source of a lab's reference code. ``synthkit assign``
copies, for each coding exercise, the code cell that holds its fenced solution (the cell
before the exercise's ``exN.check()``, fence lines removed) into package data,
``synthkit/labs/solutions/labNN.json``, so that ``exN.solution()`` can show it on a
machine that has only the student copies. Writing happens only in a checkout of synthkit
itself (where ``solutions/`` sits beside the package); an instructor's own course keeps its
reference code in its lab modules (``CodingExercise(..., solution=...)``).
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from .outcomes import BEGIN_SOLUTION, END_SOLUTION

FOLDER = Path(__file__).resolve().parents[1] / "labs" / "solutions"
_CHECK_CALL = re.compile(r"\b(ex\d+)\.check\(")


def _inside_string(text_before: str) -> bool:
    return (text_before.count('"""') + text_before.count("'''")) % 2 == 1


def _without_fences(source: str) -> str:
    return "\n".join(line for line in source.split("\n")
                     if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION)).strip("\n")


def from_notebook(cells) -> dict[str, str]:
    """{exercise name: code} for every code cell with a fenced solution outside a string
    (a fence inside a string is an essay's answer), named by the first ``exN.check()`` in
    that cell or a later one."""
    found: dict[str, str] = {}
    for index, cell in enumerate(cells):
        if cell.cell_type != "code" or BEGIN_SOLUTION not in cell.source:
            continue
        before = cell.source.split(BEGIN_SOLUTION)[0]
        if _inside_string(before):
            continue
        name = next((m.group(1) for later in cells[index:] if later.cell_type == "code"
                     for m in [_CHECK_CALL.search(later.source)] if m), None)
        if name is None:
            raise ValueError(f"cell {index + 1} has a fenced solution but no exN.check() follows it")
        if name in found:
            raise ValueError(f"two cells hold the solution of {name} (cell {index + 1} is the second): "
                             "put an exercise's fenced code in one cell")
        found[name] = _without_fences(cell.source)
    return found


def path_for(lab: str) -> Path:
    return FOLDER / f"lab{lab}.json"


def render(code: dict[str, str]) -> str:
    """The exact text of a lab's reference file (stable, so a stale one can be told)."""
    return json.dumps(dict(sorted(code.items())), indent=1, ensure_ascii=False) + "\n"


def owns(solutions: Path) -> bool:
    """Whether `solutions` is the folder of synthkit's own labs (a checkout of synthkit)."""
    return solutions.resolve().parent == FOLDER.parents[2]


@lru_cache(maxsize=None)
def _read(lab: str) -> dict[str, str]:
    try:
        return json.loads(path_for(lab).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def reference_code(lab: str, name: str) -> str:
    """The reference code of exercise `name` of lab `lab` ("" when there is none)."""
    return _read(lab).get(name, "")
