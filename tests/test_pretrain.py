"""Synthetic pretraining data (synthkit.pretrain) and its commands: the curriculum, the
quality filters, mixing at an exact share, per-subject perplexity, held-out scores and the
validation/test halves, a real teacher writing passages, and `synthkit textbooks` /
`synthkit pretrain` end to end."""
from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from synthkit import pretrain
from synthkit.pretrain import PretrainDataError, mix_ids, quality_reasons

ROOT = Path(__file__).resolve().parents[1]


def test_held_out_titles_never_become_topics():
    train, test = pretrain.real_documents()
    assert len(test) > 0.05 * (len(train) + len(test)) and len(test) < 0.15 * (len(train) + len(test))
    assert not {d["title"] for d in train} & {d["title"] for d in test}
    assert pretrain.UNLABELLED not in {d["subject"] for d in train + test}
    topics = pretrain.curriculum(300, seed=2)
    assert not {t["title"] for t in topics} & {d["title"] for d in test}


def test_curriculum_is_balanced_extends_itself_and_aims_at_a_subject():
    topics = pretrain.curriculum(110, seed=1)
    counts = Counter(t["subject"] for t in topics)
    assert len(counts) == 11 and set(counts.values()) == {10}  # round-robin
    assert len({t["title"] for t in topics}) == 110
    assert pretrain.curriculum(50, seed=1) == topics[:50]  # a bigger corpus extends a smaller one
    assert pretrain.curriculum(50, seed=2) != topics[:50]
    maths = pretrain.curriculum(300, seed=0, subjects=["Mathematics"])
    assert {t["subject"] for t in maths} == {"Mathematics"}
    # Mathematics has fewer than 300 training titles: the second pass repeats titles in another style
    seen = {}
    for t in maths:
        assert seen.get(t["title"], None) != t["style"]
        seen[t["title"]] = t["style"]
    assert len({t["id"] for t in maths}) == 300
    with pytest.raises(PretrainDataError, match="choose from"):
        pretrain.curriculum(3, subjects=["Astrology"])


def test_prompt_names_the_topic_and_asks_for_plain_prose():
    topic = pretrain.curriculum(1)[0]
    prompt = pretrain.passage_prompt(topic)
    assert topic["title"] in prompt and topic["subject"].lower() in prompt
    assert "no headings, no lists" in prompt


GOOD = ("Photosynthesis is the process by which green plants turn light into chemical energy. "
        "Inside the leaf, chlorophyll absorbs sunlight and uses its energy to split water, releasing "
        "oxygen. The plant then combines carbon dioxide from the air with the stored energy to build "
        "sugars, which feed its growth. Without this process there would be little oxygen to breathe "
        "and almost no food at the base of any food chain on land or in the sea.")


@pytest.mark.parametrize("text, title, reason", [
    (GOOD, "Photosynthesis", None),
    (GOOD.split(". ")[0] + ".", "Photosynthesis", "short"),
    ("## Photosynthesis\n" + GOOD, "Photosynthesis", "markup"),
    (GOOD + "\n1. Light.\n2. Water.", "Photosynthesis", "markup"),
    ("Sure! " + GOOD, "Photosynthesis", "preamble"),
    (GOOD.rstrip(".") + " and then the", "Photosynthesis", "unfinished"),
    (GOOD, "Volcano", "off-topic"),
    (GOOD, "The Sun (star)", "off-topic"),  # "the" and "sun" are too short to count, "star" is absent
    (GOOD, "Green plants", None),
    ("photosynthesis makes sugar from light. " * 12, "Photosynthesis", "repetitive"),
])
def test_quality_rules(text, title, reason):
    got = quality_reasons(text, title)
    assert got == ([] if reason is None else [reason])


def test_trim_keeps_whole_sentences():
    assert pretrain._trim("One sentence. Another one! A third that was cut") == "One sentence. Another one!"
    assert pretrain._trim("no end at all") == "no end at all"
    assert pretrain._trim("Version 2.5 is out. Then") == "Version 2.5 is out."


