"""What every lab owes the course, as functions an author can run and the tests enforce.

    python -m synthkit.grading.contract 04     # the problems of lab 04 (none: exit 0)

- ``lab_problems(lab)``: the module defines LAB, TITLE and NOTEBOOK, at least one
  exercise, exercise names that are unique, and a well-formed quiz;
- ``quiz_problems(quiz)``: every question has distinct, non-empty choices and a reason;
- ``quiz_length_problems(quiz)``: the length rule. A student who always picks the longest
  choice must not do well: across a lab the right answer may be the strictly longest
  choice in at most a third of the questions, and where it is, it may be longer than
  the next-longest by at most a quarter (``LONGEST_SHARE``, ``LONGEST_MARGIN``);
- ``library_twins(exercise)``: synthkit functions with the same name as one the exercise
  asks for, which it should refuse (see ``checks``);
- ``defining_source(nb)``: the code of a notebook that *defines* things (imports,
  functions, classes, constants computed without a call), enough to run the checks
  without running a model;
- ``checkout_problems(lab, root)``: the rest of "Adding a lab" in a checkout of synthkit:
  both notebooks, the student copy and the reference code current (``synthkit assign``),
  one chapter, a ``course.toml`` entry, ``tests/test_labNN.py`` and a row in the README's
  table of labs.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import tomllib
from pathlib import Path

import nbformat

from . import references
from .assign import AssignError, lab_is_current

_CHECKOUT = references.FOLDER.parents[2]   # synthkit's own checkout, when installed from one
LONGEST_SHARE = 1 / 3  # at most this share of a lab's questions may have the longest right answer
LONGEST_MARGIN = 1.25  # and there it is at most this many times the next-longest choice


def quiz_problems(quiz) -> list[str]:
    """Ways `quiz` is malformed (empty list: none)."""
    problems = []
    if not quiz.questions:
        problems.append("the quiz has no questions")
    seen = set()
    for n, q in enumerate(quiz.questions, 1):
        where = f"question {n} ({q.text[:40]!r})"
        if q.text in seen:
            problems.append(f"{where} is asked twice")
        seen.add(q.text)
        if len(q.choices) < 3:
            problems.append(f"{where} has {len(q.choices)} choices; give at least 3")
        if any(not c.strip() for c in q.choices):
            problems.append(f"{where} has an empty choice")
        if len({c.strip().lower() for c in q.choices}) != len(q.choices):
            problems.append(f"{where} has two identical choices")
        if not q.why.strip():
            problems.append(f"{where} says nothing in `why` about why its answer is right")
    return problems


def quiz_length_problems(quiz) -> list[str]:
    """Where `quiz` breaks the length rule (see the module doc)."""
    problems, longest = [], []
    for n, q in enumerate(quiz.questions, 1):
        right = len(q.choices[q.answer])
        others = sorted((len(c) for i, c in enumerate(q.choices) if i != q.answer), reverse=True)
        if others and right > others[0]:
            longest.append(n)
            if right > LONGEST_MARGIN * others[0]:
                problems.append(f"question {n}: the right answer ({right} characters) is more than "
                                f"{LONGEST_MARGIN - 1:.0%} longer than the next-longest choice ({others[0]})")
    allowed = int(len(quiz.questions) * LONGEST_SHARE)
    if len(longest) > allowed:
        problems.append(f"the right answer is the longest choice in {len(longest)} of {len(quiz.questions)} "
                        f"questions ({', '.join(map(str, longest))}); at most {allowed} may be")
    return problems


def library_twins(exercise) -> list[str]:
    """Dotted names of synthkit functions (outside grading and labs) named like one of the
    functions `exercise` asks the student to write."""
    import synthkit

    wanted = set(getattr(exercise, "names", ()))
    twins = []
    for info in pkgutil.walk_packages(synthkit.__path__, "synthkit."):
        if info.name.startswith(("synthkit.grading", "synthkit.labs")) or info.ispkg:
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # noqa: BLE001 - an optional backend that cannot load here
            continue
        for name in wanted:
            obj = getattr(module, name, None)
            if inspect.isfunction(obj) and obj.__module__ == info.name:
                twins.append(f"{info.name}.{name}")
    return sorted(twins)


def defining_source(nb) -> str:
    """The statements of `nb`'s code cells that import, define a function or class, or
    assign a value computed without calls or indexing from names already defined, in
    order, as one piece of source."""
    import ast
    import builtins

    kept, bound = [], set(dir(builtins))
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # a cell with IPython magics
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                bound.update((a.asname or a.name.split(".")[0]) for a in node.names)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                evaluated = node.decorator_list + (node.bases if isinstance(node, ast.ClassDef)
                                                   else node.args.defaults + node.args.kw_defaults)
                if not all(n.id in bound for e in evaluated if e is not None
                           for n in ast.walk(e) if isinstance(n, ast.Name)):
                    continue  # it needs a value this code does not define
                bound.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None \
                    and not any(isinstance(n, (ast.Call, ast.Subscript, ast.comprehension))
                                for n in ast.walk(node.value)) \
                    and all(n.id in bound for n in ast.walk(node.value) if isinstance(n, ast.Name)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if not all(isinstance(t, ast.Name) for t in targets):
                    continue
                bound.update(t.id for t in targets)
            else:
                continue
            kept.append(ast.get_source_segment(cell.source, node, padded=False))
    return "\n\n".join(kept) + "\n"


def lab_problems(lab: str) -> list[str]:
    """Everything lab `lab` gets wrong about the contract (empty list: nothing)."""
    from .exercises import CodingExercise
    from .registry import lab_exercises, lab_module, lab_quiz

    mod = lab_module(lab)
    problems = []
    if getattr(mod, "LAB", None) != lab:
        problems.append(f"{mod.__name__}.LAB should be {lab!r}")
    for name in ("TITLE", "NOTEBOOK"):
        if not isinstance(getattr(mod, name, None), str) or not getattr(mod, name):
            problems.append(f"{mod.__name__} must define {name} (a non-empty string)")
    notebook = getattr(mod, "NOTEBOOK", "")
    if isinstance(notebook, str) and notebook and not notebook.startswith(f"{lab}_"):
        problems.append(f"{mod.__name__}.NOTEBOOK ({notebook!r}) should start with '{lab}_'")
    exercises = lab_exercises(lab)
    if not exercises:
        problems.append(f"{mod.__name__} defines no exercise")
    names = [ex.name for ex in exercises]
    if len(set(names)) != len(names):
        problems.append(f"{mod.__name__} has two exercises with one name: {names}")
    for ex in exercises:
        if ex.lab != lab:
            problems.append(f"{ex.name} says it belongs to lab {ex.lab!r}")
        if not ex.hints:
            problems.append(f"{ex.name} has no hint")
        if isinstance(ex, CodingExercise):
            if not ex.solution_code:
                problems.append(f"{ex.name} has no solution to show")
            missing = [t for t in library_twins(ex) if t not in ex.refuses]
            if missing:
                problems.append(f"{ex.name} asks for a function synthkit already has; refuse it: "
                                f"refuses=({', '.join(repr(m) for m in missing)},)")
            try:
                ex.refused_keys()
            except Exception as e:  # noqa: BLE001
                problems.append(f"{ex.name}: a refused name does not resolve ({type(e).__name__}: {e})")
    quiz = lab_quiz(lab)
    if quiz is not None:
        problems += [f"quiz: {p}" for p in quiz_problems(quiz)]
        if quiz.lab != lab:
            problems.append(f"the quiz says it belongs to lab {quiz.lab!r}")
    return problems


def checkout_problems(lab: str, root: str | Path) -> list[str]:
    """What lab `lab` is missing in the checkout at `root`, beyond its module (empty: nothing)."""
    from .registry import lab_module

    root, problems = Path(root), []
    notebook = getattr(lab_module(lab), "NOTEBOOK", "")
    solution, student = root / "solutions" / notebook, root / "labs" / notebook
    if not solution.is_file():
        problems.append(f"solutions/{notebook} does not exist")
    else:
        try:
            if not lab_is_current(solution, student):
                problems.append(f"labs/{notebook} is missing or stale: run `synthkit assign`")
            cells = nbformat.read(solution, as_version=4).cells
            ref = references.path_for(lab)
            current = ref.read_text(encoding="utf-8") if ref.is_file() else None
            if current != references.render(references.from_notebook(cells)):
                problems.append(f"{ref.relative_to(root) if ref.is_relative_to(root) else ref} is missing "
                                "or stale: run `synthkit assign`")
        except (AssignError, ValueError) as e:
            problems.append(f"solutions/{notebook}: {e}")
    chapters = sorted((root / "chapters").glob(f"{lab}-*.md"))
    if len(chapters) != 1:
        problems.append(f"expected one chapters/{lab}-*.md, found {len(chapters)}")
    try:
        labs = tomllib.loads((root / "course.toml").read_text(encoding="utf-8")).get("labs", {})
        if lab not in labs:
            problems.append(f"course.toml has no [labs.{lab}] (assigned, due, points)")
    except (OSError, tomllib.TOMLDecodeError) as e:
        problems.append(f"course.toml cannot be read: {e}")
    if not (root / "tests" / f"test_lab{lab}.py").is_file():
        problems.append(f"tests/test_lab{lab}.py does not exist (the lab's own wrong answers and "
                        "what its notebook must say)")
    readme = (root / "README.md").read_text(encoding="utf-8") if (root / "README.md").is_file() else ""
    if not any(line.startswith(f"| {lab} ") for line in readme.splitlines()):
        problems.append(f"README.md's table of labs has no row for lab {lab} ('| {lab} title | chapter | ...')")
    return problems


def main(argv=None) -> int:
    from .registry import available_labs

    labs = (argv if argv is not None else sys.argv[1:]) or available_labs()
    bad = 0
    for lab in labs:
        from .registry import lab_quiz
        found = lab_problems(lab)
        quiz = lab_quiz(lab)
        found += [f"quiz length rule: {p}" for p in (quiz_length_problems(quiz) if quiz else [])]
        if (_CHECKOUT / "solutions").is_dir():
            found += checkout_problems(lab, _CHECKOUT)
        print(f"lab {lab}: " + ("ok" if not found else f"{len(found)} problem(s)"))
        for p in found:
            print(f"  - {p}")
        bad += bool(found)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
