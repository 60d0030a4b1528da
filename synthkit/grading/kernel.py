"""Running a notebook in a kernel: a fresh kernel on this very Python, every code cell
with a per-cell timeout, past errors, timeouts and crashes, reported never raised.

``run_cells`` is the one loop: it starts a kernel (a spec made on the fly from
``sys.executable``, so no installed kernel spec can point elsewhere), executes the cells,
and, while the kernel is still up, hands it to an ``after`` callback of the caller's
(grading uses it to call the student's functions; see ``runner``). What went wrong is
recorded as ``CellIssue``s:

- a cell runs past its timeout: the kernel is interrupted and the rest still runs (a
  kernel that ignores the interrupt is "stuck", and the run stops there);
- the kernel dies: the run stops there ("crashed"), and the kernel's last words are kept.

Nothing here knows about labs or checks.
"""
from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

KERNEL_NAME = "synthkit-python"
MAX_OUTPUTS_PER_CELL = 500

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


def _make_client(nb, timeout: float, cwd: str):
    from nbclient import NotebookClient

    class Client(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            # a cell that prints forever must not eat the grader's memory
            if len(outs) >= MAX_OUTPUTS_PER_CELL and msg["msg_type"] != "error":
                return None
            return super().output(outs, msg, display_id, cell_index)

    return Client(nb, km=_kernel_manager(), timeout=int(timeout), allow_errors=True,
                  interrupt_on_timeout=False, record_timing=True, startup_timeout=90,
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


async def responsive(client, seconds: int = 15) -> bool:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    try:
        await _execute_extra(client, "pass", seconds)
        return True
    except (CellTimeoutError, DeadKernelError):
        return False




@dataclass
class CellRun:
    """What one pass over a notebook's cells found."""

    issues: list[CellIssue] = field(default_factory=list)
    died_at: int | None = None  # 0-based cell index that killed (or wedged) the kernel
    last_words: str = ""  # the kernel's last line on stderr, when it died
    wants_last_words: bool = False  # set by `after` when the kernel died during it


def kernel_process(client):
    """The kernel's process (Popen-like: pid, poll()) behind an nbclient client."""
    km = client.km
    provisioner = getattr(km, "provisioner", None)
    process = getattr(provisioner, "process", None)
    if process is None:
        process = getattr(km, "kernel", None)
    return process


async def run_cells(nb, *, timeout: float, env: dict, cwd: str, skip: set[int] = frozenset(),
                    after: Callable[[object, CellRun], Awaitable[None]] | None = None) -> CellRun:
    """Execute `nb`'s code cells (not those whose index is in `skip`) in a fresh kernel,
    then await ``after(client, run)`` while the kernel is still up (only when the kernel
    survived the cells). The kernel is shut down before this returns."""
    # the kernel's own stderr goes to a file: quiet runs, and the last words of a crash
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as log:
        run = CellRun()
        await _run_cells(run, nb, timeout=timeout, env=env, cwd=cwd, skip=skip, log=log, after=after)
        if run.died_at is not None or run.wants_last_words:
            log.seek(0)
            said = [line.strip() for line in log.read().splitlines()[-40:]
                    if line.strip() and "without encryption" not in line]
            if said:
                run.last_words = said[-1][:200]
        return run


async def _run_cells(run: CellRun, nb, *, timeout, env, cwd, skip, log, after) -> None:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    client = _make_client(nb, timeout, cwd)
    async with client.async_setup_kernel(cleanup_kc=True, env=env, cwd=cwd, stderr=log):
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            if i in skip:
                run.issues.append(CellIssue(i + 1, "skipped", "it stopped the kernel in an earlier run",
                                            _first_line(cell.source)))
                continue
            try:
                await client.async_execute_cell(cell, i)
            except CellTimeoutError:
                run.issues.append(CellIssue(i + 1, "timeout", f"{int(timeout)} s", _first_line(cell.source)))
                try:
                    await client.km.interrupt_kernel()
                except Exception:  # noqa: BLE001 - a kernel we cannot interrupt is wedged
                    pass
                if not await responsive(client):
                    run.died_at = i
                    run.issues[-1].kind = "stuck"
                    return
                continue
            except DeadKernelError:
                run.died_at = i
                run.issues.append(CellIssue(i + 1, "crashed", "", _first_line(cell.source)))
                return
            error = _error_of(cell)
            if error:
                run.issues.append(CellIssue(i + 1, "error", error, _first_line(cell.source)))
        if after is not None:
            await after(client, run)


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


def quiet_abandoned_pollers() -> None:
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
