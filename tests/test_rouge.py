"""ROUGE-L and the Self-Instruct filters agree with rouge-score, decision for decision."""
from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer, tokenize

from synthkit.data import plant_near_duplicates, seed_tasks, wiki_sentences
from synthkit.self_instruct import (ALPACA_BLACKLIST, BLACKLIST, _f1, filter_instructions,
                                    instruction_ok, lcs_length, rejection_reason, rouge_l,
                                    rouge_l_filter, rouge_tokenize)

SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def reference_score(a: str, b: str) -> float:
    return SCORER.score(a, b)["rougeL"].fmeasure


def reference_filter(candidates, pool=(), threshold=0.7):
    kept = []
    for c in candidates:
        if all(reference_score(x, c) <= threshold for x in [*pool, *kept]):
            kept.append(c)
    return kept


AWKWARD = [
    "", " ", "\t\n  \r", "...", "?!", "—–-", "😀🎉", "Hello, world!", "hello world",
    "HELLO   WORLD!!!", "Café au lait, s'il vous plaît.", "cafe au lait s il vous plait",
    "naïve façade — résumé", "İstanbul KELVIN \u212a", "Ünïcödé ÅÆØ straße ß", "日本語のテキスト",
    "Привет мир", "3.14159 is pi; 2,718 is e", "3 14159 is pi 2 718 is e", "route 66 route 66",
    "the the the the the the", "the the the", "don't stop-believing", "dont stop believing",
    "x" * 500, "a1b2c3 d4e5", "snake_case and CamelCase", "tab\tseparated\tvalues",
    "new\nline", "emoji 😀 between words 🎉 here",
    " ".join(["word"] * 300), " ".join(f"w{i % 37}" for i in range(800)),
]


def test_tokenizer_is_rouge_scores_default():
    assert type(SCORER._tokenizer).__name__ == "DefaultTokenizer"
    for text in AWKWARD:
        expected = SCORER._tokenizer.tokenize(text)
        assert rouge_tokenize(text) == tokenize.tokenize(text, None) == expected


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_tokenizer_on_any_unicode(text):
    assert rouge_tokenize(text) == tokenize.tokenize(text, None)


def test_rouge_l_on_awkward_pairs():
    for a, b in itertools.product(AWKWARD, repeat=2):
        assert rouge_l(a, b) == reference_score(a, b), (a, b)


def test_lcs_matches_dynamic_programming():
    rng = random.Random(0)
    for _ in range(500):
        a = [rng.randrange(4) for _ in range(rng.randrange(0, 70))]
        b = [rng.randrange(4) for _ in range(rng.randrange(0, 70))]
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i, j in itertools.product(range(len(a)), range(len(b))):
            table[i + 1][j + 1] = (table[i][j] + 1 if a[i] == b[j]
                                   else max(table[i][j + 1], table[i + 1][j]))
        assert lcs_length(a, b) == table[-1][-1]


@pytest.fixture(scope="module")
def real_candidates():
    sentences = random.Random(1).sample(wiki_sentences("en"), 180)
    texts, pairs = plant_near_duplicates(sentences, 60, max_edits=6, seed=1)
    return texts, pairs


def test_rouge_l_on_real_near_duplicates(real_candidates):
    texts, pairs = real_candidates
    scores = [rouge_l(texts[i], texts[j]) for i, j in pairs]
    assert scores == [reference_score(texts[i], texts[j]) for i, j in pairs]
    assert min(scores) < 0.7 < max(scores)      # the planted pairs straddle the threshold


@pytest.mark.parametrize("threshold", [0.5, 0.7])
def test_filter_on_real_text(real_candidates, threshold):
    texts, _ = real_candidates
    pool = [t["instruction"] for t in seed_tasks()][:20] + texts[:5]
    kept = rouge_l_filter(texts, pool, threshold)
    assert kept == reference_filter(texts, pool, threshold)
    assert 0 < len(kept) < len(texts)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 2 / 3, 0.7, 1.0, 1.5])
def test_filter_on_awkward_text(threshold):
    candidates = AWKWARD + AWKWARD[::3] + ["", "the the", "Route 66!"]
    for pool in ([], ["hello there world", "", "the"]):
        assert rouge_l_filter(candidates, pool, threshold) == reference_filter(candidates, pool, threshold)


