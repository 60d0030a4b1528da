"""The contract every lab keeps, checked for every lab synthkit has, present and future:
its module is complete, its solution notebook's code passes every check, the student
copy's stubs are "missing", its quiz is well formed and passes the length rule, and
labs/ is what `synthkit assign` makes from solutions/.

These run the checks in this process on the code cells that *define* things (imports,
functions, classes, constants), so they take seconds; tests/test_notebooks.py runs the
whole notebooks in kernels."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from synthkit import profiles
from synthkit.grading import assign as assign_mod
from synthkit.grading.contract import checkout_problems, defining_source, lab_problems, quiz_length_problems
from synthkit.grading import references
from synthkit.grading.exercises import CodingExercise, EssayExercise
from synthkit.grading.mutants import reference_namespace
from synthkit.grading.registry import available_labs, lab_exercises, lab_module, lab_quiz

ROOT = Path(__file__).resolve().parents[1]
LABS = available_labs()


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SYNTHKIT_PROFILE", "ci")
    profiles.reset()
    yield
    profiles.reset()


def _notebook(folder: str, lab: str) -> Path:
    path = ROOT / folder / lab_module(lab).NOTEBOOK
    if not path.exists():
        pytest.fail(f"lab {lab}: {folder}/{path.name} does not exist (every lab module needs its notebook)")
    return path


def _defining_code(path: Path) -> dict:
    """A namespace holding what the notebook's code cells define (no model runs)."""
    ns: dict = {"__name__": "__main__"}
    exec(compile(defining_source(nbformat.read(path, as_version=4)), str(path), "exec"), ns)
    return ns


@pytest.mark.parametrize("lab", LABS)
def test_lab_module_keeps_the_contract(lab):
    problems = lab_problems(lab)
    assert not problems, "\n".join(problems)


CODING = [(lab, ex) for lab in LABS for ex in lab_exercises(lab) if isinstance(ex, CodingExercise)]
DRAWS = 10   # each draw gives the check fresh random inputs


@pytest.mark.parametrize("lab,ex", CODING, ids=lambda v: v if isinstance(v, str) else v.name)
def test_solution_code_passes_on_many_fresh_draws(lab, ex):
    ns = _defining_code(_notebook("solutions", lab))
    for _ in range(DRAWS):
        r = ex.grade(dict(ns))
        assert r.passed, f"lab {lab}: {r}"


@pytest.mark.parametrize("lab,ex", CODING, ids=lambda v: v if isinstance(v, str) else v.name)
def test_a_stub_among_solved_exercises_is_missing(lab, ex):
    """The notebook's `raise NotImplementedError` stub reads "missing", never "fail", even when
    every other exercise of the lab is solved; so does nothing defined at all."""
    assert ex.grade({}).status == "missing"
    stub = {name: (lambda *a, **k: (_ for _ in ()).throw(NotImplementedError("write it"))) for name in ex.names}
    solved = reference_namespace([e for lab_, e in CODING if lab_ == lab], lab_module(lab))
    assert ex.grade({**solved, **stub}).status == "missing"


@pytest.mark.parametrize("lab", LABS)
def test_reference_code_is_copied_from_the_solution_notebook(lab):
    """exN.solution() shows the solution notebook's own cell: `synthkit assign` copies it."""
    nb = nbformat.read(_notebook("solutions", lab), as_version=4)
    path = references.path_for(lab)
    assert path.is_file() and path.read_text(encoding="utf-8") == references.render(references.from_notebook(nb.cells)), \
        f"{path} is stale: run `synthkit assign` and commit it"
    for ex in lab_exercises(lab):
        if isinstance(ex, CodingExercise):
            assert ex.solution_code == references.reference_code(lab, ex.name) != ""


