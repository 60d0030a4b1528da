"""The progress store: one JSON line per check, essay submission and quiz answer, in
``$SYNTHKIT_HOME/progress/progress.jsonl``. Appends hold a file lock and are flushed to disk
before the lock is released, so two kernels writing at once both land; a line cut short by a
crash is skipped when reading, and the next append starts on a fresh line."""
from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from pathlib import Path

from .paths import ENV_HOME, course_upwards, home, remember_course

_warned = False
_remembered = False


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
    _remember_course_once()
    try:
        append(rec)
    except Exception as e:  # noqa: BLE001
        if not _warned:
            _warned = True
            warnings.warn(f"could not save your progress to {store_path()} ({type(e).__name__}: {e}); "
                          f"set {ENV_HOME} to a writable folder", stacklevel=3)


def _remember_course_once() -> None:
    """A lab running inside a course folder notes where the course is, so that
    `synthkit progress` run from anywhere shows its due dates and unstarted labs."""
    global _remembered
    if _remembered:
        return
    _remembered = True
    found = course_upwards(None)
    if found is not None:
        remember_course(found.parent)


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
