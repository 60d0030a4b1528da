"""What a student sees of their own progress: latest results, saved quiz answers, and a
course found from any folder. Real lab modules, real progress store (in a temp home)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthkit.grading import course, progress
from synthkit.grading.quiz import Question, Quiz

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHKIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SYNTHKIT_COURSE", raising=False)
    monkeypatch.chdir(ROOT)


def _block(text: str, lab: str) -> str:
    """The lines of one lab's block in the progress table."""
    blocks = [b for b in text.split("\n\n") if b.startswith(f"lab {lab}")]
    assert len(blocks) == 1, text
    return blocks[0]


# --- latest result, and what a status means ------------------------------------------------
def _n_code(lab: str) -> int:
    from synthkit.grading.registry import lab_exercises
    return sum(ex.kind == "code" for ex in lab_exercises(lab))


def test_a_pass_broken_later_shows_the_latest_result_and_that_it_once_passed():
    n = _n_code("01")
    progress.record("01", "ex1", kind="code", status="pass")
    block = _block(progress.table("01"), "01")
    assert f"1/{n} passed" in block and "ex1 passed" in block
    progress.record("01", "ex1", kind="code", status="fail")
    block = _block(progress.table("01"), "01")
    assert f"0/{n} passed" in block and "ex1 failed (passed before)" in block
    progress.record("01", "ex1", kind="code", status="pass")
    assert "ex1 passed," in _block(progress.table("01"), "01")


def test_failed_unwritten_and_untried_read_differently():
    progress.record("01", "ex1", kind="code", status="fail")
    progress.record("01", "ex2", kind="code", status="missing")  # checked while still the stub
    block = _block(progress.table("01"), "01")
    assert "ex1 failed" in block and "ex2 not written yet" in block and "ex3 not tried" in block
    assert "missing" not in block


def test_the_table_shows_whole_titles_from_the_lab_module_and_due_dates():
    from synthkit.labs import lab02
    progress.record("02", "ex1", kind="code", status="pass")
    block = _block(progress.table(), "02")
    assert lab02.TITLE in block and len(lab02.TITLE) > 44  # never cut short
    assert "due 2026-02-20" in block


# --- quiz answers survive a re-run, a restart and a reopened notebook ----------------------
def _quiz() -> Quiz:
    return Quiz("98", [Question("2 + 2?", ["3", "4", "5"], answer=1, why="Two and two make four."),
                       Question("Sky?", ["blue", "green"], answer=0, why="Rayleigh scattering."),
                       Question("Grass?", ["blue", "green"], answer=1, why="Chlorophyll.")])


def test_showing_the_quiz_again_shows_the_saved_answers_in_text(capsys):
    first = _quiz()
    first.answer(1, "b")
    first.answer(2, "b")
    first.answer(2, "a")  # changed their mind: the latest answer counts
    capsys.readouterr()
    again = _quiz()  # a new kernel: nothing in memory
    again.show()
    out = capsys.readouterr().out
    assert "your answer: b. ✓ Right. Two and two make four." in out
    assert "your answer: a. ✓ Right. Rayleigh scattering." in out
    assert out.count("your answer:") == 2  # question 3 was never answered
    assert "Concept check: 2/3 right (2 answered)." in out
    assert again.score == (2, 3)


def test_the_widget_quiz_comes_back_with_its_radio_buttons_set():
    _quiz().answer(3, "a")
    box = _quiz().widget()
    radio, feedback = box.children[3].children[1], box.children[3].children[2]
    assert radio.value == 0 and "Not quite" in feedback.value and "Chlorophyll" in feedback.value
    assert box.children[1].children[1].value is None  # unanswered questions stay blank
    assert "0/3 right (1 answered)" in box.children[-1].value
    n_records = len(progress.load())
    radio.value = 1  # a click after the restore is recorded; the restore itself is not
    assert len(progress.load()) == n_records + 1 and "Right" in feedback.value


def test_a_saved_answer_to_a_reworded_choice_is_dropped_not_misplaced():
    _quiz().answer(1, "b")  # "4"
    changed = Quiz("98", [Question("2 + 2?", ["4", "3", "5"], answer=0, why="Four."),
                          Question("Sky?", ["blue", "green"], answer=0, why="Blue.")])
    assert changed.saved_choices() == {1: 0}  # follows the text "4" to its new letter
    reworded = Quiz("98", [Question("2 + 2?", ["three", "four"], answer=1, why="Four.")])
    assert reworded.saved_choices() == {}


# --- the course is found from any folder -------------------------------------------------
def _progress_cli(cwd, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "synthkit.cli", "progress"], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def test_progress_from_another_folder_still_lists_assigned_labs_and_due_dates(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = _progress_cli(elsewhere)
    assert out.returncode == 0, out.stderr
    for lab, due in [("00", "2026-02-06"), ("03", "2026-02-27")]:
        assert f"due {due}" in _block(out.stdout, lab)
    assert "ex1 not tried" in _block(out.stdout, "00")


def test_the_course_last_used_is_remembered(tmp_path):
    mine = tmp_path / "my-course"
    (mine / "labs").mkdir(parents=True)
    (mine / "course.toml").write_text('[labs.01]\nassigned = true\ndue = 2031-05-01\n')
    # a lab running inside the course folder (its kernel's cwd is labs/) notes the course
    script = "from synthkit.grading import progress; progress.record('01', 'ex1', kind='code', status='fail')"
    subprocess.run([sys.executable, "-c", script], cwd=mine / "labs", check=True, timeout=120,
                   env={**os.environ})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = _progress_cli(elsewhere)
    assert "due 2031-05-01" in _block(out.stdout, "01") and "ex1 failed" in out.stdout
    assert "lab 00" not in out.stdout  # the checkout's course.toml is not the one in use
    other = tmp_path / "other"
    other.mkdir()
    (other / "course.toml").write_text('[labs.02]\nassigned = true\ndue = 2032-01-01\n')
    out = _progress_cli(elsewhere, {"SYNTHKIT_COURSE": str(other)})  # a folder works too
    assert "due 2032-01-01" in _block(out.stdout, "02")


def test_a_missing_course_named_by_env_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHKIT_COURSE", str(tmp_path / "nope.toml"))
    with pytest.raises(course.CourseError, match="SYNTHKIT_COURSE"):
        course.load_course()


# --- a lab's title and notebook are written once, in its module --------------------------
def test_lab_info_joins_the_module_with_the_term():
    from synthkit.labs import lab03
    info = course.lab_info("03")
    assert (info.title, info.notebook) == (lab03.TITLE, lab03.NOTEBOOK)
    assert info.assigned and str(info.due) == "2026-02-27"
    assert (ROOT / "solutions" / info.notebook).exists() and (ROOT / "labs" / info.notebook).exists()
    with pytest.raises(ImportError, match="no lab '42'"):
        course.lab_info("42")


def test_a_title_in_course_toml_is_refused_with_the_fix(tmp_path):
    bad = tmp_path / "course.toml"
    bad.write_text('[labs.00]\ntitle = "Welcome"\nassigned = true\n')
    with pytest.raises(course.CourseError, match=r"lab00\.py.*TITLE.*delete it"):
        course.load_course(bad)
