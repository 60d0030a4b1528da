"""Grading a lab in a notebook: run it in a kernel (``kernel``), then grade the student's
objects with the checks of the installed synthkit, from the grader's own process.

``run_notebook(path)`` executes every code cell in a fresh kernel (per-cell timeout, past
errors) and then, with the kernel still up, runs the lab's checks *here*, in the
grader's process: each call of a student's function travels to the kernel and only its
result, as plain data, comes back (``sandbox``). The submission's own check cells, and
anything its code patched in the kernel (the checks, ``json``, ``importlib``,
``sys.stdout``), play no part in the result. Its code is also scanned for such patching
(``scan``), and what is found is listed in ``flags`` for the instructor.

What can go wrong is reported, never raised:

- not a notebook (bad JSON, not nbformat 4): status "invalid";
- a cell runs past its timeout: the kernel is interrupted, the cell is noted, the
  rest of the notebook still runs (a kernel that ignores the interrupt is replaced);
- the kernel dies: the notebook is run again in a fresh kernel without that cell
  (twice at most), so the rest of the work still counts, and the rows say so;
- a student's function runs past its limit under a check: the grader interrupts the
  kernel, and kills it if it does not answer; it dies: that row says so;
- every cell raises: the checks still run, and report what they find missing.
"""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .exercises import CRASHED, INVALID, NOT_RUN, PASS, SUBMITTED, TIMEOUT, CodingExercise, EssayExercise, Result
from .kernel import (CellIssue, CellRun, kernel_env, kernel_process, quiet_abandoned_pollers, read_notebook,
                     responsive, run_cells)

DEFAULT_CELL_TIMEOUT = {"ci": 120, "laptop": 600, "gpu": 600}
CHECKS_TIMEOUT = 180  # first answer from the kernel (each call also has its exercise's limit)
MAX_ATTEMPTS = 3

__all__ = ["run_notebook", "run_notebook_async", "RunResult", "CellIssue", "read_notebook", "format_run",
           "DEFAULT_CELL_TIMEOUT"]


