"""Lab 02 (Self-Instruct): the checks accept the reference answers and reject wrong ones, the
rules reference agrees with the library, and the bootstrap loop's round history adds up."""
from __future__ import annotations

import random
import textwrap
from pathlib import Path

import nbformat
import pytest

from synthkit import self_instruct as si
from synthkit.data import seed_tasks
from synthkit.grading.exercises import CodingExercise
from synthkit.labs import lab02

ROOT = Path(__file__).resolve().parents[1]
CODING = [lab02.ex1, lab02.ex2, lab02.ex3, lab02.ex4]


def _namespace(*codes: str) -> dict:
    ns = {"BLACKLIST": si.BLACKLIST, "rouge_tokenize": si.rouge_tokenize}
    for code in codes:
        exec(textwrap.dedent(code), ns)
    return ns


def _solutions() -> dict:
    return _namespace(*(ex.solution_code for ex in CODING))


def test_lab_module_shape():
    assert lab02.LAB == "02" and lab02.NOTEBOOK == "02_self_instruct.ipynb"
    assert all(isinstance(ex, CodingExercise) for ex in CODING)
    assert len(lab02.quiz.questions) >= 4
    assert len({q.answer for q in lab02.quiz.questions}) > 1, "the right answer should not always be the same letter"
    assert all(q.why.strip() for q in lab02.quiz.questions)


def test_quiz_facts_match_the_sources():
    """The quiz's rule and cost facts are the reference code's and Alpaca's, and its worked
    ROUGE-L example is computed right."""
    text = " ".join(q.text + " " + " ".join(q.choices) + " " + q.why for q in lab02.quiz.questions)
    assert "$600" not in text and "under $500" in text and "under $100" in text
    rules = lab02.quiz.questions[0]
    verdicts = [si.instruction_ok(c, si.BLACKLIST) for c in rules.choices]
    assert verdicts == [i == rules.answer for i in range(len(rules.choices))], verdicts
    assert si.rouge_l("write a poem about the sea", "write a short poem about a calm sea") == pytest.approx(10 / 14)
    for q in lab02.quiz.questions:   # Alpaca's words are never credited to Self-Instruct
        for part in (q.text, *q.choices, q.why):
            if "video" in part:
                assert "Alpaca" in part[:part.index("video")], part


def test_build_prompt_solution_is_the_library_prompt():
    ns = _solutions()
    rng = random.Random(1)
    for _ in range(5):
        mix = si.sample_examples(seed_tasks(), seed_tasks(narrow=True), rng)
        assert ns["build_prompt"](mix) == si.build_prompt(mix)


