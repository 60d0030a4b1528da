"""Distillation: the KD loss against its references, top-k renormalisation, building a
shallower student from the embedded teacher, and short real training runs (a few steps)."""
from __future__ import annotations

import math
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from synthkit import distill
from synthkit.train import TrainingError
from synthkit.train.kd import (Targets, kd_loss, renormalise, sparse_kd_loss, top_k_log_probs,
                               train_student)

QUIET = dict(progress=False)


# --- the loss, against two independent references ---------------------------------------------

def _hinton(student_row, teacher_row, T):
    """T² · KL(softmax(z_t/T) || softmax(z_s/T)) for one row, in plain Python floats."""
    def softmax(z):
        m = max(v / T for v in z)
        e = [math.exp(v / T - m) for v in z]
        return [x / sum(e) for x in e]
    p, q = softmax(teacher_row), softmax(student_row)
    return T * T * sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q))


@pytest.mark.parametrize("T", [0.5, 1.0, 2.0, 5.0])
def test_kd_loss_is_hintons_formula(T):
    g = torch.Generator().manual_seed(int(T * 10))
    s, t = torch.randn(6, 50, generator=g) * 3, torch.randn(6, 50, generator=g) * 3
    want = sum(_hinton(s[i].tolist(), t[i].tolist(), T) for i in range(6)) / 6
    assert float(kd_loss(s, t, T)) == pytest.approx(want, rel=1e-5)
    # and PyTorch's own KL: input = student log-probs, target = teacher (log-)probs, mean per row
    ref = F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), log_target=True,
                   reduction="batchmean") * T * T
    assert float(kd_loss(s, t, T)) == pytest.approx(float(ref), rel=1e-5)
    assert torch.allclose(kd_loss(s, t, T, reduction="none").mean(), kd_loss(s, t, T))
    assert float(kd_loss(t, t, T)) == pytest.approx(0.0, abs=1e-6)


def test_t_squared_keeps_the_gradient_size():
    """Why T²: without it the gradient falls like 1/T²; with it, it stays about the same."""
    g = torch.Generator().manual_seed(0)
    s0, t = torch.randn(32, 200, generator=g), torch.randn(32, 200, generator=g)

    def grad_norm(T, scaled=True):
        s = s0.clone().requires_grad_(True)
        loss = kd_loss(s, t, T) / (1 if scaled else T * T)
        loss.backward()
        return float(s.grad.norm())

    assert 0.8 < grad_norm(8.0) / grad_norm(4.0) < 1.25
    assert grad_norm(8.0, scaled=False) / grad_norm(4.0, scaled=False) == pytest.approx(0.25, rel=0.2)


def test_sparse_loss_with_the_whole_vocabulary_is_the_full_loss():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(5, 40, generator=g) * 2, torch.randn(5, 40, generator=g) * 2
    ids, lps = top_k_log_probs(t, 40)
    for T in (1.0, 3.0):
        assert float(sparse_kd_loss(s, ids, lps, T)) == pytest.approx(float(kd_loss(s, t, T)), rel=1e-5)
    # any per-row shift of the teacher's scores (logits, log-probs, llama.cpp's top-k) is the same target
    ids, lps = top_k_log_probs(t, 8)
    shifted = lps + torch.randn(5, 1, generator=g) * 10
    assert torch.allclose(sparse_kd_loss(s, ids, lps, 2.0), sparse_kd_loss(s, ids, shifted, 2.0), atol=1e-5)
    # truncation: the renormalised top-k KL equals the direct sum over the kept tokens
    p = renormalise(lps / 2.0).exp()
    q = F.log_softmax(s / 2.0, -1).gather(-1, ids)
    direct = 4 * (p * (p.log() - q)).sum(-1).mean()
    assert float(sparse_kd_loss(s, ids, lps, 2.0)) == pytest.approx(float(direct), rel=1e-5)


