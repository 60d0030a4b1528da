"""The gradebook: what ``synthkit grade`` writes (a JSON with every detail, and the CSV made
from it), read back by every command of the instructor's term (report, feedback, essays,
marks, LMS export).

The JSON is the source of truth; the CSV is recomputed from it whenever it changes (a
regrade, marks folded in), so the two never disagree. Each CSV row is one student x
exercise::

    raw       the points earned before any late penalty (an essay: its mark, once marked)
    penalty   what the late rule takes off (raw x the fraction for the days late)
    points    what counts: raw - penalty
    submitted_at, submitted_from, days_late   when it was handed in, read from where

A JSON from another version of synthkit is refused with one line (grade again): its
fields may not mean what this version thinks.
"""
from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import os
import secrets
from pathlib import Path

from ..errors import SynthkitError

FORMAT = "synthkit-gradebook"
VERSION = 2
CSV_FIELDS = ("student", "lab", "exercise", "raw", "penalty", "points", "max_points", "status", "message",
              "flags", "submission", "submitted_at", "submitted_from", "days_late")
MARKS_FIELDS = ("student", "question", "mark", "comment")
MARKED = "marked"  # an essay's status once a person has marked it
GRADER_STATUSES = ("timeout", "crashed", "invalid", "error", "not run")  # a submission that did not run cleanly


class GradebookError(SynthkitError):
    """A gradebook or a marks file that cannot be used as it is; nothing was changed."""


# --- where it is ---------------------------------------------------------------------------
def json_path(path: str | os.PathLike) -> Path:
    """The gradebook's JSON for `path` (the CSV, the JSON, or either without suffix)."""
    path = Path(path)
    return path if path.suffix == ".json" else path.with_suffix(".json")


def csv_path(path: str | os.PathLike) -> Path:
    return json_path(path).with_suffix(".csv")


def new_book(**meta) -> dict:
    from .. import __version__
    return {"format": FORMAT, "version": VERSION, "synthkit": __version__, "salt": secrets.token_hex(8),
            **meta, "submissions": []}


def load(path: str | os.PathLike) -> dict:
    """The gradebook at `path`; GradebookError (one line) if it is missing or not this version's."""
    from .. import __version__

    p = json_path(path)
    if not p.is_file():
        raise GradebookError(f"{p}: no such gradebook; `synthkit grade SUBMISSIONS --out {csv_path(p)}` makes one")
    try:
        book = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GradebookError(f"{p}: not a gradebook ({type(e).__name__}: {e})") from None
    if not isinstance(book, dict) or not isinstance(book.get("submissions"), list):
        raise GradebookError(f"{p}: not a gradebook (no list of submissions); `synthkit grade` writes one")
    if book.get("format") != FORMAT or book.get("version") != VERSION:
        who = f"synthkit {book['synthkit']}" if book.get("synthkit") else "an older synthkit"
        raise GradebookError(f"{p} was written by {who} (gradebook format {book.get('version', 1)}); this "
                             f"synthkit {__version__} reads format {VERSION}: grade the submissions again "
                             f"with `synthkit grade`")
    return book


# --- what each row says ------------------------------------------------------------------
def num(x: float):
    """2 for 2.0, 1.5 for 1.5: how points are written."""
    x = float(x)
    return int(x) if x.is_integer() else round(x, 2)


def raw_points(r: dict) -> float:
    """Points before the late rule: full for a pass; an essay's mark once marked; else 0."""
    if r.get("kind") == "essay":
        return float(r["mark"]) if r.get("mark") is not None else 0.0
    return float(r.get("max_points", 0)) if r.get("status") == "pass" else 0.0


def status(r: dict) -> str:
    return MARKED if r.get("kind") == "essay" and r.get("mark") is not None else r.get("status", "")


def late_fraction(entry: dict) -> float:
    return float((entry.get("late") or {}).get("fraction", 0.0))


