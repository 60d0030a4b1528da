"""Essays for a person to mark: one page per essay question with every answer, and a
``marks.csv`` to fill in (student, question, mark, comment) that ``synthkit grade --marks``
or ``synthkit marks merge`` folds back into the gradebook.

Answers are listed under anonymous codes (``S-3fa9c``, from a salt kept in the gradebook,
so a code is the same on every page and at every regrade) in the order of their codes, so
neither names nor the order of submission sway the marker; ``names=True`` shows names.
The marks file uses the same codes (or names), and the merge maps them back.
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from .gradebook import (MARKS_FIELDS, GradebookError, _atomic_write, anonymous_code, csv_text, essay_results,
                        num, read_marks)
from .pages import render, safe_name
from .registry import lab_exercises, lab_title

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Lab {{ lab }} {{ exercise }}: answers to mark</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{{ style }}</style></head>
<body>
<h1>Lab {{ lab }}{% if title %}: {{ title }}{% endif %} — {{ exercise }}</h1>
<p>Out of <b>{{ num(points) }}</b> point(s). {{ answers|length }} answer(s){% if missing %}; {{ missing }} student(s)
gave none (they get 0 without marking){% endif %}. Enter marks in <code>{{ marks_file }}</code> under
question <code>{{ question }}</code>.</p>
{% if prompt %}<div class="box essay"><b>The question</b><p>{{ prompt }}</p></div>{% endif %}
{% if guide %}<details><summary>What a strong answer touches on (for the marker only)</summary><pre>{{ guide }}</pre></details>{% endif %}
{% for a in answers %}
<div class="box" data-student="{{ a.who }}">
<h3>{{ a.who }} <span class="muted small">{{ a.words }} words{% if a.mark is not none %}; marked {{ num(a.mark) }}{% if a.comment %}: {{ a.comment }}{% endif %}{% endif %}</span></h3>
<div class="answer">{{ a.answer }}</div>
</div>
{% endfor %}
</body></html>
"""


def write_essays(book: dict, out: str | os.PathLike, *, names: bool = False, force: bool = False,
                 marks_name: str = "marks.csv") -> tuple[list[Path], Path]:
    """Pages of answers per essay question, and the marks file; returns (pages, marks file).

    An existing marks file with marks the gradebook does not hold yet is not overwritten
    (merge it first, or force=True), so no typed-in mark is lost.
    """
    out = Path(out)
    marks_path = out / marks_name
    if marks_path.is_file() and not force:
        try:
            pending = [(r, m, c) for r, m, c in read_marks(book, marks_path)
                       if (m is not None and r.get("mark") != m) or (c and c != (r.get("comment") or ""))]
        except GradebookError:
            pending = [None]
        if pending:
            raise GradebookError(f"{marks_path} holds marks the gradebook does not have yet: fold them in first "
                                 f"(`synthkit marks merge {marks_path} --into GRADEBOOK`), or pass --force "
                                 f"to write a fresh one")
    questions: dict[str, list] = defaultdict(list)
    missing: dict[str, int] = defaultdict(int)
    for q, e, r in essay_results(book):
        if r.get("answer"):
            questions[q].append((e, r))
        else:
            missing[q] += 1
    pages, marks_rows = [], []
    for q in sorted(set(questions) | set(missing)):
        lab, exercise = q.split("/", 1)
        try:
            ex = next((x for x in lab_exercises(lab) if x.name == exercise), None)
        except ImportError:
            ex = None
        answers = []
        for e, r in questions.get(q, []):
            who = e["student"] if names else anonymous_code(book, e["student"])
            answers.append({"who": who, "answer": r["answer"], "words": len(r["answer"].split()),
                            "mark": r.get("mark"), "comment": r.get("comment") or ""})
            marks_rows.append({"student": who, "question": q,
                               "mark": "" if r.get("mark") is None else num(r["mark"]),
                               "comment": r.get("comment") or ""})
        answers.sort(key=lambda a: a["who"])
        points = max((float(r.get("max_points", 0)) for _, r in questions.get(q, [])),
                     default=float(getattr(ex, "points", 0) or 0))
        html = render(PAGE, lab=lab, exercise=exercise, title=lab_title(lab), question=q, points=points,
                      answers=answers, missing=missing.get(q, 0), prompt=getattr(ex, "prompt", "") if ex else "",
                      guide=ex.solution_code if ex else "", marks_file=marks_name, num=num)
        path = out / f"{safe_name(lab)}_{safe_name(exercise)}.html"
        _atomic_write(path, html)
        pages.append(path)
    marks_rows.sort(key=lambda m: (m["question"], m["student"]))
    _atomic_write(marks_path, csv_text(MARKS_FIELDS, marks_rows))
    return pages, marks_path
