"""Exercises with immediate feedback, in the style of Kaggle's learntools.

A lab module (``synthkit.labs.lab00``, ...) defines exercise objects; a notebook
imports them and calls::

    ex1.check()      # run the checks on the objects you defined in this notebook
    ex1.hint()       # a nudge (ex1.hint(2) for the next one)
    ex1.solution()   # the reference code

``check()`` looks up the student's objects (a function ``build_chat_prompt``, say) in
the namespace of the code that calls it, which in a notebook is the notebook's own.
Checks test properties on fresh random inputs, so a hard-coded answer does not pass, and
a failing check says which input failed and how (wrong type, wrong value, too slow,
raised) but never what the answer should have been.

Essays (``EssayExercise``) are recorded as submitted for an instructor to read; they
are never marked correct by a machine.

``synthkit grade`` runs these checks in its own process, never in the student's kernel:
the student's functions are called there through a channel that carries plain data
only (see ``sandbox``), so editing or patching anything in a notebook changes nothing
in the report.

An exercise that asks for a function synthkit already has refuses the library's own
(``refuses=("synthkit.metrics.distinct_n",)``): see ``checks`` for how that is detected.
"""
from __future__ import annotations

import os
import random
import sys
import textwrap
import time
from typing import Callable

from . import store
from .references import reference_code
from .checks import noting_slips, refusal_message, refused_keys, refusing, slip_of
from .outcomes import (BEGIN_SOLUTION, CRASHED, END_SOLUTION, ERROR, ESSAY_PLACEHOLDER, FAIL,  # noqa: F401
                       INVALID, MISSING, NOT_RUN, PASS, SLOW, STATUSES, SUBMITTED, TIMEOUT, CheckOutcome,
                       Failed, Missing, Raised, Result, Stopped, TooSlow, _a, _Alarm, show_input, time_limit)
from .view import Note, in_notebook, say, show_result  # noqa: F401  (Note, in_notebook: for the labs)

class Checker:
    """What a check function gets: the student's namespace, a fresh random generator,
    and helpers that turn what the student's code does into clear feedback."""

    def __init__(self, exercise: "CodingExercise", namespace: dict, seed: str | int | None = None):
        self.exercise = exercise
        self.namespace = namespace
        # fresh draws in a notebook; under `synthkit grade` a seed from the submission's bytes,
        # so grading the same file again gives the same rows
        self.rng = random.Random(int.from_bytes(os.urandom(8), "little") if seed is None
                                 else f"{seed}:{exercise.lab}:{exercise.name}")

    def get(self, name: str, *, callable_: bool = False):
        if name not in self.namespace:
            raise Missing(f"`{name}` is not defined. Run the cell that defines it (was it renamed or "
                          f"deleted?), then check again.")
        obj = self.namespace[name]
        if callable_ and not callable(obj):
            raise Failed(f"`{name}` should be a function, but it is {_a(type(obj).__name__)}.")
        return obj

    def call(self, fn: Callable, *args, label: str | None = None, **kwargs):
        """Call the student's function, turning what can go wrong into feedback.

        While it runs, the library functions the exercise refuses are watched for (see
        ``checks``). A function that lives in another process (``sandbox.RemoteFunction``,
        what ``synthkit grade`` hands the checks) is called there, with the same rules.
        """
        label = label or f"{getattr(fn, '__name__', 'your function')}(...)"
        limit = self.exercise.time_limit
        keys = self.exercise.refused_keys()
        remote = getattr(fn, "remote_call", None)
        if remote is not None:
            start = time.perf_counter()
            try:
                return remote(args, kwargs, limit=limit, refuses=keys, label=label)
            finally:
                self.elapsed = time.perf_counter() - start
        start = time.perf_counter()
        hits: list = []
        try:
            with refusing(keys, fn) as hits, time_limit(limit):
                value = fn(*args, **kwargs)
            if hits:
                raise Failed(refusal_message(label, hits))
            return value
        except _Alarm:
            raise TooSlow(f"{label} was still running after {limit:g} s; it should take well under a "
                          f"second. Look for a loop that never ends or work repeated inside a loop.") from None
        except NotImplementedError as e:
            raise Missing(f"{label} raised NotImplementedError ({e or 'no message'}): replace the "
                          f"`raise NotImplementedError(...)` line with your code, run that cell, then "
                          f"check again.") from None
        except CheckOutcome:
            raise
        except Exception as e:
            if hits:
                raise Failed(refusal_message(label, hits)) from None
            where = _student_frame(e)
            raise Raised(f"{label} raised {type(e).__name__}: {e}{where}") from None
        finally:
            self.elapsed = time.perf_counter() - start

    def expect_type(self, value, types, label: str):
        if not isinstance(value, types):
            names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
            raise Failed(f"{label} returned {_a(type(value).__name__)} ({show_input(value, 50)}); "
                         f"it should return {_a(names)}.")
        return value

    def fail(self, message: str):
        raise Failed(message)


