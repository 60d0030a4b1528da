"""Grade a class: many submitted notebooks into one gradebook (a JSON and its CSV, see
``gradebook``).

Each submission runs in a fresh kernel of its own (several at once), with a per-cell
timeout, in a scratch folder, with a scratch progress store; then the lab's checks run
from the installed synthkit, in the grader's process, calling the student's functions
in that kernel over a plain-data channel (see ``runner`` and ``sandbox``). One CSV row
per student x exercise, plus a JSON report beside it with every detail, essays in full.
The ``flags`` column lists lines of the submission that patch imported code, builtins,
stdout or the import system (see ``scan``): they cannot change a grade, but an
instructor will want to read them.
A broken submission gets rows that say what broke; the rest of the class is graded
regardless.

Each submission's time (``submissions``: nbgrader's timestamp.txt, else the file's time)
is held against its lab's due date and late rule (``late``, from course.toml). The checks'
random draws are seeded from the notebook's bytes, so grading the same files again gives
the same rows. ``students=`` / ``labs=`` regrade only those submissions and keep the rest
of an existing gradebook; essay marks already entered are kept while the answer is the same.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from . import gradebook
from .exercises import Result
from .gradebook import CSV_FIELDS, GradebookError, num as _num  # noqa: F401  (CSV_FIELDS re-exported)
from .late import days_late, deadline, zone
from .submissions import canvas_name, submitted_at


@dataclass
class Submission:
    path: str
    student: str
    lab: str | None = None
    status: str = ""
    seconds: float = 0.0
    results: list[Result] = field(default_factory=list)
    run: dict = field(default_factory=dict)
    entry: dict = field(default_factory=dict)  # its record in the gradebook


def expand(paths) -> list[Path]:
    """Files as given; folders become the notebooks inside them (recursively), sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        else:
            out.append(p)
    return list(dict.fromkeys(out))


_GENERIC_FOLDERS = {"submitted", "submissions", "autograded", "feedback", "labs", "lab", "notebooks"}


def student_name(path: Path) -> str:
    """Who submitted `path`: 'alice' from alice-00_welcome.ipynb, 00_welcome_alice.ipynb,
    alice/00_welcome.ipynb or alice/00_welcome/00_welcome.ipynb; else the file's stem."""
    from .registry import lab_id_from_name, lab_module

    canvas = canvas_name(path.name)
    if canvas:
        return canvas.name
    lab = lab_id_from_name(path.name)
    if not lab:
        return path.stem
    try:
        lab_stem = Path(lab_module(lab).NOTEBOOK).stem
    except (ImportError, AttributeError):
        lab_stem = re.search(rf"{lab}_[A-Za-z][A-Za-z0-9]*", path.stem).group(0)
    rest = path.stem.replace(lab_stem, "", 1).strip("-_. ")
    if rest:
        return rest
    for parent in path.resolve().parents:
        name = parent.name
        if name and lab_stem not in name and not re.fullmatch(r"(lab)?\d{1,2}", name) \
                and name.lower() not in _GENERIC_FOLDERS:
            return name
    return path.stem


