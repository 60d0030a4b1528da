"""Rejection sampling: the verifiers (numbers and code, with hangs and crashes), the vote,
pass@k against brute force, the signal error rates, the records, and the CLI on the real
teacher."""
from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthkit import rejection, verify
from synthkit.data import arithmetic_tasks, code_tasks
from synthkit.metrics import pass_at_k

ROOT = Path(__file__).resolve().parents[1]


# --- the number verifier ---------------------------------------------------------------

@pytest.mark.parametrize("reply, expected", [
    ("Answer: 42", "42"),
    ("17 + 25 = 42\nAnswer: 42.", "42"),
    ("**Answer:** 1,250", "1250"),
    ("  answer : -7 apples", "-7"),
    ("Answer: 12\nwait, no\nAnswer: 13", "13"),
    ("Answer: 12\nAnswer: not sure", None),          # the last answer line decides
    ("So the answer: 5", None),                       # not at the start of a line
    ("The total is 42.", None),                       # no answer line at all
    ("Answer: 42.0", "42"),
    ("Answer: -0", "0"),
    ("", None),
])
def test_final_answer(reply, expected):
    assert verify.final_answer(reply) == expected
    assert verify.answer_form(reply) == (expected is not None)


def test_exact_and_lax_verifiers_disagree_where_they_should():
    # the right number in the working, a wrong final answer: lax accepts, exact rejects
    reply = "17 + 25 = 42, then I add 1.\nAnswer: 43"
    assert not verify.check_number(reply, "42") and verify.check_number(reply, "42").reason == "wrong number"
    assert verify.check_number_lax(reply, "42")
    # a copy of the question's number satisfies the lax checker by accident
    assert verify.check_number_lax("What is 42 + 0? I think 7.", "42")
    # right but not in the form: exact rejects it for its form
    assert verify.check_number("The sum is 42.", "42").reason == "no 'Answer: <number>' line"
    assert verify.check_number("Answer: 42", "42") and verify.check_number("Answer: 42", 42)
    # lax accepts everything exact accepts
    rng = random.Random(0)
    for _ in range(300):
        a = rng.randint(-50, 500)
        text = rng.choice(["", "so ", "Answer: ", "answer:", "**Answer:** "]) + str(rng.randint(-50, 500)) + \
            rng.choice(["", "\nAnswer: " + str(a), " and " + str(a)])
        if verify.check_number(text, str(a)):
            assert verify.check_number_lax(text, str(a)), text


# --- the code verifier -----------------------------------------------------------------

GOOD = "def add_3(x):\n    return x + 3"
TESTS = "assert add_3(1) == 4, 'add_3(1) should be 4'\nassert add_3(-3) == 0, 'add_3(-3) should be 0'"


def test_code_verifier_passes_right_code_and_names_failures():
    assert verify.run_tests(GOOD, TESTS) == verify.Verdict(True, "all tests passed")
    v = verify.run_tests("def add_3(x):\n    return x + 2", TESTS)
    assert not v and v.reason == "failed test: add_3(1) should be 4"
    v = verify.run_tests("def add_3(x:\n    return x", TESTS)
    assert not v and v.reason.startswith("error: SyntaxError")
    v = verify.run_tests("def add_3(x):\n    return undefined_name", TESTS)
    assert not v and "NameError" in v.reason
    assert verify.run_tests("", TESTS).reason == "no code"


def test_code_verifier_stops_an_infinite_loop_at_its_time_limit():
    start = time.perf_counter()
    v = verify.run_tests("def add_3(x):\n    while True:\n        pass", TESTS, timeout=1.0)
    took = time.perf_counter() - start
    assert not v and v.reason == "timeout after 1 s"
    assert took < 5, f"the time limit did not stop the child ({took:.1f} s)"


