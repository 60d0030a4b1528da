"""The instructor's term after grading: late policy, gradebook, essays and marks, feedback,
the class report (also in a real browser), Canvas and wide exports, regrades.

The first tests need no kernel. The end-to-end ones grade a crafted class of lab 01 (good,
partial with named slips, late by 0-3 days, a Canvas-named file, essays, a tampered copy)
once per module, then check every output against it."""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
from collections import defaultdict
from pathlib import Path

import nbformat
import pytest

from synthkit.cli import main as synthkit_main
from synthkit.grading import gradebook
from synthkit.grading.checks import normalise_message, slip_of
from synthkit.grading.contract import defining_source
from synthkit.grading.course import CourseError, load_course
from synthkit.grading.late import LatePolicy, days_late, deadline, parse_late, LateRuleError
from synthkit.grading.submissions import canvas_name

ROOT = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc


# --- no kernel ---------------------------------------------------------------------------------
def test_late_rule_arithmetic():
    p = LatePolicy(per_day=0.1, max_days=2, grace_hours=1)
    due = deadline(dt.date(2026, 2, 13), UTC)
    assert due == dt.datetime(2026, 2, 13, 23, 59, 59, tzinfo=UTC)
    hours = lambda h: due + dt.timedelta(hours=h)  # noqa: E731
    assert [days_late(hours(h), due, p) for h in (-5, 0.5, 1, 1.01, 25, 25.5, 49.5)] == [0, 0, 0, 1, 1, 2, 3]
    assert [p.fraction(d) for d in (0, 1, 2, 3)] == [0.0, 0.1, 0.2, 1.0]
    assert LatePolicy(per_day=0.4).fraction(5) == 1.0


@pytest.mark.parametrize("rule, words", [
    ({"per_day": 10}, "between 0 and 1"),
    ({"per_day": 0.1, "max_day": 3}, "unknown key max_day"),
    ({"max_days": -1}, "whole number of days"),
    ({"grace_hours": "one"}, "number of hours"),
    ("ten percent", "must be a table"),
])
def test_a_bad_late_rule_is_one_line_naming_it(rule, words):
    with pytest.raises(LateRuleError) as e:
        parse_late(rule, "labs.01.late")
    assert words in str(e.value) and "labs.01.late" in str(e.value) and "\n" not in str(e.value)


