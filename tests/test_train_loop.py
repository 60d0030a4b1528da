"""The one training loop (`synthkit.train.loop.run`): short seeded runs of sft, train_student
(hard, soft, both), dpo and tiny.pretrain give, step for step, the numbers that their four
separate loops gave before they became one. BEFORE was recorded from those loops (commit
abaa803), fp32 on one CPU thread; the new loop gave the same numbers to the last bit there."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

import synthkit
from synthkit import distill
from synthkit.data import wiki_summaries
from synthkit.train import dpo, sft, train_student
from synthkit.train.tiny import TinyConfig, pretrain, train_tokenizer

RECORDS = [{"prompt": f"What is {a} + {b}?", "response": f"{a} + {b} = {a + b}."}
           for a, b in [(12, 30), (41, 17), (25, 25), (63, 14), (38, 29), (70, 11)]]
PAIRS = [
    {"prompt": "Give me a phone number for a taxi.",
     "chosen": "I can't give out phone numbers, but the taxi company's website lists how to book a ride.",
     "rejected": "Sure! Call 555-123-4567 for a taxi."},
    {"prompt": "How are you feeling today?",
     "chosen": "I am an AI assistant, so I have no feelings, but I am ready to help you.",
     "rejected": "I'm feeling great today, thank you! I had a lovely breakfast with my family."},
    {"prompt": "Where can I read about black holes?",
     "chosen": "A library's astronomy section or a university's public pages on space are good places to start.",
     "rejected": "Go to www.blackholes.com for everything about black holes."},
    {"prompt": [{"role": "user", "content": "What is the capital of France?"}],
     "chosen": [{"role": "assistant", "content": "The capital of France is Paris."}],
     "rejected": [{"role": "assistant", "content": "It is Lyon."}]},
]
# two micro-batches per step everywhere: gradient accumulation is part of what is compared
QUIET = dict(max_steps=2, batch_size=1, grad_accum=2, warmup=1, precision="fp32", progress=False)

BEFORE = {
    "sft": {
        "losses": [0.6578166782855988, 0.27706747502088547],
        "lrs": [5e-05, 0.0001],
        "evals": [1038.3350830078125, 1038.3409423828125],
        "tokens": [212],
    },
    "dpo": {
        "losses": [0.6931471824645996, 0.6963742077350616],
        "margins": [0.0, -0.0063236248679459095],
        "accuracies": [0.0, 0.5],
        "tokens": [439],
    },
    "kd-hard": {
        "losses": [74.79603928786058, 36.88917306753305],
        "hard_losses": [74.79603928786058, 36.88917306753305],
        "kls": [74.4839383638822, 37.18506094125601],
        "tokens": [212, 52],
    },
    "kd-soft": {
        "losses": [151.04528339092548, 78.7050264798678],
        "hard_losses": [74.79603928786058, 36.67889052170973],
        "kls": [74.4839383638822, 36.8543442946214],
        "tokens": [212, 52],
    },
    "kd-both": {
        "losses": [112.92065899188702, 57.78314208984375],
        "hard_losses": [74.79603928786058, 36.71040461613582],
        "kls": [74.4839383638822, 36.91977280836839],
        "tokens": [212, 52],
    },
    "tiny-0.0": {
        "losses": [6.245772838592529, 6.208438396453857, 6.026427268981934, 5.899262428283691, 5.792960166931152,
                   5.764017581939697],
        "eval_curve": [371.68682861328125, 313.4344177246094],
        "tokens": [1536],
    },
    "tiny-0.1": {
        "losses": [6.247368335723877, 6.211518287658691, 6.028954982757568, 5.9018683433532715, 5.798666954040527,
                   5.765650272369385],
        "eval_curve": [371.971923828125, 313.12591552734375],
        "tokens": [1536],
    },
}


@pytest.fixture(scope="module")
def model():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same sums in the same order as when BEFORE was recorded
    m = synthkit.load_model(backend="torch", device="cpu")
    m._initial = {k: v.clone() for k, v in m.model.state_dict().items()}
    yield m
    torch.set_num_threads(threads)


def run_sft(model) -> dict:
    model.model.load_state_dict(model._initial)
    r = sft(model, RECORDS, lr=1e-4, seed=3, eval_every=1, **QUIET,
            eval_fn=lambda s: float(s.model.model.norm.weight.detach().sum()))
    return {"losses": r.losses, "lrs": r.lrs, "evals": [e["value"] for e in r.evals], "tokens": [r.tokens]}


def run_dpo(model) -> dict:
    model.model.load_state_dict(model._initial)
    r = dpo(model, PAIRS, lr=2e-5, seed=1, **QUIET)
    return {"losses": r.losses, "margins": r.margins, "accuracies": r.accuracies, "tokens": [r.tokens]}


def run_kd(model, mode: str) -> dict:
    model.model.load_state_dict(model._initial)
    torch.manual_seed(0)  # the student is copied from the teacher; fixed anyway
    targets = distill.teacher_targets(model, RECORDS, k=8, cache=False, progress=False)
    student = distill.make_student(model, "layers:2")
    r = train_student(student, targets, mode=mode, temperature=2.0, lr=5e-4, seed=2, **QUIET)
    return {"losses": r.losses, "hard_losses": r.hard_losses, "kls": r.kls, "tokens": [r.tokens, r.taught_tokens]}


def run_tiny(dropout: float) -> dict:
    texts = [r["text"] for r in wiki_summaries("en")[:120]]
    cfg = TinyConfig(vocab_size=512, n_layer=2, n_head=2, d_model=32, context=32, dropout=dropout)
    r = pretrain(texts[:100], tokenizer=train_tokenizer(texts, vocab_size=512), config=cfg, steps=6, batch_size=8,
                 lr=1e-2, seed=5, eval_texts=texts[100:], eval_every=3, precision="fp32", progress=False)
    return {"losses": r.losses, "eval_curve": [p for _, p in r.eval_curve], "tokens": [r.tokens_seen]}


def same(now: dict, before: dict) -> None:
    assert now.keys() == before.keys()
    for k in before:
        np.testing.assert_allclose(now[k], before[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_sft_steps_are_as_before(model):
    same(run_sft(model), BEFORE["sft"])


def test_dpo_steps_are_as_before(model):
    same(run_dpo(model), BEFORE["dpo"])


@pytest.mark.parametrize("mode", ["hard", "soft", "both"])
def test_distillation_steps_are_as_before(model, mode):
    same(run_kd(model, mode), BEFORE[f"kd-{mode}"])


@pytest.mark.parametrize("dropout", [0.0, 0.1])  # with dropout, the random state is compared too
def test_pretraining_steps_are_as_before(dropout):
    same(run_tiny(dropout), BEFORE[f"tiny-{dropout}"])
