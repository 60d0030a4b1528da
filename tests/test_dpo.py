"""DPO (synthkit.train.dpo): the loss against TRL's own code and against the paper's equation
written out independently; reply log-probs against a plain full forward pass; a short real
run on the embedded model whose margin on its training pairs must rise; resume after a kill;
and errors that name the fix."""
from __future__ import annotations

import importlib
import math
import random
import types
from collections import defaultdict

import pytest
import torch

from synthkit.train.data import DataError
from synthkit.train.loop import TrainingError

# the module itself: the attribute `synthkit.train.dpo` is the training function
D = importlib.import_module("synthkit.train.dpo")


def _random_logps(rng: random.Random, n: int):
    # summed log-probs of replies of 5-60 tokens: large negative numbers, near each other
    base = [-rng.uniform(5, 120) for _ in range(n)]
    return [torch.tensor([b + rng.gauss(0, s) for b in base], dtype=torch.float64) for s in (3, 3, 3, 3)]


def paper_loss(pw, pl, rw, rl, beta):
    """Rafailov et al. (2023), eq. 7, one pair at a time, with Python floats:
    -log sigma(beta log(pi(y_w)/ref(y_w)) - beta log(pi(y_l)/ref(y_l)))."""
    total = 0.0
    for a, b, c, d in zip(pw, pl, rw, rl):
        z = beta * (a - c) - beta * (b - d)
        total += math.log1p(math.exp(-z)) if z > -30 else -z  # -log sigmoid(z), stable for large |z|
    return total / len(pw)


@pytest.mark.parametrize("beta", [0.01, 0.1, 0.5, 2.0])
def test_loss_matches_the_papers_equation(beta):
    rng = random.Random(beta)
    for _ in range(20):
        pw, pl, rw, rl = _random_logps(rng, rng.randint(1, 9))
        loss, chosen, rejected = D.dpo_loss(pw, pl, rw, rl, beta)
        assert loss.item() == pytest.approx(paper_loss(pw.tolist(), pl.tolist(), rw.tolist(), rl.tolist(), beta),
                                            rel=1e-9, abs=1e-12)
        assert torch.allclose(chosen, beta * (pw - rw)) and torch.allclose(rejected, beta * (pl - rl))


def test_loss_is_log_two_at_the_start_and_falls_as_the_margin_grows():
    logps = torch.tensor([-40.0, -12.5])
    loss, chosen, rejected = D.dpo_loss(logps, logps.flip(0), logps, logps.flip(0))
    assert loss.item() == pytest.approx(math.log(2)) and chosen.abs().max() == 0 and rejected.abs().max() == 0
    # a policy that likes the chosen reply more than the reference did has a lower loss
    pw = torch.tensor([-30.0], requires_grad=True)
    loss, _, _ = D.dpo_loss(pw, torch.tensor([-20.0]), torch.tensor([-31.0]), torch.tensor([-20.0]))
    loss.backward()
    assert loss.item() < math.log(2) and pw.grad.item() < 0  # gradient descent raises log pi(chosen)
    # no overflow where log(sigmoid(.)) would give inf
    huge, _, _ = D.dpo_loss(torch.tensor([-1e4]), torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0.0]), 1.0)
    assert math.isfinite(huge.item()) and huge.item() == pytest.approx(1e4)


def test_loss_matches_trl():
    """TRL's DPOTrainer computes its sigmoid loss inside _compute_loss; we call that code on a
    trainer object holding only the settings it reads, with a stand-in model whose per-token
    log-probs sum to the sequence log-probs we choose (so no model is downloaded)."""
    trl = pytest.importorskip("trl", reason="TRL is a test-only dependency: pip install -e '.[test]'")
    from trl import DPOTrainer

    class Accelerator:
        device = torch.device("cpu")

        def gather(self, x):
            return x

        gather_for_metrics = gather

    rng = random.Random(7)
    for beta in (0.05, 0.1, 0.7):
        for n in (1, 3, 8):
            pw, pl, rw, rl = (t.float() for t in _random_logps(rng, n))
            length = 6
            per_token = torch.zeros(2 * n, length)
            per_token[:, 2] = torch.cat([pw, pl])  # chosen rows first, then rejected (TRL's layout)

            def model(**kw):
                return types.SimpleNamespace(log_probs=per_token, entropy=torch.zeros_like(per_token),
                                             mean_logits=torch.zeros_like(per_token),
                                             is_top1=torch.zeros_like(per_token, dtype=torch.bool))

            trainer = object.__new__(DPOTrainer)
            trainer.__dict__.update(
                model=types.SimpleNamespace(training=True), accelerator=Accelerator(), aux_loss_enabled=False,
                ld_alpha=None, precompute_ref_logps=True, f_divergence_type="reverse_kl", loss_types=["sigmoid"],
                loss_weights=[1.0], beta=beta, label_smoothing=0.0, use_weighting=False,
                _metrics={"train": defaultdict(list)}, _total_train_tokens=0, _tp_size=1)
            ones = torch.ones(2 * n, length + 1, dtype=torch.long)
            inputs = {"input_ids": ones * 0, "attention_mask": ones, "completion_mask": ones,
                      "ref_chosen_logps": rw, "ref_rejected_logps": rl}
            theirs = DPOTrainer._compute_loss(trainer, model, inputs, False)
            loss, chosen, rejected = D.dpo_loss(pw, pl, rw, rl, beta)
            assert loss.item() == pytest.approx(theirs.item(), rel=1e-5), (trl.__version__, beta, n)
            logged = trainer._metrics["train"]
            assert chosen.mean().item() == pytest.approx(logged["rewards/chosen"][-1], rel=1e-5, abs=1e-6)
            assert (chosen - rejected).mean().item() == pytest.approx(logged["rewards/margins"][-1], rel=1e-5, abs=1e-6)


