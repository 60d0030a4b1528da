"""The class report: one self-contained HTML page over a gradebook.

Per lab: how the lab totals spread (a histogram), each exercise's pass rate and how its
results split (a stacked bar), and the **most common mistakes per exercise**, counted in
students: each failure's slip (``checks.slip_of``: the advice a checker named, else the
message with its random inputs taken out) groups the same mistake made on different
inputs. Late submissions, and the grading flags (code that patches the grader, notebooks
that timed out, crashed or were not notebooks), are listed apart.

``class_stats(book)`` computes every number the page shows, from the same gradebook the
CSV is written from; ``write_report`` renders them. Each number in the page carries
``data-stat`` / ``data-lab`` / ``data-exercise`` attributes, so a test can hold it against
the CSV.
"""
from __future__ import annotations

import datetime as _dt
import os
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from .checks import slip_of
from .gradebook import _atomic_write, entry_total, flagged, num, scores, status
from .pages import figure, plot_image, render
from .registry import lab_title

MISTAKE_STATUSES = ("fail", "error", "slow")  # a wrong answer, code that raised, code too slow
STATUS_ORDER = ("pass", "marked", "submitted", "fail", "error", "slow", "missing")
STATUS_COLOURS = {"pass": "#2da44e", "marked": "#0969da", "submitted": "#54aeff", "fail": "#cf222e",
                  "error": "#bc4c00", "slow": "#d4a72c", "missing": "#8c959f", "other": "#6e7781"}
TOP_MISTAKES = 6


def class_stats(book: dict) -> dict:
    """Every number the class report shows."""
    by_lab: dict[str, list[dict]] = defaultdict(list)
    for e in book["submissions"]:
        by_lab[e.get("lab") or "?"].append(e)
    labs = []
    for lab in sorted(by_lab):
        entries = by_lab[lab]
        totals = [entry_total(e)[0] for e in entries]
        best = max((entry_total(e)[1] for e in entries), default=0.0)
        exercises: dict[str, dict] = {}
        slips: dict[str, dict[str, dict]] = defaultdict(dict)
        for e in entries:
            for r in e.get("results", []):
                name = r.get("exercise", "-")
                ex = exercises.setdefault(name, {"exercise": name, "kind": r.get("kind", "code"),
                                                 "max_points": float(r.get("max_points", 0)), "n": 0,
                                                 "passed": 0, "points": [], "statuses": Counter()})
                st = status(r)
                ex["n"] += 1
                ex["passed"] += st == "pass"
                ex["points"].append(scores(e, r)[2])
                ex["statuses"][st if st in STATUS_ORDER else "other"] += 1
                if r.get("kind") != "essay" and st in MISTAKE_STATUSES:
                    slip = r.get("slip") or slip_of(r.get("message", ""))
                    seen = slips[name].setdefault(slip, {"slip": slip, "students": set(), "status": st,
                                                         "example": r.get("message", "")})
                    seen["students"].add(e["student"])
        for name, ex in exercises.items():
            pts = ex.pop("points")
            ex["mean"] = round(statistics.fmean(pts), 2) if pts else 0.0
            ex["pass_rate"] = round(100 * ex["passed"] / ex["n"], 1) if ex["n"] else 0.0
            ex["statuses"] = dict(ex["statuses"])
            ranked = sorted(slips[name].values(), key=lambda s: (-len(s["students"]), s["slip"]))
            ex["mistakes"] = [{"slip": s["slip"], "students": len(s["students"]), "status": s["status"],
                               "example": s["example"]} for s in ranked]
        late = [{"student": e["student"], "days": e["late"]["days"], "fraction": e["late"].get("fraction", 0.0),
                 "submitted": (e.get("submitted") or {}).get("at", ""),
                 "source": (e.get("submitted") or {}).get("from", ""), "note": e["late"].get("note", "")}
                for e in entries if (e.get("late") or {}).get("days")]
        labs.append({"lab": lab, "title": lab_title(lab), "n": len(entries), "max": best,
                     "totals": totals, "mean": round(statistics.fmean(totals), 2) if totals else 0.0,
                     "median": num(statistics.median(totals)) if totals else 0,
                     "exercises": list(exercises.values()), "late": sorted(late, key=lambda x: x["student"])})
    flags = [{"student": e["student"], "lab": e.get("lab") or "?", "why": flagged(e), "path": e.get("path", "")}
             for e in book["submissions"] if flagged(e)]
    return {"labs": labs, "flags": flags, "submissions": len(book["submissions"]),
            "students": len({e["student"] for e in book["submissions"]})}


# --- plots -------------------------------------------------------------------------------------
def _totals_plot(lab: dict) -> str:
    fig, ax = figure(6.0, 2.4)
    top = max(lab["max"], max(lab["totals"], default=0), 1)
    bins = min(20, max(5, int(top) + 1))
    ax.hist(lab["totals"], bins=bins, range=(0, top), color="#0969da", edgecolor="white")
    ax.set_xlabel(f"lab {lab['lab']} total (points, after late penalties; out of {num(lab['max'])})")
    ax.set_ylabel("students")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.spines[["top", "right"]].set_visible(False)
    return plot_image(fig)


