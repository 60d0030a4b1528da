"""The tiny pretraining module: tokenizer, model, loss falls, perplexity identity,
sampling with a cache, save/load with provenance, resume after a kill."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from synthkit.data import wiki_summaries
from synthkit.train import TrainingError
from synthkit.train import tiny
from synthkit.train.tiny import (EOT, TinyConfig, TinyGPT, load_tiny, perplexity, pretrain, sample,
                                 save_tiny, text_perplexities, token_losses, train_tokenizer)

SMALL = dict(n_layer=2, n_head=2, d_model=32, context=32)


@pytest.fixture(scope="module")
def texts():
    return [r["text"] for r in wiki_summaries("en")[:240]]


@pytest.fixture(scope="module")
def tok(texts):
    return train_tokenizer(texts, vocab_size=512)


@pytest.fixture(scope="module")
def trained(texts, tok):
    return pretrain(texts[:200], tokenizer=tok, config=TinyConfig(vocab_size=512, **SMALL), steps=40,
                    batch_size=16, lr=1e-2, eval_texts=texts[200:], eval_every=20, progress=False)


def test_tokenizer_is_byte_level_with_an_end_of_text_token(tok):
    assert tok.get_vocab_size() == 512 and tok.token_to_id(EOT) == 0
    odd = "Zoë’s café — 東京 🙂 \t tabs"  # nothing here is unknown to a byte-level BPE
    assert tok.decode(tok.encode(odd).ids) == odd
    assert len(tok.encode(" the history of the").ids) < len(" the history of the")  # merges happened


def test_tokenizer_refuses_bad_input():
    with pytest.raises(TrainingError, match="list of texts"):
        train_tokenizer("one string")
    with pytest.raises(TrainingError, match="at least 300"):
        train_tokenizer(["some text"], vocab_size=100)
    with pytest.raises(TrainingError, match="no text"):
        train_tokenizer(["", "  "])


def test_model_shape_is_causal_and_counts_tied_weights_once():
    c = TinyConfig(vocab_size=300, **SMALL)
    model = TinyGPT(c)
    assert model.lm_head.weight is model.tok_emb.weight
    per_block = 2 * 2 * c.d_model + (3 * c.d_model ** 2 + 3 * c.d_model) + (c.d_model ** 2 + c.d_model) \
        + (4 * c.d_model ** 2 + 4 * c.d_model) + (4 * c.d_model ** 2 + c.d_model)
    expected = c.vocab_size * c.d_model + c.context * c.d_model + c.n_layer * per_block + 2 * c.d_model
    assert model.n_params == expected
    ids = torch.randint(0, 300, (2, 20))
    changed = ids.clone()
    changed[:, 12:] = torch.randint(0, 300, (2, 8))
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert torch.allclose(a[:, :12], b[:, :12], atol=1e-5)  # the future does not leak back
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_cache_gives_the_same_logits_as_a_full_forward():
    torch.manual_seed(1)
    model = TinyGPT(TinyConfig(vocab_size=300, **SMALL)).eval()
    ids = torch.randint(0, 300, (3, 10))
    with torch.no_grad():
        full = model(ids)
        logits, caches = model.extend(ids[:, :6])
        steps = [logits]
        for p in range(6, 10):
            logits, caches = model.extend(ids[:, p:p + 1], caches, start=p)
            steps.append(logits)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def test_loss_falls_and_held_out_perplexity_improves(trained):
    assert trained.steps == 40 and len(trained.losses) == 40
    assert np.mean(trained.losses[-5:]) < trained.losses[0] - 0.7
    assert trained.losses[0] == pytest.approx(math.log(512), abs=0.3)  # starts near uniform
    (s1, p1), (s2, p2) = trained.eval_curve
    assert (s1, s2) == (20, 40) and p2 < p1 < 512
    assert trained.tokens_seen == 40 * 16 * 32 and trained.tokens_per_s > 0


def test_perplexity_is_exp_of_the_mean_token_loss(trained, texts):
    """Computed independently: one text at a time, no padding, no batching."""
    model, tok = trained.model, trained.tokenizer
    held = [t[:50] for t in texts[200:212]]  # short enough for one window each
    losses = []
    with torch.no_grad():
        for t in held:
            ids = torch.tensor([[0] + tok.encode(t).ids])
            assert ids.shape[1] <= 33
            logits = model(ids[:, :-1])
            losses.append(F.cross_entropy(logits[0], ids[0, 1:], reduction="none"))
    expected = math.exp(torch.cat(losses).mean().item())
    assert perplexity(model, tok, held) == pytest.approx(expected, rel=1e-5)
    # pooled over tokens, not averaged over texts
    per_text = text_perplexities(model, tok, held)
    assert per_text == pytest.approx([math.exp(l.mean().item()) for l in losses], rel=1e-5)
    assert perplexity(model, tok, held) != pytest.approx(float(np.mean(per_text)), rel=1e-6)


def test_padding_and_windows_change_no_number(trained, texts):
    model, tok = trained.model, trained.tokenizer
    mixed = [texts[200][:40], texts[201] * 3, texts[202][:90]]  # one is many windows long
    together = token_losses(model, tok, mixed, batch_size=64)
    alone = [token_losses(model, tok, [t], batch_size=1)[0] for t in mixed]
    for t, a, b in zip(mixed, together, alone):
        assert len(a) == len(tok.encode(t).ids)  # every token predicted exactly once
        assert np.allclose(a, b, atol=1e-5)


def test_sampling_is_seeded_and_greedy_matches_a_full_forward(trained):
    model, tok = trained.model, trained.tokenizer
    a = sample(model, tok, 5, max_tokens=20, seed=3, batch_size=2, progress=False)
    assert len(a) == 5 and all(isinstance(t, str) for t in a)
    assert a == sample(model, tok, 5, max_tokens=20, seed=3, batch_size=2, progress=False)
    assert a != sample(model, tok, 5, max_tokens=20, seed=4, batch_size=2, progress=False)
    greedy = sample(model, tok, 1, max_tokens=50, temperature=0, prompt="The", progress=False)[0]
    ids = [0] + tok.encode("The").ids
    with torch.no_grad():  # no cache, sliding window of the last `context` tokens
        for _ in range(50):
            nxt = int(model(torch.tensor([ids[-32:]]))[0, -1].argmax())
            if nxt == 0:
                break
            ids.append(nxt)
    expect = tok.decode(ids[1 + len(tok.encode("The").ids):])
    # past the context the cached sampler restarts from half a window, so compare the first 32 tokens
    n = 32 - len(tok.encode("The").ids) - 1
    assert tok.encode(greedy).ids[:n] == tok.encode(expect).ids[:n]


def test_sampling_refuses_bad_settings(trained):
    with pytest.raises(TrainingError, match="temperature"):
        sample(trained.model, trained.tokenizer, 1, temperature=-1, progress=False)
    with pytest.raises(TrainingError, match="prompt"):
        sample(trained.model, trained.tokenizer, 1, prompt="word " * 40, progress=False)


def test_save_and_load_keep_weights_and_write_provenance(trained, tmp_path, texts):
    save_tiny(trained, None, tmp_path / "m")
    model, tok = load_tiny(tmp_path / "m", device="cpu")
    ids = torch.tensor([[0] + tok.encode(texts[0][:80]).ids])[:, :32]
    with torch.no_grad():
        assert torch.allclose(model(ids), trained.model(ids), atol=1e-6)
    prov = json.loads((tmp_path / "m" / "provenance.json").read_text())
    assert prov["data"]["documents"] == 200 and prov["tokens_seen"] == trained.tokens_seen
    assert prov["seed"] == 0 and prov["n_params"] == trained.n_params and "tokenizers" in prov
    with pytest.raises(TrainingError, match="no tiny model"):
        load_tiny(tmp_path / "nothing")


def test_a_killed_run_resumes_on_the_same_batches(texts, tok, tmp_path, monkeypatch):
    kw = dict(tokenizer=tok, config=TinyConfig(vocab_size=512, **SMALL), steps=10, batch_size=8,
              progress=False)
    whole = pretrain(texts[:100], **kw)
    real = tiny.perplexity

    def dies_at_step_6(*a, **k):
        raise KeyboardInterrupt  # as if the kernel were stopped
    monkeypatch.setattr(tiny, "perplexity", dies_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        pretrain(texts[:100], out_dir=tmp_path, save_every=5, eval_texts=texts[100:110], eval_every=6, **kw)
    assert (tmp_path / "checkpoint").is_dir()
    monkeypatch.setattr(tiny, "perplexity", real)
    resumed = pretrain(texts[:100], out_dir=tmp_path, save_every=5, **kw)
    assert resumed.resumed_from == 5 and resumed.steps == 10
    assert np.allclose(resumed.losses, whole.losses, atol=1e-4)
    assert not (tmp_path / "checkpoint").exists()
    again = pretrain(texts[:100], out_dir=tmp_path, save_every=5, **kw)  # finished: loads, no training
    assert again.losses == resumed.losses
    with pytest.raises(TrainingError, match="other settings"):
        pretrain(texts[:100], out_dir=tmp_path, **{**kw, "steps": 12})


def test_token_budget_sets_the_steps_and_bad_settings_are_refused(texts, tok):
    cfg = TinyConfig(vocab_size=512, **SMALL)
    run = pretrain(texts[:50], tokenizer=tok, config=cfg, tokens=1000, batch_size=4, progress=False)
    assert run.total_steps == math.ceil(1000 / (4 * 32)) == run.steps
    with pytest.raises(TrainingError, match="not both"):
        pretrain(texts[:50], tokenizer=tok, config=cfg, tokens=100, steps=2)
    with pytest.raises(TrainingError, match="vocab_size=512"):
        pretrain(texts[:50], tokenizer=tok, config=TinyConfig(vocab_size=300, **SMALL), steps=1)
    with pytest.raises(TrainingError, match="only"):
        pretrain(["tiny"], tokenizer=tok, config=cfg, steps=1)
    with pytest.raises(TrainingError, match="n_head"):
        TinyConfig(d_model=30, n_head=4)
