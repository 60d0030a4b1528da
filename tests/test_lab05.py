"""Lab 05 (Constitutional AI): the checks accept the reference answers on many fresh inputs,
reject wrong ones with a message that names the slip, refuse the library's own functions, and
agree with the library they are checked against. The whole notebook runs under the ci profile
in tests/test_notebooks.py."""
from __future__ import annotations

import random
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from synthkit import constitutional as cai
from synthkit.grading.exercises import CodingExercise
from synthkit.labs import lab05
from labtests import solutions, assert_wrong_answers_fail
from synthkit.train.dpo import dpo_loss

ROOT = Path(__file__).resolve().parents[1]
CODING = [lab05.ex1, lab05.ex2, lab05.ex3]


def _solutions() -> dict:
    return solutions(CODING)


def test_lab_module_shape():
    assert lab05.LAB == "05" and lab05.NOTEBOOK == "05_constitutional_ai.ipynb"
    assert all(isinstance(ex, CodingExercise) for ex in CODING)
    assert [ex.names for ex in CODING] == [("contact_details",), ("preference_pairs",), ("dpo_loss",)]
    assert len(lab05.quiz.questions) >= 4
    assert len({q.answer for q in lab05.quiz.questions}) > 1
    # the seed's question 4: why CAI still needs a capable base model
    assert any("capable base model" in q.text for q in lab05.quiz.questions)