def test_course_toml_reads_late_rules_per_lab_and_course_wide(tmp_path):
    f = tmp_path / "course.toml"
    f.write_text('[course]\nlate = { per_day = 0.1, max_days = 7 }\ntimezone = "UTC"\n'
                 '[labs.01]\ndue = 2026-02-13\nlate = { per_day = 0.25 }\n[labs.02]\ndue = 2026-02-20\n'
                 '[labs.03]\nlate = false\n')
    c = load_course(f)
    assert c.late_policy("01").per_day == 0.25 and c.late_policy("02") == LatePolicy(0.1, 7)
    assert c.late_policy("03").fraction(9) == 0.0
    f.write_text('[labs.01]\nlate = { per_day = 2 }\n')
    with pytest.raises(CourseError, match="labs.01.late.per_day must be a fraction"):
        load_course(f)
    f.write_text('[course]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(CourseError, match="not a time zone"):
        load_course(f)


def test_canvas_bulk_download_names():
    c = canvas_name("smithjane_LATE_48213_907311_01_data_cliff.ipynb")
    assert (c.name, c.user_id, c.submission_id, c.late, c.file) == \
        ("smithjane", "48213", "907311", True, "01_data_cliff.ipynb")
    c = canvas_name("doejohn_5521_907400_01_data_cliff-1.ipynb")
    assert (c.name, c.user_id, c.late) == ("doejohn", "5521", False)
    assert canvas_name("alice-01_data_cliff.ipynb") is None


def test_the_same_slip_on_other_inputs_reads_the_same():
    a = ("years_of_fresh_data(stock=7.552e+14, first_run=5.394e+11, growth=1.728) [growing runs: stock 755T, "
         "first run 539B] returned 12, which is too many. Look at the comparison.")
    b = ("years_of_fresh_data(stock=2.1e+13, first_run=3e+11, growth=2.5) [growing runs: stock 21T, "
         "first run 300B] returned 4, which is too many. Look at the comparison.")
    assert normalise_message(a) == normalise_message(b) == \
        "years_of_fresh_data(…) […] returned #, which is too many. Look at the comparison."
    cut = "pair_precision_recall([(12, 9), (15, 16), … 7)], [(13, 16), … 3)]) [random pairs]: precision and recall look swapped."
    assert normalise_message(cut) == "pair_precision_recall(…) [random pairs]: precision and recall look swapped."
    assert slip_of("f(3) returned 4. Use a set.", named=["Use a set."]) == "Use a set."
    assert slip_of("f(3) returned 4.", named=["Advice the message does not carry."]) == "f(…) returned #."


def test_a_gradebook_from_another_version_is_one_line(tmp_path):
    p = tmp_path / "grades.json"
    p.write_text(json.dumps({"graded": 1, "submissions": []}))
    with pytest.raises(gradebook.GradebookError) as e:
        gradebook.load(p)
    assert "format 1" in str(e.value) and "grade the submissions again" in str(e.value)
    p.write_text("{ not json")
    with pytest.raises(gradebook.GradebookError, match="not a gradebook"):
        gradebook.load(tmp_path / "grades.csv")


# --- a crafted class of lab 01, graded once --------------------------------------------------------
DUE = dt.datetime(2026, 2, 13, 23, 59, 59, tzinfo=UTC)
COURSE = """[course]
title = "Test term"
timezone = "UTC"
late = { per_day = 0.1, max_days = 2, grace_hours = 1 }

[labs.01]
assigned = true
due = 2026-02-13
points = { ex1 = 2, ex2 = 2, ex3 = 2, essay1 = 2 }
"""
SWAP = ("    return precision, recall", "    return recall, precision")
ORDERED = ("    p = {(min(i, j), max(i, j)) for i, j in predicted}\n    t = {(min(i, j), max(i, j)) for i, j in true}",
           "    p = set(map(tuple, predicted))\n    t = set(map(tuple, true))")
OFF_BY_ONE = ("    while used + run <= stock:", "    while used + run < stock:")
TAMPER = ("import synthkit.grading.exercises as E\n"
          "E.CodingExercise.grade = lambda self, ns: E.Result(self.lab, self.name, 'code', 'pass', 'ok', self.points)\n")
# (file name, slips, essay, hours after the deadline)
CLASS = [
    ("alice-01_data_cliff.ipynb", [], "Growth outruns the stock: each run is bigger than the last.", -30),
    ("bob-01_data_cliff.ipynb", [SWAP], "Synthetic data, because support logs are scarce.", 0.5),
    ("carol-01_data_cliff.ipynb", [SWAP], "I would relax the filters a little.", 20),
    ("dan-01_data_cliff.ipynb", [ORDERED, OFF_BY_ONE], "", 40),
    ("erin-01_data_cliff.ipynb", [OFF_BY_ONE], "Other languages cost more tokens per word.", 60),
    ("smithjane_LATE_48213_907311_01_data_cliff.ipynb", [SWAP], "Dedup first, then synthesise.", 30),
]


def _notebook(source: str, essay: str, extra: str = "") -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_code_cell(source), nbformat.v4.new_code_cell(f"essay1_answer = {essay!r}")]
    if extra:
        cells.append(nbformat.v4.new_code_cell(extra))
    return nbformat.v4.new_notebook(cells=cells)


def _make_class(folder: Path) -> None:
    source = defining_source(nbformat.read(ROOT / "solutions" / "01_data_cliff.ipynb", as_version=4))
    blank = defining_source(nbformat.read(ROOT / "labs" / "01_data_cliff.ipynb", as_version=4))
    for name, slips, essay, hours in CLASS:
        src = source
        for old, new in slips:
            assert old in src, old
            src = src.replace(old, new)
        path = folder / name
        nbformat.write(_notebook(src, essay), path)
        t = (DUE + dt.timedelta(hours=hours)).timestamp()
        os.utime(path, (t, t))
    path = folder / "mallory-01_data_cliff.ipynb"
    nbformat.write(_notebook(blank, "", TAMPER), path)
    t = (DUE - dt.timedelta(hours=1)).timestamp()
    os.utime(path, (t, t))


