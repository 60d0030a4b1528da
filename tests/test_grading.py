"""The course machinery without kernels: exercises, essays, quizzes, progress, course.toml,
assign, profiles and the CLI wiring. (Notebooks run in tests/test_notebooks.py.)"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from synthkit import profiles
from synthkit.grading import assign as assign_mod
from synthkit.cli import course as cli
from synthkit.grading import course, progress, store
from synthkit.grading.exercises import (ESSAY_PLACEHOLDER, CodingExercise, EssayExercise, Result,
                                        grade_all, show_input)
from synthkit.grading.quiz import Question, Quiz
from synthkit.grading.registry import available_labs, lab_exercises, lab_id_from_name, lab_quiz

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("SYNTHKIT_COURSE", raising=False)
    profiles.reset()
    yield
    profiles.reset()


# --- a small exercise of our own, to test the mechanics without a model ------------------
def _check_add(c):
    fn = c.get("add", callable_=True)
    for _ in range(5):
        a, b = c.rng.randint(-1000, 1000), c.rng.randint(-1000, 1000)
        label = f"add({a}, {b})"
        got = c.expect_type(c.call(fn, a, b, label=label), int, label)
        if got != a + b:
            c.fail(f"{label} returned {got}, which is not the sum of its inputs.")


ADD = CodingExercise("ex9", "99", names="add", checker=_check_add, time_limit=0.5,
                     hints=["Use +.", "return a + b would do"], solution="def add(a, b):\n    return a + b")


def test_passing_check_says_so_plainly():
    r = ADD.grade({"add": lambda a, b: a + b})
    assert r.status == "pass" and r.passed and r.points == ADD.points
    assert str(r).startswith("✓ ex9")


def test_hard_coded_answer_fails_on_fresh_random_inputs():
    r = ADD.grade({"add": lambda a, b: 7})
    assert r.status == "fail"
    assert "add(" in r.message and "returned 7" in r.message  # which input, and how


@pytest.mark.parametrize("fn, status, words", [
    (lambda a, b: str(a + b), "fail", "should return an int"),
    (lambda a, b: 1 / 0, "error", "ZeroDivisionError"),
    (lambda a: a, "error", "TypeError"),
])
def test_failures_name_the_input_and_the_kind(fn, status, words):
    r = ADD.grade({"add": fn})
    assert r.status == status and words in r.message and "add(" in r.message


def test_too_slow_is_stopped_and_reported():
    def add(a, b):
        while True:
            pass
    start = time.perf_counter()
    r = ADD.grade({"add": add})
    assert r.status == "slow" and "still running after 0.5 s" in r.message
    assert time.perf_counter() - start < 5


def test_missing_and_stub_are_not_done_yet():
    assert ADD.grade({}).status == "missing"
    assert ADD.grade({"add": 3}).status == "fail"

    def add(a, b):
        raise NotImplementedError("Write your code here — try ex9.hint()")
    r = ADD.grade({"add": add})
    assert r.status == "missing" and "NotImplementedError" in r.message


def test_check_shows_and_records_the_result(capsys):
    ADD.check({"add": lambda a, b: a + b})
    out = capsys.readouterr().out
    assert "✓ ex9" in out
    recs = progress.load()
    assert recs[-1]["item"] == "ex9" and recs[-1]["status"] == "pass" and recs[-1]["kind"] == "code"


def test_check_without_namespace_reads_the_calling_module_globals(capsys):
    ns = {"ADD": ADD}
    exec("def add(a, b):\n    return a + b\nADD.check()", ns)
    assert "✓ ex9" in capsys.readouterr().out


def test_hint_and_solution_print_text(capsys):
    ADD.hint()
    ADD.hint(2)
    ADD.solution()
    out = capsys.readouterr().out
    assert "Hint 1 for ex9: Use +." in out and "ex9.hint(2)" in out and "Hint 2" in out
    assert "def add(a, b):" in out


def test_a_hint_past_the_last_says_there_are_no_more(capsys):
    ADD.hint(len(ADD.hints) + 1)
    out = capsys.readouterr().out
    assert "seen them all" in out and "ex9.solution()" in out
    assert "Hint" not in out          # not the last hint again


def test_a_broken_checker_is_an_error_never_a_pass():
    def bad(c):
        raise RuntimeError("bug in the check")
    ex = CodingExercise("ex8", "99", names="x", checker=bad)
    r = grade_all([ex], {})[0]
    assert r.status == "error" and "bug in the check" in r.message


def test_show_input_is_short():
    assert len(show_input("x" * 500)) <= 70


# --- essays ------------------------------------------------------------------------------
def test_essay_is_submitted_never_marked_correct(capsys):
    essay = EssayExercise("essay1", "99", prompt="Why?", points=1)
    assert essay.grade({}).status == "missing"
    assert essay.grade({"essay1_answer": "   "}).status == "missing"
    assert essay.grade({"essay1_answer": f"\n{ESSAY_PLACEHOLDER}\n"}).status == "missing"
    r = essay.grade({"essay1_answer": "Because caching makes reruns free."})
    assert r.status == "submitted" and r.points == 0 and r.answer.startswith("Because")

    ns: dict = {}
    essay.submit("My answer.", namespace=ns)
    assert ns["essay1_answer"] == "My answer."  # where the grader will read it
    assert "✎ essay1" in capsys.readouterr().out
    last = progress.load()[-1]
    assert last["status"] == "submitted" and last["answer"] == "My answer."


# --- quizzes -----------------------------------------------------------------------------
QUIZ_SCRIPT = """
from synthkit.labs.lab00 import quiz
quiz.show()
q = quiz.questions
wrong = next(i for i in range(len(q[1].choices)) if i != q[1].answer)
print("RESULT", quiz.answer(1, "abcdefgh"[q[0].answer]), quiz.answer(2, "abcdefgh"[wrong]), quiz.answer(3, "abcdefgh"[q[2].answer]))
from synthkit.grading import progress
progress.show()
"""


def test_quiz_text_fallback_in_a_plain_process_records(tmp_path):
    env = dict(os.environ, SYNTHKIT_HOME=str(tmp_path / "quizhome"))
    out = subprocess.run([sys.executable, "-c", QUIZ_SCRIPT], capture_output=True, text=True, env=env,
                         stdin=subprocess.DEVNULL, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    quiz = lab_quiz("00")
    assert f"1. {quiz.questions[0].text[:30]}" in out.stdout and "a) " in out.stdout  # the text quiz
    assert 'quiz.answer(1, "b")' in out.stdout
    assert "RESULT True False True" in out.stdout
    assert "✓ Right." in out.stdout and "✗ Not quite." in out.stdout
    recs = [r for r in progress.load(tmp_path / "quizhome" / "progress" / "progress.jsonl") if r["kind"] == "quiz"]
    assert [(r["item"], r["status"]) for r in recs] == [("quiz.q1", "pass"), ("quiz.q2", "fail"), ("quiz.q3", "pass")]
    assert f"2/{len(quiz.questions)}" in out.stdout  # the progress table's quiz column


def test_quiz_widget_click_records_and_falls_back_to_text():
    q = Quiz("99", [Question("2 + 2?", ["3", "4"], answer=1, why="Two and two make four."),
                    Question("Sky?", ["blue", "green"], answer=0, why="Rayleigh scattering.")])
    box = q.widget()
    bundle = box._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "2 + 2?" in bundle["text/plain"] and "q.answer" not in bundle["text/plain"]
    radio = box.children[1].children[1]
    radio.value = 0  # a click on the wrong choice
    feedback = box.children[1].children[2]
    assert "Not quite" in feedback.value and "four" in feedback.value
    radio.value = 1
    assert "Right" in feedback.value
    assert q.score == (1, 2)
    recs = progress.load()
    assert [r["status"] for r in recs] == ["fail", "pass"] and recs[-1]["via"] == "widget"


def test_quiz_rejects_bad_answers():
    q = lab_quiz("00")
    with pytest.raises(ValueError):
        q.answer(9, "a")
    with pytest.raises(ValueError):
        q.answer(1, "z")


# --- progress store ----------------------------------------------------------------------
def _writer(home: str, tag: str, n: int) -> None:
    os.environ["SYNTHKIT_HOME"] = home
    from synthkit.grading import progress as p
    for i in range(n):
        p.record("99", f"{tag}{i}", kind="code", status="pass", message="x" * random.randint(0, 3000))


def test_two_processes_appending_at_once_lose_nothing(tmp_path):
    home = str(tmp_path / "shared")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(home, tag, 150)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    recs = progress.load(Path(home) / "progress" / "progress.jsonl")
    assert len(recs) == 300
    assert {r["item"] for r in recs} == {f"{t}{i}" for t in "ab" for i in range(150)}


def test_a_torn_last_line_is_skipped_and_nothing_else_is_lost():
    progress.record("00", "ex1", kind="code", status="fail")
    progress.record("00", "ex1", kind="code", status="pass")
    path = progress.store_path()
    with open(path, "ab") as fh:
        fh.write(b'{"time": "2026-01-01", "lab": "00", "item": "ex2", "kind": "co')  # killed mid-write
    assert len(progress.load()) == 2
    progress.record("00", "essay1", kind="essay", status="submitted")
    recs = progress.load()
    assert [r["item"] for r in recs] == ["ex1", "ex1", "essay1"]
    table = progress.table()
    assert "1/1 passed" in table and "1/1 submitted" in table and "00" in table


def test_progress_table_when_empty_says_how_to_start(monkeypatch, tmp_path):
    (tmp_path / "course.toml").write_text("[course]\n")  # a course with nothing assigned
    monkeypatch.chdir(tmp_path)
    assert "No progress recorded yet" in progress.table()


def test_unwritable_store_warns_but_never_breaks_a_check(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SYNTHKIT_HOME", str(blocker))
    monkeypatch.setattr(store, "_warned", False)
    with pytest.warns(UserWarning, match="could not save your progress"):
        progress.record("00", "ex1", kind="code", status="pass")


# --- course.toml -------------------------------------------------------------------------
def test_course_toml_of_the_repository():
    c = course.load_course(ROOT / "course.toml")
    lab = c.labs["00"]
    assert lab.assigned and course.lab_info("00", c).notebook == "00_welcome.ipynb" and str(lab.due) == "2026-02-06"
    assert c.points("00", "ex1", 99) == 2 and c.points("00", "nope", 5) == 5
    for lid, cfg in c.labs.items():  # every configured lab exists, with the notebook its module names
        assert (ROOT / "solutions" / course.lab_info(lid, c).notebook).exists()
        names = {ex.name for ex in lab_exercises(lid)}
        assert set(cfg.points) <= names, f"course.toml gives points to unknown exercises of lab {lid}"


def test_course_toml_errors_are_readable(tmp_path):
    bad = tmp_path / "course.toml"
    bad.write_text("[labs.00]\npoints = { ex1 = -2 }\n")
    with pytest.raises(course.CourseError, match="points"):
        course.load_course(bad)
    bad.write_text("[labs.00\n")
    with pytest.raises(course.CourseError, match="cannot read"):
        course.load_course(bad)


def test_course_is_found_upwards_or_by_env(tmp_path, monkeypatch):
    (tmp_path / "course.toml").write_text('[labs.00]\nassigned = true\npoints = { ex1 = 5 }\n')
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert course.load_course().points("00", "ex1", 1) == 5
    monkeypatch.setenv("SYNTHKIT_COURSE", str(ROOT / "course.toml"))
    assert course.load_course().points("00", "ex1", 1) == 2


# --- assign ------------------------------------------------------------------------------
def _solution_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"state": "secret-ish"}
    cells = [
        nbformat.v4.new_markdown_cell("# Lab 42\nIntro."),
        nbformat.v4.new_code_cell(textwrap.dedent('''\
            def shout(text):
                """Upper-case it."""
                if text:
                    ### BEGIN SOLUTION
                    return text.upper() + "!!"  # SECRET-ONE
                    ### END SOLUTION
                return ""''')),
        nbformat.v4.new_code_cell("ex1.check()"),
        nbformat.v4.new_code_cell(textwrap.dedent('''\
            ### BEGIN SOLUTION
            TOTAL = 42  # SECRET-TWO
            ### END SOLUTION
            ex2.check()''')),
        nbformat.v4.new_code_cell(textwrap.dedent('''\
            essay1_answer = """
            ### BEGIN SOLUTION
            A model answer. SECRET-THREE
            ### END SOLUTION
            """
            essay1.submit(essay1_answer)''')),
        nbformat.v4.new_markdown_cell("Explain:\n### BEGIN SOLUTION\nSECRET-FOUR\n### END SOLUTION"),
    ]
    for i, c in enumerate(cells):
        c.id = f"c{i}"
    cells[1].outputs = [nbformat.v4.new_output("stream", text="SECRET-OUTPUT")]
    cells[1].execution_count = 3
    cells[1].metadata = {"tags": ["keep-me"], "collapsed": True, "scrolled": True}
    nb.cells = cells
    return nb


def test_assign_strips_solutions_and_is_byte_stable(tmp_path):
    sol, labs = tmp_path / "solutions", tmp_path / "labs"
    sol.mkdir()
    nbformat.write(_solution_notebook(), sol / "42_test.ipynb")
    states = assign_mod.assign(sol, labs)
    assert [s.state for s in states] == ["written"]
    text = (labs / "42_test.ipynb").read_text()
    assert "SECRET" not in text and "BEGIN SOLUTION" not in text and "widgets" not in text
    lab = nbformat.reads(text, as_version=4)
    src = [c.source for c in lab.cells]
    assert src[1] == ('def shout(text):\n    """Upper-case it."""\n    if text:\n'
                      '        raise NotImplementedError("Write your code here — try ex1.hint()")\n    return ""')
    assert src[3] == 'raise NotImplementedError("Write your code here — try ex2.hint()")\nex2.check()'
    assert src[4] == f'essay1_answer = """\n{ESSAY_PLACEHOLDER}\n"""\nessay1.submit(essay1_answer)'
    assert "_Write your answer here._" in src[5]
    assert [c.id for c in lab.cells] == [f"c{i}" for i in range(6)]
    assert lab.cells[1].outputs == [] and lab.cells[1].execution_count is None
    assert lab.cells[1].metadata == {"tags": ["keep-me"]}
    assert lab.metadata["synthkit"]["lab"] == "42"
    compile(src[1], "cell", "exec")  # the stub is valid Python at the right indentation

    before = (labs / "42_test.ipynb").read_bytes()
    assert [s.state for s in assign_mod.assign(sol, labs)] == ["unchanged"]
    assert (labs / "42_test.ipynb").read_bytes() == before


def test_assign_check_detects_stale_missing_and_orphan_labs(tmp_path):
    sol, labs = tmp_path / "solutions", tmp_path / "labs"
    sol.mkdir()
    nb = _solution_notebook()
    nbformat.write(nb, sol / "42_test.ipynb")
    assert [s.state for s in assign_mod.assign(sol, labs, check=True)] == ["missing"]
    assign_mod.assign(sol, labs)
    nb.cells[0].source += "\nA new sentence."
    nbformat.write(nb, sol / "42_test.ipynb")
    (labs / "43_by_hand.ipynb").write_text((labs / "42_test.ipynb").read_text())
    states = {s.lab.name: s.state for s in assign_mod.assign(sol, labs, check=True)}
    assert states == {"42_test.ipynb": "stale", "43_by_hand.ipynb": "orphan"}
    assert "A new sentence" not in (labs / "42_test.ipynb").read_text()  # --check writes nothing

    ns = argparse.Namespace(check=True, solutions=str(sol), labs=str(labs))
    assert cli.cmd_assign(ns) == 1


def test_assign_refuses_unbalanced_markers(tmp_path):
    with pytest.raises(assign_mod.AssignError, match="never closed"):
        assign_mod.strip_solutions("### BEGIN SOLUTION\nx = 1\n")
    with pytest.raises(assign_mod.AssignError, match="without"):
        assign_mod.strip_solutions("x = 1\n### END SOLUTION\n")


def test_the_repository_labs_are_not_stale():
    states = assign_mod.assign(ROOT / "solutions", ROOT / "labs", check=True)
    assert states and not assign_mod.problems(states), "\n".join(map(str, assign_mod.problems(states)))


def _statements(source: str) -> list[str]:
    """Top-level statements of `source`, compared as code: comments and docstrings aside."""
    import ast
    try:
        tree = ast.parse(source)
    except SyntaxError:  # e.g. a cell with IPython magics
        return []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return [ast.dump(stmt) for stmt in tree.body]


def test_lab_solutions_shown_by_solution_match_the_solution_notebooks():
    """ex.solution() shows a copy of the notebook's reference code: keep the code the same."""
    for lid in available_labs():
        nb_path = ROOT / "solutions" / __import__(f"synthkit.labs.lab{lid}", fromlist=["NOTEBOOK"]).NOTEBOOK
        if not nb_path.exists():  # a lab still being written
            continue
        nb = nbformat.read(nb_path, as_version=4)
        cells = [set(_statements("\n".join(line for line in c.source.splitlines()
                                           if line.strip() not in (assign_mod.BEGIN, assign_mod.END))))
                 for c in nb.cells if c.cell_type == "code"]
        for ex in lab_exercises(lid):
            if isinstance(ex, CodingExercise) and ex.solution_code:
                wanted = set(_statements(ex.solution_code))
                assert any(wanted <= cell for cell in cells), \
                    f"lab {lid}: {ex.name}.solution() differs from the code in {nb_path.name}"