def test_code_verifier_survives_a_crash_and_an_early_exit():
    v = verify.run_tests("import os\nos.abort()", TESTS)
    assert not v and v.reason == "crashed (SIGABRT)"
    # exiting with status 0 before the tests run must not pass
    for trick in ("import sys\nsys.exit(0)", "import os\nos._exit(0)", "raise SystemExit"):
        v = verify.run_tests(trick + "\n" + GOOD, TESTS)
        assert not v, trick
    # printing what looks like success does not pass either
    assert not verify.run_tests(GOOD + "\nprint('all tests passed')\nimport sys; sys.exit(0)", TESTS)


def test_code_verifier_caps_memory():
    v = verify.run_tests("x = bytearray(4 * 1024 ** 3)", TESTS)
    assert not v and "MemoryError" in v.reason


def test_code_verifier_rejects_a_bad_timeout():
    with pytest.raises(ValueError, match="timeout"):
        verify.run_tests(GOOD, TESTS, timeout=0)


def test_extract_code_reads_fenced_and_bare_replies():
    reply = "Sure!\n```python\ndef add_3(x):\n    return x + 3\n```\nThis adds three."
    assert verify.extract_code(reply) == GOOD
    assert verify.extract_code("def add_3(x):\n    return x + 3") == GOOD
    assert verify.extract_code("```\nprint(1)\n```") == "print(1)"
    assert verify.extract_code("I cannot write code.") is None
    assert verify.check_code(reply, TESTS)
    assert verify.check_code("I cannot write code.", TESTS).reason == "no code in reply"


def test_code_tasks_are_deterministic_and_their_references_pass():
    tasks = code_tasks(24, seed=2)
    assert tasks == code_tasks(24, seed=2) and tasks != code_tasks(24, seed=3)
    assert len({t["entry"].rstrip("0123456789") for t in tasks}) >= 4, "too few kinds of function"
    for t in tasks:
        assert t["kind"] == "code" and f"`{t['entry']}(" in t["question"]
        assert t["tests"].count("assert ") == 5
        assert verify.run_tests(t["answer"], t["tests"]), t
        # a function that ignores its input fails at least one test
        stub = t["answer"].split("\n")[0] + "\n    return None"
        assert not verify.run_tests(stub, t["tests"])


# --- the vote, pass@k and the curves ---------------------------------------------------

@pytest.mark.parametrize("answers, winner", [
    ([], None), ([None, None], None), (["3"], "3"), (["3", "4", "4"], "4"),
    (["4", "3", "3", "4"], "4"), (["3", "4", "3", "4"], "3"),       # ties: the first seen
    ([None, None, None, "7", "8", "8"], "8"),                        # None never wins
    (["10", "9", "9", "10"], "10"),
])
def test_majority_vote(answers, winner):
    assert rejection.majority_vote(answers) == winner


def test_pass_at_k_matches_a_count_over_every_subset():
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                subsets = list(itertools.combinations([True] * c + [False] * (n - c), k))
                assert pass_at_k(n, c, k) == pytest.approx(sum(map(any, subsets)) / len(subsets))
    # large n: stable, and equal to exact integer arithmetic
    from fractions import Fraction
    from math import comb
    for n, c, k in [(100_000, 3, 1000), (50_000, 400, 2000), (2_000, 1, 1)]:
        exact = float(1 - Fraction(comb(n - c, k), comb(n, k)))
        assert pass_at_k(n, c, k) == pytest.approx(exact, rel=1e-9)


def _candidates(rows):
    """Candidates from (task id, answer, correct) rows, signals added."""
    out = []
    for i, (tid, answer, correct) in enumerate(rows):
        out.append({"task_id": tid, "sample": i, "prompt": f"q {tid}", "reply": f"Answer: {answer}",
                    "answer": answer, "correct": correct, "reason": "", "provenance": {}})
    return out