WRONG = {
    "ex1": [
        ("""
def build_prompt(examples):
    body = "\\n".join(f"Task {i}: {e['instruction']}" for i, e in enumerate(examples, 1))
    return body + f"\\nTask {len(examples) + 1}:"
""", "starts straight with 'Task 1:'"),
        ("""
def build_prompt(examples):
    body = "\\n".join(f"Task {i}: {e['instruction']}" for i, e in enumerate(examples, 1))
    return "Tasks:\\n" + body + f"\\nTask {len(examples) + 1}: "
""", "nothing after"),
        ("""
def build_prompt(examples):
    body = "\\n".join(f"Task {i}: {e['instruction']}" for i, e in enumerate(examples))
    return "Tasks:\\n" + body + f"\\nTask {len(examples)}:"
""", "numbered from 1"),
        ("""
def build_prompt(examples):
    examples.reverse()
    body = "\\n".join(f"Task {i}: {e['instruction']}" for i, e in enumerate(examples, 1))
    return "Tasks:\\n" + body + f"\\nTask {len(examples) + 1}:"
""", "changed the list"),
    ],
    "ex2": [
        ("""
def keep_instruction(text, blacklist=BLACKLIST, min_words=4, max_words=150):
    text = text.strip()
    if not min_words <= len(text.split()) <= max_words:
        return False
    if any(b in text.lower() for b in blacklist):
        return False
    return text[0] not in string.punctuation and text[0].isascii()
""", "breaks the rules"),
        ("""
def keep_instruction(text, blacklist=BLACKLIST, min_words=4, max_words=150):
    from synthkit.self_instruct import instruction_ok
    return instruction_ok(text)
""", "earns nothing"),
        ("""
def keep_instruction(text, blacklist=BLACKLIST, min_words=4, max_words=150):
    if not min_words <= len(text.split()) <= max_words:
        return False
    if blacklist and re.search(r"\\b(" + "|".join(map(re.escape, blacklist)) + r")\\b", text, re.I):
        return False
    if text.lower().startswith("write a program"):
        return False
    return text[0] not in string.punctuation and text[0].isascii()
""", "first character"),
        ("""
def keep_instruction(text, blacklist=BLACKLIST, min_words=4, max_words=150):
    text = text.strip()
    if not min_words <= len(text.split()) <= max_words:
        return False
    if blacklist and re.search(r"\\b(" + "|".join(map(re.escape, blacklist)) + r")\\b", text, re.I):
        return False
    return text[0] not in string.punctuation and text[0].isascii()
""", "Write a program"),
        ("""
def keep_instruction(text, blacklist=BLACKLIST, min_words=4, max_words=150):
    text = text.strip()
    if not min_words <= len(text.split()) <= max_words:
        return False
    if blacklist and re.search(r"\\b(" + "|".join(map(re.escape, blacklist)) + r")\\b", text, re.I):
        return False
    if text.startswith("Write a program"):
        return False
    return text[0] not in string.punctuation and text[0].isascii()
""", "'Write a program'"),
        ("""
def keep_instruction(text, blacklist=BLACKLIST, min_words=4, max_words=150):
    return "yes"
""", "should return a bool"),
    ],
    "ex3": [
        ("""
def rouge_l_f1(a, b):
    ta, tb = a.lower().split(), b.lower().split()
    if not ta or not tb:
        return 0.0
    return 2 * lcs_length(ta, tb) / (len(ta) + len(tb))
""", "rouge_tokenize"),
        ("""
def rouge_l_f1(a, b):
    ta, tb = rouge_tokenize(a), rouge_tokenize(b)
    if not ta or not tb:
        return 0.0
    return lcs_length(ta, tb) / len(tb)
""", "precision or recall alone"),
        ("""
def rouge_l_f1(a, b):
    ta, tb = rouge_tokenize(a), rouge_tokenize(b)
    if not ta or not tb:
        return 0.0
    common = lcs_length(ta, tb)
    precision, recall = common / len(tb), common / len(ta)
    return 2 * precision * recall / (precision + recall)
""", "ZeroDivisionError"),
        ("""
def lcs_length(a, b):
    return len(set(a) & set(b))
""", "longest common"),
    ],
    "ex4": [
        ("""
def distinct_n(texts, n):
    w = " ".join(texts).lower().split()
    g = [tuple(w[i:i + n]) for i in range(len(w) - n + 1)]
    return len(set(g)) / len(g) if g else 0.0
""", "into the next"),
        ("""
def distinct_n(texts, n):
    g = [tuple(t.split()[i:i + n]) for t in texts for i in range(len(t.split()) - n + 1)]
    return len(set(g)) / len(g) if g else 0.0
""", "case-sensitive"),
    ],
}


@pytest.mark.parametrize("ex", CODING, ids=lambda e: e.name)
def test_wrong_answers_fail_with_a_useful_message(ex):
    import re
    import string
    for code, expected in WRONG[ex.name]:
        ns = {**_solutions(), "re": re, "string": string}
        exec(code, ns)
        # a wrong answer must fail every time, whatever fresh inputs the check draws
        messages = []
        for _ in range(8):
            result = ex.grade(ns)
            assert result.status in ("fail", "error"), (code, str(result))
            messages.append(result.message)
        assert any(expected in m for m in messages), (code, messages)


def test_slow_lcs_is_stopped():
    ns = _solutions()
    exec(textwrap.dedent('''
        def lcs_length(a, b):
            if not a or not b:
                return 0
            if a[0] == b[0]:
                return 1 + lcs_length(a[1:], b[1:])
            return max(lcs_length(a[1:], b), lcs_length(a, b[1:]))
    '''), ns)
    ex = lab02.ex3
    saved, ex.time_limit = ex.time_limit, 1.0
    try:
        assert ex.grade(ns).status == "slow"
    finally:
        ex.time_limit = saved


