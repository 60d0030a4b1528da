"""Grade a class: many submitted notebooks into one CSV gradebook.

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
"""
from __future__ import annotations

import csv
import json
import os
import re
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from .exercises import Result

CSV_FIELDS = ("student", "lab", "exercise", "points", "max_points", "status", "message", "flags", "submission")


@dataclass
class Submission:
    path: str
    student: str
    lab: str | None = None
    status: str = ""
    seconds: float = 0.0
    results: list[Result] = field(default_factory=list)
    run: dict = field(default_factory=dict)


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
            result = run_notebook(path, lab=lab, profile=profile, timeout=timeout, cwd=work, env=env)
        return result.to_dict()
    except BaseException as e:  # noqa: BLE001 - one submission never stops the class
        return {"path": path, "lab": lab, "status": "error", "seconds": time.perf_counter() - start,
                "results": [], "cell_issues": [], "notes": [f"grader error: {type(e).__name__}: {e}"]}


def _rows(sub: Submission, course) -> list[dict]:
    from .registry import lab_exercises

    rows = []
    flags = "; ".join(sub.run.get("flags", []))
    results = sub.results
    if not results:  # nothing came back: still one row, so the student shows in the book
        note = "; ".join(sub.run.get("notes", [])) or f"not graded ({sub.status})"
        try:
            exercises = lab_exercises(sub.lab) if sub.lab else []
        except ImportError:
            exercises = []
        results = [Result(sub.lab or "?", ex.name, ex.kind, "not run", note, course.points(sub.lab, ex.name, ex.points))
                   for ex in exercises] or \
                  [Result(sub.lab or "?", "-", "code", sub.status or "not run", note, 0.0)]
    for r in results:
        message = r.message
        if r.kind == "essay" and r.answer:
            message = f"{r.message}\n---\n{r.answer}"
        rows.append({"student": sub.student, "lab": r.lab, "exercise": r.exercise,
                     "points": _num(r.points), "max_points": _num(r.max_points), "status": r.status,
                     "message": message, "flags": flags, "submission": sub.path})
    return rows


def _num(x: float):
    return int(x) if float(x).is_integer() else round(x, 2)


def grade(paths, out_csv: str | os.PathLike = "grades.csv", *, jobs: int = 2, timeout: float | None = None,
          profile: str = "ci", lab: str | None = None, progress: bool = True, course=None) -> list[Submission]:
    """Grade every submission in `paths` (files or folders) into `out_csv` (+ .json report).

    jobs: submissions run at once, each in its own kernel; timeout: seconds per cell
    (default: the profile's); profile: the size profile the notebooks run at (ci keeps a
    class quick); lab: force the lab instead of reading it from each notebook.
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
        submissions.append(Submission(str(f), names[i], rep.get("lab"), rep.get("status", "error"),
                                      rep.get("seconds", 0.0), results, rep))
    rows = [row for sub in submissions for row in _rows(sub, course)]
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(out_csv, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    report = {"graded": len(submissions), "seconds": round(elapsed, 2), "jobs": jobs, "profile": profile,
              "cell_timeout": timeout, "course": str(course.path) if course.path else None,
              "submissions": [{"student": s.student, **s.run,
                               "results": [r.to_dict() for r in s.results]} for s in submissions]}
    out_csv.with_suffix(".json").write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str),
                                            encoding="utf-8")
    return submissions


def summary_table(submissions: list[Submission]) -> str:
    """One line per student: points, and what did not pass."""
    lines = []
    width = max((len(s.student) for s in submissions), default=7)
    for s in submissions:
        got = sum(r.points for r in s.results)
        best = sum(r.max_points for r in s.results)
        notes = ", ".join(f"{r.exercise}:{r.status}" for r in s.results if r.status != "pass")
        if s.run.get("flags"):
            notes += f"  [flagged: {len(s.run['flags'])} patching line(s), see the CSV]"
        lines.append(f"{s.student.ljust(width)}  lab {s.lab or '?'}  {_num(got)}/{_num(best)}  "
                     f"{s.status:8s} {s.seconds:5.1f} s  {notes}")
    return "\n".join(lines)