def _rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    """The class graded once: (folder, submissions, gradebook CSV)."""
    base = tmp_path_factory.mktemp("term")
    saved = dict(os.environ)
    os.environ.update(SYNTHKIT_HOME=str(base / "home"), HF_HUB_OFFLINE="1", SYNTHKIT_PROFILE="ci",
                      SYNTHKIT_COURSE=str(base / "course.toml"))
    (base / "course.toml").write_text(COURSE)
    subs = base / "subs"
    subs.mkdir()
    _make_class(subs)
    out = base / "grades.csv"
    rc = synthkit_main(["grade", str(subs), "--out", str(out), "--jobs", "2", "--timeout", "60",
                        "--canvas", str(base / "canvas.csv"), "--wide", str(base / "wide.csv")])
    assert rc == 0
    yield base, subs, out
    os.environ.clear()
    os.environ.update(saved)


def _table(rows):
    return {(r["student"], r["exercise"]): r for r in rows}


@pytest.mark.slow
def test_late_penalties_and_slips_in_the_gradebook(term, capsys):
    base, subs, out = term
    t = _table(_rows(out))
    assert {s for s, _ in t} == {"alice", "bob", "carol", "dan", "erin", "smithjane", "mallory"}
    expect_days = {"alice": 0, "bob": 0, "carol": 1, "dan": 2, "erin": 3, "smithjane": 2, "mallory": 0}
    for student, days in expect_days.items():
        assert t[(student, "ex1")]["days_late"] == str(days), student
        assert t[(student, "ex1")]["submitted_from"] == "mtime"
    assert (t[("alice", "ex1")]["raw"], t[("alice", "ex1")]["penalty"], t[("alice", "ex1")]["points"]) == ("2", "0", "2")
    assert (t[("carol", "ex1")]["raw"], t[("carol", "ex1")]["penalty"], t[("carol", "ex1")]["points"]) == ("2", "0.2", "1.8")
    assert (t[("dan", "ex2")]["raw"], t[("dan", "ex2")]["penalty"], t[("dan", "ex2")]["points"]) == ("2", "0.4", "1.6")
    assert (t[("erin", "ex2")]["raw"], t[("erin", "ex2")]["points"]) == ("2", "0")  # past max_days
    for student in ("bob", "carol", "smithjane", "dan"):
        assert t[(student, "ex3")]["status"] == "fail" and t[(student, "ex3")]["points"] == "0", student
    assert t[("dan", "ex1")]["status"] == t[("erin", "ex1")]["status"] == "fail"
    assert "which is too few" in t[("dan", "ex1")]["message"]
    assert t[("mallory", "ex1")]["points"] == "0" and "E.CodingExercise.grade" in t[("mallory", "ex1")]["flags"]
    assert t[("alice", "essay1")]["status"] == "submitted" and t[("dan", "essay1")]["status"] == "missing"
    book = gradebook.load(out)
    jane = next(e for e in book["submissions"] if e["student"] == "smithjane")
    assert jane["submitted"]["canvas_id"] == "48213" and jane["submitted"]["lms_late"] is True
    slips = {e["student"]: r["slip"] for e in book["submissions"] for r in e["results"] if r["exercise"] == "ex1"
             and r["status"] == "fail"}
    assert set(slips) == {"dan", "erin"} and slips["dan"] == slips["erin"]  # other inputs, the same slip
    assert not re.search(r"\d", slips["dan"])  # the random inputs are gone


