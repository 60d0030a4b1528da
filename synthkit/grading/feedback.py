"""Feedback for each student: one HTML page per student and lab, from the gradebook.

A page holds that student's own results only: each exercise's status and points, the
checker's message (which says which input failed and how, never the answer), the lab's
first hint for an exercise not yet passed, the essay with its mark and comment once a
person has marked it, the late penalty and where its time came from, and what went wrong
when the notebook ran. It never shows a reference solution, an essay's model answer,
another student's name or work, or class statistics; the grader's notes on code that
patches the grader stay in the instructor's report.
"""
from __future__ import annotations

import os
from pathlib import Path

from .gradebook import _atomic_write, entry_total, num, scores, status
from .pages import render, safe_name
from .registry import lab_exercises, lab_title

HEADLINES = {"pass": "Correct", "fail": "Not yet", "error": "Your code raised an error", "slow": "Too slow",
             "missing": "Not done yet", "submitted": "Submitted, not marked yet", "marked": "Marked",
             "timeout": "The notebook ran out of time", "crashed": "The kernel died", "invalid": "Not a notebook",
             "not run": "Not run"}

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Lab {{ lab }} feedback: {{ student }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{{ style }}</style></head>
<body>
<h1>Lab {{ lab }}{% if title %}: {{ title }}{% endif %}</h1>
<p>Feedback for <b>{{ student }}</b>: <b data-stat="total">{{ num(total) }}</b> of {{ num(best) }} points.</p>
{% if late.days and late.fraction %}
<div class="box warn">Handed in {{ submitted.at }} ({{ "from the submission's time stamp" if submitted.from != "mtime" else "the file's time" }}),
{{ late.days }} day(s) after the deadline ({{ late.due }}). Late rule: {{ late.rule }}.
This takes <b>{{ (100 * late.fraction)|round(1) }} %</b> off each exercise's points ({{ num(penalty) }} point(s) in all).</div>
{% endif %}
{% if problems %}<div class="box warn">When your notebook was run from top to bottom in a fresh kernel:
{% for p in problems %}<div class="small">{{ p }}</div>{% endfor %}</div>{% endif %}
{% for r in results %}
<div class="box {{ r.css }}">
<h3>{{ r.exercise }} — {{ r.headline }} <span class="muted small">({{ num(r.points) }}/{{ num(r.max_points) }}{% if r.penalty %}, {{ num(r.raw) }} before the late penalty{% endif %})</span></h3>
{% if r.kind == "essay" %}
{% if r.prompt %}<p class="muted">{{ r.prompt }}</p>{% endif %}
{% if r.answer %}<div class="answer">{{ r.answer }}</div>{% else %}<p>{{ r.message }}</p>{% endif %}
{% if r.mark is not none %}<p><b>Mark: {{ num(r.mark) }}/{{ num(r.max_points) }}</b>{% if r.comment %} — {{ r.comment }}{% endif %}</p>
{% else %}<p class="muted">Your instructor has not marked this answer yet.</p>{% endif %}
{% else %}
<p>{{ r.message }}</p>
{% if r.hint %}<p class="small"><b>Hint:</b> {{ r.hint }}</p>{% endif %}
{% endif %}
</div>
{% endfor %}
<p class="muted small">Run <code>{{ first_exercise }}.check()</code> in your notebook to check again; the grader runs the
same checks on fresh inputs.</p>
</body></html>
"""


def _problems(entry: dict) -> list[str]:
    out = [i.get("text", "") for i in entry.get("cell_issues", []) if i.get("text")]
    if entry.get("status") not in ("ok", None) and not out:
        out = list(entry.get("notes", [])) or [f"it ended with status {entry['status']}"]
    return out


def student_page(entry: dict) -> str:
    lab = entry.get("lab") or "?"
    try:
        known = {ex.name: ex for ex in lab_exercises(lab)}
    except ImportError:
        known = {}
    results, penalty = [], 0.0
    for r in entry.get("results", []):
        raw, pen, points = scores(entry, r)
        penalty += pen
        st = status(r)
        ex = known.get(r.get("exercise"))
        results.append({
            "exercise": r.get("exercise", "-"), "kind": r.get("kind", "code"), "headline": HEADLINES.get(st, st),
            "css": "pass" if st == "pass" else "essay" if r.get("kind") == "essay" else "fail",
            "raw": raw, "penalty": pen, "points": points, "max_points": float(r.get("max_points", 0)),
            "message": r.get("message", ""), "answer": r.get("answer") or "", "mark": r.get("mark"),
            "comment": r.get("comment") or "", "prompt": getattr(ex, "prompt", "") if ex else "",
            "hint": ex.hints[0] if ex and ex.hints and r.get("kind") != "essay" and st != "pass" else ""})
    total, best = entry_total(entry)
    return render(PAGE, lab=lab, title=lab_title(lab), student=entry["student"], total=total, best=best,
                  late=entry.get("late") or {"days": 0}, submitted=entry.get("submitted") or {},
                  penalty=penalty, problems=_problems(entry), results=results, num=num,
                  first_exercise=next((r["exercise"] for r in results if r["kind"] == "code"), "ex1"))


def write_feedback(book: dict, out: str | os.PathLike) -> list[Path]:
    """One page per student and lab: `out`/<lab>/<student>.html; returns the paths."""
    out = Path(out)
    written = []
    for e in book["submissions"]:
        path = out / (e.get("lab") or "unknown") / f"{safe_name(e['student'])}.html"
        _atomic_write(path, student_page(e))
        written.append(path)
    return written