def test_filter_edge_cases():
    assert rouge_l_filter([]) == []
    assert rouge_l_filter(["same text", "same text", "Same, TEXT!"]) == ["same text"]
    assert rouge_l_filter(["", "", "..."]) == ["", "", "..."]   # no tokens: score 0
    assert rouge_l_filter(iter(["a b", "c d"]), iter(["a b"])) == ["c d"]
    assert rouge_l_filter(["a", "b", "c"], threshold=-0.1) == reference_filter(["a", "b", "c"], (), -0.1)
    with pytest.raises(ValueError):
        rouge_l_filter(["a"], threshold=float("nan"))


# Every F1 that two texts of at most 8 tokens can reach: thresholds where ties happen.
TIES = sorted({_f1(lcs, la, lb) for la in range(1, 9) for lb in range(1, 9)
               for lcs in range(0, min(la, lb) + 1)})
WORDS = ["a", "b", "c", "A", "b!", "c,", "...", "7", "é"]
short_text = st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join)
threshold = st.one_of(st.sampled_from([0.5, 0.7, 2 / 3, 0.0, 1.0]), st.sampled_from(TIES),
                      st.floats(0, 1))


@settings(max_examples=400, deadline=None)
@given(st.lists(short_text, max_size=14), st.lists(short_text, max_size=4), threshold)
def test_filter_property(candidates, pool, threshold):
    assert rouge_l_filter(candidates, pool, threshold) == reference_filter(candidates, pool, threshold)


@settings(max_examples=300, deadline=None)
@given(short_text, short_text)
def test_rouge_l_property(a, b):
    assert rouge_l(a, b) == reference_score(a, b) == rouge_l(b, a)


# ---------------------------------------------------------------------------------------
# The paper's instruction rules
# ---------------------------------------------------------------------------------------


def test_instruction_rules():
    assert instruction_ok("Name three rivers in Africa.")
    assert "too short" in rejection_reason("Name rivers")
    # the reference code drops 3 words or fewer: 4 is the shortest instruction kept
    assert "too short" in rejection_reason("Name three rivers.")
    assert instruction_ok("Name three African rivers.")
    assert "too long" in rejection_reason("word " * 151)
    assert instruction_ok(" ".join(["word"] * 150))
    assert "needs more than text" in rejection_reason("Draw a cat wearing a hat.")
    assert "needs more than text" in rejection_reason("Describe the IMAGES below in detail.")
    assert "needs more than text" in rejection_reason("Please go to the shop and buy milk.")
    assert instruction_ok("Explain what a mapping between two sets is.")   # 'map' only as a word
    assert instruction_ok("Describe the profile of a good teacher.")       # 'file' inside a word
    assert rejection_reason("- List three colours of the rainbow.") == "starts with punctuation"
    assert rejection_reason("Écris trois mots en français.") == "starts with a non-ASCII character"
    # "Write a program" at the start, in any case (the paper capitalised instructions first)
    assert "Write a program" in rejection_reason("Write a program that adds two numbers.")
    assert "Write a program" in rejection_reason("write a PROGRAM that adds two numbers.")
    assert instruction_ok("Explain how to write a program that adds numbers.")


def test_blacklists_are_the_papers_and_alpacas():
    assert len(BLACKLIST) == 13 and "go to" in BLACKLIST and "video" not in BLACKLIST
    assert ALPACA_BLACKLIST == BLACKLIST + ("video", "audio", "music", "flowchart", "diagram")
    text = "Compose some music for a birthday party."
    assert instruction_ok(text, BLACKLIST)                      # the paper's rules keep it
    assert "needs more than text" in rejection_reason(text)   # the default (Alpaca's) list drops it
    assert instruction_ok("Draw a cat wearing a hat.", ())     # an empty blacklist forbids nothing


def test_filter_instructions_keeps_order_and_reasons():
    texts = ["Give two synonyms for happy.", "Plot the sales figures by month.", "Hi",
             "Summarise this paragraph in one line."]
    kept, rejected = filter_instructions(texts)
    assert kept == [texts[0], texts[3]]
    assert [t for t, _ in rejected] == [texts[1], texts[2]]
    assert all(instruction_ok(t["instruction"]) for t in seed_tasks())