@pytest.mark.slow
def test_regrading_the_same_files_gives_the_same_rows_and_one_student_alone(term, capsys):
    base, subs, out = term
    before = out.read_bytes()
    book_before = gradebook.load(out)
    rc = synthkit_main(["grade", str(subs), "--out", str(out), "--jobs", "2", "--timeout", "60"])
    assert rc == 0 and out.read_bytes() == before
    printed = capsys.readouterr().out
    assert re.search(r"graded 7 submission\(s\) in [\d.]+ s: 1 flagged for patching code, 0 did not run cleanly, "
                     r"4 late", printed), printed
    assert synthkit_main(["grade", str(subs), "--out", str(out), "--student", "bob", "--timeout", "60"]) == 0
    assert out.read_bytes() == before
    assert "graded 1 submission(s)" in capsys.readouterr().out
    assert gradebook.load(out)["salt"] == book_before["salt"]
    assert synthkit_main(["grade", str(subs), "--out", str(out), "--student", "nobody"]) == 2
    assert "no submission of student(s) nobody" in capsys.readouterr().err
    assert out.read_bytes() == before


@pytest.mark.slow
def test_essays_round_trip_and_bad_marks_change_nothing(term, capsys, tmp_path):
    base, subs, out = term
    essays = base / "essays"
    assert synthkit_main(["essays", str(out), "--out", str(essays)]) == 0
    page = (essays / "01_essay1.html").read_text()
    marks = _rows(essays / "marks.csv")
    book = gradebook.load(out)
    code = {gradebook.anonymous_code(book, s): s for s in ("alice", "bob", "carol", "erin", "smithjane")}
    assert {m["student"] for m in marks} == set(code) and all(m["question"] == "01/essay1" for m in marks)
    for name in ("alice", "bob", "carol", "erin", "smithjane"):
        assert not re.search(rf"\b{name}\b", page), name  # anonymous
    assert "Growth outruns the stock" in page and "What a strong answer touches on" in page
    assert [m["student"] for m in marks] == sorted(m["student"] for m in marks)

    gb_json, gb_csv = gradebook.json_path(out), out
    saved = (gb_json.read_bytes(), gb_csv.read_bytes())
    bad = {
        "columns": "student,question,score,comment\n",
        "over": f"student,question,mark,comment\n{next(iter(code))},01/essay1,3,too generous\n",
        "unknown student": "student,question,mark,comment\nzed,01/essay1,1,\n",
        "unknown question": "student,question,mark,comment\nalice,01/essay9,1,\n",
    }
    for why, text in bad.items():
        f = tmp_path / f"{why}.csv"
        f.write_text(text)
        assert synthkit_main(["marks", "merge", str(f), "--into", str(gb_json)]) == 2, why
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "nothing merged" in err, (why, err)
        assert (gb_json.read_bytes(), gb_csv.read_bytes()) == saved, why
        assert synthkit_main(["grade", "--marks", str(f), "--out", str(out)]) == 2
        assert (gb_json.read_bytes(), gb_csv.read_bytes()) == saved, why
        capsys.readouterr()

    filled = essays / "marks.csv"
    by_name = {v: k for k, v in code.items()}
    rows = [{"student": by_name["alice"], "question": "01/essay1", "mark": "2", "comment": "clear and right"},
            {"student": "carol", "question": "01/essay1", "mark": "1.5", "comment": "say why"}]  # a name works too
    filled.write_text(gradebook.csv_text(gradebook.MARKS_FIELDS, rows))
    # a fresh `essays` run would overwrite marks not yet merged: refused
    assert synthkit_main(["essays", str(out), "--out", str(essays)]) == 2
    assert "holds marks the gradebook does not have yet" in capsys.readouterr().err
    assert synthkit_main(["grade", "--marks", str(filled), "--out", str(out)]) == 0
    t = _table(_rows(out))
    assert (t[("alice", "essay1")]["status"], t[("alice", "essay1")]["points"]) == ("marked", "2")
    assert (t[("carol", "essay1")]["raw"], t[("carol", "essay1")]["penalty"], t[("carol", "essay1")]["points"]) \
        == ("1.5", "0.15", "1.35")  # carol is a day late
    assert t[("bob", "essay1")]["status"] == "submitted"

    # a regrade keeps the marks (the answers did not change)
    assert synthkit_main(["grade", str(subs), "--out", str(out), "--only-lab", "01", "--timeout", "60"]) == 0
    t = _table(_rows(out))
    assert t[("alice", "essay1")]["points"] == "2" and t[("carol", "essay1")]["points"] == "1.35"

    fb = base / "feedback"
    assert synthkit_main(["feedback", str(out), "--out", str(fb)]) == 0
    carol = (fb / "01" / "carol.html").read_text()
    assert "say why" in carol and "Mark: 1.5/2" in carol and "1 day(s) after the deadline" in carol