def test_mix_hits_the_exact_share_and_uses_each_source_evenly():
    rng = random.Random(0)
    real = [[rng.randrange(100) for _ in range(rng.randint(5, 60))] for _ in range(40)]
    synth = [[1000 + rng.randrange(100) for _ in range(rng.randint(5, 60))] for _ in range(7)]
    for tokens, share in [(5000, 0.5), (1234, 0.25), (777, 0.0), (900, 1.0), (3001, 0.333)]:
        docs = mix_ids(real, synth, tokens=tokens, share=share, seed=3)
        assert sum(map(len, docs)) == tokens
        assert sum(len(d) for d in docs if d and d[0] >= 1000) == round(share * tokens)
    # the synthetic side (7 documents) is smaller than its quota: whole epochs, evenly
    docs = mix_ids(real, synth, tokens=5000, share=0.5, seed=3)
    uses = Counter(tuple(d) for d in docs if d[0] >= 1000 and list(d) in synth)
    assert max(uses.values()) - min(uses.values()) <= 1
    assert mix_ids(real, synth, tokens=5000, share=0.5, seed=3) == docs  # seeded
    with pytest.raises(PretrainDataError, match="empty"):
        mix_ids(real, [], tokens=100, share=0.5)
    with pytest.raises(PretrainDataError, match="share"):
        mix_ids(real, synth, tokens=100, share=1.5)


def test_mix_decodes_through_the_tokenizer():
    from synthkit.train.tiny import train_tokenizer
    real, _ = pretrain.real_documents()
    texts = [d["text"] for d in real[:60]]
    tok = train_tokenizer(texts, vocab_size=400)
    docs = pretrain.mix(texts[:40], texts[40:], tok, tokens=3000, share=0.5)
    assert sum(len(tok.encode(d).ids) for d in docs) == pytest.approx(3000, rel=0.02)


def test_subject_perplexity_pools_tokens_per_subject():
    from synthkit.train.tiny import TinyConfig, TinyGPT, perplexity, train_tokenizer
    real, held = pretrain.real_documents()
    tok = train_tokenizer([d["text"] for d in real[:80]], vocab_size=400)
    model = TinyGPT(TinyConfig(vocab_size=400, n_layer=1, n_head=2, d_model=16, context=32))
    docs = held[:30]
    by = pretrain.subject_perplexity(model, tok, docs)
    assert set(by) == {d["subject"] for d in docs}
    for s, value in by.items():
        assert value == pytest.approx(perplexity(model, tok, [d["text"] for d in docs if d["subject"] == s]),
                                      rel=1e-5)


def test_validation_split_halves_every_subject_the_same_way_everywhere():
    _, held = pretrain.real_documents()
    validation, test = pretrain.validation_split(held)
    assert sorted(d["title"] for d in validation + test) == sorted(d["title"] for d in held)
    assert not {d["title"] for d in validation} & {d["title"] for d in test}
    for subject, n in Counter(d["subject"] for d in held).items():
        v = sum(d["subject"] == subject for d in validation)
        assert v - (n - v) in (0, 1)  # alternate within a subject: both halves, one apart at most
    again = pretrain.validation_split(list(reversed(held)))  # order of the input does not matter
    assert {d["title"] for d in again[1]} == {d["title"] for d in test}
    small = [d for d in held if d["subject"] == "Mathematics"][:2]
    assert [len(half) for half in pretrain.validation_split(small)] == [1, 1]


def test_held_out_scores_give_the_pooled_perplexity_and_each_texts_own_loss():
    from synthkit.train.tiny import TinyConfig, TinyGPT, perplexity, text_perplexities, train_tokenizer
    real, held = pretrain.real_documents()
    tok = train_tokenizer([d["text"] for d in real[:80]], vocab_size=400)
    model = TinyGPT(TinyConfig(vocab_size=400, n_layer=1, n_head=2, d_model=16, context=32))
    texts = [d["text"] for d in held[:12]]
    pooled, per_text = pretrain.held_out_scores(model, tok, texts)
    assert pooled == pytest.approx(perplexity(model, tok, texts), rel=1e-5)
    assert per_text.shape == (12,)
    assert np.allclose(np.exp(per_text), text_perplexities(model, tok, texts), rtol=1e-5)


