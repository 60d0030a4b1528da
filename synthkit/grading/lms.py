"""The gradebook for a learning management system: Canvas's gradebook import, and a plain
wide CSV (one row per student, one column per lab and exercise) for any other.

**Canvas.** Its gradebook import reads a CSV laid out as its own gradebook export: the
identity columns ``Student, ID, SIS User ID, SIS Login ID, Section``, then one column per
assignment, and optionally a ``Points Possible`` row under the header (Canvas's Instructor
Guide, "How do I import grades in the Gradebook?"; Ohio State's "Import CSV File for Carmen
Grades", teaching.resources.osu.edu, lists the same columns and notes that Canvas matches a
student on any one of name, ID or SIS User ID). A column whose header Canvas does not know
becomes a new assignment; one that names an existing assignment as the export writes it,
``Lab 01: The data cliff (123456)``, updates that one. Blank cells change nothing.

Pass Canvas's own gradebook export as ``roster`` and the file gets each student's name,
SIS ids and section from it, and each lab's column the header of the matching assignment,
so the import updates it instead of making a new one. Without a roster, ``ID`` comes from
Canvas's bulk-download file names (``name_[LATE_]userid_subid_file``) and the SIS columns
stay empty.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from .gradebook import GradebookError, _atomic_write, csv_text, entry_total, num, read_csv, scores
from .registry import lab_title

CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
POINTS_POSSIBLE = "    Points Possible"  # how Canvas's export writes the row (leading spaces and all)


def lab_header(lab: str) -> str:
    title = lab_title(lab)
    return f"Lab {lab}: {title}" if title else f"Lab {lab}"


def _labs(book: dict) -> list[str]:
    return sorted({e.get("lab") for e in book["submissions"] if e.get("lab")})


def slug(name: str) -> str:
    """A name as Canvas writes it into download file names ('Smith, Jane' -> 'smithjane')."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def read_roster(path: str | os.PathLike) -> tuple[list[dict], list[str]]:
    """Canvas's gradebook export: its student rows and its column headers."""
    path = Path(path)
    reader = read_csv(path, "roster")
    header = reader.fieldnames or []
    missing = [c for c in ("Student", "ID") if c not in header]
    if missing:
        raise GradebookError(f"{path}: no {' or '.join(missing)} column; a roster is Canvas's gradebook "
                             f"export (Grades > Export), which starts {', '.join(CANVAS_IDENTITY)}")
    students = [r for r in reader if (r.get("Student") or "").strip()
                and "points possible" not in r["Student"].lower() and r["Student"].strip() != "Student, Test"]
    return students, header


def canvas_table(book: dict, roster: str | os.PathLike | None = None) -> tuple[list[str], list[dict]]:
    """(header, rows) of Canvas's import file: identity columns, one column per lab."""
    labs = _labs(book)
    people, roster_header = read_roster(roster) if roster else ([], [])
    columns = {}
    for lab in labs:
        ours = lab_header(lab)
        same = [h for h in roster_header if re.sub(r"\s*\(\d+\)$", "", h).strip() == ours]
        columns[lab] = same[0] if same else ours
    by_id = {(p.get("ID") or "").strip(): p for p in people if (p.get("ID") or "").strip()}
    by_slug = {slug(p["Student"]): p for p in people}
    students: dict[str, dict] = {}
    maxima: dict[str, float] = {}
    for e in book["submissions"]:
        lab = e.get("lab")
        if not lab:
            continue
        canvas_id = (e.get("submitted") or {}).get("canvas_id") or ""
        person = by_id.get(canvas_id) or by_slug.get(slug(e["student"])) or {}
        key = person.get("ID") or canvas_id or e["student"]
        row = students.setdefault(key, {
            "Student": person.get("Student", e["student"]), "ID": person.get("ID", canvas_id),
            "SIS User ID": person.get("SIS User ID", ""), "SIS Login ID": person.get("SIS Login ID", ""),
            "Section": person.get("Section", "")})
        got, best = entry_total(e)
        row[columns[lab]] = num(got)
        maxima[lab] = max(maxima.get(lab, 0.0), best)
    header = list(CANVAS_IDENTITY) + [columns[lab] for lab in labs]
    points = {"Student": POINTS_POSSIBLE, **{columns[lab]: num(maxima.get(lab, 0)) for lab in labs}}
    rows = [points] + sorted(students.values(), key=lambda r: r["Student"].lower())
    return header, rows


def wide_table(book: dict) -> tuple[list[str], list[dict]]:
    """(header, rows): one row per student; per lab each exercise's points, the late
    penalty and the lab's total; then the total of all labs."""
    labs = _labs(book)
    exercises: dict[str, list[str]] = {lab: [] for lab in labs}
    for e in book["submissions"]:
        for r in e.get("results", []):
            if e.get("lab") and r.get("exercise") not in exercises[e["lab"]]:
                exercises[e["lab"]].append(r.get("exercise"))
    header = ["student"]
    for lab in labs:
        header += [f"{lab} {x}" for x in exercises[lab]] + [f"{lab} late penalty", f"{lab} total"]
    header.append("total")
    table: dict[str, dict] = {}
    for e in book["submissions"]:
        lab = e.get("lab")
        if not lab:
            continue
        row = table.setdefault(e["student"], {"student": e["student"]})
        penalty = 0.0
        for r in e.get("results", []):
            raw, pen, points = scores(e, r)
            row[f"{lab} {r.get('exercise')}"] = num(raw)
            penalty += pen
        row[f"{lab} late penalty"] = num(penalty)
        row[f"{lab} total"] = num(entry_total(e)[0])
    for row in table.values():
        row["total"] = num(sum(float(row.get(f"{lab} total", 0) or 0) for lab in labs))
    return header, sorted(table.values(), key=lambda r: r["student"].lower())


def write_canvas(book: dict, path: str | os.PathLike, roster: str | os.PathLike | None = None) -> Path:
    header, rows = canvas_table(book, roster)
    _atomic_write(Path(path), csv_text(header, rows))
    return Path(path)


def write_wide(book: dict, path: str | os.PathLike) -> Path:
    header, rows = wide_table(book)
    _atomic_write(Path(path), csv_text(header, rows))
    return Path(path)