@pytest.mark.slow
def test_feedback_pages_reveal_no_solution_and_no_other_student(term):
    base, subs, out = term
    fb = base / "feedback-plain"
    assert synthkit_main(["feedback", str(out), "--out", str(fb)]) == 0
    pages = {p.stem: p.read_text() for p in (fb / "01").glob("*.html")}
    assert set(pages) == {"alice", "bob", "carol", "dan", "erin", "smithjane", "mallory"}
    from synthkit.labs import lab01
    secrets = [line.strip() for ex in (lab01.ex1, lab01.ex2, lab01.ex3) for line in ex.solution_code.splitlines()
               if len(line.strip()) > 25 and "def " not in line]
    secrets += [line.strip() for line in lab01.essay1.solution_code.splitlines() if len(line.strip()) > 25]
    assert secrets
    for student, html in pages.items():
        for s in secrets:
            assert s not in html, (student, s)
        for other in pages:
            if other != student:
                assert f">{other}<" not in html and f" {other} " not in html, (student, other)
    assert "Not yet" in pages["bob"] and "Hint:" in pages["bob"]
    assert "Correct" in pages["alice"] and "Hint:" not in pages["alice"]
    assert "patches" not in pages["mallory"]  # the grader's flags stay in the instructor's report


@pytest.mark.slow
def test_canvas_and_wide_exports(term, tmp_path):
    base, subs, out = term
    assert (base / "canvas.csv").is_file() and (base / "wide.csv").is_file()  # what grade --canvas --wide wrote
    # from the gradebook as it is now (other tests may have folded marks in since)
    assert synthkit_main(["export", str(out), "--canvas", str(tmp_path / "now.csv"),
                          "--wide", str(tmp_path / "wide.csv")]) == 0
    header, *rows = list(csv.reader(open(tmp_path / "now.csv", encoding="utf-8")))
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                      "Lab 01: The data cliff: how much human text is left"]
    assert rows[0][0] == "    Points Possible" and rows[0][5] == "8"
    by = {r[0]: r for r in rows[1:]}
    totals = defaultdict(float)
    for r in _rows(out):
        totals[r["student"]] += float(r["points"])
    for student, total in totals.items():
        assert float(by[student][5]) == pytest.approx(total), student
    assert by["smithjane"][1] == "48213" and by["alice"][1] == ""
    wide = {r["student"]: r for r in _rows(tmp_path / "wide.csv")}
    assert wide["carol"]["01 ex1"] == "2" and wide["carol"]["01 late penalty"] != "0"
    assert float(wide["carol"]["01 total"]) == pytest.approx(totals["carol"])

    roster = tmp_path / "export.csv"
    roster.write_text("Student,ID,SIS User ID,SIS Login ID,Section,Lab 01: The data cliff: how much human text is left (7781)\n"
                      "    Points Possible,,,,,8\n"
                      "\"Smith, Jane\",48213,S1001,jsmith,Section A,\n\"Bee, Alice\",5001,S1002,abee,Section B,\n")
    canvas = tmp_path / "canvas.csv"
    assert synthkit_main(["export", str(out), "--canvas", str(canvas), "--roster", str(roster)]) == 0
    header, *rows = list(csv.reader(open(canvas, encoding="utf-8")))
    assert header[5] == "Lab 01: The data cliff: how much human text is left (7781)"  # updates that assignment
    jane = next(r for r in rows if r[1] == "48213")
    assert jane[:5] == ["Smith, Jane", "48213", "S1001", "jsmith", "Section A"]