WRONG = {
    "ex1": [
        ("""
import re
def contact_details(text):
    found = set()
    if re.search(r"\\S+@\\S+", text):
        found.add("email")
    if re.search(r"https?://|www\\.", text):
        found.add("link")
    if re.search(r"\\d{3}[-. ]\\d{3}[-. ]\\d{4}", text):
        found.add("phone")
    return found
""", "this case has"),
        ("""
import re
def contact_details(text):
    found = set()
    if re.search(r"[\\w.+-]+@[\\w-]+(\\.[\\w-]+)*\\.[A-Za-z]{2,}", text):
        found.add("email")
    if re.search(r"https?://\\S+|www\\.\\S+|\\b[\\w-]+\\.(com|org|net|edu|io|info|co|uk|de|fr|es)\\b", text):
        found.add("link")
    if sum(ch.isdigit() for ch in text) >= 9:
        found.add("phone")
    return found
""", "Remember"),
        ("""
def contact_details(text):
    from synthkit.constitutional import find_contact_details
    return find_contact_details(text)
""", "your own code"),
        ("""
def contact_details(text):
    return ["email"] if "@" in text else []
""", "should return a set"),
        ("""
import re
def contact_details(text):
    email = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}"
    link = (r"https?://\\S+|\\bwww\\.\\S+|(?<![\\w@.-])(?:[A-Za-z0-9-]+\\.)+"
            r"(?:com|org|net|edu|gov|io|info|co|uk|de|fr|es)\\b(?:/\\S*)?")
    found = set()
    if re.search(email, text):
        found.add("email")
    text = re.sub(email, " ", text)
    if re.search(link, text, re.I):
        found.add("link")
    text = re.sub(link, " ", text, flags=re.I)
    if any(sum(ch.isdigit() for ch in m.group()) > 9 for m in re.finditer(r"\\+?\\(?\\d(?:[ ().-]{0,2}\\d)*", text)):
        found.add("phone")
    return found
""", "misses a kind of detail the text has (this case has a phone number of exactly nine digits)"),
        ("""
import re
def contact_details(text):
    email = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}"
    link = (r"https?://\\S+|\\bwww\\.\\S+|(?<![\\w@.-])(?:[A-Za-z0-9-]+\\.)+"
            r"(?:com|org|net|edu|gov|io|info|co|uk|de|fr|es)\\b(?:/\\S*)?")
    found = set()
    if re.search(email, text):
        found.add("email")
    text = re.sub(email, " ", text)
    if re.search(link, text, re.I):
        found.add("link")
    text = re.sub(link, " ", text, flags=re.I)
    if any(sum(ch.isdigit() for ch in m.group()) >= 9 for m in re.finditer(r"\\+?\\(?\\d(?:[ ().-]{0,3}\\d)*", text)):
        found.add("phone")
    return found
""", "three separators"),
    ],
    "ex2": [
        ("""
def preference_pairs(records, conversational=False):
    return [{"prompt": r["prompt"], "chosen": r["original"].strip(), "rejected": r["revision"].strip()}
            for r in records if r["revision_complies"] and not r["original_complies"]
            and r["revision"].strip() and r["revision"].strip() != r["original"].strip()]
""", "wrong way round"),
        ("""
def preference_pairs(records, conversational=False):
    return [{"prompt": r["prompt"], "chosen": r["revision"].strip(), "rejected": r["original"].strip()}
            for r in records if r["revision_complies"]
            and r["revision"].strip() and r["revision"].strip() != r["original"].strip()]
""", "original already complies"),
        ("""
def preference_pairs(records, conversational=False):
    return [{"prompt": r["prompt"], "chosen": r["revision"], "rejected": r["original"]}
            for r in records if r["revision_complies"] and not r["original_complies"] and r["revision"] != r["original"]]
""", "was kept"),
        ("""
def preference_pairs(records, conversational=False):
    from synthkit.constitutional import to_trl
    pairs = [{"prompt": r["prompt"], "chosen": r["revision"].strip(), "rejected": r["original"].strip()}
             for r in records if r["revision_complies"] and not r["original_complies"]
             and r["revision"].strip() and r["revision"].strip() != r["original"].strip()]
    return to_trl(pairs, conversational)
""", "your own code"),
        ("""
def preference_pairs(records, conversational=False):
    out = []
    for r in records:
        c, j = r["revision"].strip(), r["original"].strip()
        if c and c != j and r["revision_complies"] and not r["original_complies"]:
            if conversational:
                out.append({"prompt": [{"role": "user", "content": r["prompt"]}],
                            "chosen": [{"role": "user", "content": c}], "rejected": [{"role": "user", "content": j}]})
            else:
                out.append({"prompt": r["prompt"], "chosen": c, "rejected": j})
    return out
""", "'assistant'"),
        ("""
def preference_pairs(records, conversational=True):
    out = []
    for r in records:
        c, j = r["revision"].strip(), r["original"].strip()
        if c and c != j and r["revision_complies"] and not r["original_complies"]:
            if conversational:
                out.append({"prompt": [{"role": "user", "content": r["prompt"]}],
                            "chosen": [{"role": "assistant", "content": c}],
                            "rejected": [{"role": "assistant", "content": j}]})
            else:
                out.append({"prompt": r["prompt"], "chosen": c, "rejected": j})
    return out
""", "conversational=False)"),
    ],
    "ex3": [
        ("""
import numpy as np
def dpo_loss(pc, pr, rc, rr, beta):
    pc, pr, rc, rr = (np.asarray(x, float) for x in (pc, pr, rc, rr))
    c, r = beta * (pc - rc), beta * (pr - rr)
    return float(np.mean(np.logaddexp(0, c - r))), c, r
""", "sign"),
        ("""
import numpy as np
def dpo_loss(pc, pr, rc, rr, beta):
    pc, pr, rc, rr = (np.asarray(x, float) for x in (pc, pr, rc, rr))
    c, r = beta * (pc - rc), beta * (pr - rr)
    return float(np.mean(np.logaddexp(0, -(c - r) / beta))), c, r
""", "without beta"),
        ("""
import numpy as np
def dpo_loss(pc, pr, rc, rr, beta):
    pc, pr, rc, rr = (np.asarray(x, float) for x in (pc, pr, rc, rr))
    c, r = beta * pc, beta * pr
    return float(np.mean(np.logaddexp(0, -(c - r)))), c, r
""", "reference"),
        ("""
import numpy as np
def dpo_loss(pc, pr, rc, rr, beta):
    pc, pr, rc, rr = (np.asarray(x, float) for x in (pc, pr, rc, rr))
    c, r = beta * (pc - rc), beta * (pr - rr)
    return float(np.sum(np.logaddexp(0, -(c - r)))), c, r
""", "sum over the pairs"),
        ("""
import numpy as np
def dpo_loss(pc, pr, rc, rr, beta):
    pc, pr, rc, rr = (np.asarray(x, float) for x in (pc, pr, rc, rr))
    c, r = beta * (pc - rc), beta * (pr - rr)
    return float(np.mean(-np.log(1 / (1 + np.exp(-(c - r)))))), c, r
""", "overflow"),
        ("""
import torch
import torch.nn.functional as F
def dpo_loss(pc, pr, rc, rr, beta):
    pc, pr, rc, rr = (torch.as_tensor(x) for x in (pc, pr, rc, rr))
    c, r = beta * (pc - rc), beta * (pr - rr)
    return -F.logsigmoid(c - r).mean(), c, r
""", "torch tensors"),
        ("""
import torch
def dpo_loss(pc, pr, rc, rr, beta):
    from synthkit.train.dpo import dpo_loss as lib
    loss, c, r = lib(*(torch.as_tensor(x) for x in (pc, pr, rc, rr)), beta)
    return loss.item(), c.tolist(), r.tolist()
""", "your own code"),
    ],
}


