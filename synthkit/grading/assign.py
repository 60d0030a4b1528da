"""solutions/ -> labs/: make the student copies from the instructor's notebooks.

The notebooks in ``solutions/`` are the single source of truth. Inside their code
cells, nbgrader's markers fence off the parts a student writes::

    def build_chat_prompt(model, user_message, system=None):
        ### BEGIN SOLUTION
        ...the reference code...
        ### END SOLUTION

``assign`` replaces each fenced block with a stub at the same indentation,
``raise NotImplementedError("Write your code here — try ex1.hint()")``, naming the
exercise whose check follows it. A block inside a triple-quoted string (an essay's
answer) becomes a placeholder line the essay check reads as "no answer", and one in a markdown cell becomes a prompt to write.
Outputs, execution counts and metadata beyond tags are dropped, cell ids are kept, so
regenerating is byte-for-byte stable and ``assign --check`` can tell a stale lab.

In a checkout of synthkit itself, ``assign`` also copies each coding exercise's reference
code into package data (``references``), where ``exN.solution()`` reads it: the solution
notebook stays the only place that code is written.
"""
from __future__ import annotations

import hashlib
import json
import platform
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import references
from .outcomes import BEGIN_SOLUTION as BEGIN
from .outcomes import END_SOLUTION as END
from .outcomes import ESSAY_PLACEHOLDER
from .registry import lab_id_from_name

STUB = 'raise NotImplementedError("Write your code here — try {hint}")'
MARKDOWN_STUB = "_Write your answer here._"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def language_info() -> dict:
    """The `language_info` an IPython kernel reports when it starts (ipykernel's
    `IPythonKernel.language_info`). Written into every student copy so that opening an
    untouched lab and closing it asks nothing: JupyterLab marks a notebook unsaved when the
    kernel's report changes its metadata. Only the Python version can differ between the
    machine that ran `assign` and the student's, so `assign --check` ignores it."""
    return {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
            "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
            "pygments_lexer": "ipython3", "version": platform.python_version()}


def _same_lab(a: str | None, b: str) -> bool:
    """Equal, or equal but for the Python version in `language_info`."""
    if a is None or a == b:
        return a == b
    try:
        x, y = json.loads(a), json.loads(b)
    except ValueError:
        return False
    for nb in (x, y):
        nb.get("metadata", {}).get("language_info", {}).pop("version", None)
    return x == y
_EXERCISE_CALL = re.compile(r"\b((?:ex|essay)\d+)\.(?:check|submit)\(")


class AssignError(ValueError):
    pass


@dataclass
class LabState:
    solution: Path | None
    lab: Path
    state: str  # "written", "unchanged", "stale", "missing", "orphan"

    def __str__(self) -> str:
        what = {"written": "written", "unchanged": "up to date",
                "stale": f"stale: differs from what {self.solution} generates",
                "missing": f"missing: {self.solution} has no student copy yet",
                "orphan": "has no solution notebook in solutions/ (labs are generated, never written by hand)"}
        return f"{self.lab}: {what[self.state]}"


def _inside_string(text_before: str) -> bool:
    """Whether a position follows an odd number of triple quotes (is inside such a string)."""
    return (text_before.count('"""') + text_before.count("'''")) % 2 == 1