# --- labs registry, profiles, CLI ----------------------------------------------------------
def test_lab_registry():
    assert lab_id_from_name("00_welcome.ipynb") == "00"
    assert lab_id_from_name("alice-03_magpie.ipynb") == "03"
    assert lab_id_from_name("notes.ipynb") is None
    assert "00" in available_labs()
    assert [ex.name for ex in lab_exercises("00")] == ["ex1", "essay1"]
    assert len(lab_quiz("00").questions) >= 3


def test_student_names():
    from synthkit.grading.grade import student_name
    assert student_name(Path("/x/alice-00_welcome.ipynb")) == "alice"
    assert student_name(Path("/x/00_welcome_bob.ipynb")) == "bob"
    assert student_name(Path("/x/submitted/carol/00_welcome.ipynb")) == "carol"
    assert student_name(Path("/x/submitted/dan/00_welcome/00_welcome.ipynb")) == "dan"
    assert student_name(Path("/x/erin.ipynb")) == "erin"


def test_profiles(monkeypatch):
    monkeypatch.setenv("SYNTHKIT_PROFILE", "ci")
    assert profiles.profile() == "ci" and profiles.pick(ci=1, laptop=2, gpu=3) == 1
    monkeypatch.setenv("SYNTHKIT_PROFILE", "gpu")
    assert profiles.pick(ci=1, laptop=2) == 2  # falls back to the next smaller profile
    assert profiles.profile("laptop") == "laptop" and profiles.pick(ci=1, laptop=2, gpu=3) == 2
    profiles.reset()
    monkeypatch.setenv("SYNTHKIT_PROFILE", "huge")
    with pytest.raises(ValueError, match="SYNTHKIT_PROFILE"):
        profiles.profile()
    with pytest.raises(ValueError):
        profiles.pick()


