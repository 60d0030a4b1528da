"""A lab in a real browser, opened with plain `jupyter lab` (not `synthkit start`): run it,
answer a quiz question, save, shut the kernel down, reopen. The quiz, its answers and the
finished progress bars must still read right, and nothing may say "Error displaying widget".

Playwright drives Debian's Chromium (`apt-get install chromium`; `.ci/run` installs it when
missing): Playwright's own browser download is not reachable offline.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SYNTHKIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BAR_CELL = ("from synthkit.bars import bar\n"
            "demo = bar(total=3, desc='demo bar', unit='step')\n"
            "for _ in range(3):\n    demo.update()\n"
            "demo.close()")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab_server(tmp_path):
    """Plain `jupyter lab` from this environment, in a fresh home, serving a copy of lab 00."""
    if not CHROMIUM:
        pytest.fail("no Chromium to drive: `apt-get install chromium` (Debian) or set SYNTHKIT_CHROMIUM")
    course = tmp_path / "course"
    course.mkdir()
    nb = nbformat.read(ROOT / "solutions" / "00_welcome.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(BAR_CELL))
    nbformat.write(nb, course / "00_welcome.ipynb")
    shutil.copy(ROOT / "labs" / "00_welcome.ipynb", course / "untouched.ipynb")   # as `assign` wrote it
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces"),
           "SYNTHKIT_PROFILE": "ci", "SYNTHKIT_HOME": str(tmp_path / "synthkit-home"),
           "HF_HUB_OFFLINE": "1"}
    # draw every cell, not only those in view (JupyterLab 4 windows long notebooks), so the
    # page's text is the whole notebook's
    tracker = home / "lab-settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    port = _free_port()
    log = open(tmp_path / "jupyter.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
         f"--ServerApp.root_dir={course}", "--expose-app-in-browser", "--allow-root"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail("jupyter lab exited:\n" + (tmp_path / "jupyter.log").read_text()[-3000:])
                time.sleep(0.5)
        yield url, course / "00_welcome.ipynb"
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _wait(page, script: str, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if page.evaluate(script):
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


NOTEBOOK_OPEN = "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget; " \
                "return !!(w && w.content && w.content.model && w.sessionContext && w.sessionContext.session " \
                "&& w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle'); }"
ALL_RUN = """() => { const w = window.jupyterapp.shell.currentWidget; const cells = w.content.model.cells;
  let ok = true; for (let i = 0; i < cells.length; i++) { const c = cells.get(i);
    if (c.type === 'code' && !c.executionCount) ok = false; }
  return ok && w.sessionContext.session.kernel.status === 'idle'; }"""


def test_a_lab_reopened_under_plain_jupyter_lab_still_reads_right(lab_server):
    from playwright.sync_api import sync_playwright

    url, notebook = lab_server
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{url}/lab/tree/{notebook.name}")
        _wait(page, NOTEBOOK_OPEN, 120, "the notebook and its kernel")
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        _wait(page, ALL_RUN, 420, "every cell of lab 00 to run")

        quiz = page.locator(".synthkit-quiz")
        quiz.scroll_into_view_if_needed()
        quiz.locator("input[type=radio]").first.check()
        page.get_by_text("Your answers (lab 00)").wait_for(timeout=30_000)
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        _wait(page, "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", 60, "the save")
        page.evaluate("() => window.jupyterapp.serviceManager.sessions.shutdownAll()")
        page.close()

        saved = json.loads(notebook.read_text())
        assert "application/vnd.jupyter.widget-state+json" in saved["metadata"].get("widgets", {}), \
            "JupyterLab did not save the widget state: the install's overrides.d setting was not read"

        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/lab/tree/{notebook.name}")
        _wait(page, NOTEBOOK_OPEN, 120, "the reopened notebook")
        page.wait_for_selector(".synthkit-quiz", timeout=60_000)
        time.sleep(3)   # let every saved widget view render (or fail to)
        text = page.locator(".jp-Notebook").inner_text().replace("\xa0", " ")
        page.locator(".synthkit-quiz").screenshot(path=str(notebook.parent / "reopened-quiz.png"))

        # a student copy nobody has touched opens and closes without asking to save
        page.goto(f"{url}/lab/tree/untouched.ipynb")
        _wait(page, NOTEBOOK_OPEN.replace("currentWidget;", "currentWidget; if (!w || w.title.label !== "
                                          "'untouched.ipynb') return false;"), 120, "the untouched lab")
        time.sleep(3)
        dirty = page.evaluate("() => window.jupyterapp.shell.currentWidget.context.model.dirty")
        browser.close()
    assert not dirty, "an untouched lab opened as unsaved: its metadata differs from what the kernel reports"
    assert "Error displaying widget" not in text
    assert "Your answers (lab 00)" in text and "1 a" in text     # the answer given, as text
    assert "Concept check (lab 00)" in text                      # the quiz widget itself
    assert "demo bar: 100%" in text and "3/3" in text            # a finished bar, as text
