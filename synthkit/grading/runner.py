"""Run a notebook headless, then run its lab's checks inside the same kernel.

``run_notebook(path)`` starts a fresh kernel on this very Python (a kernel spec made on
the fly from ``sys.executable``, so no installed kernel spec can point elsewhere),
executes every code cell with a per-cell timeout, keeps going past cells that raise,
and then runs the lab's checks from the installed synthkit against the kernel's
objects: the submission's own check cells play no part in the result.

What can go wrong is reported, never raised:

- not a notebook (bad JSON, not nbformat 4): status "invalid";
- a cell runs past its timeout: the kernel is interrupted, the cell is noted, the
  rest of the notebook still runs (a kernel that ignores the interrupt is replaced);
- the kernel dies: the notebook is run again in a fresh kernel without that cell
  (twice at most), so the rest of the work still counts, and the rows say so;
- every cell raises: the checks still run, and report what they find missing.
"""
from __future__ import annotations

import asyncio
import atexit
import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .exercises import CRASHED, INVALID, PASS, SUBMITTED, TIMEOUT, NOT_RUN, Result

KERNEL_NAME = "synthkit-python"
MAX_OUTPUTS_PER_CELL = 500
DEFAULT_CELL_TIMEOUT = {"ci": 120, "laptop": 600, "gpu": 600}
CHECKS_TIMEOUT = 180  # the injected checks cell (each check also has its own limit)
MAX_ATTEMPTS = 3

_spec_dir: str | None = None
_spec_lock = threading.Lock()


def kernel_spec_dir() -> str:
    """A folder holding one kernel spec that runs ipykernel on this interpreter."""
    global _spec_dir
    with _spec_lock:
        if _spec_dir is None:
            folder = tempfile.mkdtemp(prefix="synthkit-kernels-")
            spec = Path(folder) / KERNEL_NAME
            spec.mkdir()
            (spec / "kernel.json").write_text(json.dumps({
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": f"Python {sys.version_info.major}.{sys.version_info.minor} (synthkit)",
                "language": "python", "interrupt_mode": "signal", "metadata": {"debugger": False}}))
            atexit.register(shutil.rmtree, folder, True)
            _spec_dir = folder
        return _spec_dir


def _kernel_manager():
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    ksm = KernelSpecManager(kernel_dirs=[kernel_spec_dir()], ensure_native_kernel=False)
    return AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)