def test_cli_registers_the_course_commands(capsys):
    parser = argparse.ArgumentParser(prog="synthkit")
    cli.register(parser.add_subparsers(dest="command", required=True))
    a = parser.parse_args(["grade", "subs/", "x.ipynb", "--out", "g.csv", "--jobs", "3", "--timeout", "20"])
    assert a.func is cli.cmd_grade and a.submissions == ["subs/", "x.ipynb"] and a.jobs == 3 and a.profile == "ci"
    a = parser.parse_args(["run", "n.ipynb", "--profile", "laptop"])
    assert a.func is cli.cmd_run and a.profile == "laptop"
    a = parser.parse_args(["assign", "--check"])
    assert a.func is cli.cmd_assign and a.check
    a = parser.parse_args(["progress", "--lab", "00"])
    assert a.func(a) == 0 and "lab" in capsys.readouterr().out


def test_results_round_trip_through_json():
    r = Result("00", "ex1", "code", "pass", "ok", 2.0)
    back = Result.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r and back.points == 2.0


# --- refusing the library: detected by what runs, whatever the route ----------------------
# Each form is a notebook cell that defines `{fn}` (the student's name) as synthkit's own
# `{mod}.{lib}` by another route. Every one must score zero, with a message that says why.
REFUSAL_FORMS = {
    "imported": "from {mod} import {lib} as {fn}",
    "attribute": "import {mod} as library\n{fn} = library.{lib}",
    "lambda": "import {mod} as library\n{fn} = lambda *args, **kw: library.{lib}(*args, **kw)",
    "def": "from {mod} import {lib} as library_version\ndef {fn}(*args, **kw):\n    return library_version(*args, **kw)",
    "helper under another name": ("import {mod} as library\nmy_helper = library.{lib}\n"
                                  "def {fn}(*args, **kw):\n    return my_helper(*args, **kw)"),
    "importlib, computed name": ("import importlib\ndef {fn}(*args, **kw):\n"
                                 "    module = importlib.import_module('.'.join({parts!r}))\n"
                                 "    return getattr(module, '{lib_a}' + '{lib_b}')(*args, **kw)"),
    "functools.partial": "import functools, {mod} as library\n{fn} = functools.partial(library.{lib})",
    "functools.wraps": ("import functools, {mod} as library\n@functools.wraps(library.{lib})\n"
                        "def {fn}(*args, **kw):\n    return library.{lib}(*args, **kw)"),
    "a thread": ("import threading, {mod} as library\ndef {fn}(*args, **kw):\n    box = []\n"
                 "    t = threading.Thread(target=lambda: box.append(library.{lib}(*args, **kw)))\n"
                 "    t.start(); t.join()\n    return box[0]"),
}