def test_reference_keep_decides_as_the_library_rules():
    rng = random.Random(0)
    texts = [t["instruction"] for t in seed_tasks()] + [
        "", "Hi", "Draw a map.", "Write a poem", "  ¿Qué hora es?", "\"Quoted\" start here", "-- list three things",
        "Describe the drawer of a desk.", "Go to the shop and buy milk", "go  to the shop now", "Explain the MAPS, please",
        " ".join(["word"] * 150), " ".join(["word"] * 151), "3 ways to cook rice", "Écris un poème court",
        "Use an image-based search engine", "Profile this filed report quickly",
    ]
    for _ in range(3):
        texts += [lab02._sentence(rng) for _ in range(100)]
        texts += [case[0] for case in lab02._keep_cases(rng)]
    texts += ["Write a program to add two numbers.", "write a PROGRAM that adds", "Please write a program now",
              "Make a short video about cats", "Compose music for a birthday party"]
    for text in texts:
        assert lab02.reference_keep(text) == si.instruction_ok(text, si.BLACKLIST), text


def test_lab_copy_is_current_and_keeps_no_solution():
    from synthkit.grading.assign import render_lab

    solution = ROOT / "solutions" / lab02.NOTEBOOK
    lab = ROOT / "labs" / lab02.NOTEBOOK
    assert lab.read_text(encoding="utf-8") == render_lab(solution), "run `synthkit assign`"
    nb = nbformat.read(lab, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    for leak in ("previous[j - 1] + 1", "re.IGNORECASE", "len(set(grams))", 'lines.append(f"Task {i}',
                 "Seeds: written by the people"):
        assert leak not in text, leak
    assert text.count("raise NotImplementedError") == 5   # ex1, ex2, ex3 (two functions), ex4
    header = nbformat.read(solution, as_version=4).cells[0].source
    assert "Measured run time" in header or "measured" in header.lower()


# --- the bootstrap loop, on the real teacher ----------------------------------------------

def test_bootstrap_history_adds_up_and_a_rerun_is_free(llama_model):
    history: list[dict] = []
    kept, rejected = si.bootstrap(llama_model, 5, seed=3, batch=4, responses=False, progress=False,
                                  history=history)
    assert len(kept) == 5
    assert [h["round"] for h in history] == list(range(1, len(history) + 1))
    assert sum(h["added"] for h in history) == len(kept)
    assert [h["pool"] for h in history] == [56 + sum(x["added"] for x in history[:i + 1]) for i in range(len(history))]
    for h in history:
        assert h["prompts"] == 4
        assert h["added"] + h["near_duplicates"] <= h["passed_rules"] <= h["prompts"]
        assert h["new_tokens"] >= 0 and h["seconds"] >= 0
    rounds = [r["provenance"]["round"] for r in kept]
    assert rounds == sorted(rounds) and set(rounds) <= {h["round"] for h in history}
    assert all(si.instruction_ok(r["instruction"]) for r in kept)
    # every candidate is accounted for: kept, or rejected with a reason
    assert len(kept) + len(rejected) == 4 * len(history)
    assert all(r["reason"] for r in rejected)
    near = sum(r["reason"].startswith("ROUGE-L") for r in rejected)
    assert near == sum(h["near_duplicates"] for h in history)

    again: list[dict] = []
    kept2, rejected2 = si.bootstrap(llama_model, 5, seed=3, batch=4, responses=False, progress=False,
                                    history=again)
    assert kept2 == kept and rejected2 == rejected
    assert all(h["from_cache"] == h["prompts"] and h["new_tokens"] == 0 for h in again)


def test_bootstrap_grows_from_the_narrow_seeds(llama_model):
    kept, _ = si.bootstrap(llama_model, 3, seeds=seed_tasks(narrow=True), seed=0, batch=4,
                           responses=False, progress=False)
    assert len(kept) == 3
    for r in kept:
        assert set(r["provenance"]["examples"]) - {"machine"} <= {t["id"] for t in seed_tasks(narrow=True)}


def test_bootstrap_without_history_is_unchanged(llama_model):
    """The CLI path: no history argument, responses on."""
    kept, rejected = si.bootstrap(llama_model, 2, seed=5, batch=4, progress=False)
    assert len(kept) + sum(r["reason"].startswith("response") or r["reason"] == "empty response"
                           for r in rejected) == 2
    assert all("output" in r for r in kept)