def test_top_k_properties():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(7, 100, generator=g) * 4
    for k in (1, 5, 64, 100):
        ids, lps = top_k_log_probs(z, k)
        assert ids.shape == lps.shape == (7, k)
        assert (lps[:, :-1] >= lps[:, 1:]).all()  # best first
        assert torch.equal(torch.sort(ids, -1).values, torch.sort(z.topk(k).indices, -1).values)
        mass = lps.exp().sum(-1)
        assert (mass <= 1 + 1e-6).all() and (mass > 0).all()
        assert torch.allclose(renormalise(lps).exp().sum(-1), torch.ones(7), atol=1e-5)
        assert torch.allclose(renormalise(lps) - renormalise(lps)[:, :1], lps - lps[:, :1], atol=1e-5)
    assert torch.allclose(top_k_log_probs(z, 100)[1].exp().sum(-1), torch.ones(7), atol=1e-5)
    with pytest.raises(ValueError, match="k must be"):
        top_k_log_probs(z, 0)
    with pytest.raises(TrainingError, match="temperature"):
        kd_loss(z, z, 0)


# --- choosing layers ---------------------------------------------------------------------

def test_pick_layers():
    assert distill.pick_layers(30, 6) == [0, 6, 12, 17, 23, 29]
    assert distill.pick_layers(5, 5) == [0, 1, 2, 3, 4]
    for n in range(2, 40):
        for k in range(2, n + 1):
            got = distill.pick_layers(n, k)
            gaps = np.diff(got)
            assert len(got) == k and got[0] == 0 and got[-1] == n - 1 and (gaps > 0).all()
            assert gaps.max() - gaps.min() <= 1
    with pytest.raises(distill.DistillError, match="k <= 4"):
        distill.pick_layers(4, 5)


def test_parse_spec_errors(tmp_path):
    assert distill.parse_spec("layers:6") == {"kind": "layers", "count": 6}
    assert distill.parse_spec("layers:0,9,29") == {"kind": "layers", "keep": [0, 9, 29]}
    assert distill.parse_spec("scratch:4:128") == {"kind": "scratch", "layers": 4, "hidden": 128}
    for bad in ("layers:", "layers:a", "scratch:4:100", "nothing/here", "layers:-1"):
        with pytest.raises(distill.DistillError):
            distill.parse_spec(bad)


def test_prompts_split_and_do_not_overlap():
    train, held = distill.prompts(300), distill.prompts(60, split="held-out")
    assert len(train) == 300 and len(held) == 60 and not set(train) & set(held)
    assert distill.prompts(20) == distill.prompts(20)  # fixed by the seed
    with pytest.raises(distill.DistillError):
        distill.prompts(5, split="test")


def test_cli_rejects_bad_input_before_loading_a_model(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "synthkit.cli", "distill", *args], capture_output=True,
                              text=True, timeout=120)
    out = run("--student", "layers:zero", "--out", str(tmp_path / "o"))
    assert out.returncode != 0 and "layers:K" in out.stderr + out.stdout
    out = run("--temperature", "0", "--out", str(tmp_path / "o"))
    assert out.returncode != 0 and "--temperature" in out.stderr + out.stdout
    (tmp_path / "p.jsonl").write_text('{"question": "no prompt field"}\n')
    from synthkit.cli.distill import read_prompts
    from synthkit.errors import SynthkitError
    with pytest.raises(SynthkitError, match="line 1"):
        read_prompts(tmp_path / "p.jsonl")
    (tmp_path / "q.txt").write_text("Name a colour.\n\n{\"instruction\": \"Say hi\", \"input\": \"Bo\"}\n")
    assert read_prompts(tmp_path / "q.txt") == ["Name a colour.", "Say hi\n\nBo"]


# --- on the embedded model -------------------------------------------------------------------
PROMPTS = ["Name three colours of the rainbow.", "What do bees make?", "Say hello in French.",
           "What is the capital of Italy?", "Give one fact about the Moon.", "What is 2 + 3?"]