# (lab, exercise, the student's function, library module, library function, other code the
# exercise needs that is the student's own, e.g. the second function of lab 02 ex3)
REFUSED = [
    ("02", "ex4", "distinct_n", "synthkit.metrics", "distinct_n", ""),
    ("02", "ex3", "lcs_length", "synthkit.self_instruct", "lcs_length",
     "from synthkit.self_instruct import rouge_tokenize\n"
     "def rouge_l_f1(a, b):\n    ta, tb = rouge_tokenize(a), rouge_tokenize(b)\n"
     "    if not ta or not tb:\n        return 0.0\n    common = lcs_length(ta, tb)\n"
     "    if common == 0:\n        return 0.0\n    p, r = common / len(tb), common / len(ta)\n"
     "    return 2 * p * r / (p + r)\n"),
    ("02", "ex3", "rouge_l_f1", "synthkit.self_instruct", "rouge_l",
     "def lcs_length(a, b):\n    prev = [0] * (len(b) + 1)\n    for x in a:\n        cur = [0]\n"
     "        for j, y in enumerate(b, 1):\n            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))\n"
     "        prev = cur\n    return prev[-1]\n"),
    ("03", "ex3", "topic_words", "synthkit.metrics", "topic_words", ""),
]


def _exercise(lab: str, name: str):
    return next(ex for ex in lab_exercises(lab) if ex.name == name)


