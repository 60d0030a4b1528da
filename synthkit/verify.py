"""Verifiers: small programs that decide whether a model's answer is right.

Rejection sampling is only as good as the signal that decides what to keep, and the best
signal is a program that *checks* the answer rather than an opinion about it. This module
holds the course's checkers, each with the reason it gives:

* numbers (arithmetic, word problems, unit conversions): the reply must end its work with
  a line ``Answer: <number>`` and that number must equal the known answer. `answer_form`
  says whether a reply is in that form at all, so a lab can tell "answered in the
  expected form" apart from "answered correctly";
* a *lax* number check, the right number anywhere in the reply: deliberately weak, to show
  what a verifier that can be satisfied by accident lets through;
* code: the reply's function is run against unit tests in a separate Python process, with
  a time limit, so an infinite loop, a crash or a ``sys.exit(0)`` cannot hang or fool the
  caller. This is the chapter's "code that compiles", made strict: it must also pass.

A verdict is a `Verdict(passed, reason)`; it is truthy when the answer passed.
"""
from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from .data import extract_answer

# ---------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """Whether an answer passed a check, and why (a short phrase a table can show)."""

    passed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.passed


# ---------------------------------------------------------------------------------------
# Numbers: the expected form, the exact check and the lax one
# ---------------------------------------------------------------------------------------

ANSWER_LINE = "Answer: <number>"

# An answer line starts with the label (any case), after optional spaces and Markdown marks
# ("**Answer:** 42", "> answer: 7"); the number must come right after the colon.
_LABEL = re.compile(r"^[ \t>*_#-]*answer[*_ \t]*:[*_ \t]*(.*)$", re.I | re.M)
_LEADING_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_ANY_NUMBER = re.compile(r"(?<![\d.])-?\d[\d,]*(?:\.\d+)?")


def _normal(number: str) -> str:
    """'1,250' -> '1250', '42.0' -> '42', '-0' -> '0': one spelling per value."""
    number = number.replace(",", "")
    if "." in number and set(number.split(".", 1)[1]) <= {"0"}:
        number = number.split(".", 1)[0]
    return "0" if number in ("-0", "") else number


def final_answer(reply: str) -> str | None:
    """The number on the reply's last ``Answer:`` line, normalised, or None.

    Only a line that *starts* with the label counts ("so the answer: 5" inside a sentence
    does not), and only the last such line, so a model that corrects itself is read at its
    final word. None when there is no such line or the number does not follow the colon
    ("Answer: about 40" is not in the expected form).
    """
    lines = _LABEL.findall(reply or "")
    if not lines:
        return None
    m = _LEADING_NUMBER.match(lines[-1])
    return _normal(m.group(0)) if m else None


def answer_form(reply: str) -> bool:
    """Whether the reply is in the expected form (has an ``Answer: <number>`` line)."""
    return final_answer(reply) is not None


def check_number(reply: str, answer: str) -> Verdict:
    """The exact verifier: the reply's final answer equals `answer`."""
    got = final_answer(reply)
    if got is None:
        return Verdict(False, "no 'Answer: <number>' line")
    if got != _normal(str(answer)):
        return Verdict(False, "wrong number")
    return Verdict(True, "right number")


def check_number_lax(reply: str, answer: str) -> Verdict:
    """A weak verifier: the right number appears *anywhere* in the reply.

    It accepts every reply the exact verifier accepts, and more: a reply that copies a
    number from the question, lists several guesses, or states the right number and
    then a wrong final one. The lab measures how often that happens.
    """
    want = _normal(str(answer))
    numbers = {_normal(n) for n in _ANY_NUMBER.findall(reply or "")}
    return Verdict(want in numbers, "right number somewhere" if want in numbers else "number not in reply")


def last_number(reply: str) -> str | None:
    """The last number anywhere in the reply (`synthkit.data.extract_answer`): a lenient
    reading for replies that ignore the expected form."""
    return extract_answer(reply or "")


# ---------------------------------------------------------------------------------------
# Code: run the unit tests in a separate process, with a time limit
# ---------------------------------------------------------------------------------------

CODE_TIMEOUT = 5.0             # seconds per run: generous for a few asserts, short for a hang
CODE_MEMORY = 512 * 2 ** 20    # bytes of address space the child may use (POSIX only)

_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.S | re.I)


def extract_code(reply: str) -> str | None:
    """The Python code in a reply: the first fenced block that defines a function, else
    the first fenced block, else the reply itself if it contains a ``def``; None when
    there is nothing that looks like code."""
    blocks = _FENCE.findall(reply or "")
    for block in blocks:
        if re.search(r"^\s*def \w+", block, re.M):
            return block.strip("\n")
    if blocks:
        return blocks[0].strip("\n")
    if re.search(r"^\s*def \w+", reply or "", re.M):
        return reply.strip("\n")
    return None


def run_tests(code: str, tests: str, timeout: float = CODE_TIMEOUT) -> Verdict:
    """Run `code` and then `tests` (assert statements) in a fresh Python process.

    Passes only when every line ran and the process then printed a secret token that the
    code under test cannot know, so ``sys.exit(0)`` or ``os._exit(0)`` before the tests
    does not pass. The child runs isolated (``python -I``) in an empty temporary folder,
    in its own process group (killed whole at the time limit), with a memory cap.
    """
    if not isinstance(code, str) or not code.strip():
        return Verdict(False, "no code")
    if timeout is None or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds; got {timeout!r}")
    token = secrets.token_hex(16)
    program = f"{code}\n\n# --- the tests ---\n{tests}\n\nprint({token!r})\n"
    with tempfile.TemporaryDirectory(prefix="synthkit-verify-") as tmp:
        path = os.path.join(tmp, "candidate.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(program)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", path], cwd=tmp, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                start_new_session=True, preexec_fn=_limit_memory if os.name == "posix" else None)
        except OSError as e:  # pragma: no cover - no python to start
            raise RuntimeError(f"could not start a Python process to run the tests: {e}") from None
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            return Verdict(False, f"timeout after {timeout:g} s")
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        return Verdict(False, f"crashed ({name})")
    if proc.returncode != 0:
        return Verdict(False, _error_line(err))
    if token not in out:
        return Verdict(False, "exited before the tests finished")
    return Verdict(True, "all tests passed")


def check_code(reply: str, tests: str, timeout: float = CODE_TIMEOUT) -> Verdict:
    """The exact verifier for code tasks: extract the code from a reply, run the tests."""
    code = extract_code(reply)
    if code is None:
        return Verdict(False, "no code in reply")
    return run_tests(code, tests, timeout)


def _limit_memory() -> None:  # runs in the child, before Python starts
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (CODE_MEMORY, CODE_MEMORY))
    except (ImportError, ValueError, OSError):
        pass


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        proc.kill()


def _error_line(stderr: str) -> str:
    """'AssertionError: add_3(4) == 7' from a traceback: the line that names the failure."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "exited with an error"
    if last.startswith("AssertionError"):
        detail = last.partition(":")[2].strip()
        return f"failed test: {detail}" if detail else "failed a test"
    return f"error: {last[:120]}"
