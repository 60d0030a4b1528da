"""course.toml: what an instructor assigns, what each exercise is worth, when it is due.

    [course]
    title = "Synthetic data and self-improvement loops"

    [labs.00]
    notebook = "00_welcome.ipynb"
    assigned = true
    due = 2026-02-06
    points = { ex1 = 2, essay1 = 1 }

Found at $SYNTHKIT_COURSE, else the nearest course.toml in the current folder or one
above it. With none, every lab counts as unassigned and exercises keep the points
their lab module gives them.
"""
from __future__ import annotations

import datetime as _dt
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ENV_COURSE = "SYNTHKIT_COURSE"


class CourseError(ValueError):
    pass


@dataclass
class LabConfig:
    id: str
    notebook: str = ""
    title: str = ""
    assigned: bool = False
    due: _dt.date | _dt.datetime | None = None
    points: dict[str, float] = field(default_factory=dict)


@dataclass
class Course:
    title: str = ""
    labs: dict[str, LabConfig] = field(default_factory=dict)
    path: Path | None = None

    def points(self, lab: str, exercise: str, default: float) -> float:
        lc = self.labs.get(lab)
        if lc and exercise in lc.points:
            return lc.points[exercise]
        return default

    @property
    def root(self) -> Path:
        """The folder holding course.toml (the course repository), or the current folder."""
        return self.path.parent if self.path else Path.cwd()


def find_course_file(start: str | os.PathLike | None = None) -> Path | None:
    env = os.environ.get(ENV_COURSE, "").strip()
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise CourseError(f"${ENV_COURSE} points at {p}, which is not a file")
        return p
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "course.toml"
        if candidate.is_file():
            return candidate
    return None


def load_course(path: str | os.PathLike | None = None) -> Course:
    path = Path(path) if path else find_course_file()
    if path is None:
        return Course()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CourseError(f"cannot read {path}: {e}") from None
    course = Course(title=str(data.get("course", {}).get("title", "")), path=path)
    labs = data.get("labs", {})
    if not isinstance(labs, dict):
        raise CourseError(f"{path}: [labs] should be a table of labs, e.g. [labs.00]")
    for lid, table in labs.items():
        if not isinstance(table, dict):
            raise CourseError(f"{path}: labs.{lid} should be a table")
        lid = str(lid).zfill(2)
        points = table.get("points", {})
        bad = {k: v for k, v in points.items() if not isinstance(v, (int, float)) or v < 0}
        if bad:
            raise CourseError(f"{path}: labs.{lid}.points must be numbers >= 0; got {bad}")
        due = table.get("due")
        if due is not None and not isinstance(due, (_dt.date, _dt.datetime)):
            raise CourseError(f"{path}: labs.{lid}.due must be a TOML date (due = 2026-02-06); got {due!r}")
        course.labs[lid] = LabConfig(id=lid, notebook=str(table.get("notebook", "")),
                                     title=str(table.get("title", "")),
                                     assigned=bool(table.get("assigned", False)), due=due,
                                     points={k: float(v) for k, v in points.items()})
    return course