def _status_plot(lab: dict) -> str:
    exercises = lab["exercises"]
    fig, ax = figure(6.0, 0.5 + 0.45 * len(exercises))
    names = [ex["exercise"] for ex in exercises]
    left = [0] * len(exercises)
    for st in (*STATUS_ORDER, "other"):
        counts = [ex["statuses"].get(st, 0) for ex in exercises]
        if any(counts):
            ax.barh(names, counts, left=left, color=STATUS_COLOURS[st], label=st)
            left = [a + b for a, b in zip(left, counts)]
    ax.invert_yaxis()
    ax.set_xlabel("students")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(ncol=4, fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    ax.spines[["top", "right"]].set_visible(False)
    return plot_image(fig)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{{ style }}</style></head>
<body>
<h1>{{ title }}</h1>
<p class="muted">{{ stats.submissions }} submission(s) from {{ stats.students }} student(s); generated {{ when }}
from <code>{{ source }}</code>. Points are after late penalties, as in the gradebook's <code>points</code> column.</p>
{% for lab in stats.labs %}
<section class="lab" data-lab="{{ lab.lab }}">
<h2>Lab {{ lab.lab }}{% if lab.title %}: {{ lab.title }}{% endif %}</h2>
<p>Submissions: <b data-stat="lab-n" data-lab="{{ lab.lab }}">{{ lab.n }}</b>;
mean total <b data-stat="lab-mean" data-lab="{{ lab.lab }}">{{ lab.mean }}</b>,
median <b data-stat="lab-median" data-lab="{{ lab.lab }}">{{ lab.median }}</b>
of <span data-stat="lab-max" data-lab="{{ lab.lab }}">{{ num(lab.max) }}</span> points.</p>
<img class="plot" alt="distribution of lab {{ lab.lab }} totals" src="{{ lab.totals_plot }}">
<table>
<tr><th>exercise</th><th>points</th><th>students</th><th>passed</th><th>pass rate</th><th>mean points</th><th>results</th></tr>
{% for ex in lab.exercises %}
<tr><td>{{ ex.exercise }}{% if ex.kind == "essay" %} <span class="badge">essay</span>{% endif %}</td>
<td class="n">{{ num(ex.max_points) }}</td>
<td class="n" data-stat="n" data-lab="{{ lab.lab }}" data-exercise="{{ ex.exercise }}">{{ ex.n }}</td>
<td class="n" data-stat="passed" data-lab="{{ lab.lab }}" data-exercise="{{ ex.exercise }}">{{ ex.passed if ex.kind != "essay" else "–" }}</td>
<td class="n" data-stat="pass-rate" data-lab="{{ lab.lab }}" data-exercise="{{ ex.exercise }}">{{ (ex.pass_rate|string) + " %" if ex.kind != "essay" else "–" }}</td>
<td class="n" data-stat="mean" data-lab="{{ lab.lab }}" data-exercise="{{ ex.exercise }}">{{ ex.mean }}</td>
<td class="small">{% for st, c in ex.statuses.items() %}{{ st }} {{ c }}{% if not loop.last %}, {% endif %}{% endfor %}</td></tr>
{% endfor %}
</table>
<img class="plot" alt="results per exercise in lab {{ lab.lab }}" src="{{ lab.status_plot }}">
<h3>Most common mistakes</h3>
{% set any_mistake = namespace(found=false) %}
{% for ex in lab.exercises if ex.mistakes %}{% set any_mistake.found = true %}
<p><b>{{ ex.exercise }}</b></p>
<table class="mistakes" data-lab="{{ lab.lab }}" data-exercise="{{ ex.exercise }}">
<tr><th>students</th><th>what the check said (inputs taken out)</th></tr>
{% for m in ex.mistakes[:top] %}
<tr><td class="n" data-stat="slip-students" data-lab="{{ lab.lab }}" data-exercise="{{ ex.exercise }}">{{ m.students }}</td>
<td><span class="badge">{{ m.status }}</span> {{ m.slip }}</td></tr>
{% endfor %}
{% if ex.mistakes|length > top %}<tr><td></td><td class="muted">{{ ex.mistakes|length - top }} rarer mistake(s) not shown</td></tr>{% endif %}
</table>
{% endfor %}
{% if not any_mistake.found %}<p class="muted">No wrong answers, errors or slow code in this lab.</p>{% endif %}
{% if lab.late %}
<h3>Late submissions</h3>
<table><tr><th>student</th><th>days late</th><th>penalty</th><th>handed in</th><th>time from</th></tr>
{% for l in lab.late %}<tr><td>{{ l.student }}</td><td class="n" data-stat="days-late" data-lab="{{ lab.lab }}">{{ l.days }}</td>
<td class="n">{{ (100 * l.fraction)|round(1) }} %</td><td>{{ l.submitted }}</td><td>{{ l.source }}{% if l.note %} ({{ l.note }}){% endif %}</td></tr>
{% endfor %}</table>
{% endif %}
</section>
{% endfor %}
<h2>Grading flags</h2>
{% if stats.flags %}
<p>Submissions to read yourself: code that patches imported modules, builtins or the grader (it cannot change a
grade, see <code>synthkit grade --help</code>), and notebooks that did not run cleanly.</p>
<table id="flags"><tr><th>student</th><th>lab</th><th>why</th></tr>
{% for f in stats.flags %}<tr data-stat="flag"><td>{{ f.student }}</td><td>{{ f.lab }}</td>
<td>{% for w in f.why %}<div class="small">{{ w }}</div>{% endfor %}</td></tr>{% endfor %}
</table>
{% else %}<p class="muted" id="flags">None: every submission ran cleanly and patched nothing.</p>{% endif %}
</body></html>
"""


def write_report(book: dict, out: str | os.PathLike, *, source: str = "grades.json", title: str = "") -> Path:
    """Render the class report of `book` into `out` (one HTML file); returns its path."""
    stats = class_stats(book)
    for lab in stats["labs"]:
        lab["totals_plot"] = _totals_plot(lab)
        lab["status_plot"] = _status_plot(lab)
    html = render(PAGE, stats=stats, title=title or "Class report", source=source, num=num, top=TOP_MISTAKES,
                  when=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"))
    out = Path(out)
    _atomic_write(out, html)
    return out
