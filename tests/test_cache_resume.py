"""A generation run killed halfway resumes without redoing or losing finished work."""
import os
import signal
import subprocess
import sys
import textwrap
import time

from synthkit import load_model
from synthkit.cache import GenerationCache
from synthkit.magpie import pre_query_template

N, MAX_TOKENS = 40, 40

SCRIPT = textwrap.dedent(f"""
    import sys
    from synthkit import load_model
    from synthkit.magpie import pre_query_template
    m = load_model(n_parallel=4, n_ctx=256)
    pre = pre_query_template(m.chat_template)
    m.generate(pre, n={N}, max_tokens={MAX_TOKENS}, seed=7, cache=sys.argv[1], progress=False)
    print("FINISHED")
""")


def test_kill_mid_run_then_resume(tmp_path):
    db = tmp_path / "gen.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(db)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 180
    done_before_kill = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                done_before_kill = len(GenerationCache(db))
            except Exception:
                done_before_kill = 0
            if done_before_kill >= 8:
                break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    assert "FINISHED" not in out, "the run finished before it could be killed; make it longer"
    saved = len(GenerationCache(db))
    assert 8 <= saved < N

    m = load_model(n_parallel=4, n_ctx=256)
    pre = pre_query_template(m.chat_template)
    resumed = m.generate(pre, n=N, max_tokens=MAX_TOKENS, seed=7, cache=str(db), progress=False)
    assert resumed.stats.from_cache == saved  # nothing finished was redone
    assert sum(not g.cached for g in resumed) == N - saved  # only the rest was generated
    assert len(GenerationCache(db)) == N

    # and what was saved before the kill is exactly what a clean run makes
    fresh = m.generate(pre, n=N, max_tokens=MAX_TOKENS, seed=7, cache=False, progress=False)
    cached_pairs = [(a.text, b.text) for a, b in zip(resumed, fresh) if a.cached]
    agree = sum(a == b for a, b in cached_pairs)
    assert agree >= len(cached_pairs) - 1, cached_pairs