def _student_namespace(code: str) -> dict:
    ns: dict = {"__name__": "__main__"}
    exec(compile(code, "<cell>", "exec"), ns)
    return ns


@pytest.mark.parametrize("form", list(REFUSAL_FORMS))
@pytest.mark.parametrize("lab, exercise, fn, mod, lib, extra", REFUSED,
                         ids=[f"lab{r[0]}-{r[1]}-{r[2]}" for r in REFUSED])
def test_the_library_s_own_function_earns_nothing_by_any_route(form, lab, exercise, fn, mod, lib, extra):
    parts = mod.split(".")
    cell = REFUSAL_FORMS[form].format(fn=fn, mod=mod, lib=lib, parts=parts, lib_a=lib[:3], lib_b=lib[3:])
    ns = _student_namespace(cell + "\n" + extra)
    r = _exercise(lab, exercise).grade(ns)
    assert r.status == "fail" and r.points == 0, (form, str(r))
    assert "asks for your own code" in r.message and f"{mod}.{lib}" in r.message


def test_the_library_s_function_is_refused_even_when_its_signature_makes_the_call_fail():
    """Lab 02 ex2 passes min_words=/max_words=, which the library's instruction_ok lacks: the
    call fails before the library's first line runs, and must still read as a refusal (not
    as an error in the student's code). Every case is tried so the order cannot hide it."""
    from synthkit.grading.checks import refused_keys, refusing
    from synthkit.self_instruct import instruction_ok

    with refusing(refused_keys(["synthkit.self_instruct.instruction_ok"]), instruction_ok) as hits:
        with pytest.raises(TypeError):
            instruction_ok("Write a poem about rain.", min_words=6)
    assert hits == ["synthkit.self_instruct.instruction_ok"]
    ns = _student_namespace("from synthkit import self_instruct\nkeep_instruction = self_instruct.instruction_ok")
    r = _exercise("02", "ex2").grade(ns)
    assert r.status == "fail" and "asks for your own code" in r.message, str(r)


