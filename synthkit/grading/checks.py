"""What every lab's checks share: refusing the library, comparing with a reference, and
naming the slip a wrong answer most likely comes from.

**Refusing the library.** An exercise that asks the student to write a function synthkit
already has (``distinct_n``, ``lcs_length``, ...) declares it::

    ex4 = CodingExercise("ex4", LAB, names="distinct_n", checker=_check_distinct_n,
                         refuses=("synthkit.metrics.distinct_n",), ...)

While a check calls the student's function (``Checker.call``), every Python frame that
starts is looked at, in this thread and in threads the call starts through
``threading``; if the code of a refused function runs, the check fails with a message
that says the exercise asks for the student's own code. Detection is by *what runs*,
never by names, so every route is caught: importing it under another name, binding it to
a variable, a lambda or ``def`` that calls it, ``functools.partial``/``wraps``,
``importlib.import_module`` with a computed name, or a library function that calls it.
List a function's private helpers too when using them alone would do the exercise
(``synthkit.self_instruct._lcs_with_masks``). Not seen: code run in another process,
threads started with the low-level ``_thread`` module, and a copy of the library's source
pasted and re-compiled (that is the student's code as far as Python can tell).

**Comparing.** ``first_difference`` and ``where_strings_differ`` locate where a string
differs without giving the answer away; ``is_int``/``is_number``/``close`` are the number
checks; ``name_the_slip`` picks the advice for the first known wrong reading that the
student's value matches.

**Naming the slip for a whole class.** ``slip_of`` turns a failure message into what it has
in common with the same mistake made by another student on other random inputs: the advice
``name_the_slip`` picked when the message carries it, else the message with its inputs
(quoted strings, numbers, argument lists) replaced by placeholders. ``synthkit report``
counts students per slip.
"""
from __future__ import annotations

import contextlib
import contextvars
import importlib
import math
import numbers
import os
import re
import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterable

from .outcomes import show_input

# --- refusing the library ---------------------------------------------------------------
RefusedKey = tuple  # (co_name, co_firstlineno, real path of co_filename, dotted name)


def resolve(dotted: str):
    """The object a dotted name points at ("synthkit.metrics.distinct_n"), importing the
    longest module prefix; ImportError/AttributeError name the part that is wrong."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"cannot import any module of {dotted!r}")


def _function_code(obj):
    """The code object behind a function, method, wrapped function or partial."""
    seen = 0
    while seen < 20:
        seen += 1
        if hasattr(obj, "__code__"):
            return obj.__code__
        if hasattr(obj, "__wrapped__"):
            obj = obj.__wrapped__
        elif hasattr(obj, "__func__"):
            obj = obj.__func__
        elif hasattr(obj, "func"):  # functools.partial
            obj = obj.func
        else:
            break
    raise TypeError(f"{obj!r} is not a Python function, so its running cannot be seen")


def refused_keys(dotted_names: Iterable[str]) -> list[RefusedKey]:
    """What to look for while the student's code runs, one key per refused function.

    Keys are plain data (name, first line, file), so the process that runs the student's
    code can use them even when the student has rebound the module attribute.
    """
    keys = []
    for dotted in dotted_names:
        code = _function_code(resolve(dotted))
        keys.append((code.co_name, code.co_firstlineno, os.path.realpath(code.co_filename), dotted))
    return keys


class _Watch:
    """A trace function that notes when a refused function's code starts running."""

    def __init__(self, keys: Iterable[RefusedKey]):
        self.by_line: dict[int, list[RefusedKey]] = {}
        for key in keys:
            self.by_line.setdefault(key[1], []).append(key)
        self.hits: list[str] = []
        self._real: dict[str, str] = {}

    def __call__(self, frame, event, arg):  # called for each new frame only ('call')
        self.note(frame.f_code)
        return None  # no line-by-line tracing: the cost is one call per new frame

    def note(self, code) -> None:
        """Record `code` if it is a refused function's."""
        candidates = self.by_line.get(code.co_firstlineno)
        if candidates:
            path = self._real.get(code.co_filename)
            if path is None:
                path = self._real.setdefault(code.co_filename, os.path.realpath(code.co_filename))
            for name, _, file, dotted in candidates:
                if code.co_name == name and path == file and dotted not in self.hits:
                    self.hits.append(dotted)