def _seed(path: str) -> str | None:
    """The checks' seed for a file: its bytes decide it, so a regrade draws the same inputs."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def _grade_one(path: str, lab: str | None, profile: str, timeout: float, threads: int = 0) -> dict:
    """Run one submission (in a worker process); never raises."""
    from .runner import run_notebook

    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="synthkit-grade-") as scratch:
            home = Path(scratch, "home")
            work = Path(scratch, "work")
            work.mkdir()
            env = {"SYNTHKIT_HOME": str(home)}
            if threads:  # kernels side by side must not fight over cores (see models.threads)
                env.update(SYNTHKIT_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
            result = run_notebook(path, lab=lab, profile=profile, timeout=timeout, cwd=work, env=env,
                                  seed=_seed(path))
        return result.to_dict()
    except BaseException as e:  # noqa: BLE001 - one submission never stops the class
        return {"path": path, "lab": lab, "status": "error", "seconds": time.perf_counter() - start,
                "results": [], "cell_issues": [], "notes": [f"grader error: {type(e).__name__}: {e}"]}


def _results(sub: Submission, course) -> list[Result]:
    from .registry import lab_exercises

    if sub.results:
        return sub.results
    # nothing came back: still a row per exercise, so the student shows in the book
    note = "; ".join(sub.run.get("notes", [])) or f"not graded ({sub.status})"
    try:
        exercises = lab_exercises(sub.lab) if sub.lab else []
    except ImportError:
        exercises = []
    return [Result(sub.lab or "?", ex.name, ex.kind, "not run", note, course.points(sub.lab, ex.name, ex.points))
            for ex in exercises] or [Result(sub.lab or "?", "-", "code", sub.status or "not run", note, 0.0)]


def timing(path: str | Path, lab: str | None, course) -> tuple[dict, dict]:
    """When `path` was handed in (and from where), and what the late rule makes of it."""
    tz = zone(course.timezone)
    canvas = canvas_name(Path(path).name)
    try:
        at, source = submitted_at(path, tz)
    except OSError:
        return {"at": "", "from": "unknown"}, {"days": 0, "fraction": 0.0, "rule": "no file time"}
    submitted = {"at": at.isoformat(timespec="seconds"), "from": source}
    if canvas:
        submitted.update(canvas_id=canvas.user_id, lms_late=canvas.late)
    due = course.due(lab) if lab else None
    if due is None:
        return submitted, {"days": 0, "fraction": 0.0, "rule": "no due date in course.toml"}
    policy = course.late_policy(lab)
    when = deadline(due, tz)
    days = days_late(at, when, policy)
    late = {"days": days, "fraction": policy.fraction(days), "due": when.isoformat(timespec="seconds"),
            "rule": policy.describe()}
    if canvas and canvas.late and days == 0:
        late["note"] = ("Canvas marked it LATE, but its file time is on time here: unzip Canvas's download "
                        "with a tool that keeps file times, or check the due date in course.toml")
    return submitted, late


def _entry(sub: Submission, course) -> dict:
    submitted, late = timing(sub.path, sub.lab, course)
    run = {k: v for k, v in sub.run.items() if k != "results"}
    return {"student": sub.student, **run, "path": sub.path, "lab": sub.lab, "status": sub.status,
            "submitted": submitted, "late": late,
            "results": [r.to_dict() for r in _results(sub, course)]}


def select(files: list[Path], names: list[str], forced_lab: str | None, students=None, labs=None):
    """The (file, name) pairs a regrade of `students` / `labs` covers (all when both are None)."""
    from .registry import lab_id_from_name

    want_students = set(students or ())
    want_labs = {str(x).zfill(2) for x in labs or ()}
    kept = []
    for f, n in zip(files, names):
        lab = forced_lab or lab_id_from_name(f.name)
        if want_students and n not in want_students:
            continue
        if want_labs and lab not in want_labs:
            continue
        kept.append((f, n))
    return kept


def grade(paths, out_csv: str | os.PathLike = "grades.csv", *, jobs: int = 2, timeout: float | None = None,
          profile: str = "ci", lab: str | None = None, progress: bool = True, course=None,
          students=None, labs=None) -> list[Submission]:
    """Grade every submission in `paths` (files or folders) into `out_csv` (+ .json report).

    jobs: submissions run at once, each in its own kernel; timeout: seconds per cell
    (default: the profile's); profile: the size profile the notebooks run at (ci keeps a
    class quick); lab: force the lab instead of reading it from each notebook.
    students / labs: grade only these students' / labs' submissions among `paths` and keep
    every other row of the gradebook already at `out_csv` (a regrade).
    """
    from tqdm.auto import tqdm

    from .course import load_course
    from .runner import DEFAULT_CELL_TIMEOUT

    course = course or load_course()
    files = expand(paths)
    if not files:
        raise FileNotFoundError(f"no notebooks found in {', '.join(map(str, paths))}")
    timeout = timeout or DEFAULT_CELL_TIMEOUT[profile]
    names = [student_name(f) for f in files]
    dupes = {n for n in names if names.count(n) > 1}
    names = [f"{n} ({f.parent.name}/{f.name})" if n in dupes else n for n, f in zip(names, files)]
    regrade = bool(students or labs)
    if regrade:
        chosen = select(files, names, lab, students, labs)
        if not chosen:
            what = " and ".join(x for x in (f"student(s) {', '.join(students)}" if students else "",
                                            f"lab(s) {', '.join(labs)}" if labs else "") if x)
            raise FileNotFoundError(f"no submission of {what} in {', '.join(map(str, paths))} "
                                    f"(students there: {', '.join(sorted(set(names)))})")
        files, names = [f for f, _ in chosen], [n for _, n in chosen]
    old = None
    if gradebook.json_path(out_csv).is_file():
        try:
            old = gradebook.load(out_csv)
        except GradebookError:
            if regrade:  # a partial regrade needs the rest of the book
                raise
    elif regrade:
        raise GradebookError(f"{gradebook.json_path(out_csv)}: no gradebook to regrade into; grade the whole "
                             f"class first (without --student / --only-lab)")

    start = time.perf_counter()
    reports: dict[int, dict] = {}
    bar = tqdm(total=len(files), desc="grading", unit="nb", disable=not progress, dynamic_ncols=True)
    with ProcessPoolExecutor(max_workers=max(1, int(jobs)), mp_context=get_context("spawn")) as pool:
        from ..models.cores import default_threads
        threads = max(1, default_threads() // max(1, int(jobs)))
        futures = {pool.submit(_grade_one, str(f), lab, profile, timeout, threads): i
                   for i, f in enumerate(files)}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                reports[i] = fut.result()
            except BaseException as e:  # noqa: BLE001 - a worker died: this submission only
                reports[i] = {"path": str(files[i]), "lab": lab, "status": "error", "results": [],
                              "cell_issues": [], "notes": [f"grader worker died: {type(e).__name__}: {e}"]}
            bar.set_postfix_str(f"{names[i]}: {reports[i].get('status')}", refresh=False)
            bar.update(1)
    bar.close()
    elapsed = time.perf_counter() - start

    submissions = []
    for i, f in enumerate(files):
        rep = reports[i]
        results = [Result.from_dict(d) for d in rep.get("results", [])]
        for r in results:  # course.toml decides what each exercise is worth
            r.max_points = course.points(r.lab, r.exercise, r.max_points)
        sub = Submission(str(f), names[i], rep.get("lab"), rep.get("status", "error"),
                         rep.get("seconds", 0.0), results, rep)
        sub.entry = _entry(sub, course)
        submissions.append(sub)
    entries = [s.entry for s in submissions]
    notes = gradebook.carry_marks(old, entries)
    book = gradebook.new_book(graded=len(submissions), seconds=round(elapsed, 2), jobs=jobs, profile=profile,
                              cell_timeout=timeout, course=str(course.path) if course.path else None)
    if old:
        book["salt"] = old.get("salt", book["salt"])  # the same anonymous codes as before
    if regrade and old:
        redone = {(e["student"], e.get("lab")) for e in entries}
        book["submissions"] = [e for e in old["submissions"] if (e["student"], e.get("lab")) not in redone]
    book["submissions"] += entries
    book["notes"] = notes
    gradebook.save(book, out_csv)
    return submissions


def summary_line(submissions: list[Submission], seconds: float) -> str:
    """graded, flagged, time: the line `synthkit grade` ends with."""
    flagged = sum(1 for s in submissions if s.run.get("flags"))
    broken = sum(1 for s in submissions if s.status != "ok")
    late = sum(1 for s in submissions if (s.entry.get("late") or {}).get("days"))
    return (f"graded {len(submissions)} submission(s) in {seconds:.1f} s: {flagged} flagged for patching code, "
            f"{broken} did not run cleanly, {late} late")


def summary_table(submissions: list[Submission]) -> str:
    """One line per student: points, and what did not pass."""
    lines = []
    width = max((len(s.student) for s in submissions), default=7)
    for s in submissions:
        got, best = gradebook.entry_total(s.entry) if s.entry else \
            (sum(r.points for r in s.results), sum(r.max_points for r in s.results))
        notes = ", ".join(f"{r.exercise}:{r.status}" for r in s.results if r.status != "pass")
        days = (s.entry.get("late") or {}).get("days") if s.entry else 0
        if days:
            fraction = s.entry["late"].get("fraction", 0.0)
            notes += f"  [{days} day(s) late: " + (f"-{fraction:.0%}]" if fraction else "no penalty]")
        if s.run.get("flags"):
            notes += f"  [flagged: {len(s.run['flags'])} patching line(s), see the CSV]"
        lines.append(f"{s.student.ljust(width)}  lab {s.lab or '?'}  {_num(got)}/{_num(best)}  "
                     f"{s.status:8s} {s.seconds:5.1f} s  {notes}")
    return "\n".join(lines)
