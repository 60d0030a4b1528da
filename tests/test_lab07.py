"""Lab 07 (synthetic pretraining): the checks accept the reference answers on many fresh
inputs, reject wrong ones with a message that names the slip, refuse the library's own
functions, and agree with the library they are checked against. The whole notebook runs
under the ci profile in tests/test_notebooks.py."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from synthkit import pretrain
from synthkit.labs import lab07
from labtests import solutions

CODING = [lab07.ex1, lab07.ex2, lab07.ex3]


def _solutions() -> dict:
    return solutions(CODING)


def test_lab_module_shape():
    assert lab07.LAB == "07" and lab07.NOTEBOOK == "07_synthetic_pretraining.ipynb"
    assert [ex.names for ex in CODING] == [("textbook_quality",), ("masked_perplexity",), ("mix_by_tokens",)]
    assert len(lab07.quiz.questions) >= 4 and len({q.answer for q in lab07.quiz.questions}) > 1


WRONG = {
    "ex2": [
        ("""
import numpy as np
def masked_perplexity(losses, mask):
    return float(np.exp(np.mean(losses)))
""", "padding included"),
        ("""
import numpy as np
def masked_perplexity(losses, mask):
    L, M = np.asarray(losses, float), np.asarray(mask, float)
    rows = [(l * m).sum() / m.sum() for l, m in zip(L, M) if m.sum()]
    return float(np.mean(np.exp(rows)))
""", "each row's perplexity"),
        ("""
import numpy as np
def masked_perplexity(losses, mask):
    L, M = np.asarray(losses, float), np.asarray(mask, float)
    return float((L * M).sum() / M.sum())
""", "exponential"),
        ("""
import numpy as np
def masked_perplexity(losses, mask):
    L, M = np.asarray(losses, float), np.asarray(mask, float)
    if M.sum() == 0:
        return float("nan")
    return float(2 ** ((L * M).sum() / M.sum()))
""", "nats"),
        ("""
import numpy as np
def masked_perplexity(losses, mask):
    L, M = np.asarray(losses, float), np.asarray(mask, float)
    return float(np.exp((L * M).sum() / M.sum())) if M.sum() else 0.0
""", "ValueError"),
        ("""
def masked_perplexity(losses, mask):
    import torch
    from synthkit.train.tiny import perplexity
    perplexity(None, None, [])
""", "your own code"),
    ],
    "ex3": [
        ("""
import random
def mix_by_tokens(real, synthetic, budget, share, seed=0):
    rng = random.Random(seed)
    out, n = [], round(share * budget)
    for docs, quota in ((synthetic, n), (real, budget - n)):
        for d in docs:
            if quota <= 0:
                break
            out.append(d[:quota]); quota -= len(d[:quota])
    return out
""", "tokens"),
        ("""
import random
def mix_by_tokens(real, synthetic, budget, share, seed=0):
    rng = random.Random(seed)
    n = round(share * budget)
    def take(docs, quota):
        if quota and not docs:
            raise ValueError("empty")
        out = []
        while quota:
            d = rng.choice(docs)[:quota]
            out.append(d); quota -= len(d)
        return out
    mixed = take(synthetic, n) + take(real, budget - n)
    rng.shuffle(mixed)
    return mixed
""", "once before repeating"),
        ("""
import random
def mix_by_tokens(real, synthetic, budget, share, seed=0):
    rng = random.Random(seed)
    def take(docs, quota):
        if quota and not docs:
            raise ValueError("empty")
        out = []
        while quota:
            for i in rng.sample(range(len(docs)), len(docs)):
                piece = docs[i][:quota]
                out.append(piece); quota -= len(piece)
                if not quota:
                    break
        return out
    n = round(share * budget)
    return take(synthetic, n) + take(real, budget - n)
""", "shuffle"),
        ("""
from synthkit.pretrain import mix_ids
def mix_by_tokens(real, synthetic, budget, share, seed=0):
    return mix_ids(real, synthetic, tokens=budget, share=share, seed=seed)
""", "your own code"),
    ],
    "ex1": [
        ("""
def textbook_quality(text, title):
    return [] if len(text.split()) >= 40 else ["short"]
""", "The rule"),
        ("""
import re
def textbook_quality(text, title):
    from synthkit.pretrain import quality_reasons
    return quality_reasons(text, title)
""", "your own code"),
    ],
}


_REF_MIX = textwrap.dedent(lab07.ex3.solution_code)
WRONG["ex3"].append((_REF_MIX.replace("seed=0):", "seed=1):"), "default is seed=0"))
_REF_QUALITY = textwrap.dedent(lab07.ex1.solution_code)
WRONG["ex1"] += [(_REF_QUALITY.replace("< 40", "<= 40"), "fewer than 40 is 'short'"),
                 (_REF_QUALITY.replace("len(w) >= 4", "len(w) > 4"), "it missed 'off-topic'"),
                 (_REF_QUALITY.replace("< 0.5", "<= 0.5"), "below 0.5 is 'repetitive'"),
                 (_REF_QUALITY.replace("words[2:]))", "words[3:]))"), "consecutive triples")]


@pytest.mark.parametrize("name, code, expect", [(n, c, e) for n, cases in WRONG.items() for c, e in cases])
def test_wrong_answers_fail_with_advice(name, code, expect):
    ex = {e.name: e for e in CODING}[name]
    ns: dict = {}
    exec(textwrap.dedent(code), ns)
    failures = [ex.grade(ns) for _ in range(4)]
    assert all(r.status != "pass" for r in failures), [str(r) for r in failures]
    assert any(expect in r.message for r in failures), [r.message for r in failures]


def test_ex1_reference_agrees_with_the_library_on_real_looking_text():
    ns = _solutions()
    rng = np.random.default_rng(0)
    real, _ = pretrain.real_documents()
    for d in rng.choice(len(real), 60, replace=False):
        doc = real[int(d)]
        for text in (doc["text"], doc["text"][: len(doc["text"]) // 2], "- " + doc["text"]):
            assert ns["textbook_quality"](text, doc["title"]) == pretrain.quality_reasons(text, doc["title"])
    assert tuple(ns["PREAMBLES"]) == pretrain.PREAMBLES  # the notebook shows the library's list


def test_ex1_boundary_cases_sit_exactly_on_each_rule():
    import random
    from fractions import Fraction

    def ratio(words, a, b, c):
        t = list(zip(words[a:], words[b:], words[c:]))
        return Fraction(len(set(t)), len(t))

    want = {"exactly 40 words": [], "39 words": ["short"], "distinct triples exactly half": [],
            "a 4-letter title word, absent": ["off-topic"], "a 4-letter title word, present": []}
    for seed in range(300):
        cases = lab07._boundary_cases(random.Random(seed))
        assert {probe for _, _, probe in cases} == set(want)
        for text, title, probe in cases:
            assert pretrain.quality_reasons(text, title) == want[probe], (probe, text, title)
            words = [w.lower() for w in text.split()]
            if probe == "exactly 40 words":
                assert len(words) == 40
            elif probe == "39 words":
                assert len(words) == 39
            elif probe == "distinct triples exactly half":
                assert ratio(words, 0, 1, 2) == Fraction(1, 2)
                for wrong in ((0, 2, 2), (0, 0, 2), (0, 1, 3), (0, 1, 1)):
                    assert ratio(words, *wrong) < Fraction(1, 2), wrong
            elif probe.startswith("a 4-letter"):
                assert len([w for w in title.split() if len(w) >= 4]) == 1
                assert len(next(w for w in title.split() if len(w) >= 4)) == 4