@contextmanager
def refusing(keys: Iterable[RefusedKey], fn: Any = None):
    """Watch the block for refused functions; yields the list of those that ran.

    `fn`, the function about to be called, counts as run when it is a refused one.
    Uses ``sys.settrace`` (and ``threading.settrace`` for threads started meanwhile); the
    previous trace functions (a debugger's, coverage's) are put back afterwards.
    """
    keys = list(keys)
    if not keys:
        yield []
        return
    watch = _Watch(keys)
    if fn is not None:  # `fn` *is* a refused function (bound, partial, wrapped): a call that
        # fails before its first line runs (a keyword the library's version lacks) still counts
        with contextlib.suppress(TypeError, AttributeError, RecursionError):
            watch.note(_function_code(fn))
    previous, previous_threads = sys.gettrace(), threading.gettrace()
    sys.settrace(watch)
    threading.settrace(watch)
    try:
        yield watch.hits
    finally:
        sys.settrace(previous)
        threading.settrace(previous_threads)


def refusal_message(label: str, hits: list[str]) -> str:
    names = ", ".join(f"`{h}`" for h in hits)
    return (f"{label} ran synthkit's own {names}: this exercise asks for your own code, so a "
            f"function that is, wraps or calls the library's version earns nothing. Write the steps "
            f"yourself; the library's version is there for the rest of the lab.")


# --- comparing with a reference ---------------------------------------------------------
def first_difference(a: str, b: str) -> int:
    """Index of the first character where `a` and `b` differ (the shorter length if one
    is a prefix of the other)."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def where_strings_differ(got: str, expected: str, yours: str = "yours") -> str:
    """'from character 12 on, yours has '...'' — where, without showing the answer."""
    k = first_difference(got, expected)
    if k == len(got):
        return f"{yours} stops at character {k}, before the expected text does"
    return f"from character {k} on, {yours} has {show_input(got[k:k + 30], 40)}"


def is_int(value) -> bool:
    """An integer that is not a bool (True is an int to Python, never to a check)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A real number that is not a bool (numpy scalars count)."""
    import numpy as np

    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def close(got, want, tol: float = 1e-9) -> bool:
    """Equal within an absolute tolerance, and never for NaN or infinity."""
    return is_number(got) and math.isfinite(float(got)) and abs(float(got) - float(want)) <= tol


def name_the_slip(got, slips: Iterable[tuple[Callable[[], Any], str]], same: Callable | None = None,
                  default: str = "") -> str:
    """The advice of the first known slip whose value equals the student's.

    ``slips``: (a function that computes what the slip gives, the advice for it), most
    telling first; computed lazily, so only as many run as needed. ``same``: how to compare
    (default: ``close`` for numbers, ``==`` otherwise).
    """
    same = same or (lambda a, b: close(a, b) if is_number(b) else a == b)
    for compute, advice in slips:
        try:
            if same(got, compute()):
                named = _NAMED.get()
                if named is not None and advice:
                    named.append(advice)
                return advice
        except Exception:  # noqa: BLE001 - a slip that cannot be computed here is no match
            continue
    return default


# --- naming the slip for a whole class ---------------------------------------------------
_NAMED: contextvars.ContextVar = contextvars.ContextVar("synthkit_named_slips", default=None)


@contextmanager
def noting_slips():
    """Collect the advice ``name_the_slip`` gives inside the block (yields the list)."""
    named: list[str] = []
    token = _NAMED.set(named)
    try:
        yield named
    finally:
        _NAMED.reset(token)


# a quoted literal (not an apostrophe inside a word), a number, a bracket group holding inputs
_QUOTED = re.compile(r"""(?<![\w'"])(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")(?![\w'"])""")
_NUMBER = re.compile(r"(?<![\w.#])[-+]?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")
_INPUT = re.compile(r"[#…]")
_CLOSES = {")": "(", "]": "[", "}": "{"}


def _collapse_groups(text: str) -> str:
    """Each bracket group that holds an input ('…' or '#') becomes (…), innermost first; a
    closing bracket whose opening one was cut by ``show_input``'s ellipsis is plain text."""
    out: list[str] = []
    opens: list[int] = []
    for ch in text:
        if ch in "([{":
            opens.append(len(out))
            out.append(ch)
        elif ch in _CLOSES and opens and out[opens[-1]] == _CLOSES[ch]:
            start = opens.pop()
            if _INPUT.search("".join(out[start + 1:])):
                out[start:] = [out[start] + "…" + ch]
            else:
                out.append(ch)
        else:
            out.append(ch)
    return "".join(out)


def normalise_message(message: str, limit: int = 240) -> str:
    """`message` with the inputs taken out: quoted strings become '…', numbers '#', and a
    bracket group holding either becomes (…), so two students' failures of the same kind on
    different random inputs read the same."""
    text = _QUOTED.sub("'…'", message or "")
    text = _collapse_groups(_NUMBER.sub("#", text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slip_of(message: str, named: Iterable[str] = ()) -> str:
    """What a failure has in common with the same mistake elsewhere: the advice a checker
    named (when the message carries it), else the message without its inputs."""
    for advice in reversed(list(named)):
        if advice and advice.strip() in (message or ""):
            return normalise_message(advice)
    return normalise_message(message)