def _student_frame(e: BaseException) -> str:
    """' (at line N of your cell)' for the innermost frame that is not the library's."""
    tb = e.__traceback__
    line = None
    while tb is not None:
        fname = tb.tb_frame.f_code.co_filename
        if "synthkit" not in fname and "site-packages" not in fname:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" (line {line} of the cell that defines it)" if line else ""


# --- the exercises ---------------------------------------------------------------------
class Exercise:
    """Something a student does in a lab that the course records."""

    kind = "?"

    def __init__(self, name: str, lab: str, *, title: str = "", points: float = 1.0,
                 hints: list[str] | str = (), solution: str = ""):
        self.name, self.lab, self.title, self.points = name, lab, title, float(points)
        self.hints = [hints] if isinstance(hints, str) else list(hints)
        self._solution = textwrap.dedent(solution).strip("\n")

    def grade(self, namespace: dict, seed: str | int | None = None) -> Result:
        raise NotImplementedError

    def check(self, namespace: dict | None = None) -> None:
        """Check your work: shows the result and records it in your local progress."""
        ns = namespace if namespace is not None else sys._getframe(1).f_globals
        result = self.grade(ns)
        show_result(result)
        _record(result)

    def hint(self, n: int = 1) -> None:
        if not self.hints:
            say(f"There is no hint for {self.name}; read the cell above it again.")
            return
        n = max(1, int(n))
        if n > len(self.hints):
            last = "one hint" if len(self.hints) == 1 else f"{len(self.hints)} hints"
            say(f"{self.name} has {last}, and you have seen them all: try {self.name}.solution() "
                 f"if you are still stuck.", colour="#9a6700")
            return
        more = f"\n(Another hint: {self.name}.hint({n + 1}))" if n < len(self.hints) else ""
        say(f"Hint {n} for {self.name}: {self.hints[n - 1]}{more}", colour="#9a6700")

    def solution(self) -> None:
        code = self.solution_code
        if not code:
            say(f"{self.name} has no reference solution to show.")
            return
        say(f"A solution for {self.name}:\n\n{code}", colour="#0550ae", code=True)

    @property
    def solution_code(self) -> str:
        """The `solution=` given, else (for a coding exercise of synthkit's own labs) the code
        cell of the solution notebook, as `synthkit assign` copied it into package data."""
        if self._solution or self.kind != "code":
            return self._solution
        return reference_code(self.lab, self.name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.lab}/{self.name}: {self.title}>"


