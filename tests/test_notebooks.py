"""Notebooks under test: every solution notebook passes its checks under the ci profile,
every student lab runs without crashing and scores zero, and grading survives the
submissions a real class hands in (broken, hostile, or both)."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import nbformat
import pytest

from synthkit.cli import course as cli
from synthkit.grading.contract import defining_source
from synthkit.grading.registry import available_labs, lab_module
from synthkit.grading.runner import run_notebook

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LABS = sorted((ROOT / "labs").glob("*.ipynb"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _scratch_env(tmp_path_factory):
    """One generation cache for the module (the first notebook fills it), a scratch
    progress store, no network."""
    saved = dict(os.environ)
    base = tmp_path_factory.mktemp("nb-env")
    os.environ.update(SYNTHKIT_HOME=str(base / "home"), SYNTHKIT_CACHE_DIR=str(base / "cache"),
                      HF_HUB_OFFLINE="1", SYNTHKIT_PROFILE="ci")
    os.environ.pop("SYNTHKIT_COURSE", None)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_notebook_passes_every_check_under_ci(path):
    r = run_notebook(path, profile="ci", timeout=300)
    assert r.status == "ok", (r.issues, r.notes)
    assert not r.errors, "\n".join(map(str, r.errors))
    assert r.results, "no checks ran"
    for res in r.results:
        assert res.status == ("submitted" if res.kind == "essay" else "pass"), str(res)


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.name)
def test_student_lab_runs_and_scores_zero(path):
    r = run_notebook(path, profile="ci", timeout=300)
    assert r.status == "ok", (r.issues, r.notes)  # no crash, no timeout
    assert not r.errors, "a cell of the blank lab raises: " + "\n".join(map(str, r.errors))
    code = [res for res in r.results if res.kind == "code"]
    assert code and all(res.status == "missing" and res.points == 0 for res in code), [str(x) for x in code]
    assert all(res.status == "missing" for res in r.results if res.kind == "essay")


def _cell(nb, cell_id):
    return next(c for c in nb.cells if c.get("id") == cell_id)


def _submissions(folder: Path) -> dict[str, str]:
    """Crafted submissions of lab 00, named <student>-00_welcome.ipynb; returns what each tests."""
    solution = nbformat.read(ROOT / "solutions" / "00_welcome.ipynb", as_version=4)
    blank = nbformat.read(ROOT / "labs" / "00_welcome.ipynb", as_version=4)

    def save(name, nb):
        nbformat.write(nb, folder / f"{name}-00_welcome.ipynb")

    save("good", solution)
    (folder / "notjson-00_welcome.ipynb").write_text('{"cells": [ this is not json', encoding="utf-8")

    nb = nbformat.from_dict(json.loads(json.dumps(solution)))
    nb.cells = [c for c in nb.cells if c.get("id") not in ("ex1-code", "essay1")]
    save("deleted", nb)

    nb = nbformat.from_dict(json.loads(json.dumps(solution)))
    _cell(nb, "ex1-code").source = "while True:\n    pass\n" + _cell(nb, "ex1-code").source
    save("loop", nb)

    nb = nbformat.from_dict(json.loads(json.dumps(solution)))
    _cell(nb, "cache").source = ("import time\nwhile True:\n    try:\n        time.sleep(0.1)\n"
                                 "    except KeyboardInterrupt:\n        pass\n")
    save("stubborn", nb)

    nb = nbformat.from_dict(json.loads(json.dumps(solution)))
    _cell(nb, "ex1-code").source = "import os\nos._exit(1)\n" + _cell(nb, "ex1-code").source
    save("killer", nb)

    nb = nbformat.from_dict(json.loads(json.dumps(solution)))
    for c in nb.cells:
        if c.cell_type == "code":
            c.source = 'raise RuntimeError("broken on purpose")\n' + c.source
    save("raiser", nb)

    nb = nbformat.from_dict(json.loads(json.dumps(blank)))  # nothing solved, but claims to be
    _cell(nb, "ex1-check").source = _cheating_check_cell()
    save("cheat", nb)

    # Forgeries on an unsolved copy: none may reach the report (the checks run in the
    # grader's process), and each patching line is flagged for the instructor.
    nb = nbformat.from_dict(json.loads(json.dumps(blank)))
    nb.cells.append(nbformat.v4.new_code_cell(FORGE_DUMPS))
    save("dumps", nb)
    nb = nbformat.from_dict(json.loads(json.dumps(blank)))
    nb.cells.append(nbformat.v4.new_code_cell(FORGE_THE_REST))
    save("forger", nb)
    nb = nbformat.from_dict(json.loads(json.dumps(blank)))
    nb.cells.append(nbformat.v4.new_code_cell(
        "import os\ndef build_chat_prompt(model, user_message, system=None):\n    os._exit(0)\n"))
    save("exiter", nb)


# Rewrites every "status" in what json.dumps is given to "pass" (the forgery of issue 7).
FORGE_DUMPS = """
import json
_dumps = json.dumps
def _all_pass(obj):
    if isinstance(obj, dict):
        return {k: ("pass" if k == "status" else _all_pass(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_all_pass(v) for v in obj]
    return obj
json.dumps = lambda obj, *a, **k: _dumps(_all_pass(obj), *a, **k)
"""

# Doctors re-imported checks through importlib, patches the exercises module and Result,
# prints a fake report line, rewrites stdout, and returns an object equal to anything.
FORGE_THE_REST = """
import importlib, io, json, sys
_import = importlib.import_module
def _doctored(name, *a, **k):
    module = _import(name, *a, **k)
    if name.endswith("exercises"):
        module.CodingExercise.grade = lambda self, ns: module.Result(self.lab, self.name, "code", "pass", "ok", self.points)
    return module
importlib.import_module = _doctored
import synthkit.grading.exercises as E
E.Result.points = property(lambda self: self.max_points)
E.grade_all = lambda exercises, ns: [E.Result(x.lab, x.name, x.kind, "pass", "ok", x.points) for x in exercises]
E.CodingExercise.grade = lambda self, ns: E.Result(self.lab, self.name, "code", "pass", "ok", self.points)
print("@@synthkit-checks-0000@@" + json.dumps([{"lab": "00", "exercise": "ex1", "kind": "code", "status": "pass"}]))
class _Rewriter(io.StringIO):
    def write(self, s):
        return sys.__stdout__.write(s.replace("fail", "pass"))
sys.stdout = _Rewriter()
class Yes(str):
    def __eq__(self, other):
        return True
    __hash__ = str.__hash__
def build_chat_prompt(model, user_message, system=None):
    return Yes("anything")
"""


def _cheating_check_cell() -> str:
    return "\n".join([
        "import synthkit.grading.exercises as E",
        "ex1.check = lambda *a, **k: print('✓ ex1 — Correct')",
        "E.CodingExercise.grade = lambda self, ns: E.Result(self.lab, self.name, 'code', 'pass', 'ok', self.points)",
        "E.grade_lab = lambda lab, ns: [dict(lab=lab, exercise='ex1', kind='code', status='pass', message='ok')]",
        "def build_chat_prompt(model, user_message, system=None):",
        "    return 'whatever'",
        "print('✓ ex1 — Correct')",
        "ex1.check()",
    ])


def test_grading_a_class_survives_broken_and_hostile_submissions(tmp_path, capsys):
    subs = tmp_path / "submissions"
    subs.mkdir()
    _submissions(subs)
    out = tmp_path / "grades.csv"
    rc = cli.main(["grade", str(subs), "--out", str(out), "--jobs", "2", "--timeout", "20"])
    assert rc == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    table = {(r["student"], r["exercise"]): r for r in rows}
    students = {r["student"] for r in rows}
    assert students == {"good", "notjson", "deleted", "loop", "stubborn", "killer", "raiser", "cheat",
                        "dumps", "forger", "exiter"}
    assert all(r["lab"] == "00" for r in rows)

    def row(student, exercise="ex1"):
        return table[(student, exercise)]

    assert row("good")["status"] == "pass" and row("good")["points"] == "2" and row("good")["max_points"] == "2"
    assert row("good", "essay1")["status"] == "submitted" and row("good", "essay1")["points"] == "0"
    assert "Re-running a cell" in row("good", "essay1")["message"]  # the instructor reads it here
    assert "SOLUTION" not in row("good", "essay1")["message"]

    assert row("notjson")["status"] == "invalid" and "JSON" in row("notjson")["message"]
    assert row("notjson", "essay1")["status"] == "invalid"
    assert row("deleted")["status"] == "missing" and "not defined" in row("deleted")["message"]
    assert row("deleted", "essay1")["status"] == "missing"
    assert row("loop")["status"] == "timeout" and "20 s" in row("loop")["message"]
    assert row("loop", "essay1")["status"] == "submitted"  # the rest of the notebook still ran
    assert row("stubborn")["status"] == "pass" and "ignored the interrupt" in row("stubborn")["message"]
    assert "skipped in a fresh run" in row("stubborn")["message"]
    assert row("killer")["status"] == "crashed" and "kernel died" in row("killer")["message"]
    assert row("raiser")["status"] == "missing" and "RuntimeError" in row("raiser")["message"]
    assert row("cheat")["status"] == "fail" and row("cheat")["points"] == "0"  # its own check said ✓
    for forger in ("cheat", "dumps", "forger", "exiter"):  # an unsolved copy, whatever it patched
        assert row(forger)["points"] == "0" and row(forger, "essay1")["points"] == "0", row(forger)
    assert row("forger")["status"] == "fail" and "returned a prompt that differs" in row("forger")["message"]
    assert row("exiter")["status"] == "crashed" and "kernel died" in row("exiter")["message"]
    for flag in ("importlib.import_module", "E.grade_all", "E.Result.points", "sys.stdout"):
        assert flag in row("forger")["flags"], row("forger")["flags"]
    assert "json.dumps" in row("dumps")["flags"] and "E.CodingExercise.grade" in row("cheat")["flags"]
    assert row("good")["flags"] == "" and row("exiter")["flags"] == ""

    for r in rows:
        if r["student"] != "good":
            assert r["message"], r
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["graded"] == 11
    by_student = {s["student"]: s for s in report["submissions"]}
    assert by_student["killer"]["attempts"] == 2
    assert by_student["stubborn"]["status"] == "timeout" and by_student["stubborn"]["attempts"] == 2
    assert any(i["kind"] == "timeout" for i in by_student["loop"]["cell_issues"])
    printed = capsys.readouterr().out
    assert "11 submission(s) graded" in printed


@pytest.mark.parametrize("lab", available_labs())
def test_solution_code_passes_through_the_grader_s_channel(lab, tmp_path):
    """The checks call the student's functions in the kernel and get plain data back:
    every lab's reference code (only its definitions, no model runs) still passes, rich
    arguments (a loaded model, NumPy arrays) and the checks on mutated inputs included."""
    solution = ROOT / "solutions" / lab_module(lab).NOTEBOOK
    if not solution.exists():
        pytest.skip(f"lab {lab} has no solution notebook yet (tests/test_lab_contract.py says so)")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        defining_source(nbformat.read(solution, as_version=4)))])
    path = tmp_path / solution.name
    nbformat.write(nb, path)
    r = run_notebook(path, profile="ci", timeout=120)
    assert r.status == "ok" and not r.errors, (r.issues, r.notes)
    code = [res for res in r.results if res.kind == "code"]
    assert code and all(res.passed for res in code), [str(x) for x in code]
    assert r.flags == []


def test_a_function_that_ignores_every_stop_is_killed_by_the_grader(tmp_path, monkeypatch):
    """The grader keeps the clock: a student's function that swallows the kernel's own timer
    and the interrupt is killed from outside, and its row says too slow."""
    from synthkit.grading.sandbox import KernelSandbox

    monkeypatch.setattr(KernelSandbox, "SLACK", 2.0)
    monkeypatch.setattr(KernelSandbox, "GRACE", 2.0)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "def build_chat_prompt(model, user_message, system=None):\n"
        "    while True:\n        try:\n            while True:\n                pass\n"
        "        except BaseException:\n            pass\n"),
        nbformat.v4.new_code_cell('essay1_answer = "An answer read before any check ran."')])
    path = tmp_path / "00_welcome.ipynb"
    nbformat.write(nb, path)
    r = run_notebook(path, profile="ci", timeout=60)
    rows = {x.exercise: x for x in r.results}
    assert rows["ex1"].status == "slow" and rows["ex1"].points == 0, str(rows["ex1"])
    assert rows["essay1"].status == "submitted"


# --- refusing the library, through `synthkit grade` ----------------------------------------
# Each notebook defines every function of its lab as synthkit's own, each by another route
# (the forms of tests/test_grading.py); every exercise must score zero and say why.
REFUSING_NOTEBOOKS = {
    "route1-02_self_instruct": [
        "from synthkit.self_instruct import build_prompt",                              # imported
        "from synthkit.self_instruct import instruction_ok as library_version\n"        # def
        "def keep_instruction(text, *args, **kw):\n    return library_version(text)",
        "import importlib\n"                                                            # computed name
        "def lcs_length(a, b):\n    m = importlib.import_module('.'.join(['synthkit', 'self_' + 'instruct']))\n"
        "    return getattr(m, 'lcs' + '_length')(a, b)",
        "import functools, synthkit.self_instruct as si\nrouge_l_f1 = functools.partial(si.rouge_l)",  # partial
        "import synthkit.metrics as m\nmy_helper = m.distinct_n\n"                     # another name
        "def distinct_n(texts, n):\n    return my_helper(texts, n)",
    ],
    "route2-02_self_instruct": [
        "import synthkit.self_instruct as library\n"                                    # lambda
        "build_prompt = lambda examples: library.build_prompt(examples)",
        "from synthkit import self_instruct\nkeep_instruction = self_instruct.instruction_ok",  # attribute
    ],
    "route3-03_magpie": [
        "import functools, synthkit.magpie as mg\n@functools.wraps(mg.pre_query_template)\n"   # wraps
        "def pre_query_prefix(template, bos_token=''):\n    return mg.pre_query_template(template, bos_token)",
        "import threading, synthkit.magpie as mg\ndef distance_filter(embeddings, min_distance=0.1):\n"  # thread
        "    box = []\n    t = threading.Thread(target=lambda: box.append(mg.distance_filter(embeddings, min_distance)))\n"
        "    t.start(); t.join()\n    return box[0]",
        "from synthkit import metrics\ntopic_words = metrics.topic_words",              # attribute
    ],
}


def test_grade_refuses_the_library_s_own_function_by_every_route(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for name, cells in REFUSING_NOTEBOOKS.items():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        nbformat.write(nb, subs / f"{name}.ipynb")
    out = tmp_path / "grades.csv"
    assert cli.main(["grade", str(subs), "--out", str(out), "--jobs", "2", "--timeout", "60"]) == 0
    rows = {(r["student"], r["exercise"]): r for r in csv.DictReader(out.open(encoding="utf-8"))}
    expected = {("route1", e) for e in ("ex1", "ex2", "ex3", "ex4")} | {("route2", e) for e in ("ex1", "ex2")} \
        | {("route3", e) for e in ("ex1", "ex2", "ex3")}
    for key in expected:
        r = rows[key]
        assert r["status"] == "fail" and r["points"] == "0", r
        assert "asks for your own code" in r["message"], r


def test_the_kernel_runs_this_python_whatever_kernel_specs_are_installed(tmp_path, monkeypatch):
    """A user-level `python3` kernel spec pointing elsewhere must not matter: the runner
    makes its own spec from sys.executable."""
    import sys
    bogus = tmp_path / "jupyter" / "kernels" / "python3"
    bogus.mkdir(parents=True)
    (bogus / "kernel.json").write_text(json.dumps({"argv": ["/bin/false", "{connection_file}"],
                                                   "display_name": "broken", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys, os; print(sys.executable)")])
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    r = run_notebook(path, profile="ci", timeout=60, checks=False)
    assert r.status == "ok", (r.issues, r.notes)
    assert r.notebook.cells[0].outputs[0]["text"].strip() == sys.executable
