"""Your progress, kept on your own machine.

Every check, essay submission and quiz answer appends one JSON line to
``$SYNTHKIT_HOME/progress/progress.jsonl`` (default ``~/.synthkit``). Appends hold a
file lock and are flushed to disk before the lock is released, so two kernels writing
at once both land; a line cut short by a crash is skipped when reading, and the next
append starts on a fresh line, so earlier results are never lost.

``show()`` (or ``synthkit progress`` in a terminal) prints a table per lab.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ENV_HOME = "SYNTHKIT_HOME"
_warned = False


def home() -> Path:
    """The course's per-user folder: $SYNTHKIT_HOME, or ~/.synthkit."""
    env = os.environ.get(ENV_HOME, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".synthkit"


def store_path() -> Path:
    return home() / "progress" / "progress.jsonl"


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def append(record: dict, path: str | os.PathLike | None = None) -> None:
    """Append one record, locked and synced; raises OSError if the store is unwritable."""
    from filelock import FileLock

    path = Path(path) if path else store_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
    with FileLock(str(path) + ".lock", timeout=30):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size:  # a torn last line (a writer killed mid-line): start ours on a fresh line
                os.lseek(fd, size - 1, os.SEEK_SET)
                if os.read(fd, 1) != b"\n":
                    line = "\n" + line
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)


def record(lab: str, item: str, *, kind: str, status: str, **fields) -> None:
    """Record one result. Never raises: a full disk must not break a student's check."""
    global _warned
    rec = {"time": _now(), "lab": str(lab), "item": item, "kind": kind, "status": status}
    rec.update({k: v for k, v in fields.items() if v is not None})
    try:
        append(rec)
    except Exception as e:  # noqa: BLE001
        if not _warned:
            _warned = True
            warnings.warn(f"could not save your progress to {store_path()} ({type(e).__name__}: {e}); "
                          f"set {ENV_HOME} to a writable folder", stacklevel=3)


def load(path: str | os.PathLike | None = None) -> list[dict]:
    """Every readable record, oldest first; lines that do not parse are skipped."""
    path = Path(path) if path else store_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    records = []
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except ValueError:
            continue  # a line cut short by a crash
        if isinstance(rec, dict) and "lab" in rec and "item" in rec:
            records.append(rec)
    return records


@dataclass
class LabProgress:
    lab: str
    title: str = ""
    exercises: dict[str, str] = field(default_factory=dict)  # name -> best status so far
    essays: dict[str, str] = field(default_factory=dict)
    quiz: dict[str, bool] = field(default_factory=dict)  # question -> latest answer right?
    quiz_total: int = 0
    last: str = ""
    due: str = ""

    @property
    def passed(self) -> int:
        return sum(s == "pass" for s in self.exercises.values())

    @property
    def submitted(self) -> int:
        return sum(s == "submitted" for s in self.essays.values())


def summarize(records: list[dict] | None = None, labs: list[str] | None = None) -> list[LabProgress]:
    """Progress per lab: the labs the course knows (assigned ones), plus any with records."""
    from .course import load_course
    from ..labs import lab_exercises, lab_quiz, lab_title

    records = load() if records is None else records
    course = load_course()
    ids = sorted({r["lab"] for r in records} | {lid for lid, lc in course.labs.items() if lc.assigned})
    if labs:
        ids = [i for i in ids if i in labs]
    out = []
    for lid in ids:
        lp = LabProgress(lid, title=lab_title(lid))
        lc = course.labs.get(lid)
        lp.due = str(lc.due) if lc and lc.due else ""
        try:
            for ex in lab_exercises(lid):
                (lp.essays if ex.kind == "essay" else lp.exercises)[ex.name] = "-"
            q = lab_quiz(lid)
            lp.quiz_total = len(q.questions) if q else 0
        except ImportError:
            pass
        for r in records:
            if r["lab"] != lid:
                continue
            lp.last = max(lp.last, r.get("time", ""))
            kind, item, status = r.get("kind"), r["item"], r.get("status", "")
            if kind == "code":
                if lp.exercises.get(item) != "pass":
                    lp.exercises[item] = status
            elif kind == "essay":
                if lp.essays.get(item) != "submitted":
                    lp.essays[item] = status
            elif kind == "quiz":
                lp.quiz[item] = status == "pass"
        lp.quiz_total = max(lp.quiz_total, len(lp.quiz))
        out.append(lp)
    return out


def table(lab: str | None = None, records: list[dict] | None = None) -> str:
    rows = summarize(records, [lab] if lab else None)
    if not rows:
        return (f"No progress recorded yet in {store_path()}.\n"
                f"Run an exercise's check (ex1.check()) in a lab and it will show up here.")
    header = ("lab", "title", "exercises", "essays", "quiz", "last activity", "due")
    lines = [header]
    for p in rows:
        lines.append((p.lab, p.title[:44], f"{p.passed}/{len(p.exercises)} passed",
                      f"{p.submitted}/{len(p.essays)} submitted",
                      f"{sum(p.quiz.values())}/{p.quiz_total}" if p.quiz_total else "-",
                      p.last.replace("T", " ")[:16] or "-", p.due or "-"))
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(header))]
    text = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    detail = []
    for p in rows:
        todo = [(n, s) for n, s in p.exercises.items() if s != "pass"]
        if todo:
            detail.append(f"lab {p.lab}: still to pass: " + ", ".join(
                f"{n} ({s})" if s != "-" else n for n, s in todo))
    return "\n".join(text + ([""] + detail if detail else []))


def show(lab: str | None = None, file=None) -> None:
    """Print your progress table (what `synthkit progress` prints)."""
    print(table(lab), file=file or sys.stdout)
