"""Where things are: the student's own folder ($SYNTHKIT_HOME) and the course folder.

Where the course is: $SYNTHKIT_COURSE (a course.toml or its folder), else the nearest
course.toml in the current folder or one above it, else the course last opened with
``synthkit start`` or used by a lab (remembered in $SYNTHKIT_HOME/course.json), else the
checkout this package was installed from. Only paths here: reading course.toml is
``course``, the progress records are ``store``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

ENV_COURSE = "SYNTHKIT_COURSE"
COURSE_FILE = "course.toml"


class CourseError(ValueError):
    """course.toml cannot be found, read or understood; the message says how to fix it."""


ENV_HOME = "SYNTHKIT_HOME"


def home() -> Path:
    """The course's per-user folder: $SYNTHKIT_HOME, or ~/.synthkit."""
    env = os.environ.get(ENV_HOME, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".synthkit"


# --- where the course is -----------------------------------------------------------------
def _remembered_file() -> Path:
    return home() / "course.json"


def remember_course(root: str | os.PathLike) -> None:
    """Note `root` (a folder with course.toml) as this user's course, so that commands run
    from any other folder find it. Never raises: remembering is a convenience."""
    root = Path(root).resolve()
    if not (root / COURSE_FILE).is_file():
        return
    path = _remembered_file()
    try:
        if path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("root") == str(root):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"root": str(root)}) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, ValueError):
        pass


def _remembered_course() -> Path | None:
    try:
        root = json.loads(_remembered_file().read_text(encoding="utf-8")).get("root")
    except (OSError, ValueError, AttributeError):
        return None
    candidate = Path(root) / COURSE_FILE if isinstance(root, str) else None
    return candidate if candidate and candidate.is_file() else None


def course_upwards(start: str | os.PathLike | None) -> Path | None:
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / COURSE_FILE).is_file():
            return folder / COURSE_FILE
    return None


def _installed_checkout() -> Path | None:
    candidate = Path(__file__).resolve().parents[2] / COURSE_FILE
    return candidate if candidate.is_file() else None


def find_course_file(start: str | os.PathLike | None = None) -> Path | None:
    """The course.toml to use (see the module docstring for the order), or None."""
    env = os.environ.get(ENV_COURSE, "").strip()
    if env:
        p = Path(env).expanduser()
        if p.is_dir():
            p = p / COURSE_FILE
        if not p.is_file():
            raise CourseError(f"${ENV_COURSE} points at {p}, which is not a file; "
                              f"set it to your course.toml (or the folder holding it), or unset it")
        return p
    return course_upwards(start) or _remembered_course() or _installed_checkout()