class CodingExercise(Exercise):
    """A piece of code the student writes, checked by ``checker(c: Checker)``.

    ``names`` are the objects it reads from the student's namespace. The checker raises
    ``Failed``/``Missing`` (usually through ``c.get``, ``c.call``, ``c.expect_type`` and
    ``c.fail``) or returns normally for a pass, optionally with a message to show.

    ``refuses``: dotted names of library functions the student is asked to write
    themselves (``"synthkit.metrics.distinct_n"``); a call that runs any of them fails.
    Call the student's functions only through ``c.call``: that is where the time limit,
    the refusals and, under ``synthkit grade``, the trip to the student's process happen.
    """

    kind = "code"

    def __init__(self, name: str, lab: str, *, names: tuple[str, ...] | str, checker: Callable,
                 time_limit: float = 10.0, success: str = "", refuses: tuple[str, ...] | str = (), **kw):
        super().__init__(name, lab, **kw)
        self.names = (names,) if isinstance(names, str) else tuple(names)
        self.checker = checker
        self.time_limit = time_limit
        self.success = success
        self.refuses = (refuses,) if isinstance(refuses, str) else tuple(refuses)
        self._refused_keys: list | None = None

    def refused_keys(self) -> list:
        """The refused functions as plain keys (resolved on first use, then kept)."""
        if self._refused_keys is None:
            self._refused_keys = refused_keys(self.refuses)
        return self._refused_keys

    def grade(self, namespace: dict, seed: str | int | None = None) -> Result:
        """The check's result; `seed` fixes its random draws (the grader passes one)."""
        start = time.perf_counter()
        status, message = PASS, ""
        with noting_slips() as named:
            try:
                extra = self.checker(Checker(self, namespace, seed))
                message = extra or self.success or "all checks passed."
            except CheckOutcome as e:
                status, message = e.status, str(e)
            except _Alarm:  # the checker's own work ran out of time
                status, message = SLOW, f"the check ran past {self.time_limit:g} s."
            except Exception as e:  # a check that cannot run is reported, never a pass
                status = ERROR
                message = f"checking your code raised {type(e).__name__}: {e}{_student_frame(e)}"
        return Result(self.lab, self.name, self.kind, status, message, self.points,
                      round(time.perf_counter() - start, 3),
                      slip=None if status == PASS else slip_of(message, named))


class EssayExercise(Exercise):
    """A written answer, recorded as submitted for an instructor to read.

    In the notebook::

        essay1_answer = \"\"\"my answer\"\"\"
        essay1.submit(essay1_answer)

    The grader reads the variable (``essay1_answer``) from the executed notebook.
    ``solution()`` shows what a strong answer touches on.
    """

    kind = "essay"

    def __init__(self, name: str, lab: str, *, prompt: str, variable: str | None = None, **kw):
        super().__init__(name, lab, **kw)
        self.prompt = textwrap.dedent(prompt).strip()
        self.variable = variable or f"{name}_answer"

    def grade(self, namespace: dict, seed: str | int | None = None) -> Result:
        answer = namespace.get(self.variable)
        if answer is None:
            return Result(self.lab, self.name, self.kind, MISSING,
                          f"no answer: `{self.variable}` is not defined.", self.points)
        if not isinstance(answer, str):
            return Result(self.lab, self.name, self.kind, MISSING,
                          f"`{self.variable}` should be a string of prose, not a {type(answer).__name__}.",
                          self.points)
        text = "\n".join(line for line in answer.replace(ESSAY_PLACEHOLDER, "").splitlines()
                         if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION)).strip()
        if not text:
            return Result(self.lab, self.name, self.kind, MISSING,
                          f"no answer yet: `{self.variable}` is empty.", self.points, answer="")
        words = len(text.split())
        return Result(self.lab, self.name, self.kind, SUBMITTED,
                      f"{words} words, recorded for your instructor to read (essays are not auto-marked).",
                      self.points, answer=text)

    def submit(self, answer: str | None = None, namespace: dict | None = None) -> None:
        """Record your answer (it is also kept in `<name>_answer`, where the grader reads it)."""
        ns = namespace if namespace is not None else sys._getframe(1).f_globals
        if answer is not None:
            ns[self.variable] = answer
        result = self.grade(ns)
        show_result(result)
        _record(result)

    def check(self, namespace: dict | None = None) -> None:
        self.submit(namespace=namespace if namespace is not None else sys._getframe(1).f_globals)

    def question(self) -> None:
        say(f"{self.name}: {self.prompt}")


# --- grading a whole lab ---------------------------------------------------------------
def grade_all(exercises: list[Exercise], namespace: dict, seed: str | int | None = None) -> list[Result]:
    """Every exercise's result against one namespace; one failure never stops the rest.
    `seed`: the checks' random draws are fixed by it (else fresh)."""
    results = []
    for ex in exercises:
        try:
            results.append(ex.grade(namespace) if seed is None else ex.grade(namespace, seed))
        except BaseException as e:  # noqa: BLE001 - a grader must report, not stop
            if isinstance(e, KeyboardInterrupt):
                raise
            results.append(Result(ex.lab, ex.name, ex.kind, ERROR,
                                  f"the check could not run: {type(e).__name__}: {e}", ex.points))
    return results


def _record(result: Result) -> None:
    store.record(result.lab, result.exercise, kind=result.kind, status=result.status,
                 message=result.message, answer=result.answer)