@pytest.mark.slow
def test_class_report_numbers_and_a_bad_course_or_gradebook(term, capsys, tmp_path):
    base, subs, out = term
    page = base / "class.html"
    assert synthkit_main(["report", str(out), "--out", str(page)]) == 0
    html = page.read_text()
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert "which is too few" in html and "E.CodingExercise.grade" in html

    # a bad late rule: one line, nothing graded, the gradebook as it was
    saved = out.read_bytes()
    course = base / "course.toml"
    good = course.read_text()
    course.write_text(good.replace("per_day = 0.1", "per_day = 10"))
    try:
        assert synthkit_main(["grade", str(subs), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert "per_day must be a fraction" in err and err.count("\n") == 0
        assert out.read_bytes() == saved
    finally:
        course.write_text(good)
    # a gradebook from another version: one line, nothing written
    old = tmp_path / "old.json"
    book = json.loads(gradebook.json_path(out).read_text())
    book["version"] = 1
    old.write_text(json.dumps(book))
    for cmd in (["report", str(old), "--out", str(tmp_path / "r.html")], ["feedback", str(old), "--out", str(tmp_path / "fb")],
                ["essays", str(old), "--out", str(tmp_path / "es")], ["export", str(old), "--wide", str(tmp_path / "w.csv")]):
        assert synthkit_main(cmd) == 2, cmd
        err = capsys.readouterr().err.strip()
        assert "gradebook format 1" in err and err.count("\n") == 0
    assert not any(tmp_path.glob("r.html")) and not (tmp_path / "fb").exists() and not (tmp_path / "w.csv").exists()


@pytest.mark.slow
def test_class_report_in_a_real_browser(term):
    """The page loads with no console error, every plot renders, and its numbers are the CSV's."""
    from playwright.sync_api import sync_playwright

    from test_browser import BROWSER_ARGS, CHROMIUM

    if not CHROMIUM:
        pytest.fail("no Chromium to drive: `apt-get install chromium` (Debian) or set SYNTHKIT_CHROMIUM")
    base, subs, out = term
    page_file = base / "class-browser.html"
    assert synthkit_main(["report", str(out), "--out", str(page_file)]) == 0
    rows = _rows(out)
    by_ex = defaultdict(list)
    totals = defaultdict(float)
    for r in rows:
        by_ex[(r["lab"], r["exercise"])].append(r)
        totals[(r["lab"], r["student"])] += float(r["points"])
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        plots = page.evaluate("() => [...document.querySelectorAll('img.plot')].map(i => "
                              "[i.complete, i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width])")
        cells = page.evaluate("() => [...document.querySelectorAll('[data-stat]')].map(e => "
                              "[e.dataset.stat, e.dataset.lab || '', e.dataset.exercise || '', e.textContent.trim()])")
        browser.close()
    assert errors == [] and requests == []
    assert len(plots) == 2 and all(c and w > 50 and h > 50 and shown > 50 for c, w, h, shown in plots), plots
    seen = defaultdict(dict)
    for stat, lab, exercise, text in cells:
        seen[(lab, exercise)][stat] = text
    for (lab, exercise), group in by_ex.items():
        got = seen[(lab, exercise)]
        assert int(got["n"]) == len(group)
        pts = [float(r["points"]) for r in group]
        assert float(got["mean"]) == pytest.approx(sum(pts) / len(pts), abs=0.006)
        if not exercise.startswith("essay"):
            passed = sum(r["status"] == "pass" for r in group)
            assert int(got["passed"]) == passed
            assert float(got["pass-rate"].rstrip(" %")) == pytest.approx(100 * passed / len(group), abs=0.06)
    lab_totals = [v for (lab, _), v in totals.items() if lab == "01"]
    assert int(seen[("01", "")]["lab-n"]) == len(lab_totals)
    assert float(seen[("01", "")]["lab-mean"]) == pytest.approx(sum(lab_totals) / len(lab_totals), abs=0.006)
    off_by_one = [c for c in cells if c[0] == "slip-students" and c[2] == "ex1"]
    assert [int(c[3]) for c in off_by_one] == [2]  # dan and erin, on their own random inputs