@pytest.mark.parametrize("ex", CODING, ids=lambda e: e.name)
def test_wrong_answers_fail_with_a_useful_message(ex):
    assert_wrong_answers_fail(ex, WRONG[ex.name])


def test_every_generated_contact_case_has_what_its_label_says():
    """A case labelled "a phone number" must be one by the exercise's own rules (9 or more digits,
    at most two separators between neighbours), or a student who follows them is told they are
    wrong: 1,000 draws from each maker of the ex1 check, re-labelled by the reference solution."""
    rng = random.Random(5)
    contact_details = _solutions()["contact_details"]
    for make, kinds in lab05.CONTACT_MAKERS:
        for _ in range(1000):
            item, probe = make(rng)
            for text in (item, lab05._in_reply(rng, item)):
                assert contact_details(text) == kinds, (make.__name__, probe, text)
    for _ in range(1000):
        for text, probe, kinds in lab05._contact_cases(rng):
            assert contact_details(text) == kinds, (probe, text)


def test_ex1_check_draws_both_sides_of_each_phone_rule_on_every_run():
    """The nine-digit threshold and the two-separator limit are tested on every grading, not by
    luck of the draw: a nine-digit phone number, eight digits that are not one, and three
    separators that split a run."""
    rng = random.Random(7)
    for _ in range(50):
        probes = [probe for _text, probe, _kinds in lab05._contact_cases(rng)]
        assert "a phone number of exactly nine digits" in probes
        assert "a number of eight digits (not a phone number)" in probes
        assert any("three separators" in p for p in probes)


def test_references_agree_with_the_library():
    rng = random.Random(0)
    ns = _solutions()
    for _ in range(30):  # the notebook's finder is the library's, on every kind of case the check draws
        for text, _probe, _kinds in lab05._contact_cases(rng):
            assert ns["contact_details"](text) == cai.find_contact_details(text), text
    for _ in range(10):  # the exercise's pairs are the library's verified pairs in TRL's format
        cases = lab05._loop_records(rng)
        records = [{"id": str(i), "prompt": r["prompt"], "principle": "brief", "original": r["original"],
                    "revision": r["revision"], "critique_verdict": "violation",
                    "program": {"original": r["original_complies"], "revision": r["revision_complies"]},
                    "provenance": {}} for i, (r, _) in enumerate(cases)]
        for conv in (False, True):
            assert lab05.reference_pairs([r for r, _ in cases], conv) == \
                cai.to_trl(cai.to_pairs(records, "verified"), conv)
    nrng = np.random.default_rng(0)
    for beta in (0.1, 0.5):
        x = [nrng.normal(-50, 5, 6) for _ in range(4)]
        want = lab05.reference_dpo(*x, beta)
        got = dpo_loss(*(torch.tensor(v) for v in x), beta)
        assert got[0].item() == pytest.approx(want[0]) and np.allclose(got[1].numpy(), want[1])


def test_lab_copy_is_current_and_keeps_no_solution():
    from synthkit.grading.assign import render_lab

    solution = ROOT / "solutions" / lab05.NOTEBOOK
    lab = ROOT / "labs" / lab05.NOTEBOOK
    assert lab.read_text(encoding="utf-8") == render_lab(solution), "run `synthkit assign`"
    text = "\n".join(c.source for c in nbformat.read(lab, as_version=4).cells)
    for leak in ("np.logaddexp(0.0, -(chosen - rejected))", "{0,2}", "not r[\"revision_complies\"] or"):
        assert leak not in text, leak
    assert text.count("raise NotImplementedError") == 3
    header = nbformat.read(solution, as_version=4).cells[0].source
    assert "Measured run time" in header


def test_the_quiz_teaches_the_paired_test_with_the_librarys_numbers():
    from synthkit.metrics import paired_difference

    q = next(q for q in lab05.quiz.questions if "8 prompts went from violating" in q.text)
    assert "overlap" not in q.choices[q.answer] and "McNemar" in q.why
    before = [1] * 16 + [0] * 24                          # 40% of 40 prompts
    after = [1] * 14 + [0] * 2 + [1] * 8 + [0] * 16       # 2 broken, 8 fixed: 55%
    r = paired_difference(before, after)
    assert (r.better, r.worse, round(r.mean, 2)) == (8, 2, 0.15) and r.verdict() == "no clear difference"
    assert f"p = 112/1024 ≈ {r.p:.2f}" in q.why and f"(p ≈ {r.p:.2f})" in q.choices[q.answer]
    # the first question says what Bai et al. did, not the pair variant alone
    assert "RL stage" in lab05.quiz.questions[0].text