@pytest.mark.parametrize("lab", LABS)
def test_student_copy_stubs_are_missing(lab):
    ns = _defining_code(_notebook("labs", lab))
    for ex in lab_exercises(lab):
        if isinstance(ex, CodingExercise):
            r = ex.grade(ns)
            assert r.status == "missing" and r.points == 0, f"lab {lab}: {r}"
        elif isinstance(ex, EssayExercise):
            assert ex.grade(ns).status == "missing"


@pytest.mark.parametrize("lab", LABS)
def test_quiz_follows_the_length_rule(lab):
    """A student who always picks the longest choice must not do well (see contract)."""
    quiz = lab_quiz(lab)
    assert quiz is not None, f"lab {lab} has no quiz"
    problems = quiz_length_problems(quiz)
    assert not problems, f"lab {lab}:\n" + "\n".join(problems)


@pytest.mark.parametrize("lab", LABS)
def test_labs_folder_is_generated_from_solutions(lab):
    solution, student = _notebook("solutions", lab), _notebook("labs", lab)
    assert student.read_text(encoding="utf-8") == assign_mod.render_lab(solution), \
        f"labs/{student.name} is stale: run `synthkit assign` and commit labs/"


@pytest.mark.parametrize("lab", LABS)
def test_files_a_lab_writes_go_under_the_synthkit_home(lab):
    """`synthkit assign` regenerates the lab folder, so nothing may be written beside the
    notebook: a lab that writes files asks `synthkit.labs.work_dir` where."""
    import re

    cells = nbformat.read(_notebook("solutions", lab), as_version=4).cells
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    relative = re.findall(r"""Path\(\s*["'][^/~"'][^"']*["']\s*\)""", code)
    assert not relative, f"lab {lab} makes paths beside the notebook: {relative}; use work_dir({lab!r})"
    assert "tempfile" not in code, f"lab {lab}: use work_dir({lab!r}), which outlives the kernel"


@pytest.mark.parametrize("lab", LABS)
def test_the_checkout_has_everything_a_lab_needs(lab):
    assert checkout_problems(lab, ROOT) == []


def test_the_checklist_names_what_is_missing(tmp_path):
    import shutil

    notebook = lab_module("04").NOTEBOOK
    for folder in ("solutions", "labs"):
        (tmp_path / folder).mkdir()
        shutil.copy(ROOT / folder / notebook, tmp_path / folder / notebook)
    (tmp_path / "course.toml").write_text('[labs.03]\nassigned = true\n', encoding="utf-8")
    (tmp_path / "README.md").write_text("| 03 magpie | ... |\n", encoding="utf-8")
    found = "\n".join(checkout_problems("04", tmp_path))
    for missing in ("chapters/04-*.md", "[labs.04]", "tests/test_lab04.py", "no row for lab 04"):
        assert missing in found
    (tmp_path / "labs" / notebook).write_text("{}", encoding="utf-8")
    assert "stale: run `synthkit assign`" in "\n".join(checkout_problems("04", tmp_path))


def test_work_dir_is_under_the_synthkit_home(tmp_path):
    from synthkit.labs import work_dir

    folder = work_dir("lab07")
    assert folder == tmp_path / "home" / "work" / "lab07" and folder.is_dir()
    assert work_dir("7") == folder
    with pytest.raises(ValueError, match="lab number"):
        work_dir("capstone")


def test_the_length_rule_itself():
    from synthkit.grading.quiz import Question, Quiz

    def q(choices, answer):
        return Question("?" + "".join(choices), choices, answer, "because")

    honest = Quiz("99", [q(["short", "a bit longer", "mid"], 0), q(["aaaaaa", "bbbbbbb", "cc"], 1),
                         q(["one", "two", "three"], 0)])
    assert quiz_length_problems(honest) == []  # longest in 1 of 3 questions, and only by 7 to 6
    giveaway = Quiz("99", [q(["no", "yes, and here is a much longer right answer", "maybe"], 1)] * 3)
    problems = quiz_length_problems(giveaway)
    assert any("3 of 3" in p for p in problems) and any("longer than the next-longest" in p for p in problems)