def test_own_code_that_uses_allowed_library_helpers_still_passes():
    """Refusal is by function, not by module: lab 02 ex3's rouge_l_f1 may use rouge_tokenize
    from the same module as the refused lcs_length."""
    ex3 = _exercise("02", "ex3")
    r = ex3.grade(_student_namespace("from synthkit.self_instruct import rouge_tokenize\n" + ex3.solution_code))
    assert r.passed, str(r)
    ex4 = _exercise("02", "ex4")
    assert ex4.grade(_student_namespace(ex4.solution_code)).passed


def test_refusal_watch_restores_an_existing_trace_function():
    from synthkit.grading.checks import refused_keys, refusing

    seen = []

    def outer(frame, event, arg):
        seen.append(event)
        return None
    sys.settrace(outer)
    try:
        with refusing(refused_keys(["synthkit.metrics.distinct_n"])) as hits:
            from synthkit.metrics import distinct_n
            distinct_n(["a b"], 1)
        assert hits == ["synthkit.metrics.distinct_n"]
        assert sys.gettrace() is outer
    finally:
        sys.settrace(None)


def test_a_refused_name_that_does_not_exist_is_a_clear_error():
    from synthkit.grading.checks import refused_keys
    with pytest.raises(AttributeError):
        refused_keys(["synthkit.metrics.no_such_function"])