def test_signal_errors_and_curves_on_a_known_table():
    rows = [("a", "5", True), ("a", "6", False), ("a", "6", False), ("a", None, False),
            ("b", "1", True), ("b", "1", True), ("b", "2", False), ("b", "1", True)]
    cands = _candidates(rows)
    tasks = [{"id": "a", "question": "q", "answer": "5"}, {"id": "b", "question": "q", "answer": "1"}]
    rejection.add_signals(cands, tasks)
    # majority keeps the two 6s on a (wrong) and the three 1s on b (right)
    assert [c["signals"]["majority"] for c in cands] == [False, True, True, False, True, True, False, True]
    e = rejection.signal_errors(cands, "majority")
    assert (e["accepted"], e["false_accepts"], e["false_rejects"]) == (5, 2, 1)
    assert e["false_accept_rate"] == pytest.approx(2 / 4) and e["false_reject_rate"] == pytest.approx(1 / 4)
    assert e["precision"] == pytest.approx(3 / 5)
    exact = rejection.signal_errors(cands, "exact")
    assert exact["false_accept_rate"] == 0 and exact["false_reject_rate"] == 0
    # curves: best-of-k with the exact verifier is pass@k; majority@4 is the full vote
    for k in range(1, 5):
        assert rejection.select_at_k(cands, k, "exact") == pytest.approx(rejection.pass_at_k(cands, k))
    assert rejection.majority_at_k(cands, 4) == pytest.approx(0.5)    # a loses the vote, b wins it
    assert rejection.majority_at_k(cands, 1) == pytest.approx(rejection.pass_at_k(cands, 1))


def test_vote_tally_tells_a_shared_mistake_from_a_tie_break():
    rows = [("a", "6", False), ("a", "6", False), ("a", "5", True), ("a", None, False),   # 6 backed twice
            ("b", "7", False), ("b", "8", False), ("b", "1", True), ("b", "9", False),    # all differ: 7 first
            ("c", "1", True), ("c", "1", True), ("c", "2", False), ("c", "2", False),     # tie, right one first
            ("d", None, False), ("d", None, False)]                                     # nothing readable
    tally = {t["task_id"]: t for t in rejection.vote_tally(_candidates(rows))}
    assert [tally[t]["winner"] for t in "abcd"] == ["6", "7", "1", None]
    assert [tally[t]["votes"] for t in "abcd"] == [2, 1, 2, 0]
    assert [tally[t]["right"] for t in "abcd"] == [False, False, True, False]
    assert [tally[t]["tie"] for t in "abcd"] == [False, True, True, False]
    assert [tally[t]["readable"] for t in "abcd"] == [3, 4, 4, 0]
    assert all(tally[t]["attempts"] == (2 if t == "d" else 4) for t in "abcd")


def test_task_diversity_is_what_attempt_diversity_averages():
    cands = _candidates([("a", "5", True), ("a", "5", True), ("a", "6", False), ("b", "1", True)])
    per_task = rejection.task_diversity(cands)
    assert [t["task_id"] for t in per_task] == ["a", "b"]
    assert [t["distinct_replies"] for t in per_task] == [pytest.approx(2 / 3), 1.0]
    assert [t["distinct_answers"] for t in per_task] == [2, 1]
    overall = rejection.attempt_diversity(cands)
    assert overall["distinct_replies"] == pytest.approx((2 / 3 + 1) / 2)
    assert overall["distinct_answers"] == pytest.approx(1.5)


class _Scripted:
    """A stand-in model that replies from a script, one reply per prompt (for `evaluate`)."""

    def __init__(self, replies):
        self.replies = replies

    def chat(self, conversations, sampling, n=1, **_):
        from synthkit.models.base import Generation
        return [Generation(prompt="", text=self.replies[i], finish_reason="stop", prompt_tokens=1,
                           completion_tokens=len(self.replies[i].split()))
                for i in range(len(conversations)) for _ in range(n)]


