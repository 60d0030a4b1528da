"""The course's sub-commands: assign, run, grade, progress.

The main ``synthkit`` command adds them with ``register(subparsers)``; each parser
sets ``func(args) -> exit code``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _profile_arg(p: argparse.ArgumentParser, default: str | None, what: str) -> None:
    from ..profiles import PROFILES

    p.add_argument("--profile", choices=PROFILES, default=default,
                   help=f"size profile the notebook runs at ({what})")


def register(subparsers) -> None:
    p = subparsers.add_parser("assign", help="regenerate labs/ (student copies) from solutions/",
                              description="Make the student notebooks in labs/ from the solution notebooks "
                                          "in solutions/: solution blocks become stubs, outputs are cleared.")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if any lab is stale")
    p.add_argument("--solutions", default="solutions", help="folder of solution notebooks (default: solutions)")
    p.add_argument("--labs", default="labs", help="folder of student notebooks (default: labs)")
    p.set_defaults(func=cmd_assign)

    p = subparsers.add_parser("run", help="run a notebook headless and show its check results",
                              description="Execute a notebook in a fresh kernel, then run its lab's checks.")
    p.add_argument("notebook", help="the .ipynb to run")
    _profile_arg(p, None, "default: $SYNTHKIT_PROFILE, else this machine's")
    p.add_argument("--timeout", type=float, default=None, help="seconds per cell (default: by profile)")
    p.add_argument("--output", default=None, help="also save the executed notebook here")
    p.add_argument("--no-checks", action="store_true", help="only execute, run no checks")
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("grade", help="grade submitted notebooks into a CSV gradebook",
                              description="Run each submission in a fresh kernel, then the installed checks in "
                                          "the grader's own process, calling the student's functions in that "
                                          "kernel; one CSV row per student x exercise (with a 'flags' column "
                                          "for code that patches imported modules) and a JSON report beside it.")
    p.add_argument("submissions", nargs="*", help="notebooks, or folders of them (none: only fold in --marks)")
    p.add_argument("--out", default="grades.csv", help="CSV to write (default: grades.csv; report: .json)")
    p.add_argument("--jobs", type=int, default=2, help="submissions run at once (default: 2)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per cell (default: 120 under ci)")
    p.add_argument("--lab", default=None, help="grade as this lab (default: from each notebook)")
    p.add_argument("--student", action="append", default=None, metavar="NAME",
                   help="regrade only this student (repeatable); the rest of the gradebook is kept")
    p.add_argument("--only-lab", action="append", default=None, metavar="NN",
                   help="regrade only this lab's submissions (repeatable); the rest of the gradebook is kept")
    p.add_argument("--marks", default=None, metavar="CSV",
                   help="fold essay marks (student, question, mark, comment; see `synthkit essays`) into the gradebook")
    p.add_argument("--canvas", default=None, metavar="CSV", help="also write Canvas's gradebook import file")
    p.add_argument("--roster", default=None, metavar="CSV",
                   help="Canvas's gradebook export: names, SIS ids, sections and assignment columns for --canvas")
    p.add_argument("--wide", default=None, metavar="CSV",
                   help="also write a wide CSV: one row per student, a column per lab and exercise")
    _profile_arg(p, "ci", "default: ci, so a class grades quickly")
    p.set_defaults(func=cmd_grade)

    p = subparsers.add_parser("progress", help="your recorded checks and quiz answers, per lab")
    p.add_argument("--lab", default=None, help="only this lab (e.g. 00)")
    p.set_defaults(func=cmd_progress)


def cmd_assign(args) -> int:
    from ..grading.assign import AssignError, assign, problems

    try:
        states = assign(args.solutions, args.labs, check=args.check)
    except AssignError as e:
        print(f"synthkit assign: {e}", file=sys.stderr)
        return 2
    for s in states:
        print(s)
    bad = problems(states)
    if args.check and bad:
        print(f"{len(bad)} lab(s) out of date: run `synthkit assign` and commit labs/", file=sys.stderr)
        return 1
    return 0


def cmd_run(args) -> int:
    from ..grading.runner import format_run, run_notebook

    path = Path(args.notebook)
    if not path.exists():
        print(f"synthkit run: no such notebook: {path}", file=sys.stderr)
        return 2
    result = run_notebook(path, profile=args.profile, timeout=args.timeout, checks=not args.no_checks)
    print(format_run(result))
    if args.output and result.notebook is not None:
        import nbformat
        nbformat.write(result.notebook, args.output)
        print(f"executed notebook written to {args.output}")
    return 0 if result.status == "ok" and (args.no_checks or result.all_passed) else 1


def cmd_grade(args) -> int:
    import time

    from ..grading import gradebook, lms
    from ..grading.course import CourseError, load_course
    from ..grading.grade import grade, summary_line, summary_table

    if not args.submissions and not args.marks:
        print("synthkit grade: give the submissions to grade (or --marks to fold marks into --out)", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        course = load_course()
        if args.marks and (not args.submissions or gradebook.json_path(args.out).is_file()):
            gradebook.read_marks(gradebook.load(args.out), args.marks)  # a bad file stops here, before grading
        subs = []
        if args.submissions:
            subs = grade(args.submissions, args.out, jobs=args.jobs, timeout=args.timeout, profile=args.profile,
                         lab=args.lab, course=course, students=args.student, labs=args.only_lab)
        book = gradebook.load(args.out)
        if args.marks:
            book, count = gradebook.merge_marks(book, args.marks)
            gradebook.save(book, args.out)
            print(f"{count} essay mark(s) from {args.marks} folded into {args.out}")
        if args.canvas:
            print(f"Canvas import file -> {lms.write_canvas(book, args.canvas, args.roster)}")
        if args.wide:
            print(f"wide CSV -> {lms.write_wide(book, args.wide)}")
    except (FileNotFoundError, CourseError, gradebook.GradebookError) as e:
        print(f"synthkit grade: {e}", file=sys.stderr)
        return 2
    if subs:
        print(summary_table(subs))
        for note in book.get("notes", []):
            print(f"note: {note}")
        print(f"\n{len(subs)} submission(s) graded -> {args.out} (details: {gradebook.json_path(args.out)})")
        print(summary_line(subs, time.perf_counter() - start))
    return 0


def cmd_progress(args) -> int:
    from ..grading.progress import show

    show(args.lab)
    return 0


def main(argv=None) -> int:
    """A stand-alone entry point (`python -m synthkit.cli.course ...`)."""
    parser = argparse.ArgumentParser(prog="synthkit")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