@pytest.fixture(scope="module")
def teacher(torch_teacher):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_torch_backend: 2 threads fight on a busy 2-core box
    yield torch_teacher
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def targets(teacher):
    records = distill.teacher_answers(teacher, PROMPTS, max_tokens=24, keep_truncated=True, progress=False)
    return distill.teacher_targets(teacher, records, k=16, progress=False)


@pytest.fixture(scope="module")
def student(teacher, tmp_path_factory):
    s = distill.make_student(teacher, "layers:4", folder=tmp_path_factory.mktemp("s") / "student")
    s._initial = {k: v.clone() for k, v in s.model.state_dict().items()}
    return s


def test_student_copies_the_chosen_teacher_layers(teacher, student):
    keep = distill.pick_layers(teacher.model.config.num_hidden_layers, 4)
    assert student.model.config.num_hidden_layers == 4 and keep == [0, 10, 19, 29]
    t_state, s_state = teacher.model.state_dict(), student.model.state_dict()
    for j, i in enumerate(keep):
        for part in ("self_attn.q_proj.weight", "mlp.down_proj.weight", "input_layernorm.weight"):
            assert torch.equal(s_state[f"model.layers.{j}.{part}"], t_state[f"model.layers.{i}.{part}"])
    assert torch.equal(s_state["model.embed_tokens.weight"], t_state["model.embed_tokens.weight"])
    assert torch.equal(s_state["model.norm.weight"], t_state["model.norm.weight"])
    small, big = distill.size(student), distill.size(teacher)
    assert small["params"] < 0.45 * big["params"] and small["embedding"] == big["embedding"]
    assert student.tokenize("Distil me.") == teacher.tokenize("Distil me.")
    out = student.chat("What is the capital of France?", temperature=0, max_tokens=4, cache=False, progress=False)
    assert out[0].completion_tokens >= 1  # it runs (what it says is another matter before training)


def test_targets_line_up_and_keep_most_of_the_mass(teacher, targets):
    assert len(targets) >= 5 and targets.k == 16
    assert targets.taught_tokens == sum(sum(e.taught[1:]) for e in targets.examples)
    mass = targets.mass()
    assert (mass <= 1 + 1e-4).all() and mass.mean() > 0.8
    # the teacher's own greedy token is its top-1 at (almost) every answer position; the last
    # two are the template's end-of-turn and newline, which a cut-off answer did not choose
    top1 = np.concatenate([i[:-2, 0] for i in targets.ids])
    labels = np.concatenate([np.array(e.ids[1:])[np.array(e.taught[1:])][:-2] for e in targets.examples])
    assert (top1 == labels).mean() > 0.97
    j = next(j for j in range(1, len(targets)) if len(targets.ids[j]) != len(targets.ids[0]))
    misaligned = Targets(targets.examples[:1], targets.ids[j:j + 1], targets.logprobs[j:j + 1], 16)
    with pytest.raises(TrainingError, match="line up"):
        misaligned.batch([0], teacher.pad_id)


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_a_short_run_brings_the_student_closer_to_the_teacher(student, teacher, targets, mode):
    student.model.load_state_dict(student._initial)
    before = distill.forced_scores(student, teacher, targets.examples)["kl"]
    run = train_student(student, targets, mode=mode, max_steps=6, batch_size=6, lr=5e-4, warmup=0, **QUIET)
    after = distill.forced_scores(student, teacher, targets.examples)["kl"]
    assert len(run.kls) == 6 and run.tokens > 0 and run.tokens_per_s > 0
    assert run.kls[-1] < run.kls[0] and after < before, (run.kls, before, after)


