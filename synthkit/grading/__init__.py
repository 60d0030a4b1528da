"""Grading: exercises and checks, concept-check quizzes, the progress store, and the
instructor's tools (assign, run, grade).

For a lab notebook::

    from synthkit.labs.lab00 import ex1, essay1, quiz
    ex1.check(); ex1.hint(); ex1.solution()
    essay1.submit(essay1_answer)
    quiz.show()
    from synthkit.grading import progress; progress.show()

For an instructor (or `synthkit assign | run | grade | progress`)::

    from synthkit.grading.assign import assign        # solutions/ -> labs/
    from synthkit.grading.runner import run_notebook  # one notebook, headless, checked
    from synthkit.grading.grade import grade          # a class into a CSV

Submodules are imported on first use, so importing this package costs nothing.
"""
from __future__ import annotations

import importlib

_SUBMODULES = ("assign", "checks", "cli", "contract", "course", "exercises", "grade", "kernel", "progress",
               "quiz", "registry", "runner", "sandbox", "scan")
__all__ = list(_SUBMODULES)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