# --- the channel to a student's process: plain data only ----------------------------------
def test_values_cross_the_channel_as_plain_data():
    import numpy as np

    from synthkit.grading.sandbox import Opaque, decode, encode

    value = {"a": [1, 2.5, None, True, "x"], (1, "t"): {3, 4}, "b": b"\x00\x01", "n": np.float32(0.5),
             "arr": np.arange(6, dtype=np.int32).reshape(2, 3), "flag": np.bool_(True)}
    back = decode(json.loads(json.dumps(encode(value))))
    assert back["a"] == [1, 2.5, None, True, "x"] and back[(1, "t")] == {3, 4} and back["b"] == b"\x00\x01"
    assert back["n"] == 0.5 and type(back["n"]) is float
    assert back["arr"].dtype == np.int32 and back["arr"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert isinstance(back["flag"], np.bool_)

    class AlwaysEqual:
        def __eq__(self, other):
            return True

    class SneakyStr(str):
        def __eq__(self, other):
            return True
        __hash__ = str.__hash__

    got = decode(json.loads(json.dumps(encode(AlwaysEqual()))))
    assert isinstance(got, Opaque) and got != "anything" and not (got == got.__class__("x", ""))
    assert type(got).__name__ == "AlwaysEqual"
    sneaky = decode(json.loads(json.dumps(encode(SneakyStr("whatever")))))
    assert type(sneaky) is str and sneaky != "the right answer"
    with pytest.raises(ValueError):
        decode({"$t": "pickle", "v": "..."})
    with pytest.raises(ValueError):
        decode({"$t": "ndarray", "dtype": "|O", "shape": [1], "v": [1]})


# --- what the grader flags for the instructor ----------------------------------------------
def _notebook(*sources) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def test_patching_lines_are_flagged():
    from synthkit.grading.scan import patches

    nb = _notebook(
        "import json\njson.dumps = lambda *a, **k: '[]'",
        "import importlib\n_real = importlib.import_module\nimportlib.import_module = lambda n: _real(n)",
        "import sys, io\nsys.stdout = io.StringIO()",
        "import synthkit.grading.exercises as E\nE.Result.points = property(lambda self: 99)",
        "from synthkit.grading.exercises import Result\nsetattr(Result, 'passed', True)",
        "import builtins\nbuiltins.print = lambda *a: None",
        "sys.modules['synthkit.grading.exercises'] = None",
        "sys.settrace(None)",
        "__import__ = None",
        "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.rcParams['figure.dpi'] = 90",
    )
    flags = patches(nb)
    text = "\n".join(flags)
    for expected in ("cell 1, line 2", "json.dumps", "importlib.import_module", "sys.stdout", "E.Result.points",
                     "setattr on `Result`", "builtins.print", "sys.modules", "sys.settrace", "`__import__`"):
        assert expected in text, (expected, flags)
    assert not any(f.startswith("cell 10") for f in flags)  # configuring matplotlib is not patching


def test_the_course_s_own_notebooks_are_not_flagged():
    from synthkit.grading.scan import patches

    for path in sorted((ROOT / "solutions").glob("*.ipynb")) + sorted((ROOT / "labs").glob("*.ipynb")):
        assert patches(nbformat.read(path, as_version=4)) == [], path.name


def test_check_in_a_notebook_says_plainly_that_the_exercise_wants_own_code(capsys):
    ns = _student_namespace("import importlib\n"
                            "distinct_n = lambda texts, n: importlib.import_module('synthkit.' + 'metrics')"
                            ".distinct_n(texts, n)")
    _exercise("02", "ex4").check(ns)
    out = capsys.readouterr().out
    assert "✗ ex4" in out and "asks for your own code" in out and "synthkit.metrics.distinct_n" in out
    assert progress.load()[-1]["status"] == "fail"


def test_slowest_cells_reads_nbclient_timings():
    """`synthkit run` names the cells where a lab's minutes go, from nbclient's recorded times."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from synthkit.grading.runner import slowest_cells

    def timed(source, start, end):
        cell = new_code_cell(source)
        cell.metadata["execution"] = {"iopub.execute_input": f"2026-01-01T00:{start}Z",
                                      "shell.execute_reply": f"2026-01-01T00:{end}Z"}
        return cell

    nb = new_notebook(cells=[new_markdown_cell("# lab"), timed("# load\nmodel = load()", "00:00.000", "00:40.000"),
                             timed("x = 1", "00:40.000", "00:41.000"),
                             timed("train(model)", "01:00.000", "03:30.500"), new_code_cell("never run")])
    nb = nbformat.from_dict(nb)
    assert slowest_cells(nb) == [(3, 150.5, "train(model)"), (1, 40.0, "model = load()")]
    assert slowest_cells(None) == []