def test_evaluate_gives_each_problems_outcome_in_task_order():
    tasks = [{"id": f"t{i}", "question": f"{i} + 1?", "answer": str(i + 1)} for i in range(4)]
    replies = ["Answer: 1", "1 + 1 = 2", "Answer: 4", "it is 3, so\nAnswer: 5"]
    r = rejection.evaluate(_Scripted(replies), tasks, progress=False, cache=False)
    assert r["correct"] == [True, False, False, False]
    assert r["in_form_each"] == [True, False, True, True]
    assert r["lenient_each"] == [True, True, False, False]
    assert (r["accuracy"], r["in_form"], r["lenient"]) == (0.25, 0.75, 0.5)


def test_records_keep_the_verdict_and_drop_duplicates():
    rows = [("a", "5", True), ("a", "5", True), ("a", "6", False), ("b", "1", True)]
    cands = _candidates(rows)
    tasks = [{"id": "a", "question": "q", "answer": "5"}, {"id": "b", "question": "q", "answer": "1"}]
    rejection.add_signals(cands, tasks)
    kept, rejected = rejection.to_records(cands, "exact")
    assert [r["task_id"] for r in kept] == ["a", "b"]
    assert {r["verdict"]["reason"] for r in rejected} == {"duplicate of an accepted reply", ""}
    assert all(set(r) >= {"prompt", "response", "verdict", "provenance"} for r in kept + rejected)
    assert all(r["verdict"]["signal"] == "exact" for r in kept + rejected)
    with pytest.raises(ValueError, match="judge"):
        rejection.to_records(cands, "judge")
    with pytest.raises(ValueError, match="unknown signal"):
        rejection.to_records(cands, "vibes")


def test_wilson_interval():
    lo, hi = rejection.wilson_interval(0, 20)
    assert lo == 0 and 0.1 < hi < 0.2
    lo, hi = rejection.wilson_interval(57, 100)
    assert lo < 0.57 < hi and hi - lo == pytest.approx(0.19, abs=0.01)
    with pytest.raises(ValueError):
        rejection.wilson_interval(3, 0)


# --- on the real teacher -----------------------------------------------------------------

def test_rejection_sample_on_the_teacher(llama_model):
    tasks = rejection.with_ids(arithmetic_tasks(4, seed=9), "t")
    kept, rejected = rejection.rejection_sample(llama_model, tasks, k=3, seed=1, progress=False,
                                                sampling=rejection.SAMPLING.replace(max_tokens=96))
    assert len(kept) + len(rejected) == 12
    for r in kept:
        task = next(t for t in tasks if t["id"] == r["task_id"])
        assert verify.check_number(r["response"], task["answer"])
        assert r["verdict"]["accepted"] and r["provenance"]["technique"] == "rejection-sampling"
    for r in rejected:
        assert not r["verdict"]["accepted"] and r["verdict"]["reason"]
    # a second run is served from the cache, record for record
    again = rejection.rejection_sample(llama_model, tasks, k=3, seed=1, progress=False,
                                       sampling=rejection.SAMPLING.replace(max_tokens=96))
    assert again == (kept, rejected)


def test_cli_writes_accepted_and_rejected_records(tmp_path):
    out = tmp_path / "solved.jsonl"
    run = subprocess.run([sys.executable, "-m", "synthkit.cli", "rejection-sample", "--tasks", "arithmetic",
                          "--n", "2", "--k", "2", "--max-tokens", "64", "--out", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    rejected = tmp_path / "solved.rejected.jsonl"
    records = [json.loads(line) for f in (out, rejected) for line in f.read_text().splitlines()]
    assert len(records) == 2 * 2 * 2   # add and mul, 2 problems each, 2 attempts
    for r in records:
        assert r["verdict"]["signal"] == "exact" and isinstance(r["verdict"]["accepted"], bool)
        assert r["prompt"] and "response" in r and r["provenance"]["model"]
    bad = subprocess.run([sys.executable, "-m", "synthkit.cli", "rejection-sample", "--tasks", "poetry",
                          "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert bad.returncode == 2 and "unknown task family" in bad.stderr and "arithmetic" in bad.stderr
