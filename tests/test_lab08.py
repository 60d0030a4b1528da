"""Lab 08 (model collapse): the checks accept the reference answers on many fresh inputs,
reject wrong ones with a message that names the slip, refuse the library's own functions,
and agree with the library they are checked against. The whole notebook runs under the ci
profile in tests/test_notebooks.py."""
from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest

from synthkit import collapse
from synthkit.grading.exercises import CodingExercise
from synthkit.labs import lab08
from labtests import solutions, assert_wrong_answers_fail

ROOT = Path(__file__).resolve().parents[1]
CODING = [lab08.ex1, lab08.ex2, lab08.ex3]


def _solutions() -> dict:
    return solutions(CODING)


def test_lab_module_shape():
    assert lab08.LAB == "08" and lab08.NOTEBOOK == "08_model_collapse.ipynb"
    assert all(isinstance(ex, CodingExercise) for ex in CODING)
    assert [ex.names for ex in CODING] == [("gaussian_step",), ("expected_survivors",), ("unigram_entropy",)]
    assert len(lab08.quiz.questions) >= 4
    assert len({q.answer for q in lab08.quiz.questions}) > 1
    # the seed's question 3: the root cause of model collapse
    assert any("root cause" in q.text for q in lab08.quiz.questions)


WRONG = {
    "ex1": [
        ("""
import numpy as np
def gaussian_step(data, n, regime, seed):
    data = np.asarray(data, dtype=float)
    new = np.random.default_rng(seed).normal(data.mean(), data.std(ddof=1), size=n)
    return new if regime == "replace" else np.concatenate([data, new])
""", "N-1"),
        ("""
import numpy as np
def gaussian_step(data, n, regime, seed):
    data = np.asarray(data, dtype=float)
    new = np.random.default_rng(seed).normal(data.mean(), data.var(), size=n)
    return new if regime == "replace" else np.concatenate([data, new])
""", "standard deviation as its scale"),
        ("""
import numpy as np
def gaussian_step(data, n, regime, seed):
    data = np.asarray(data, dtype=float)
    return np.random.default_rng(seed).normal(data.mean(), data.std(), size=n)
""", "old data *and* the n new points"),
        ("""
import numpy as np
def gaussian_step(data, n, regime, seed):
    data = np.asarray(data, dtype=float)
    new = np.random.normal(data.mean(), data.std(), size=n)
    return new if regime == "replace" else np.concatenate([data, new])
""", "same seed"),
        ("""
import numpy as np
def gaussian_step(data, n, regime, seed):
    data = np.asarray(data, dtype=float)
    new = np.random.default_rng(seed).normal(0.0, data.std(), size=n)
    return new if regime == "replace" else np.concatenate([data, new])
""", "centred on"),
        ("""
from synthkit.collapse import gaussian_step as step
def gaussian_step(data, n, regime, seed):
    return step(data, n, regime, rng=seed)
""", "your own code"),
    ],
    "ex2": [
        ("""
import numpy as np
def expected_survivors(probs, n):
    p = np.asarray(probs, dtype=float)
    return float(((1 - p) ** n).sum())
""", "missed"),
        ("""
import numpy as np
def expected_survivors(probs, n):
    p = np.asarray(probs, dtype=float)
    return float(np.minimum(1.0, n * p).sum())
""", "expected number of draws"),
        ("""
import numpy as np
def expected_survivors(probs, n):
    p = np.asarray(probs, dtype=float)
    return float((1 - (1 - p) ** n).sum())
""", "expm1"),
        ("""
import numpy as np
def expected_survivors(probs, n):
    p = np.asarray(probs, dtype=float)
    return 1 - (1 - p) ** n
""", "return one number"),
        ("""
from synthkit import collapse
def expected_survivors(probs, n):
    return collapse.expected_survivors(probs, n)
""", "your own code"),
    ],
    "ex3": [
        ("""
import math
from collections import Counter
from synthkit.collapse import words
def unigram_entropy(texts):
    counts = Counter(w for t in texts for w in words(t))
    total = sum(counts.values())
    return -sum(k / total * math.log(k / total) for k in counts.values()) if total else 0.0
""", "nats"),
        ("""
import math
from collections import Counter
def unigram_entropy(texts):
    counts = Counter(w for t in texts for w in t.split())
    total = sum(counts.values())
    return -sum(k / total * math.log2(k / total) for k in counts.values()) if total else 0.0
""", "str.split()"),
        ("""
import math
from synthkit.collapse import words
def unigram_entropy(texts):
    vocab = {w for t in texts for w in words(t)}
    return math.log2(len(vocab)) if vocab else 0.0
""", "equally common"),
        ("""
import math
from collections import Counter
from synthkit.collapse import words
def unigram_entropy(texts):
    def h(t):
        counts = Counter(words(t))
        total = sum(counts.values())
        return -sum(k / total * math.log2(k / total) for k in counts.values()) if total else 0.0
    return sum(h(t) for t in texts) / len(texts) if texts else 0.0
""", "Pool the words"),
        ("""
from synthkit.collapse import unigram_entropy as h
def unigram_entropy(texts):
    return h(texts)
""", "your own code"),
    ],
}


@pytest.mark.parametrize("ex", CODING, ids=lambda e: e.name)
def test_wrong_answers_fail_with_a_useful_message(ex):
    assert_wrong_answers_fail(ex, WRONG[ex.name], tries=4)


def test_references_agree_with_the_library():
    ns = _solutions()
    rng = np.random.default_rng(0)
    for _ in range(20):
        data = rng.normal(size=int(rng.integers(2, 9)))
        for regime in ("replace", "accumulate"):
            assert np.array_equal(ns["gaussian_step"](data, 7, regime, 5), collapse.gaussian_step(data, 7, regime, rng=5))
    import random
    r = random.Random(0)
    for probs, n, _probe in lab08._survivor_cases(r):
        assert lab08._reference_survivors(probs, n) == pytest.approx(collapse.expected_survivors(probs, n), rel=1e-12)
        assert ns["expected_survivors"](probs, n) == pytest.approx(collapse.expected_survivors(probs, n), rel=1e-12)
    for texts, _probe in lab08._entropy_cases(r):
        assert ns["unigram_entropy"](texts) == pytest.approx(collapse.unigram_entropy(texts), abs=1e-12)


def test_lab_copy_is_current_and_keeps_no_solution():
    from synthkit.grading.assign import render_lab

    solution = ROOT / "solutions" / lab08.NOTEBOOK
    lab = ROOT / "labs" / lab08.NOTEBOOK
    assert lab.read_text(encoding="utf-8") == render_lab(solution), "run `synthkit assign`"
    text = "\n".join(c.source for c in nbformat.read(lab, as_version=4).cells)
    for leak in ("np.log1p(-p)", "data.std(), size=n", "math.log2(k / total)", "I count collapse as significant"):
        assert leak not in text, leak
    assert text.count("raise NotImplementedError") == 3
    header = nbformat.read(solution, as_version=4).cells[0].source
    assert "Measured run time" in header
