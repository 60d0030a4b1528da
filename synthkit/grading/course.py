"""course.toml: what an instructor assigns this term, what each exercise is worth, when it is due.

    [course]
    title = "Synthetic data and self-improvement loops"

    [labs.00]
    assigned = true
    due = 2026-02-06
    points = { ex1 = 2, essay1 = 1 }
    late = { per_day = 0.1, max_days = 7, grace_hours = 1 }   # optional; also under [course]

A lab's title and notebook are written once, in its lab module (``synthkit.labs.lab00``:
``TITLE``, ``NOTEBOOK``), because they belong to the lab's content and travel with the
package; course.toml holds only what changes from one term to the next. ``lab_info(lab)``
joins the two for every command that shows a lab.

Where the course is: $SYNTHKIT_COURSE (a course.toml or its folder), else the nearest
course.toml in the current folder or one above it, else the course last opened with
``synthkit start`` or used by a lab (remembered in $SYNTHKIT_HOME/course.json), else the
checkout this package was installed from. With none, every lab counts as unassigned and
exercises keep the points their lab module gives them.
"""
from __future__ import annotations

import datetime as _dt
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .late import NO_PENALTY, LatePolicy, LateRuleError, parse_late, zone
from .paths import (COURSE_FILE, ENV_COURSE, CourseError, find_course_file,  # noqa: F401  (re-exported)
                    remember_course)
from .registry import lab_module
_LAB_KEYS = {"assigned", "due", "points", "late"}
_MOVED = {"title": "TITLE", "notebook": "NOTEBOOK"}  # keys that live in the lab module


@dataclass
class LabConfig:
    """One lab as the instructor set it up for this term."""
    id: str
    assigned: bool = False
    due: _dt.date | _dt.datetime | None = None
    points: dict[str, float] = field(default_factory=dict)
    late: LatePolicy | None = None  # None: the course's rule


@dataclass
class LabInfo:
    """One lab as every command shows it: the module's title and notebook, the term's settings."""
    id: str
    title: str
    notebook: str
    assigned: bool = False
    due: _dt.date | _dt.datetime | None = None


@dataclass
class Course:
    title: str = ""
    labs: dict[str, LabConfig] = field(default_factory=dict)
    path: Path | None = None
    late: LatePolicy = NO_PENALTY  # the course-wide rule
    timezone: str | None = None  # IANA name; None: this machine's

    def late_policy(self, lab: str) -> LatePolicy:
        """The late rule for `lab`: its own, else the course's."""
        lc = self.labs.get(lab)
        return lc.late if lc and lc.late is not None else self.late

    def due(self, lab: str):
        lc = self.labs.get(lab)
        return lc.due if lc else None

    def points(self, lab: str, exercise: str, default: float) -> float:
        lc = self.labs.get(lab)
        if lc and exercise in lc.points:
            return lc.points[exercise]
        return default

    @property
    def root(self) -> Path:
        """The folder holding course.toml (the course repository), or the current folder."""
        return self.path.parent if self.path else Path.cwd()


# --- reading it --------------------------------------------------------------------------
def load_course(path: str | os.PathLike | None = None) -> Course:
    path = Path(path) if path else find_course_file()
    if path is None:
        return Course()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CourseError(f"cannot read {path}: {e}") from None
    head = data.get("course", {})
    course = Course(title=str(head.get("title", "")), path=path)
    try:
        if "late" in head:
            course.late = parse_late(head["late"], f"{path}: course.late")
        if head.get("timezone"):
            course.timezone = str(head["timezone"])
            zone(course.timezone)
    except LateRuleError as e:
        raise CourseError(str(e)) from None
    labs = data.get("labs", {})
    if not isinstance(labs, dict):
        raise CourseError(f"{path}: [labs] should be a table of labs, e.g. [labs.00]")
    for lid, table in labs.items():
        if not isinstance(table, dict):
            raise CourseError(f"{path}: labs.{lid} should be a table")
        lid = str(lid).zfill(2)
        moved = sorted(set(table) & set(_MOVED))
        if moved:
            raise CourseError(f"{path}: labs.{lid} sets {', '.join(moved)}, which the lab module "
                              f"synthkit/labs/lab{lid}.py defines ({', '.join(_MOVED[k] for k in moved)}); "
                              f"delete {'them' if len(moved) > 1 else 'it'} from course.toml")
        unknown = sorted(set(table) - _LAB_KEYS)
        if unknown:
            raise CourseError(f"{path}: labs.{lid} has unknown keys {unknown}; "
                              f"a lab takes {', '.join(sorted(_LAB_KEYS))}")
        points = table.get("points", {})
        bad = {k: v for k, v in points.items() if not isinstance(v, (int, float)) or v < 0}
        if bad:
            raise CourseError(f"{path}: labs.{lid}.points must be numbers >= 0; got {bad}")
        due = table.get("due")
        if due is not None and not isinstance(due, (_dt.date, _dt.datetime)):
            raise CourseError(f"{path}: labs.{lid}.due must be a TOML date (due = 2026-02-06); got {due!r}")
        try:
            late = parse_late(table["late"], f"{path}: labs.{lid}.late") if "late" in table else None
        except LateRuleError as e:
            raise CourseError(str(e)) from None
        course.labs[lid] = LabConfig(id=lid, assigned=bool(table.get("assigned", False)), due=due,
                                     points={k: float(v) for k, v in points.items()}, late=late)
    return course


def lab_info(lab: str, course: Course | None = None) -> LabInfo:
    """A lab's title and notebook (from its lab module, where they are written) with this
    term's settings (from course.toml). ImportError if synthkit has no such lab."""

    lab = str(lab).zfill(2)
    mod = lab_module(lab)
    missing = [name for name in ("TITLE", "NOTEBOOK") if not isinstance(getattr(mod, name, None), str)]
    if missing:
        raise ImportError(f"{mod.__name__} must define {' and '.join(missing)} (a string each)")
    course = course if course is not None else load_course()
    lc = course.labs.get(lab) or LabConfig(lab)
    return LabInfo(id=lab, title=mod.TITLE, notebook=mod.NOTEBOOK, assigned=lc.assigned, due=lc.due)
