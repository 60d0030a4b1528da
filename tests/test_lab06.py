"""Lab 06 (distillation): the checks accept the reference answers on many fresh inputs,
reject wrong ones with a message that names the slip, refuse the library's own functions,
and their references agree with the library. The whole notebook runs under the ci profile
in tests/test_notebooks.py."""
from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from synthkit import distill
from synthkit.grading.exercises import CodingExercise
from synthkit.labs import lab06
from labtests import solutions, assert_wrong_answers_fail
from synthkit.train import kd

ROOT = Path(__file__).resolve().parents[1]
CODING = [lab06.ex1, lab06.ex2, lab06.ex3]


def _solutions() -> dict:
    return solutions(CODING)


def test_lab_module_shape():
    assert lab06.LAB == "06" and lab06.NOTEBOOK == "06_distillation.ipynb"
    assert all(isinstance(ex, CodingExercise) for ex in CODING)
    assert [ex.names for ex in CODING] == [("kd_loss",), ("top_k_renormalised",), ("pick_layers", "copy_layers")]
    assert len(lab06.quiz.questions) >= 4
    assert len({q.answer for q in lab06.quiz.questions}) > 1


_KD = """
import torch
import torch.nn.functional as F
def kd_loss(student_logits, teacher_logits, T):
    s = torch.as_tensor(student_logits, dtype=torch.float64)
    t = torch.as_tensor(teacher_logits, dtype=torch.float64)
    return float({body})
"""

WRONG = {
    "ex1": [
        (_KD.format(body="F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction='batchmean')"),
         "without the T² factor"),
        (_KD.format(body="T * T * F.kl_div(F.log_softmax(t / T, -1), F.softmax(s / T, -1), reduction='batchmean')"),
         "reverse KL"),
        (_KD.format(body="T * T * F.kl_div(F.softmax(s / T, -1), F.softmax(t / T, -1), reduction='batchmean')"),
         "log_softmax"),
        (_KD.format(body="T * T * F.kl_div(F.log_softmax(s, -1), F.softmax(t / T, -1), reduction='batchmean')"),
         "teacher only"),
        (_KD.format(body="T * T * F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction='mean')"),
         "averages over the vocabulary"),
        (_KD.format(body="T * T * F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction='sum')"),
         "sum over positions"),
        (_KD.format(body="T * T * F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), reduction='batchmean')"),
         "nan"),
        (_KD.format(body="T * F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction='batchmean')"),
         "times T, not T²"),
        ("""
def kd_loss(student_logits, teacher_logits, T):
    import torch
    from synthkit.train.kd import kd_loss as k
    return float(k(torch.as_tensor(student_logits), torch.as_tensor(teacher_logits), T))
""", "your own code"),
        ("""
import torch
def kd_loss(student_logits, teacher_logits, T):
    import torch.nn.functional as F
    s, t = torch.as_tensor(student_logits), torch.as_tensor(teacher_logits)
    return T * T * F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction='batchmean')
""", "plain float"),
    ],
    "ex2": [
        ("""
import numpy as np
def top_k_renormalised(scores, k):
    ids = np.argsort(-scores, axis=-1)[:, :k]
    z = scores - scores.max(-1, keepdims=True)
    full = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return ids, np.take_along_axis(full, ids, -1)
""", "whole vocabulary"),
        ("""
import numpy as np
def top_k_renormalised(scores, k):
    ids = np.argsort(scores, axis=-1)[:, :k]
    kept = np.take_along_axis(scores, ids, -1)
    return ids, kept - np.log(np.exp(kept).sum(-1, keepdims=True))
""", "least"),
        ("""
import numpy as np
def top_k_renormalised(scores, k):
    ids = np.argsort(-scores, axis=-1)[:, :k]
    kept = np.exp(np.take_along_axis(scores, ids, -1))
    return ids, kept / kept.sum(-1, keepdims=True)
""", "probabilities"),
        ("""
import numpy as np
def top_k_renormalised(scores, k):
    ids = np.argsort(-scores, axis=-1)[:, :k + 1]
    kept = np.take_along_axis(scores, ids, -1)
    return ids, kept - np.log(np.exp(kept).sum(-1, keepdims=True))
""", "off-by-one"),
        ("""
import torch
def top_k_renormalised(scores, k):
    from synthkit.train.kd import top_k_log_probs, renormalise
    ids, lps = top_k_log_probs(torch.as_tensor(scores), k)
    return ids.numpy(), renormalise(lps).numpy()
""", "your own code"),
    ],
    "ex3": [
        ("""
def pick_layers(n, k):
    return list(range(0, n, n // k))[:k]
def copy_layers(teacher_state, keep):
    return {}
""", "pick_layers("),
        ("""
import numpy as np
def pick_layers(n, k):
    return [int(x) for x in np.linspace(0, n, k)]
def copy_layers(teacher_state, keep):
    return {}
""", "one past the end"),
        ("""
def pick_layers(n, k):
    return [round(i * (n - 1) / (k - 1)) for i in range(k)]
def copy_layers(teacher_state, keep):
    out = {}
    for name, w in teacher_state.items():
        if ".layers." not in name:
            out[name] = w
        for j, i in enumerate(keep):
            if name.startswith(f"model.layers.{i}"):
                out[name.replace(f"model.layers.{i}", f"model.layers.{j}", 1)] = w
    return out
""", "startswith"),
        ("""
def pick_layers(n, k):
    return [round(i * (n - 1) / (k - 1)) for i in range(k)]
def copy_layers(teacher_state, keep):
    return {name: w for name, w in teacher_state.items()
            if ".layers." not in name or int(name.split(".")[2]) in keep}
""", "kept the teacher's layer numbers"),
        ("""
def pick_layers(n, k):
    return [round(i * (n - 1) / (k - 1)) for i in range(k)]
def copy_layers(teacher_state, keep):
    out = {}
    for name, w in teacher_state.items():
        p = name.split(".")
        if ".layers." in name and int(p[2]) in keep:
            p[2] = str(keep.index(int(p[2])))
            out[".".join(p)] = w
    return out
""", "embeddings"),
        ("""
def pick_layers(n, k):
    return [round(i * (n - 1) / (k - 1)) for i in range(k)]
def copy_layers(teacher_state, keep):
    out = {}
    for name, w in teacher_state.items():
        p = name.split(".")
        if len(p) > 4 and p[1] == "layers":
            if int(p[2]) in keep:
                p[2] = str(keep.index(int(p[2])))
                out[".".join(p)] = w
        else:
            out[name] = w
    return out
""", "as if it were outside the layers"),
        ("""
from synthkit.distill import pick_layers, copy_layers
""", "your own code"),
    ],
}


