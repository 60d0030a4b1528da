"""What a check can conclude about a student's code, as data: the statuses, the `Result`
of one exercise, and the exceptions a check raises to say how the code did.

This is the bottom floor of the grading package: it imports nothing from it. The
exercises produce these outcomes, a view shows them (``view``), a store records them
(``store``), and the grader collects them into a CSV (``grade``), as learntools keeps its
`Problem` apart from `ProblemView` and its tracking.
"""
from __future__ import annotations

import html
import signal
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

# What a result can say. The first six come from checks; the last four from the grader.
PASS, FAIL, ERROR, SLOW, MISSING, SUBMITTED = "pass", "fail", "error", "slow", "missing", "submitted"
TIMEOUT, CRASHED, INVALID, NOT_RUN = "timeout", "crashed", "invalid", "not run"
ESSAY_PLACEHOLDER = "(Write your answer here, in a few sentences.)"  # what `assign` leaves in an essay
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"  # nbgrader's markers
STATUSES = (PASS, FAIL, ERROR, SLOW, MISSING, SUBMITTED, TIMEOUT, CRASHED, INVALID, NOT_RUN)


@dataclass
class Result:
    """The outcome of one exercise's check."""

    lab: str
    exercise: str
    kind: str  # "code" or "essay"
    status: str
    message: str
    max_points: float = 1.0
    seconds: float = 0.0
    answer: str | None = None  # an essay's text
    slip: str | None = None  # what a failure has in common with the same mistake elsewhere (``checks.slip_of``)

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @property
    def points(self) -> float:
        """Points earned as far as a machine can tell: full for a pass, else none (an
        essay waits for its instructor)."""
        return self.max_points if self.status == PASS else 0.0

    def to_dict(self) -> dict:
        return asdict(self) | {"points": self.points}

    @classmethod
    def from_dict(cls, d: dict) -> "Result":
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names})

    # --- how a result shows itself -------------------------------------------------
    _MARKS = {PASS: ("✓", "#1a7f37"), SUBMITTED: ("✎", "#0550ae")}

    def headline(self) -> str:
        mark, _ = self._MARKS.get(self.status, ("✗", "#cf222e"))
        word = {PASS: "Correct", SUBMITTED: "Submitted", MISSING: "Not done yet", SLOW: "Too slow",
                ERROR: "Your code raised an error", FAIL: "Not yet"}.get(self.status, self.status.capitalize())
        return f"{mark} {self.exercise} — {word}"

    def __str__(self) -> str:
        return f"{self.headline()}: {self.message}"

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        _, colour = self._MARKS.get(self.status, ("✗", "#cf222e"))
        return (f'<div style="border-left:4px solid {colour};padding:2px 8px">'
                f'<b style="color:{colour}">{html.escape(self.headline())}</b><br>'
                f'<span style="white-space:pre-wrap">{html.escape(self.message)}</span></div>')


# --- what a check raises to say how the student's code did -----------------------------
class CheckOutcome(Exception):
    status = FAIL


class Failed(CheckOutcome):
    """A wrong value or a wrong type."""
    status = FAIL


class Raised(CheckOutcome):
    """The student's code raised."""
    status = ERROR


class TooSlow(CheckOutcome):
    status = SLOW


class Missing(CheckOutcome):
    """The object is not there, or it is still the stub."""
    status = MISSING


class Stopped(CheckOutcome):
    """The process running the student's code died or had to be killed during a call."""
    status = CRASHED


class _Alarm(BaseException):
    """Raised by the timer inside the student's code (a BaseException, so a bare
    ``except Exception`` in their code does not swallow it)."""


@contextmanager
def time_limit(seconds: float | None):
    """Stop the block after `seconds` with TooSlow, where the platform allows it (a
    SIGALRM timer, main thread only; elsewhere the block runs unbounded)."""
    usable = (seconds and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def _ring(signum, frame):
        raise _Alarm()

    previous = signal.signal(signal.SIGALRM, _ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def show_input(value: Any, limit: int = 70) -> str:
    """A short, readable rendering of an input for a feedback message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "…" + text[-4:]

