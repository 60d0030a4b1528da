"""Your progress, kept on your own machine.

Every check, essay submission and quiz answer appends one JSON line to
``$SYNTHKIT_HOME/progress/progress.jsonl`` (default ``~/.synthkit``). Appends hold a
file lock and are flushed to disk before the lock is released, so two kernels writing
at once both land; a line cut short by a crash is skipped when reading, and the next
append starts on a fresh line, so earlier results are never lost.

``show()`` (or ``synthkit progress`` in a terminal, from any folder) prints each lab's
latest results: an exercise that passed and was broken since shows as failed, and says
that it passed before.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

from .course import lab_info, load_course
from .paths import ENV_HOME, find_course_file, home  # noqa: F401  (re-exported)
from .registry import lab_exercises, lab_quiz
from .store import append, load, record, store_path  # noqa: F401  (the store, re-exported)


# How each latest status reads in the table: "missing" (the stub is still there) and
# "not tried" (never checked) must not look alike.
STATUS_WORDS = {"pass": "passed", "fail": "failed", "error": "raised an error", "slow": "too slow",
                "missing": "not written yet", "submitted": "submitted", "-": "not tried"}


@dataclass
class LabProgress:
    lab: str
    title: str = ""
    exercises: dict[str, str] = field(default_factory=dict)  # name -> latest status ("-": not tried)
    ever_passed: set[str] = field(default_factory=set)  # exercises that passed at some point
    essays: dict[str, str] = field(default_factory=dict)  # name -> "submitted" once submitted
    quiz: dict[str, bool] = field(default_factory=dict)  # question -> latest answer right?
    quiz_total: int = 0
    last: str = ""
    due: str = ""

    @property
    def passed(self) -> int:
        """Exercises whose latest check passed (a pass later broken does not count)."""
        return sum(s == "pass" for s in self.exercises.values())

    @property
    def submitted(self) -> int:
        return sum(s == "submitted" for s in self.essays.values())

    def exercise_words(self, name: str) -> str:
        """'passed', 'failed (passed before)', 'not tried', ..."""
        status = self.exercises.get(name, "-")
        words = STATUS_WORDS.get(status, status)
        if status != "pass" and name in self.ever_passed:
            words += " (passed before)"
        return words


def summarize(records: list[dict] | None = None, labs: list[str] | None = None) -> list[LabProgress]:
    """Progress per lab: the labs the course assigns, plus any with records. Records are
    read oldest first, so each exercise shows its latest result."""

    records = load() if records is None else records
    course = load_course()
    ids = sorted({r["lab"] for r in records} | {lid for lid, lc in course.labs.items() if lc.assigned})
    if labs:
        ids = [i for i in ids if i in labs]
    out = []
    for lid in ids:
        lp = LabProgress(lid)
        lc = course.labs.get(lid)
        lp.due = str(lc.due) if lc and lc.due else ""
        try:
            lp.title = lab_info(lid, course).title
            lp.exercises, lp.essays, lp.quiz_total = _lab_items(lid)
        except ImportError:
            pass
        for r in records:
            if r["lab"] != lid:
                continue
            lp.last = max(lp.last, r.get("time", ""))
            kind, item, status = r.get("kind"), r["item"], r.get("status", "")
            if kind == "code":
                lp.exercises[item] = status
                if status == "pass":
                    lp.ever_passed.add(item)
            elif kind == "essay":
                if lp.essays.get(item) != "submitted":
                    lp.essays[item] = status
            elif kind == "quiz":
                lp.quiz[item] = status == "pass"
        lp.quiz_total = max(lp.quiz_total, len(lp.quiz))
        out.append(lp)
    return out


def _lab_items(lab: str) -> tuple[dict[str, str], dict[str, str], int]:
    """The lab's exercises and essays, all "not tried", and its number of quiz questions."""

    exercises, essays = {}, {}
    for ex in lab_exercises(lab):
        (essays if ex.kind == "essay" else exercises)[ex.name] = "-"
    q = lab_quiz(lab)
    return exercises, essays, len(q.questions) if q else 0


def table(lab: str | None = None, records: list[dict] | None = None) -> str:
    """Your progress, one block per lab: what passed now, what failed, what is not tried."""
    rows = summarize(records, [lab] if lab else None)
    if not rows:
        return (f"No progress recorded yet in {store_path()}.\n"
                f"Run an exercise's check (ex1.check()) in a lab and it will show up here.")
    blocks = []
    for p in rows:
        head = f"lab {p.lab}  {p.title}".rstrip()
        if p.due:
            head += f"  (due {p.due})"
        lines = [head]
        if p.exercises:
            lines.append(f"  exercises  {p.passed}/{len(p.exercises)} passed: " + ", ".join(
                f"{n} {p.exercise_words(n)}" for n in p.exercises))
        if p.essays:
            lines.append(f"  essays     {p.submitted}/{len(p.essays)} submitted" + (": " + ", ".join(
                f"{n} {STATUS_WORDS.get(s, s)}" for n, s in p.essays.items() if s != "submitted")
                if p.submitted < len(p.essays) else ""))
        if p.quiz_total:
            lines.append(f"  quiz       {sum(p.quiz.values())}/{p.quiz_total} right "
                         f"({len(p.quiz)} answered)")
        lines.append(f"  last activity  {p.last.replace('T', ' ')[:16] or 'none yet'}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def show(lab: str | None = None, file=None) -> None:
    """Print your progress table (what `synthkit progress` prints) and where it came from."""
    try:
        where = find_course_file()
    except ValueError:
        where = None
    print(table(lab), file=file or sys.stdout)
    print(f"\n(progress: {store_path()}; course: {where or 'none found, set $SYNTHKIT_COURSE'})",
          file=file or sys.stdout)
