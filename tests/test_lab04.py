"""Lab 04 (rejection sampling): the checks accept the reference answers on many fresh inputs,
reject wrong ones with a message that names the slip, refuse the library's own functions,
and agree with the library they are checked against. The whole notebook runs under the ci
profile in tests/test_notebooks.py."""
from __future__ import annotations

import random
from pathlib import Path

import nbformat
import pytest

from synthkit import rejection, verify
from synthkit.grading.exercises import CodingExercise
from synthkit.labs import lab04
from labtests import solutions, assert_wrong_answers_fail

ROOT = Path(__file__).resolve().parents[1]
CODING = [lab04.ex1, lab04.ex2, lab04.ex3]


def _solutions() -> dict:
    return solutions(CODING)


def test_lab_module_shape():
    assert lab04.LAB == "04" and lab04.NOTEBOOK == "04_rejection_sampling.ipynb"
    assert all(isinstance(ex, CodingExercise) for ex in CODING)
    assert [ex.names for ex in CODING] == [("check_answer",), ("pass_at_k",), ("majority_vote",)]
    assert len(lab04.quiz.questions) >= 4
    assert len({q.answer for q in lab04.quiz.questions}) > 1
    # the seed's question 2: which quality signal decides what to keep
    assert any("quality signal" in q.text for q in lab04.quiz.questions)


WRONG = {
    "ex1": [
        ("""
def check_answer(reply, answer):
    from synthkit.data import extract_answer
    return extract_answer(reply) == str(answer)
""", "this case tests"),
        ("""
import re
def check_answer(reply, answer):
    found = re.findall(r"answer\\s*:\\s*(-?[\\d,]+)", reply, re.I)
    return bool(found) and found[0].replace(",", "") == str(answer)
""", "this case tests"),
        ("""
def check_answer(reply, answer):
    return str(answer) in reply
""", "this case tests"),
        ("""
import re
def check_answer(reply, answer):
    lines = re.findall(r"^[ *]*answer[ *]*:[ *]*(.*)$", reply, re.I | re.M)
    m = re.match(r"-?\\d[\\d,]*(?:\\.\\d+)?", lines[-1]) if lines else None
    if not m:
        return False
    number = m.group(0).replace(",", "").split(".")[0]   # drops 12.50's decimals too
    return ("0" if number == "-0" else number) == str(answer)
""", "a decimal part that is not all zeros"),
        ("""
import re
def check_answer(reply, answer):
    lines = re.findall(r"^[ *]*answer[ *]*:[ *]*(.*)$", reply, re.I | re.M)
    m = re.match(r"-?\\d[\\d,]*(?:\\.\\d+)?", lines[-1]) if lines else None
    if not m:
        return False
    number = m.group(0).replace(",", "")                 # keeps 12.0's zeros
    return ("0" if number == "-0" else number) == str(answer)
""", "decimal part"),  # named by the zeros case or a right answer written 1,250.0
        ("""
def check_answer(reply, answer):
    from synthkit.verify import check_number
    return check_number(reply, answer).passed
""", "your own code"),
    ],
    "ex2": [
        ("""
def pass_at_k(n, c, k):
    return 1 - (1 - c / n) ** k
""", "replacement"),
        ("""
def pass_at_k(n, c, k):
    return c / n
""", "pass@1"),
        ("""
import math
def pass_at_k(n, c, k):
    if n - c < k:
        return 1.0
    return 1 - math.factorial(n - c) / math.factorial(n - c - k) * math.factorial(n - k) / math.factorial(n)
""", "pass_at_k(n="),
        ("""
from synthkit.metrics import pass_at_k as p
def pass_at_k(n, c, k):
    return p(n, c, k)
""", "your own code"),
    ],
    "ex3": [
        ("""
from collections import Counter
def majority_vote(answers):
    counts = Counter(answers)
    return counts.most_common(1)[0][0] if counts else None
""", "this case tests"),
        ("""
from collections import Counter
def majority_vote(answers):
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    top = counts.most_common()
    if len(top) > 1 and top[0][1] == top[1][1]:
        return None
    return top[0][0]
""", "A tie still has a winner"),
        ("""
from collections import Counter
def majority_vote(answers):
    counts = Counter(a for a in answers if a is not None)
    return max(sorted(counts), key=counts.get) if counts else None
""", "a tie"),
        ("""
def majority_vote(answers):
    from synthkit import rejection
    return rejection.majority_vote(answers)
""", "your own code"),
    ],
}


@pytest.mark.parametrize("ex", CODING, ids=lambda e: e.name)
def test_wrong_answers_fail_with_a_useful_message(ex):
    assert_wrong_answers_fail(ex, WRONG[ex.name], tries=10)  # a few slips are named on ~3 draws in 4


def test_references_agree_with_the_library():
    rng = random.Random(0)
    for _ in range(20):
        for answers, _probe in lab04._vote_cases(rng):
            assert lab04.reference_vote(answers) == rejection.majority_vote(answers)
    ns = _solutions()
    for _ in range(20):
        for reply, answer, _probe in lab04._reply_cases(rng):
            assert ns["check_answer"](reply, answer) == verify.check_number(reply, answer).passed, reply
    for n, c, k in [(10, 3, 4), (1, 1, 1), (12, 0, 5), (7, 6, 2)]:
        assert float(lab04._brute_pass_at_k(n, c, k)) == pytest.approx(rejection.pass_at_k(
            [{"task_id": "t", "correct": i < c} for i in range(n)], k))


def test_lab_copy_is_current_and_keeps_no_solution():
    from synthkit.grading.assign import render_lab

    solution = ROOT / "solutions" / lab04.NOTEBOOK
    lab = ROOT / "labs" / lab04.NOTEBOOK
    assert lab.read_text(encoding="utf-8") == render_lab(solution), "run `synthkit assign`"
    text = "\n".join(c.source for c in nbformat.read(lab, as_version=4).cells)
    for leak in ("np.arange(n - c + 1", "counts[a] == best", "re.I | re.M", "The exact verifier rejected every"):
        assert leak not in text, leak
    assert text.count("raise NotImplementedError") == 3
    header = nbformat.read(solution, as_version=4).cells[0].source
    assert "Measured run time" in header


def test_notebook_decides_every_comparison_with_the_paired_test():
    """Before/after and arm-vs-arm on the same held-out problems are paired: McNemar on the
    per-problem outcomes, never whether two intervals overlap."""
    text = "\n".join(c.source for c in nbformat.read(ROOT / "solutions" / lab04.NOTEBOOK, as_version=4).cells)
    assert "def apart" not in text and "overlap" not in text
    assert '["ci"][0] >' not in text and '["ci"][1] <' not in text
    assert text.count("metrics.paired_difference(") >= 4
    # the majority-vote explanation comes from the winners' vote counts, not from pass@K
    assert "rejection.vote_tally(samples)" in text and "pass_curve[-1] / 2" not in text


def test_quiz_says_what_the_control_and_star_really_do():
    whys = " ".join(q.why for q in lab04.quiz.questions)
    assert "same prompts" not in whys
    star = next(q for q in lab04.quiz.questions if q.text.startswith("STaR"))
    assert "original" in star.choices[star.answer]