@dataclass
class RunResult:
    path: str
    lab: str | None
    status: str  # "ok", "invalid", "timeout", "crashed", "error"
    results: list[Result] = field(default_factory=list)
    issues: list[CellIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    attempts: int = 0
    profile: str = ""
    notebook: object = None  # the executed notebook (nbformat node), when there is one
    flags: list[str] = field(default_factory=list)  # what the code patches (see ``scan``)

    @property
    def errors(self) -> list[CellIssue]:
        return [i for i in self.issues if i.kind == "error"]

    @property
    def all_passed(self) -> bool:
        code = [r for r in self.results if r.kind == "code"]
        return self.status == "ok" and all(r.passed for r in code)

    def to_dict(self) -> dict:
        return {"path": self.path, "lab": self.lab, "status": self.status, "seconds": round(self.seconds, 2),
                "attempts": self.attempts, "profile": self.profile,
                "results": [r.to_dict() for r in self.results],
                "cell_issues": [{"cell": i.index, "kind": i.kind, "detail": i.detail, "text": str(i)}
                                for i in self.issues],
                "notes": self.notes, "flags": self.flags}


@dataclass
class _Attempt(CellRun):
    checks: list[dict] | None = None
    checks_problem: str = ""  # why the checks did not report
    checks_status: str = ""  # and what that makes the rows: TIMEOUT or CRASHED


def _needed_names(exercises) -> list[str]:
    names: list[str] = []
    for ex in exercises:
        if isinstance(ex, CodingExercise):
            names += ex.names
        elif isinstance(ex, EssayExercise):
            names.append(ex.variable)
    return list(dict.fromkeys(names))


def _grade_remotely(lab: str, connection_info: dict, process,
                    seed: str | None = None) -> tuple[list[dict] | None, str, str]:
    """Run lab `lab`'s checks here against the kernel's objects: (result dicts, or None
    with why and the rows' status)."""
    from .exercises import grade_all
    from .registry import lab_exercises
    from .sandbox import InventoryError, KernelSandbox, RemoteNamespace, SandboxGone

    exercises = lab_exercises(lab)
    try:
        sandbox = KernelSandbox(connection_info, process)
    except Exception as e:  # noqa: BLE001
        return None, f"the grader could not connect to the kernel ({type(e).__name__}: {e})", NOT_RUN
    try:
        for attempt in range(2):
            try:
                namespace = RemoteNamespace(sandbox, _needed_names(exercises), CHECKS_TIMEOUT)
                break
            except InventoryError as e:
                # a KeyboardInterrupt sent to stop an earlier runaway cell can land late,
                # inside the first request: ask again, once
                if e.reply.get("interrupted") and attempt == 0:
                    continue
                if e.reply.get("aborted"):
                    return None, "the kernel refused every request after an interrupted cell", "aborted"
                if e.reply.get("slow"):
                    return None, f"the kernel did not answer the grader within {CHECKS_TIMEOUT} s", TIMEOUT
                why = e.reply.get("protocol_error") or e.reply
                return None, f"the kernel gave no usable answer to the grader: {why}", NOT_RUN
            except SandboxGone as e:
                return None, str(e), CRASHED
            except Exception as e:  # noqa: BLE001 - whatever the kernel sent, the grader reports
                return None, f"the grader could not read the kernel's answer ({type(e).__name__}: {e})", NOT_RUN
        return [r.to_dict() for r in grade_all(exercises, namespace, seed)], "", ""
    finally:
        sandbox.close()


def _after_cells(lab: str | None, att: _Attempt, seed: str | None = None):
    async def grade_now(client, run: CellRun) -> None:
        if not lab:
            return
        if any(i.kind == "timeout" for i in run.issues) and not await responsive(client):
            run.died_at = next(i.index for i in run.issues if i.kind == "timeout") - 1
            return
        info = client.km.get_connection_info(session=False)
        checks, problem, status = await asyncio.to_thread(_grade_remotely, lab, info, kernel_process(client), seed)
        if status == "aborted":
            # After an interrupted cell the kernel can go on aborting every request (seen
            # here, timing-dependent): answer-less, it is as good as stuck. Run the
            # notebook again in a fresh kernel without the cell that ran away.
            timeouts = [i for i in run.issues if i.kind == "timeout"]
            if timeouts:
                run.died_at = timeouts[0].index - 1
                return
            status = NOT_RUN
        att.checks, att.checks_problem, att.checks_status = checks, problem, status
        if status == CRASHED:
            run.wants_last_words = True

    return grade_now


async def _attempt(nb, lab: str | None, *, timeout: float, env: dict, cwd: str,
                   skip: set[int], checks: bool, seed: str | None = None) -> _Attempt:
    att = _Attempt()
    run = await run_cells(nb, timeout=timeout, env=env, cwd=cwd, skip=skip,
                          after=_after_cells(lab, att, seed) if checks else None)
    att.issues, att.died_at, att.last_words = run.issues, run.died_at, run.last_words
    return att


def _combine(lab: str, attempts: list[_Attempt], expected) -> tuple[str, list[Result], list[CellIssue]]:
    """Fold the attempts into one status, one row per exercise, and the cell issues."""
    last = attempts[-1]
    for a in attempts:  # a crash's last words (e.g. a segfault message) go with it
        for issue in a.issues:
            if issue.kind == "crashed" and a.last_words and not issue.detail:
                issue.detail = f"it said: {a.last_words}"
    # from each earlier run, the issue of the cell that made us start afresh
    issues = [i for a in attempts[:-1] for i in a.issues if i.index == a.died_at + 1] + last.issues
    timeouts = [i for i in issues if i.kind in ("timeout", "stuck")]
    crashes = [i for i in issues if i.kind == "crashed"]
    errors = [i for i in issues if i.kind == "error"]
    status = CRASHED if crashes else TIMEOUT if timeouts else "ok"

    if last.checks is None:  # the checks could not run: one row per exercise says why
        if last.died_at is not None:
            stopped = last.issues[-1]
            why = f"{stopped}, in each of {len(attempts)} fresh runs"
            row_status = CRASHED if stopped.kind == "crashed" else TIMEOUT
        else:
            why, row_status = last.checks_problem, last.checks_status or CRASHED
            if last.last_words:
                why += f" (it said: {last.last_words})"
        rows = [Result(lab, ex.name, ex.kind, row_status, f"not graded: {why}.", ex.points) for ex in expected]
        return row_status if status == "ok" else status, rows, issues

    rows = [Result.from_dict(d) for d in last.checks]
    trouble = crashes + timeouts
    for r in rows:
        if trouble and r.status in (PASS, SUBMITTED):
            extra = " (that cell was skipped in a fresh run)" if len(attempts) > 1 else ""
            r.message = f"{r.message} Note: {'; '.join(map(str, trouble))}{extra}."
        elif trouble:
            r.status = CRASHED if crashes else TIMEOUT
            r.message = f"{'; '.join(map(str, trouble))} — then: {r.message}"
        elif errors and r.status not in (PASS, SUBMITTED):
            more = f" and {len(errors) - 1} more" if len(errors) > 1 else ""
            r.message = f"{r.message} (When the notebook ran, {errors[0]}{more}.)"
    return status, rows, issues


def lab_of(path: str | Path, nb=None) -> str | None:
    from .registry import lab_id_from_name

    if nb is not None:
        lab = nb.metadata.get("synthkit", {}).get("lab")
        if isinstance(lab, str) and lab.isdigit():
            return lab.zfill(2)
    return lab_id_from_name(Path(path).name)


async def run_notebook_async(path: str | Path, *, lab: str | None = None, profile: str | None = None,
                             timeout: float | None = None, env: dict | None = None,
                             cwd: str | Path | None = None, checks: bool = True,
                             seed: str | None = None) -> RunResult:
    from ..profiles import profile as current_profile
    from .registry import lab_exercises
    from .scan import patches

    quiet_abandoned_pollers()
    start = time.perf_counter()
    path = Path(path)
    profile = profile or current_profile()
    timeout = timeout or DEFAULT_CELL_TIMEOUT[profile]
    result = RunResult(str(path), lab, "ok", profile=profile)
    try:
        nb = read_notebook(path)
    except (OSError, ValueError) as e:
        result.lab = result.lab or lab_of(path)
        result.status, result.seconds = INVALID, time.perf_counter() - start
        result.notes.append(str(e))
        _rows_for_all(result, INVALID, f"{e}", result.lab)
        return result
    result.lab = lab = lab or lab_of(path, nb)
    result.flags = patches(nb)
    expected = []
    if lab:
        try:
            expected = lab_exercises(lab)
        except ImportError as e:
            result.notes.append(f"no checks: {e}")
            lab = None
    elif checks:
        result.notes.append("no checks: cannot tell which lab this is (name it NN_topic.ipynb)")
    kernel_environment = kernel_env(profile, env)
    cwd = str(cwd or path.parent.resolve())

    attempts: list[_Attempt] = []
    skip: set[int] = set()
    try:
        for _ in range(MAX_ATTEMPTS):
            run_nb = nb if not attempts else read_notebook(path)
            att = await _attempt(run_nb, lab, timeout=timeout, env=kernel_environment, cwd=cwd,
                                 skip=skip, checks=checks, seed=seed)
            attempts.append(att)
            result.notebook = run_nb
            if att.died_at is None:
                break
            skip.add(att.died_at)
    except Exception as e:  # noqa: BLE001 - e.g. the kernel would not start
        result.status, result.seconds = "error", time.perf_counter() - start
        result.notes.append(f"could not run the notebook: {type(e).__name__}: {e}")
        _rows_for_all(result, NOT_RUN, f"the notebook could not be run ({type(e).__name__}: {e})", lab)
        return result
    result.attempts = len(attempts)
    if lab and checks:
        result.status, result.results, result.issues = _combine(lab, attempts, expected)
    else:
        result.issues = [i for a in attempts for i in a.issues]
        result.status = ("crashed" if any(i.kind == "crashed" for i in result.issues)
                         else "timeout" if any(i.kind in ("timeout", "stuck") for i in result.issues) else "ok")
    result.seconds = time.perf_counter() - start
    return result


def _rows_for_all(result: RunResult, status: str, message: str, lab: str | None) -> None:
    from .registry import lab_exercises

    if not lab:
        return
    try:
        result.results = [Result(lab, ex.name, ex.kind, status, message, ex.points) for ex in lab_exercises(lab)]
    except ImportError:
        pass


def run_notebook(path: str | Path, **kwargs) -> RunResult:
    """Execute a notebook in a fresh kernel and run its lab's checks; see the module doc.

    Keyword arguments: lab ("00"; default from the notebook), profile ("ci", "laptop",
    "gpu"; default the current one), timeout (seconds per cell), env (extra variables
    for the kernel), cwd (the kernel's folder; default the notebook's), checks (bool),
    seed (fixes the checks' random draws; `synthkit grade` derives it from the file's bytes).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_notebook_async(path, **kwargs))
    # called from inside a running event loop (a notebook): run in a thread of our own
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", asyncio.run(run_notebook_async(path, **kwargs))))
    thread.start()
    thread.join()
    return box["r"]


def format_run(result: RunResult) -> str:
    """What `synthkit run` prints."""
    lines = [f"{result.path}: lab {result.lab or '?'}, profile {result.profile}, "
             f"{result.seconds:.1f} s, status {result.status}"]
    lines += [f"  ! {i}" for i in result.issues]
    lines += [f"  note: {n}" for n in result.notes]
    lines += [f"  flag: {f}" for f in result.flags]
    for r in result.results:
        lines.append(f"  {r.headline()}: {r.message}")
    code = [r for r in result.results if r.kind == "code"]
    if code:
        lines.append(f"  {sum(r.passed for r in code)}/{len(code)} exercises pass")
    slow = slowest_cells(result.notebook)
    if slow:
        lines.append("  slowest cells:")
        lines += [f"    {s:6.0f} s  cell {i + 1}: {first}" for i, s, first in slow]
    return "\n".join(lines)


def slowest_cells(nb, k: int = 4, at_least: float = 5.0) -> list[tuple[int, float, str]]:
    """The `k` code cells that took longest (index, seconds, first line), from the times nbclient
    records in each cell's metadata: where a lab's minutes go, for whoever trims it."""
    from datetime import datetime

    times = []
    for i, cell in enumerate(getattr(nb, "cells", None) or []):
        t = cell.get("metadata", {}).get("execution", {})
        start, end = t.get("iopub.execute_input"), t.get("shell.execute_reply")
        if cell.get("cell_type") == "code" and start and end:
            seconds = (datetime.fromisoformat(end.replace("Z", "+00:00"))
                       - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
            if seconds >= at_least:
                first = next((ln.strip() for ln in cell.get("source", "").splitlines()
                              if ln.strip() and not ln.lstrip().startswith("#")), "")
                times.append((i, seconds, first[:60]))
    return sorted(times, key=lambda t: -t[1])[:k]