def scores(entry: dict, r: dict) -> tuple[float, float, float]:
    """(raw, penalty, points) of one result of one submission."""
    raw = raw_points(r)
    penalty = round(raw * late_fraction(entry), 2)
    return raw, penalty, round(raw - penalty, 2)


def entry_total(entry: dict) -> tuple[float, float]:
    """(points, max points) of a whole submission, late penalty included."""
    got = sum(scores(entry, r)[2] for r in entry.get("results", []))
    best = sum(float(r.get("max_points", 0)) for r in entry.get("results", []))
    return round(got, 2), round(best, 2)


def message(r: dict) -> str:
    text = r.get("message", "")
    if r.get("kind") == "essay":
        if r.get("mark") is not None:
            text = f"marked {num(r['mark'])}/{num(r.get('max_points', 0))}" + \
                   (f": {r['comment']}" if r.get("comment") else "")
        if r.get("answer"):
            text = f"{text}\n---\n{r['answer']}"
    return text


def rows(book: dict) -> list[dict]:
    out = []
    for e in book["submissions"]:
        sub = e.get("submitted") or {}
        late = e.get("late") or {}
        flags = "; ".join(e.get("flags", []))
        for r in e.get("results", []):
            raw, penalty, points = scores(e, r)
            out.append({"student": e["student"], "lab": r.get("lab") or e.get("lab") or "?",
                        "exercise": r.get("exercise", "-"), "raw": num(raw), "penalty": num(penalty),
                        "points": num(points), "max_points": num(r.get("max_points", 0)), "status": status(r),
                        "message": message(r), "flags": flags, "submission": e.get("path", ""),
                        "submitted_at": sub.get("at", ""), "submitted_from": sub.get("from", ""),
                        "days_late": late.get("days", "")})
    return out


def flagged(entry: dict) -> list[str]:
    """Why an instructor should look at this submission: patching lines, a run that broke."""
    why = [f"patches: {f}" for f in entry.get("flags", [])]
    if entry.get("status") not in ("ok", None):
        why.append(f"{entry['status']}: " + "; ".join(entry.get("notes", []) or
                                                     [i.get("text", "") for i in entry.get("cell_issues", [])]))
    return why


# --- writing ---------------------------------------------------------------------------------
def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)


def csv_text(fields, records) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue()


