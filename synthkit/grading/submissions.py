"""Who handed a notebook in, and when: what the grader reads from a submission's file
name, the folder it sits in and the file itself.

- **Canvas**'s "Download Submissions" names each file
  ``<name>_[LATE_]<user id>_<submission id>_<the student's file name>`` (``smithjane_LATE_
  48213_907311_01_data_cliff.ipynb``): the student is ``smithjane``, their Canvas user id
  ``48213`` (what Canvas's gradebook import matches on), and ``LATE`` says Canvas counted it
  late by its own due date.
- **The time it was handed in**: nbgrader's exchange writes a ``timestamp.txt`` beside each
  submitted notebook, and that time is used when it is there; otherwise the file's
  modification time (``unzip`` keeps the time Canvas stored in its zip; a copy that does
  not preserve times loses it). Every row of the gradebook says which of the two it was.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from pathlib import Path

CANVAS_NAME = re.compile(r"^(?P<name>[^_]+)_(?P<late>LATE_)?(?P<user>\d+)_(?P<sub>\d+)_(?P<file>.+)$")
TIMESTAMP_FILE = "timestamp.txt"  # nbgrader's


@dataclass
class CanvasName:
    name: str
    user_id: str
    submission_id: str
    late: bool
    file: str


def canvas_name(filename: str) -> CanvasName | None:
    """The parts of a Canvas bulk-download file name, or None if it is not one."""
    m = CANVAS_NAME.match(Path(filename).name)
    if not m:
        return None
    return CanvasName(m["name"], m["user"], m["sub"], bool(m["late"]), m["file"])


def _parse_time(text: str, tz) -> _dt.datetime | None:
    text = text.strip()
    if not text:
        return None
    utc = text.endswith((" UTC", "Z"))
    text = text.removesuffix(" UTC").removesuffix("Z")
    try:
        t = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc if utc else tz)
    return t


def submitted_at(path: str | Path, tz) -> tuple[_dt.datetime, str]:
    """When `path` was handed in and where that came from ("timestamp.txt" or "mtime")."""
    path = Path(path)
    stamp = path.parent / TIMESTAMP_FILE
    if stamp.is_file():
        t = _parse_time(stamp.read_text(encoding="utf-8", errors="replace").splitlines()[0]
                        if stamp.stat().st_size else "", tz)
        if t is not None:
            return t, TIMESTAMP_FILE
    return _dt.datetime.fromtimestamp(path.stat().st_mtime, tz=tz), "mtime"
