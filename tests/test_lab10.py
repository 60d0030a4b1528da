"""Lab 10 (the capstone): the checks accept the reference answers on many fresh inputs,
reject wrong ones with a message that names the slip, refuse the library's own functions,
and agree with synthkit.pipeline, which the lab's pipeline runs on. The library's artefact
manifests are tested here too. The whole notebook runs under the ci profile in
tests/test_notebooks.py."""
from __future__ import annotations

import random
import re
from pathlib import Path

import nbformat
import pytest

from synthkit import pipeline
from synthkit.grading.exercises import CodingExercise
from synthkit.labs import lab10
from labtests import solutions, assert_wrong_answers_fail

ROOT = Path(__file__).resolve().parents[1]
CODING = [lab10.ex1, lab10.ex2, lab10.ex3]


def _solutions() -> dict:
    return solutions(CODING)


def test_lab_module_shape():
    assert lab10.LAB == "10" and lab10.NOTEBOOK == "10_capstone.ipynb"
    assert all(isinstance(ex, CodingExercise) for ex in CODING)
    assert [ex.names for ex in CODING] == [("best_of_k",), ("consensus",), ("lineage",)]
    assert len(lab10.quiz.questions) >= 4 and len({q.answer for q in lab10.quiz.questions}) > 1
    assert "customer-support" in lab10.essay1.prompt


WRONG = {
    "ex1": [
        ("""
def best_of_k(candidates, min_score=1.0):
    if not candidates:
        return None
    return max(range(len(candidates)), key=lambda i: candidates[i]["score"])
""", "best score alone"),
        ("""
def best_of_k(candidates, min_score=1.0):
    best, key = None, None
    for i, c in enumerate(candidates):
        if c["verified"] is False or (c["verified"] is None and c["score"] < min_score):
            continue
        k = (c["verified"] is True, c["score"])
        if key is None or k >= key:
            best, key = i, k
    return best
""", "earliest"),
        ("""
def best_of_k(candidates, min_score=1.0):
    best, key = None, None
    for i, c in enumerate(candidates):
        if c["verified"] is False or c["score"] < min_score:
            continue
        k = (c["verified"] is True, c["score"])
        if key is None or k > key:
            best, key = i, k
    return best
""", "this case tests"),
        ("""
def best_of_k(candidates, min_score=1.0):
    best, key = None, None
    for i, c in enumerate(candidates):
        if c["verified"] is False or (c["verified"] is None and c["score"] < min_score):
            continue
        if key is None or c["score"] > key:
            best, key = i, c["score"]
    return best
""", "this case tests"),
        ("""
from synthkit.pipeline import best_of_k as library
def best_of_k(candidates, min_score=1.0):
    return library(candidates, min_score)
""", "your own code"),
    ],
    "ex2": [
        ("""
from collections import Counter
def consensus(answers, quorum):
    counts = Counter(a for a in answers.values() if a is not None)
    return counts.most_common(1)[0][0] if counts else None
""", "normal form"),
        ("""
def consensus(answers, quorum):
    counts = {}
    for a in answers.values():
        if a is not None and a.strip():
            counts[a.strip()] = counts.get(a.strip(), 0) + 1
    winners = [a for a, k in counts.items() if k >= quorum]
    return winners[0] if len(winners) == 1 else None
""", "this case tests"),
        ("""
import re
def consensus(answers, quorum):
    def normal(a):
        if a is None:
            return None
        t = str(a).strip().replace(",", "")
        if re.fullmatch(r"-?\\d+(?:\\.\\d+)?", t):
            return t.rstrip("0").rstrip(".") if "." in t else t
        return " ".join(t.lower().split()) or None
    counts = {}
    for a in answers.values():
        a = normal(a)
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
    winners = [a for a, k in counts.items() if k >= quorum]
    return winners[0] if winners else None
""", "this case tests"),
        ("""
from synthkit import pipeline
def consensus(answers, quorum):
    return pipeline.consensus(answers, quorum)
""", "your own code"),
    ],
    "ex3": [
        ("""
def lineage(manifests, final):
    by_id = {m["id"]: m for m in manifests}
    order, todo = [], [final]
    while todo:
        node = todo.pop()
        order.append(node)
        todo += by_id[node]["parents"]
    return order[::-1]
""", "lineage"),
        ("""
def lineage(manifests, final):
    by_id = {m["id"]: m for m in manifests}
    return [p for p in by_id[final]["parents"]] + [final]
""", "ancestor"),
        ("""
def lineage(manifests, final):
    by_id = {m["id"]: m for m in manifests}
    order = []
    def visit(node):
        if node in order:
            return
        for p in by_id.get(node, {"parents": []})["parents"]:
            visit(p)
        order.append(node)
    visit(final)
    return order
""", "lineage"),
        ("""
from synthkit.pipeline import lineage as traced
def lineage(manifests, final):
    return traced(manifests, final)
""", "your own code"),
    ],
}


