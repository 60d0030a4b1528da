"""Widgets that survive any JupyterLab: the install turns widget-state saving on for this
environment, a finished progress bar leaves a plain line, and a quiz leaves its answers as text."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from synthkit import bars, cli
from synthkit.grading.quiz import Question, Quiz


def test_installing_synthkit_turns_widget_state_saving_on():
    from jupyterlab_server.settings_utils import _get_overrides

    settings = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings"
    assert cli.lab_settings_file().parent.parent == settings
    installed = settings / "overrides.d" / "synthkit.json"
    assert installed.is_file(), "pip install -e . should have put JupyterLab's settings file here"
    assert installed.read_text() == cli.SETTINGS_SOURCE.read_text()
    overrides, error = _get_overrides(str(settings))     # what JupyterLab itself reads
    assert not error
    assert overrides["@jupyter-widgets/jupyterlab-manager:plugin"]["saveState"] is True


def test_a_finished_bar_reads_as_one_line_of_text():
    bar = bars.bar(total=4, desc="sft", unit="step", disable=False, file=open("/dev/null", "w"))
    for _ in range(4):
        bar.update()
    bar.set_postfix_str("tok/s=341")
    bar.close()
    line = bars._summary(bar)
    assert line.startswith("sft: 100%") and "4/4" in line and "tok/s=341" in line and "\n" not in line
    stopped = bars.bar(total=5, desc="dpo", disable=False, file=open("/dev/null", "w"))
    stopped.update(2)
    stopped.close()
    assert "2/5" in bars._summary(stopped) and "stopped early" in bars._summary(stopped)


def test_the_quiz_leaves_its_answers_as_plain_output(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHKIT_HOME", str(tmp_path))
    quiz = Quiz("99", [Question("Two plus two?", ["3", "4", "5"], 1, "It is four."),
                       Question("Capital of France?", ["Paris", "Lyon"], 0, "Paris.")])
    assert "no answers yet" in quiz.answers_html()
    quiz.answer(1, "b")
    quiz.answer(2, "b")
    bundle = quiz._answers_bundle()
    assert "1 b ✓" in bundle["text/plain"] and "2 b ✗" in bundle["text/plain"]
    assert "1/2" in bundle["text/plain"] and "<" not in bundle["text/plain"]
    json.dumps(bundle)          # it is plain output: it saves with the notebook as it is