# --- with the real model -------------------------------------------------------------------

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
    {"prompt": [{"role": "user", "content": "¿Cuál es la capital de Francia? Responde en español."}],
     "chosen": [{"role": "assistant", "content": "La capital de Francia es París."}],
     "rejected": [{"role": "assistant", "content": "The capital of France is Paris."}]},
]


@pytest.fixture(scope="module")
def policy(torch_teacher):
    """The session's teacher, trained in place by these tests: each test starts from the
    initial weights (`_reset`), and they are put back for the modules that follow."""
    model = torch_teacher
    loaded_digest = model.weights_digest()
    model.initial = {k: v.detach().clone() for k, v in model.model.state_dict().items()}
    yield model
    _reset(model)
    model.model.eval()
    del model.initial
    # The values are the loaded ones again, but loading them bumped every tensor's version,
    # which the cache key reads as "trained in memory": say they are the loaded weights.
    assert model.weights_digest() == loaded_digest
    model._loaded_state = model._weights_state()


def _reset(policy):
    policy.model.load_state_dict(policy.initial)


def test_sequence_logps_equal_a_plain_forward_pass(policy):
    _reset(policy)
    pairs = D.encode_pairs(policy, PAIRS[:2], max_len=256)
    batch = D.pair_batch(pairs, policy.pad_id)
    with torch.no_grad():
        fast = D.sequence_logps(policy.model, batch)
        logits = policy.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    logp = torch.log_softmax(logits, -1)
    for row in range(batch["input_ids"].shape[0]):
        want = sum(logp[row, t, batch["labels"][row, t]].item() for t in range(batch["labels"].shape[1])
                   if batch["labels"][row, t] != -100)
        assert fast[row].item() == pytest.approx(want, rel=1e-4)
    # only reply tokens count: the same reply after a longer prompt has the same number of taught tokens
    ex = pairs[0].chosen
    assert 0 < ex.n_taught < len(ex.ids)


def test_a_short_real_run_raises_the_margin_on_its_pairs(policy, tmp_path):
    _reset(policy)
    pairs = D.encode_pairs(policy, PAIRS, max_len=256)
    ref = D.reference_logps(policy, pairs)
    run = D.dpo(policy, PAIRS, max_steps=4, batch_size=4, lr=2e-5, warmup=0, beta=0.1, progress=False)
    assert run.steps == 4 and len(run.margins) == 4 and run.tokens_per_s > 0
    assert run.losses[0] == pytest.approx(math.log(2), abs=0.02)  # policy == reference at step 1
    after = D.reference_logps(policy, pairs)
    margin = 0.1 * ((after[:, 0] - ref[:, 0]) - (after[:, 1] - ref[:, 1]))
    assert margin.mean().item() > 0.05, margin  # the chosen replies gained on the rejected ones
    assert run.losses[-1] < run.losses[0]


def test_a_killed_run_resumes_from_its_checkpoint(policy, tmp_path, monkeypatch):
    _reset(policy)
    real_step, calls = D._train_step, []

    def dies_on_step_three(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(*a, **k)

    monkeypatch.setattr(D, "_train_step", dies_on_step_three)
    with pytest.raises(KeyboardInterrupt):
        D.dpo(policy, PAIRS, max_steps=3, batch_size=2, out_dir=tmp_path, save_every=2, progress=False)
    assert (tmp_path / D.REFERENCE_FILE).exists() and (tmp_path / "checkpoint").exists()
    monkeypatch.setattr(D, "_train_step", real_step)
    _reset(policy)  # a fresh process: the starting weights again
    run = D.dpo(policy, PAIRS, max_steps=3, batch_size=2, out_dir=tmp_path, resume=True, progress=False)
    assert run.resumed_from == 2 and run.steps == 3 and len(run.margins) == 3
    assert (tmp_path / "model.safetensors").exists() and not (tmp_path / "checkpoint").exists()
    again = D.dpo(policy, PAIRS, max_steps=3, batch_size=2, out_dir=tmp_path, resume=True, progress=False)
    assert again.steps == 3 and again.margins == run.margins  # finished: nothing trained twice


def test_bad_pairs_and_settings_name_the_fix(policy):
    with pytest.raises(DataError, match="'prompt', 'chosen' and 'rejected'"):
        D.dpo(policy, [{"prompt": "a", "response": "b"}], max_steps=1, progress=False)
    with pytest.raises(DataError, match="none of the 1 pairs"):
        D.dpo(policy, [{"prompt": "a", "chosen": "same", "rejected": "same"}], max_steps=1, progress=False)
    with pytest.raises(TrainingError, match="beta must be a positive number"):
        D.dpo(policy, PAIRS, beta=0, max_steps=1, progress=False)
    with pytest.raises(TrainingError, match="torch-backend"):
        D.dpo(object(), PAIRS)