def kernel_env(profile: str | None = None, extra: dict | None = None) -> dict:
    """The environment a kernel gets: ours, plus the size profile."""
    env = dict(os.environ)
    if profile:
        env["SYNTHKIT_PROFILE"] = profile
    # a synthkit imported from a source folder (not installed) must be importable there too
    here = Path(__file__).resolve().parents[2]
    if here.name not in ("site-packages", "dist-packages"):
        env["PYTHONPATH"] = os.pathsep.join([str(here)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(extra or {})
    return env


# --- results -------------------------------------------------------------------------------
@dataclass
class CellIssue:
    index: int  # 1-based position in the notebook
    kind: str  # "error", "timeout", "stuck" (a timeout the kernel ignored), "crashed", "skipped"
    detail: str
    first_line: str = ""

    def __str__(self) -> str:
        where = f"cell {self.index}" + (f" (`{self.first_line}`)" if self.first_line else "")
        return {"error": f"{where} raised {self.detail}",
                "timeout": f"{where} ran past the {self.detail} limit and was stopped",
                "stuck": f"{where} ran past the {self.detail} limit and ignored the interrupt, so its kernel "
                         f"was replaced",
                "crashed": f"the kernel died in {where}{': ' + self.detail if self.detail else ''}",
                "skipped": f"{where} was skipped: {self.detail}"}[self.kind]


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
                "notes": self.notes}


@dataclass
class _Attempt:
    issues: list[CellIssue] = field(default_factory=list)
    died_at: int | None = None  # 0-based cell index that killed (or wedged) the kernel
    checks: list[dict] | None = None
    checks_problem: str = ""  # why the checks did not report
    checks_status: str = ""  # and what that makes the rows: TIMEOUT or CRASHED
    last_words: str = ""  # the kernel's last line on stderr, when it died


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip() and not line.strip().startswith("#"):
            return line.strip()[:50]
    return ""


def _error_of(cell) -> str | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            value = str(out.get("evalue", ""))
            value = value if len(value) <= 120 else value[:117] + "..."
            return f"{out.get('ename', 'Error')}: {value}"
    return None


_CHECKS_CODE = '''\
def _synthkit_run_checks(namespace):
    import importlib, json, sys
    for name in [m for m in list(sys.modules) if m == "synthkit.labs"
                 or m.startswith(("synthkit.labs.", "synthkit.grading"))]:
        del sys.modules[name]  # fresh copies: nothing a notebook patched survives
    exercises = importlib.import_module("synthkit.grading.exercises")
    results = exercises.grade_lab({lab!r}, namespace)
    sys.stdout.write("\\n{marker}" + json.dumps(results) + "\\n")
    sys.stdout.flush()
_synthkit_run_checks(globals())
del _synthkit_run_checks
'''


def _make_client(nb, timeout: float, cwd: str):
    from nbclient import NotebookClient

    class Client(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            # a cell that prints forever must not eat the grader's memory
            if len(outs) >= MAX_OUTPUTS_PER_CELL and msg["msg_type"] != "error":
                return None
            return super().output(outs, msg, display_id, cell_index)

    return Client(nb, km=_kernel_manager(), timeout=int(timeout), allow_errors=True,
                  interrupt_on_timeout=False, record_timing=False, startup_timeout=90,
                  iopub_timeout=10, shutdown_kernel="immediate",
                  timeout_func=lambda cell: cell.get("metadata", {}).get("synthkit_timeout") or int(timeout),
                  resources={"metadata": {"path": cwd}})


async def _execute_extra(client, source: str, seconds: int):
    """Run a cell of ours after the notebook's (nbclient wants it in the notebook while it
    runs; it is taken out again)."""
    from nbformat.v4 import new_code_cell

    cell = new_code_cell(source)
    cell.metadata["synthkit_timeout"] = seconds
    client.nb.cells.append(cell)
    try:
        await client.async_execute_cell(cell, len(client.nb.cells) - 1, store_history=False)
    finally:
        client.nb.cells.pop()
    return cell


async def _responsive(client, seconds: int = 15) -> bool:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    try:
        await _execute_extra(client, "pass", seconds)
        return True
    except (CellTimeoutError, DeadKernelError):
        return False


async def _attempt(nb, lab: str | None, *, timeout: float, env: dict, cwd: str,
                   skip: set[int], checks: bool) -> _Attempt:
    # the kernel's own stderr goes to a file: quiet runs, and the last words of a crash
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as log:
        att = _Attempt()
        await _run_cells(att, nb, lab, timeout=timeout, env=env, cwd=cwd, skip=skip, checks=checks, log=log)
        if att.died_at is not None or att.checks_status == CRASHED:
            log.seek(0)
            said = [line.strip() for line in log.read().splitlines()[-40:]
                    if line.strip() and "without encryption" not in line]
            if said:
                att.last_words = said[-1][:200]
        return att


async def _run_cells(att: _Attempt, nb, lab, *, timeout, env, cwd, skip, checks, log) -> None:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    client = _make_client(nb, timeout, cwd)
    async with client.async_setup_kernel(cleanup_kc=True, env=env, cwd=cwd, stderr=log):
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            if i in skip:
                att.issues.append(CellIssue(i + 1, "skipped", "it stopped the kernel in an earlier run",
                                            _first_line(cell.source)))
                continue
            try:
                await client.async_execute_cell(cell, i)
            except CellTimeoutError:
                att.issues.append(CellIssue(i + 1, "timeout", f"{int(timeout)} s", _first_line(cell.source)))
                try:
                    await client.km.interrupt_kernel()
                except Exception:  # noqa: BLE001 - a kernel we cannot interrupt is wedged
                    pass
                if not await _responsive(client):
                    att.died_at = i
                    att.issues[-1].kind = "stuck"
                    return
                continue
            except DeadKernelError:
                att.died_at = i
                att.issues.append(CellIssue(i + 1, "crashed", "", _first_line(cell.source)))
                return
            error = _error_of(cell)
            if error:
                att.issues.append(CellIssue(i + 1, "error", error, _first_line(cell.source)))
        if not (checks and lab):
            return
        # Twice at most: a KeyboardInterrupt sent to stop an earlier runaway cell can land
        # late, inside the first run of the checks, which then report nothing.
        for _ in range(2):
            marker = f"@@synthkit-checks-{secrets.token_hex(8)}@@"
            try:
                cell = await _execute_extra(client, _CHECKS_CODE.format(lab=lab, marker=marker), CHECKS_TIMEOUT)
            except CellTimeoutError:
                att.checks_problem = f"the checks were still running your code after {CHECKS_TIMEOUT} s"
                att.checks_status = TIMEOUT
                return
            except DeadKernelError:
                att.checks_problem = "the kernel died while the checks ran your code"
                att.checks_status = CRASHED
                return
            text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
            for line in text.splitlines():
                if line.startswith(marker):
                    att.checks = json.loads(line[len(marker):])
                    return
            att.checks_problem = "the checks reported nothing" + (f" ({_error_of(cell)})" if _error_of(cell) else "")
            att.checks_status = NOT_RUN
        timeouts = [i for i in att.issues if i.kind == "timeout"]
        if timeouts and not cell.outputs:
            # After an interrupted cell the kernel can go on aborting every request (seen
            # here, timing-dependent): answer-less, it is as good as stuck. Run the
            # notebook again in a fresh kernel without the cell that ran away.
            att.died_at = timeouts[0].index - 1


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


def read_notebook(path: str | Path):
    """The notebook at `path`, validated; raises ValueError with a readable reason."""
    import nbformat

    try:
        raw = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError("not a notebook: the file is not UTF-8 text") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"not a notebook: invalid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict) or "cells" not in data or "nbformat" not in data:
        raise ValueError("not a notebook: the JSON has no 'cells' and 'nbformat'") from None
    try:
        nb = nbformat.reads(raw, as_version=4)
        nbformat.validate(nb)
    except Exception as e:  # noqa: BLE001 - nbformat raises many kinds
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"not a valid notebook: {msg[:200]}") from None
    return nb


def lab_of(path: str | Path, nb=None) -> str | None:
    from ..labs import lab_id_from_name

    if nb is not None:
        lab = nb.metadata.get("synthkit", {}).get("lab")
        if isinstance(lab, str) and lab.isdigit():
            return lab.zfill(2)
    return lab_id_from_name(Path(path).name)


async def run_notebook_async(path: str | Path, *, lab: str | None = None, profile: str | None = None,
                             timeout: float | None = None, env: dict | None = None,
                             cwd: str | Path | None = None, checks: bool = True) -> RunResult:
    from ..profiles import profile as current_profile
    from ..labs import lab_exercises

    _quiet_abandoned_pollers()
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
                                 skip=skip, checks=checks)
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


def _quiet_abandoned_pollers() -> None:
    """nbclient leaves an output poller behind when a cell times out or a kernel dies; when
    the channel closes it fails with queue.Empty, which asyncio would print as a scary
    'Task exception was never retrieved'. Those, and only those, are dropped."""
    from queue import Empty

    loop = asyncio.get_running_loop()

    def handler(loop, context):
        if isinstance(context.get("exception"), Empty):
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def _rows_for_all(result: RunResult, status: str, message: str, lab: str | None) -> None:
    from ..labs import lab_exercises

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
    for the kernel), cwd (the kernel's folder; default the notebook's), checks (bool).
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
    for r in result.results:
        lines.append(f"  {r.headline()}: {r.message}")
    code = [r for r in result.results if r.kind == "code"]
    if code:
        lines.append(f"  {sum(r.passed for r in code)}/{len(code)} exercises pass")
    return "\n".join(lines)