def test_read_documents_from_text_and_jsonl(tmp_path):
    from synthkit.errors import SynthkitError
    from synthkit.cli.pretrain import read_documents
    (tmp_path / "a.txt").write_text("first doc\nstill first\n\nsecond doc\n\n\n")
    assert read_documents(tmp_path / "a.txt") == ["first doc\nstill first", "second doc"]
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write(json.dumps({"text": "one"}) + "\n" + json.dumps({"body": "two"}) + "\n")
    with pytest.raises(SynthkitError, match="--field"):
        read_documents(tmp_path / "b.jsonl.gz")
    with pytest.raises(SynthkitError, match="does not exist"):
        read_documents(tmp_path / "none.txt")


def _synthkit(*args, timeout=240):
    import os
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "synthkit.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def test_pretrain_command_trains_resumes_and_writes_provenance(tmp_path):
    real, _ = pretrain.real_documents()
    (tmp_path / "data.txt").write_text("\n\n".join(d["text"] for d in real[:150]))
    args = ["pretrain", str(tmp_path / "data.txt"), "--out", str(tmp_path / "m"), "--steps", "6",
            "--batch-size", "4", "--vocab", "400", "--layers", "1", "--d-model", "32", "--context", "32"]
    out = _synthkit(*args)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "held-out perplexity" in out.stdout
    prov = json.loads((tmp_path / "m" / "provenance.json").read_text())
    assert prov["steps"] == 6 and prov["data"]["source"].endswith("data.txt")
    assert prov["commands"][0].startswith("synthkit pretrain ") and prov["train_documents"] + \
        prov["held_out_documents"] == 150
    again = _synthkit(*args)  # finished: loads, does not train again
    assert again.returncode == 0 and len(json.loads((tmp_path / "m" / "provenance.json").read_text())["commands"]) == 2
    bad = _synthkit("pretrain", str(tmp_path / "data.txt"), "--out", str(tmp_path / "m"), "--steps", "7",
                    "--batch-size", "4", "--vocab", "400", "--layers", "1", "--d-model", "32", "--context", "32")
    assert bad.returncode == 2 and "other settings" in bad.stderr


def test_a_real_teacher_writes_judged_passages(llama_model):
    teacher = llama_model
    topics = pretrain.curriculum(3, seed=5)
    passages = pretrain.textbook_passages(teacher, topics, sampling=pretrain.SAMPLING.replace(max_tokens=48),
                                          progress=False)
    assert [p["title"] for p in passages] == [t["title"] for t in topics]
    for p in passages:
        assert p["passed"] == (p["reasons"] == []) and p["reasons"] == quality_reasons(p["text"], p["title"])
        assert 0 < p["tokens"] <= 48 and p["provenance"]["technique"] == pretrain.TECHNIQUE
        if p["trimmed"]:  # cut by the token limit, then back to a sentence end
            assert p["finish_reason"] != "stop" and p["text"][-1] in ".!?"
    report = pretrain.filter_report(passages)
    assert report["passages"] == 3 and 0 <= report["interval"][0] <= report["kept_share"] <= report["interval"][1]


def test_textbooks_command_writes_corpus_and_provenance_and_resumes(tmp_path):
    out = tmp_path / "tb.jsonl.gz"
    args = ["textbooks", "--tokens", "30", "--out", str(out), "--chunk", "4", "--max-tokens", "64", "--seed", "9"]
    first = _synthkit(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    passages = [json.loads(l) for l in gzip.open(out, "rt")]
    assert len(passages) % 4 == 0 and sum(p["tokens"] for p in passages if p["passed"]) >= 30
    prov = json.loads(out.with_name(out.name + ".provenance.json").read_text())
    assert prov["command"] == "synthkit " + " ".join(args) and prov["complete"] and prov["backend"] == "llama.cpp"
    assert prov["passages"] == len(passages)
    again = _synthkit(*args)  # everything comes from the generation cache
    assert again.returncode == 0 and [json.loads(l) for l in gzip.open(out, "rt")] == passages
