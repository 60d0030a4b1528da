"""The instructor's term after grading: report, feedback, essays, marks, export.

    synthkit report grades.json --out class.html       the whole class on one page
    synthkit feedback grades.json --out feedback/      one page per student and lab
    synthkit essays grades.json --out essays/          answers to mark, and marks.csv to fill in
    synthkit marks merge essays/marks.csv --into grades.json
    synthkit export grades.json --canvas canvas.csv --wide wide.csv

Each reads the gradebook `synthkit grade` wrote (its .json, or the .csv beside it). A
gradebook from another version, or a marks file that does not fit, stops with one line
and changes nothing.
"""
from __future__ import annotations

import sys

GRADEBOOK_HELP = "the gradebook synthkit grade wrote (grades.json, or grades.csv beside it)"


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="the class report: one self-contained HTML page",
                              description="Score distributions per lab and exercise, pass rates, the most common "
                                          "mistakes per exercise, late submissions and grading flags, on one page "
                                          "with inline plots (opens offline).")
    p.add_argument("gradebook", help=GRADEBOOK_HELP)
    p.add_argument("--out", default="class.html", help="HTML file to write (default: class.html)")
    p.add_argument("--title", default="", help="the page's title (default: the course's title)")
    p.set_defaults(func=cmd_report)

    p = subparsers.add_parser("feedback", help="one HTML feedback page per student and lab",
                              description="Each student's own results, the checker's messages, the hint that "
                                          "applies, essays with their marks; never a solution or another student.")
    p.add_argument("gradebook", help=GRADEBOOK_HELP)
    p.add_argument("--out", default="feedback", help="folder to write (default: feedback/; pages in LAB/STUDENT.html)")
    p.set_defaults(func=cmd_feedback)

    p = subparsers.add_parser("essays", help="essay answers to mark, one page per question, and marks.csv",
                              description="Every answer to each essay question on one page, under anonymous codes "
                                          "in a shuffled order (--names shows names), and a marks.csv to fill in "
                                          "(student, question, mark, comment).")
    p.add_argument("gradebook", help=GRADEBOOK_HELP)
    p.add_argument("--out", default="essays", help="folder to write (default: essays/)")
    p.add_argument("--names", action="store_true", help="show students' names instead of anonymous codes")
    p.add_argument("--force", action="store_true", help="overwrite a marks.csv holding marks not merged yet")
    p.set_defaults(func=cmd_essays)

    p = subparsers.add_parser("marks", help="fold a filled-in marks.csv into the gradebook")
    sub = p.add_subparsers(dest="marks_command", metavar="merge", required=True)
    m = sub.add_parser("merge", help="fold essay marks into the gradebook (all or nothing)")
    m.add_argument("marks", help="the marks CSV: student, question, mark, comment")
    m.add_argument("--into", default="grades.json", help=GRADEBOOK_HELP + " (default: grades.json)")
    m.set_defaults(func=cmd_marks_merge)

    p = subparsers.add_parser("export", help="the gradebook for an LMS: Canvas's import file, a wide CSV")
    p.add_argument("gradebook", help=GRADEBOOK_HELP)
    p.add_argument("--canvas", default=None, metavar="CSV", help="Canvas's gradebook import file")
    p.add_argument("--roster", default=None, metavar="CSV",
                   help="Canvas's gradebook export: names, SIS ids, sections and assignment columns for --canvas")
    p.add_argument("--wide", default=None, metavar="CSV", help="one row per student, a column per lab and exercise")
    p.set_defaults(func=cmd_export)


def _fail(command: str, e: Exception) -> int:
    print(f"synthkit {command}: {e}", file=sys.stderr)
    return 2


def cmd_report(args) -> int:
    from ..grading import gradebook
    from ..grading.course import CourseError, load_course
    from ..grading.report import write_report

    try:
        book = gradebook.load(args.gradebook)
        title = args.title
        if not title:
            try:
                title = load_course().title
            except CourseError:
                title = ""
        out = write_report(book, args.out, source=str(gradebook.json_path(args.gradebook)),
                           title=f"{title}: class report" if title else "Class report")
    except gradebook.GradebookError as e:
        return _fail("report", e)
    print(f"class report -> {out}")
    return 0


def cmd_feedback(args) -> int:
    from ..grading import gradebook
    from ..grading.feedback import write_feedback

    try:
        pages = write_feedback(gradebook.load(args.gradebook), args.out)
    except gradebook.GradebookError as e:
        return _fail("feedback", e)
    print(f"{len(pages)} feedback page(s) -> {args.out}/")
    return 0


def cmd_essays(args) -> int:
    from ..grading import gradebook
    from ..grading.essays import write_essays

    try:
        pages, marks = write_essays(gradebook.load(args.gradebook), args.out, names=args.names, force=args.force)
    except gradebook.GradebookError as e:
        return _fail("essays", e)
    print(f"{len(pages)} essay page(s) -> {args.out}/; fill in {marks}, then "
          f"`synthkit marks merge {marks} --into {gradebook.json_path(args.gradebook)}`")
    return 0


def cmd_marks_merge(args) -> int:
    from ..grading import gradebook

    try:
        book, count = gradebook.merge_marks(gradebook.load(args.into), args.marks)
        gradebook.save(book, args.into)
    except gradebook.GradebookError as e:
        return _fail("marks merge", e)
    print(f"{count} essay mark(s) from {args.marks} folded into {gradebook.csv_path(args.into)} "
          f"and {gradebook.json_path(args.into)}")
    return 0


def cmd_export(args) -> int:
    from ..grading import gradebook, lms

    if not args.canvas and not args.wide:
        return _fail("export", ValueError("say what to write: --canvas CSV and/or --wide CSV"))
    try:
        book = gradebook.load(args.gradebook)
        if args.canvas:
            print(f"Canvas import file -> {lms.write_canvas(book, args.canvas, args.roster)}")
        if args.wide:
            print(f"wide CSV -> {lms.write_wide(book, args.wide)}")
    except gradebook.GradebookError as e:
        return _fail("export", e)
    return 0