@pytest.mark.parametrize("ex", CODING, ids=lambda e: e.name)
def test_wrong_answers_fail_with_a_useful_message(ex):
    assert_wrong_answers_fail(ex, WRONG[ex.name], tries=4)


def test_references_agree_with_the_library():
    rng = np.random.default_rng(0)
    for t in (0.5, 1.0, 2.0, 4.0):
        s, z = rng.normal(0, 3, (5, 40)), rng.normal(0, 3, (5, 40))
        lib = float(kd.kd_loss(torch.tensor(s), torch.tensor(z), t))
        assert lab06.reference_kd_loss(s, z, t) == pytest.approx(lib, rel=1e-6)
    scores = rng.normal(0, 2, (4, 30))
    ids, lps = lab06.reference_top_k(scores, 7)
    lib_ids, lib_lps = kd.top_k_log_probs(torch.tensor(scores), 7)
    assert (ids == lib_ids.numpy()).all()
    assert np.allclose(lps, kd.renormalise(lib_lps).numpy(), atol=1e-6)
    ns = _solutions()
    for n, k in [(30, 6), (12, 4), (5, 5), (9, 2)]:
        assert ns["pick_layers"](n, k) == distill.pick_layers(n, k)
    state = lab06._fake_state(rng, 14)
    mine, lib = ns["copy_layers"](state, [0, 1, 10, 13]), distill.copy_layers(state, [0, 1, 10, 13])
    assert mine.keys() == lib.keys() and all(mine[k] is lib[k] for k in lib)


def test_lab_copy_is_current_and_keeps_no_solution():
    from synthkit.grading.assign import render_lab

    solution = ROOT / "solutions" / lab06.NOTEBOOK
    lab = ROOT / "labs" / lab06.NOTEBOOK
    assert lab.read_text(encoding="utf-8") == render_lab(solution), "run `synthkit assign`"
    text = "\n".join(c.source for c in nbformat.read(lab, as_version=4).cells)
    for leak in ("(log_p.exp() * (log_p - log_q))", "np.take_along_axis(scores, ids", "keep.index(layer)"):
        assert leak not in text, leak
    assert text.count("raise NotImplementedError") >= 3
    header = nbformat.read(solution, as_version=4).cells[0].source
    assert "Measured run time" in header