def test_resume_gives_the_same_run(student, targets, tmp_path):
    settings = dict(mode="both", max_steps=4, batch_size=3, lr=5e-4, **QUIET)
    student.model.load_state_dict(student._initial)
    straight = train_student(student, targets, **settings)
    trained = student.model.model.norm.weight.detach().clone()

    def die(model, step):
        if step == 3:
            raise KeyboardInterrupt  # a kill after the step-2 checkpoint
    student.model.load_state_dict(student._initial)
    with pytest.raises(KeyboardInterrupt):
        train_student(student, targets, out_dir=tmp_path, save_every=2, eval_fn=die, eval_every=1, **settings)
    student.model.load_state_dict(student._initial)
    resumed = train_student(student, targets, out_dir=tmp_path, resume=True, **settings)
    assert resumed.resumed_from == 2 and len(resumed.kls) == 4
    np.testing.assert_allclose(resumed.losses, straight.losses, rtol=2e-3)
    np.testing.assert_allclose(resumed.kls, straight.kls, rtol=2e-3)
    assert torch.allclose(student.model.model.norm.weight, trained, atol=1e-4)
    # resuming the finished run trains nothing and gives back what it measured, KLs included
    again = train_student(student, targets, out_dir=tmp_path, resume=True, **settings)
    assert again.steps == 4 and again.resumed_from == 0 and again.kls == resumed.kls
    with pytest.raises(TrainingError, match="temperature differ"):
        train_student(student, targets, out_dir=tmp_path, resume=True, **{**settings, "temperature": 3.0})


def test_decode_speed_runs_every_row_the_same_steps(student):
    """decode_speed times a fixed number of greedy steps for every prompt (the end of an
    answer ignored), so it does not depend on answer lengths; bad input is refused."""
    tps = distill.decode_speed(student, PROMPTS[:3], tokens=4, repeats=2)
    assert np.isfinite(tps) and tps > 0
    with pytest.raises(ValueError, match="at least one prompt"):
        distill.decode_speed(student, [], tokens=4)
    with pytest.raises(ValueError, match="repeats"):
        distill.decode_speed(student, PROMPTS[:1], tokens=4, repeats=0)


def test_teacher_entropy_gives_the_kl_a_scale(teacher, targets):
    own = distill.forced_scores(teacher, teacher, targets.examples)
    assert own["kl"] == pytest.approx(0.0, abs=1e-2)  # the teacher's side is kept in fp16
    assert 0 < own["teacher_entropy"] < math.log(teacher.n_vocab)


def test_soft_gradient_norms_measure_the_real_student(student, teacher, targets):
    """The T² factor multiplies the gradient by exactly T²; a student that is the teacher
    has (almost) no gradient to follow; a real student has one at every temperature."""
    student.model.load_state_dict(student._initial)
    temps = (1, 2, 4)
    norms = distill.soft_gradient_norms(student, teacher, targets.examples[:3], temperatures=temps)
    assert sorted(norms) == [1.0, 2.0, 4.0]
    for t, v in norms.items():
        assert v["with T²"] > 0 and np.isfinite(v["with T²"])
        assert v["with T²"] == pytest.approx(v["without T²"] * t * t, rel=1e-9)
    own = distill.soft_gradient_norms(teacher, teacher, targets.examples[:3], temperatures=(1,))
    assert own[1.0]["with T²"] < 0.05 * norms[1.0]["with T²"]


def test_sweep_lr_scores_every_rate_and_puts_the_student_back(student, teacher, targets):
    student.model.load_state_dict(student._initial)
    val, train = targets.subset(range(2)), targets.subset(range(2, len(targets)))
    scores = distill.sweep_lr(student, teacher, train, val.examples, (1e-5, 1e-3), max_steps=2, mode="soft",
                              temperature=1.0, batch_size=3, warmup=0)
    assert list(scores) == [1e-5, 1e-3] and all(np.isfinite(v) and v > 0 for v in scores.values())
    assert all(torch.equal(v, student._initial[k].to(v.dtype)) for k, v in student.model.state_dict().items())
    with pytest.raises(distill.DistillError, match="at least one"):
        distill.sweep_lr(student, teacher, train, val.examples, [], max_steps=1)