@pytest.mark.parametrize("ex", CODING, ids=lambda e: e.name)
def test_wrong_answers_fail_with_a_useful_message(ex):
    assert_wrong_answers_fail(ex, WRONG[ex.name], tries=10)  # a few slips are named on ~3 draws in 4


def test_references_agree_with_the_library():
    rng = random.Random(0)
    for _ in range(40):
        for candidates, min_score, _probe in lab10._best_cases(rng):
            assert lab10.reference_best(candidates, min_score) == pipeline.best_of_k(candidates, min_score)
        for answers, quorum, _probe in lab10._consensus_cases(rng):
            assert lab10.reference_consensus(answers, quorum) == pipeline.consensus(answers, quorum)
        manifests, final = lab10._graph(rng)
        order = pipeline.lineage(manifests, final)
        assert set(order) == lab10._ancestors(manifests, final) and order[-1] == final
        by_id = {m["id"]: m for m in manifests}
        assert all(order.index(p) < order.index(n) for n in order for p in by_id[n]["parents"])


def test_ranked_pairs_put_the_verified_reply_over_the_rejected_one():
    cands = [{"reply": "wrong", "verified": False, "score": 1.0}, {"reply": "judged", "verified": None, "score": 0.5},
             {"reply": "right", "verified": True, "score": 0.5}, {"reply": "right ", "verified": True, "score": 0.5}]
    pairs = pipeline.ranked_pairs("q", cands, max_pairs=3)
    assert pairs[0]["chosen"] == "right" and pairs[0]["rejected"] == "wrong"
    # the next pair would be the second 'right' against 'judged': ranks differ, so it is kept
    assert [p["rejected"] for p in pairs] == ["wrong", "judged"]
    same = [{"reply": "a", "verified": None, "score": 1.0}, {"reply": "b", "verified": None, "score": 1.0}]
    assert pipeline.ranked_pairs("q", same) == []   # no difference in rank: no preference


def test_artefact_manifests_trace_a_model_and_catch_a_changed_file(tmp_path):
    data = tmp_path / "kept.jsonl"
    data.write_text('{"a": 1}\n')
    teacher = tmp_path / "teacher.txt"
    teacher.write_text("SmolLM2-135M-Instruct\n")
    t = pipeline.write_artefact(teacher, "teacher")
    d = pipeline.write_artefact(data, "kept", [t], k=4, seed=0)
    assert pipeline.read_artefact(data)["parents"] == [t["id"]]
    assert pipeline.lineage([d, t], d["id"]) == [t["id"], d["id"]]
    data.write_text('{"a": 2}\n')
    with pytest.raises(pipeline.PipelineError, match="changed after its manifest"):
        pipeline.read_artefact(data)
    pipeline.manifest_path(teacher).write_text("{not json")
    with pytest.raises(pipeline.PipelineError, match="not valid JSON"):
        pipeline.read_artefact(teacher)
    with pytest.raises(pipeline.PipelineError, match="no manifest"):
        pipeline.read_artefact(tmp_path / "nothing.bin")
    with pytest.raises(pipeline.PipelineError, match="write the artefact first"):
        pipeline.write_artefact(tmp_path / "missing.gguf", "model")


def test_the_rule_judge_scores_what_it_says():
    assert pipeline.score_reply("What is tea?", "Tea is a drink made from the leaves of a shrub.") == 1.0
    assert pipeline.score_reply("What is tea?", "Email me at anna@example.com for tea facts.") < 1.0
    assert pipeline.score_reply("What is tea?", "Tea is", finish_reason="length") < 1.0
    assert pipeline.score_reply("What is tea?", "I'm sorry, I can't help with that.") < 1.0


def test_shared_errors_counts_pairs_that_are_wrong_the_same_way():
    key = ["10", "20", "30"]
    votes = [["10", "21", "31"],      # right, wrong, wrong
             ["11", "21", "32"],      # wrong, wrong (same as voter 0), wrong (different)
             [None, "20", "31.0"]]    # no answer, right, wrong (same as voter 0, written another way)
    # pairs both wrong: (0,1) on q2 and q3; (0,2) on q3; (1,2) on q3 -> 4, of which same: (0,1) q2, (0,2) q3
    assert pipeline.shared_errors(votes, key) == (2, 4)
    assert pipeline.shared_errors([["1"], ["2"]], ["1"]) == (0, 0)
    with pytest.raises(pipeline.PipelineError, match="one answer per question"):
        pipeline.shared_errors([["1", "2"], ["1"]], ["1", "2"])


def test_the_notebook_decides_every_comparison_with_a_paired_test():
    """No verdict from whether two intervals overlap: each step goes through paired_difference,
    strict and lenient, against the control and the shown-examples baseline too."""
    nb = nbformat.read(ROOT / "solutions" / "10_capstone.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    text = "\n".join(c.source for c in nb.cells)
    assert "def apart" not in code and not re.search(r"interval[^\n]*overlap|overlap[^\n]*interval", text)
    assert "metrics.paired_difference" in code and '("strict", "lenient")' in code
    for arm in ("teacher, shown examples", "SFT control (unfiltered)"):
        assert code.count(f'"{arm}"') >= 2, arm