def save(book: dict, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write the JSON and the CSV made from it (each replaced whole, never half-written)."""
    j, c = json_path(path), csv_path(path)
    book["submissions"].sort(key=lambda e: (e.get("lab") or "", e["student"]))
    _atomic_write(c, csv_text(CSV_FIELDS, rows(book)))
    _atomic_write(j, json.dumps(book, indent=1, ensure_ascii=False, default=str))
    return c, j


# --- who is who -------------------------------------------------------------------------------
def anonymous_code(book: dict, student: str) -> str:
    """A code for `student` that says nothing about them (from the gradebook's own salt)."""
    return "S-" + hashlib.sha256(f"{book.get('salt', '')}:{student}".encode()).hexdigest()[:5]


def find_entry(book: dict, student: str, lab: str) -> dict | None:
    for e in book["submissions"]:
        if e.get("lab") == lab and (e["student"] == student or anonymous_code(book, e["student"]) == student):
            return e
    return None


def essay_results(book: dict):
    """(question 'lab/exercise', entry, result) for every essay in the gradebook."""
    for e in book["submissions"]:
        for r in e.get("results", []):
            if r.get("kind") == "essay":
                yield f"{r.get('lab') or e.get('lab')}/{r['exercise']}", e, r


# --- marks -------------------------------------------------------------------------------------
def read_csv(path: str | os.PathLike, what: str) -> csv.DictReader:
    """The rows of a CSV file (a spreadsheet's byte-order mark dropped); GradebookError saying
    which file (the `what`) cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise GradebookError(f"{path}: cannot read the {what} ({type(e).__name__}: {e})") from None
    return csv.DictReader(io.StringIO(text))


def read_marks(book: dict, path: str | os.PathLike) -> list[tuple[dict, float | None, str]]:
    """The marks in `path` as (the essay's result in `book`, mark or None, comment), each
    checked; GradebookError naming the first problem (and how many more) if any is wrong."""
    path = Path(path)
    reader = read_csv(path, "marks")
    header = [h.strip() for h in (reader.fieldnames or [])]
    if sorted(header) != sorted(MARKS_FIELDS):
        raise GradebookError(f"{path}: the columns are {', '.join(header) or 'none'}; a marks file has "
                             f"exactly {', '.join(MARKS_FIELDS)} (as `synthkit essays` writes it): nothing merged")
    essays = {(q, e["student"]): r for q, e, r in essay_results(book)}
    codes = {anonymous_code(book, e["student"]): e["student"] for e in book["submissions"]}
    questions = {q for q, _ in essays}
    problems, found, seen = [], [], set()
    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        who, q, mark_text, comment = row["student"], row["question"], row["mark"], row["comment"]
        student = codes.get(who, who)
        where = f"{path} line {line}"
        if q not in questions:
            problems.append(f"{where}: no essay question {q!r} in the gradebook "
                            f"(it has {', '.join(sorted(questions)) or 'none'})")
            continue
        r = essays.get((q, student))
        if r is None:
            problems.append(f"{where}: no student {who!r} answered {q} in the gradebook")
            continue
        if (q, student) in seen:
            problems.append(f"{where}: a second mark for {who} on {q}")
            continue
        seen.add((q, student))
        mark = None
        if mark_text:
            try:
                mark = float(mark_text)
            except ValueError:
                problems.append(f"{where}: the mark {mark_text!r} for {who} on {q} is not a number")
                continue
            top = float(r.get("max_points", 0))
            if not 0 <= mark <= top:
                problems.append(f"{where}: the mark {mark_text} for {who} on {q} is "
                                f"{'over its ' + format(num(top)) + ' points' if mark > top else 'below 0'}")
                continue
        found.append((r, mark, comment))
    if problems:
        more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
        raise GradebookError(problems[0] + more + ": nothing merged")
    return found


def merge_marks(book: dict, path: str | os.PathLike) -> tuple[dict, int]:
    """A copy of `book` with the marks of `path` in it, and how many marks it holds.
    A row with an empty mark leaves that essay as it was (its comment is kept)."""
    new = copy.deepcopy(book)
    index = {id(r): i for i, (_, _, r) in enumerate(essay_results(book))}
    targets = list(essay_results(new))
    count = 0
    for r, mark, comment in read_marks(book, path):
        _, _, target = targets[index[id(r)]]
        if mark is not None:
            target["mark"] = mark
            count += 1
        if comment or mark is not None:
            target["comment"] = comment
    return new, count


def carry_marks(old: dict | None, entries: list[dict]) -> list[str]:
    """Keep the marks of `old` in the regraded `entries` where the answer is unchanged;
    an answer that changed keeps its old mark as `previous_mark` and is marked again."""
    notes: list[str] = []
    if not old:
        return notes
    before = {(e["student"], e.get("lab")): e for e in old.get("submissions", [])}
    for e in entries:
        prev = before.get((e["student"], e.get("lab")))
        if not prev:
            continue
        marked = {r["exercise"]: r for r in prev.get("results", []) if r.get("kind") == "essay"
                  and (r.get("mark") is not None or r.get("comment"))}
        for r in e.get("results", []):
            p = marked.get(r.get("exercise"))
            if not p:
                continue
            if (p.get("answer") or "") == (r.get("answer") or ""):
                r["mark"], r["comment"] = p.get("mark"), p.get("comment", "")
            else:
                r["previous_mark"], r["previous_comment"] = p.get("mark"), p.get("comment", "")
                notes.append(f"{e['student']} {e.get('lab')}/{r['exercise']}: the answer changed since it was "
                             f"marked ({p.get('mark')}); mark it again (the old mark is kept as previous_mark)")
    return notes