def strip_solutions(source: str, cell_type: str = "code", hint: str = "the exercise's hint()",
                    where: str = "a cell") -> str:
    """The cell's source with every solution block replaced by its stub."""
    lines = source.split("\n")
    out: list[str] = []
    inside = False
    for number, line in enumerate(lines, 1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise AssignError(f"{where}, line {number}: {BEGIN} inside another solution block")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            if cell_type == "markdown":
                out.append(indent + MARKDOWN_STUB)
            elif _inside_string("\n".join(out)):  # an essay's answer
                out.append(indent + ESSAY_PLACEHOLDER)
            else:
                out.append(indent + STUB.format(hint=hint))
        elif marker == END:
            if not inside:
                raise AssignError(f"{where}, line {number}: {END} without a {BEGIN} before it")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise AssignError(f"{where}: {BEGIN} is never closed by {END}")
    return "\n".join(out)


def _hint_for(cells, index: int) -> str:
    """'exN.hint()' for the first exercise checked in this cell or after it."""
    for cell in cells[index:]:
        if cell.cell_type == "code":
            m = _EXERCISE_CALL.search(cell.source)
            if m:
                return f"{m.group(1)}.hint()"
    return "the exercise's hint()"


def make_lab(solution: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The student copy of a solution notebook (a new notebook; the input is unchanged)."""
    lab = nbformat.v4.new_notebook()
    lab.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": language_info(),
                    "synthkit": {"lab": lab_id_from_name(name) or "", "generated_from": f"solutions/{name}",
                                 "note": "generated by `synthkit assign` from the solution notebook; "
                                         "edit that one, not this"}}
    for index, cell in enumerate(solution.cells):
        where = f"{name}, cell {index + 1}"
        source = cell.source
        if cell.cell_type in ("code", "markdown"):
            source = strip_solutions(source, cell.cell_type, _hint_for(solution.cells, index), where)
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(source)
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(source)
        else:
            new = nbformat.v4.new_raw_cell(source)
        tags = cell.get("metadata", {}).get("tags")
        new.metadata = {"tags": list(tags)} if tags else {}
        new.id = cell.get("id") or "cell-" + hashlib.sha1(f"{name}:{index}".encode()).hexdigest()[:12]
        lab.cells.append(new)
    nbformat.validate(lab)
    return lab


def _read(path: Path) -> nbformat.NotebookNode:
    try:
        return nbformat.read(path, as_version=4)
    except Exception as e:
        raise AssignError(f"{path} is not a readable notebook: {type(e).__name__}: {e}") from None


def render_lab(solution_path: str | Path) -> str:
    """The exact text of the lab generated from a solution notebook."""
    path = Path(solution_path)
    text = nbformat.writes(make_lab(_read(path), path.name))
    return text if text.endswith("\n") else text + "\n"


def lab_is_current(solution_path: str | Path, lab_path: str | Path) -> bool:
    """Whether the student copy is what `assign` would write now (any Python version)."""
    lab_path = Path(lab_path)
    return lab_path.is_file() and _same_lab(lab_path.read_text(encoding="utf-8"), render_lab(solution_path))


def assign(solutions: str | Path = "solutions", labs: str | Path = "labs", *,
           check: bool = False) -> list[LabState]:
    """Regenerate labs/ from solutions/ (check=True: compare only, write nothing)."""
    solutions, labs = Path(solutions), Path(labs)
    if not solutions.is_dir():
        raise AssignError(f"no solutions folder at {solutions}")
    states = []
    sources = sorted(solutions.glob("*.ipynb"))
    for src in sources:
        target = labs / src.name
        text = render_lab(src)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text or (check and _same_lab(current, text)):
            states.append(LabState(src, target, "unchanged"))
        elif check:
            states.append(LabState(src, target, "missing" if current is None else "stale"))
        else:
            labs.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(target)
            states.append(LabState(src, target, "written"))
        if references.owns(solutions) and lab_id_from_name(src.name):
            states.append(_references(src, check))
    names = {s.name for s in sources}
    for lab in sorted(labs.glob("*.ipynb")) if labs.is_dir() else []:
        if lab.name not in names:
            states.append(LabState(None, lab, "orphan"))
    return states


def _references(src: Path, check: bool) -> LabState:
    """Copy the reference code of `src`'s coding exercises into synthkit's package data
    (see ``references``), or with check=True only compare."""
    target = references.path_for(lab_id_from_name(src.name))
    if target.is_relative_to(Path.cwd()):
        target = target.relative_to(Path.cwd())
    try:
        text = references.render(references.from_notebook(_read(src).cells))
    except ValueError as e:
        raise AssignError(f"{src}: {e}") from None
    current = target.read_text(encoding="utf-8") if target.exists() else None
    if current == text:
        return LabState(src, target, "unchanged")
    if check:
        return LabState(src, target, "missing" if current is None else "stale")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return LabState(src, target, "written")


def problems(states: list[LabState]) -> list[LabState]:
    return [s for s in states if s.state in ("stale", "missing", "orphan")]
