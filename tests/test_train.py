"""The training layer, on the real embedded model: a few steps on tiny data each."""
import json
import os
import subprocess
import sys
import textwrap

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

import synthkit
from synthkit.errors import ModelLoadError
from synthkit.train import DataError, TrainingError, sft
from synthkit.train.data import IGNORE, collate, encode
from synthkit.train.loop import is_out_of_memory, out_of_memory_error, taught_loss

QUIET = dict(progress=False)
RECORDS = [{"prompt": f"What is {a} + {b}?", "response": f"{a} + {b} = {a + b}."}
           for a, b in [(12, 30), (41, 17), (25, 25), (63, 14), (38, 29), (70, 11)]]


@pytest.fixture(scope="module")
def student():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_torch_backend: 2 threads fight on a busy 2-core box
    m = synthkit.load_model(backend="torch", device="cpu")
    m._initial = {k: v.clone() for k, v in m.model.state_dict().items()}
    yield m
    torch.set_num_threads(threads)


@pytest.fixture
def fresh(student):
    """The student with the embedded model's weights back (tests train it in place)."""
    student.model.load_state_dict(student._initial)
    return student


# --- what is taught --------------------------------------------------------------------

def test_only_the_answer_is_taught(student):
    ex = encode(student, RECORDS[0])
    taught = [t for t, keep in zip(ex.ids, ex.taught) if keep]
    text = student.tokenizer.decode(taught, skip_special_tokens=False)
    assert text.rstrip("\n") == RECORDS[0]["response"] + student.eos_token  # the answer and its stop
    prompt = [t for t, keep in zip(ex.ids, ex.taught) if not keep]
    assert student.tokenizer.decode(prompt, skip_special_tokens=False) == \
        student.apply_chat_template(RECORDS[0]["prompt"])  # exactly what model.chat() sends


def test_record_formats_agree(student):
    q, a = "Name a colour.", "Blue."
    forms = [{"prompt": q, "response": a}, {"prompt": q, "completion": a},
             {"instruction": q, "input": "", "output": a},
             {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}]
    encoded = [encode(student, r) for r in forms]
    assert all(e.ids == encoded[0].ids and e.taught == encoded[0].taught for e in encoded)
    alpaca = encode(student, {"instruction": q, "input": "in red", "output": a})
    assert "in red" in student.detokenize(alpaca.ids)
    # a prompt that is already chat-formatted is used as it is
    rendered = encode(student, {"prompt": student.apply_chat_template(q), "response": a})
    assert rendered.ids[:len(encoded[0].ids) - 3] == encoded[0].ids[:len(encoded[0].ids) - 3]
    # several assistant turns: each is taught
    two = encode(student, {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello."},
                                        {"role": "user", "content": q}, {"role": "assistant", "content": a}]})
    runs = sum(1 for i, t in enumerate(two.taught) if t and (i == 0 or not two.taught[i - 1]))
    assert runs == 2


def test_masked_tokens_carry_no_loss(student):
    """Our loss (decoder, then the output layer on taught positions only) equals the
    textbook one (full logits, labels -100 on the prompt) and ignores prompt and padding."""
    longer = {"prompt": "What is 12 + 30? Explain each step.", "response": "Add the tens, then the ones: 42."}
    batch = collate([encode(student, r) for r in [*RECORDS[:2], longer]], student.pad_id)
    assert (batch["attention_mask"] == 0).any()  # rows of different lengths: padding
    net = student.model
    with torch.no_grad():
        ours = taught_loss(net, batch)
        logits = net(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        reference = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(),
                                                      ignore_index=IGNORE, reduction="sum")
        assert torch.allclose(ours, reference, rtol=1e-4)
        # whatever the padding holds, the loss is the same: it is masked out
        padded = {k: v.clone() for k, v in batch.items()}
        padded["input_ids"][batch["attention_mask"] == 0] = 7
        assert torch.allclose(taught_loss(net, padded), ours, rtol=1e-4)
        # a different answer token changes the loss: the answer is what is scored
        changed = {k: v.clone() for k, v in batch.items()}
        col = int((batch["labels"][0] != IGNORE).nonzero()[0, 0])
        changed["labels"][0, col] = (int(batch["labels"][0, col]) + 1) % student.n_vocab
        assert not torch.allclose(taught_loss(net, changed), ours)
    n_taught = int((batch["labels"] != IGNORE).sum())
    n_real = int(batch["attention_mask"].sum())
    assert 0 < n_taught < n_real - 3 * 20  # most tokens are prompt: not taught


def test_grad_accum_is_one_big_batch(fresh):
    """batch 4 in one go, or 2 x 2 accumulated: the same first-step loss and the same update."""
    one = sft(fresh, RECORDS[:4], max_steps=1, batch_size=4, precision="fp32", lr=1e-4, **QUIET)
    after_one = fresh.model.model.norm.weight.detach().clone()
    fresh.model.load_state_dict(fresh._initial)
    two = sft(fresh, RECORDS[:4], max_steps=1, batch_size=2, grad_accum=2, precision="fp32", lr=1e-4, **QUIET)
    assert one.losses[0] == pytest.approx(two.losses[0], rel=1e-4)
    assert torch.allclose(fresh.model.model.norm.weight, after_one, atol=1e-6)


# --- training ------------------------------------------------------------------------------

def test_loss_falls_on_a_tiny_set(fresh):
    run = sft(fresh, RECORDS[:4], max_steps=6, batch_size=4, lr=1e-4, warmup=1, **QUIET)
    assert run.steps == 6 == len(run.losses) == len(run.lrs)
    assert run.losses[-1] < 0.7 * run.losses[0], run.losses
    assert run.tokens_per_s > 0 and run.seconds_per_step > 0 and run.checkpoint is None
    assert run.precision in ("bf16", "fp32") and run.lrs[0] < max(run.lrs)  # warm-up
    # and the trained model answers like its training data
    g = fresh.chat(RECORDS[0]["prompt"], temperature=0, max_tokens=12, cache=False, progress=False)[0]
    assert "42" in g.text


def test_lora_trains_and_merges(fresh):
    pytest.importorskip("peft")
    before = fresh.model.model.layers[0].self_attn.q_proj.weight.detach().clone()
    run = sft(fresh, RECORDS[:4], max_steps=3, batch_size=4, lora=True, lr=1e-3, **QUIET)
    assert run.lora and run.losses[-1] < run.losses[0]
    q = fresh.model.model.layers[0].self_attn.q_proj
    assert type(q) is torch.nn.Linear  # adapters folded in: a plain model again
    assert not torch.equal(q.weight, before)
    assert all(p.requires_grad for p in fresh.model.parameters())


def test_eval_hook(fresh):
    seen = []
    run = sft(fresh, RECORDS, max_steps=3, batch_size=2, eval_every=2,
              eval_fn=lambda m, step: seen.append(step) or step * 10, **QUIET)
    assert seen == [2, 3] and run.evals == [{"step": 2, "value": 20}, {"step": 3, "value": 30}]


def test_cache_follows_the_weights(fresh, tmp_path):
    from synthkit.cache import GenerationCache
    cache = GenerationCache(tmp_path / "gen.sqlite")
    ask = dict(temperature=0, max_tokens=6, cache=cache, progress=False)
    before = fresh.fingerprint
    assert not fresh.chat("Say hi.", **ask)[0].cached
    assert fresh.chat("Say hi.", **ask)[0].cached  # same weights: served from the cache
    sft(fresh, RECORDS[:2], max_steps=1, batch_size=2, lr=1e-4, **QUIET)
    assert fresh.fingerprint != before
    assert not fresh.chat("Say hi.", **ask)[0].cached  # new weights: generated anew
    assert fresh.chat("Say hi.", **ask)[0].cached
    digest = fresh.weights_digest()
    fresh.model.load_state_dict(fresh.model.state_dict())  # rewritten, same values
    assert fresh.weights_digest() == digest  # the key is the content, not a counter


# --- save, resume, reload ------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import json, os, signal, sys
    import torch
    torch.set_num_threads(1)
    import synthkit
    from synthkit.train import sft
    out, records = sys.argv[1], json.loads(sys.argv[2])
    student = synthkit.load_model(backend="torch", device="cpu")
    def die(model, step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGKILL)   # a hard kill, mid-run, nothing cleaned up
    sft(student, records, max_steps=5, batch_size=2, lr=1e-4, out_dir=out, save_every=1,
        eval_fn=die, eval_every=1, progress=False)
""")


def test_resume_after_a_kill(fresh, tmp_path):
    settings = dict(max_steps=5, batch_size=2, lr=1e-4, **QUIET)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    child = subprocess.run([sys.executable, "-c", CHILD, str(out), json.dumps(RECORDS)], env=env,
                           capture_output=True, text=True, timeout=600)
    assert child.returncode == -9, child.stderr[-2000:]
    assert (out / "checkpoint" / "state.pt").exists() and not (out / "config.json").exists()

    resumed = sft(fresh, RECORDS, out_dir=out, resume=True, **settings)
    assert resumed.resumed_from == 2 and resumed.steps == 5 and len(resumed.losses) == 5
    assert (out / "config.json").exists() and not (out / "checkpoint").exists()
    trained = fresh.model.model.norm.weight.detach().clone()

    fresh.model.load_state_dict(fresh._initial)
    straight = sft(fresh, RECORDS, **settings)  # the same run, never interrupted
    np.testing.assert_allclose(resumed.losses, straight.losses, rtol=2e-3)
    assert torch.allclose(trained, fresh.model.model.norm.weight, atol=1e-4)

    # resuming a finished run trains nothing and gives its weights back
    fresh.model.load_state_dict(fresh._initial)
    again = sft(fresh, RECORDS, out_dir=out, resume=True, **settings)
    assert again.losses == resumed.losses and torch.allclose(trained, fresh.model.model.norm.weight)
    # ...but not for other settings
    with pytest.raises(TrainingError, match="lr differ"):
        sft(fresh, RECORDS, out_dir=out, resume=True, **{**settings, "lr": 3e-4})
    # the saved folder is an ordinary checkpoint on the torch backend
    back = synthkit.load_model(out, backend="torch", device="cpu")
    assert torch.allclose(back.model.model.norm.weight, trained)


def test_gguf_export_round_trip(fresh, tmp_path):
    """The exported GGUF on llama.cpp and the torch weights give the same next-token
    distribution (f16: rounding only; q8_0: within quantisation error)."""
    from synthkit.train import export_gguf, to_llamacpp
    sft(fresh, RECORDS[:4], max_steps=2, batch_size=4, lr=1e-4, **QUIET)  # weights unlike the file's
    prompts = [fresh.apply_chat_template(q) for q in
               ["What is 12 + 30?", "Write a poem about autumn.", "How do I sort a list in Python?"]]
    p_torch = torch.softmax(torch.from_numpy(fresh.logits(prompts)), -1)
    # measured here: f16 under 0.03, bf16 under 0.06, q8_0 up to 0.064 (llama.cpp also
    # rounds the activations to 8 bits for q8_0 products)
    for dtype, tolerance in (("f16", 0.03), ("bf16", 0.1), ("q8_0", 0.1)):
        path = export_gguf(fresh.model, fresh.tokenizer, tmp_path / f"m-{dtype}.gguf", dtype=dtype)
        fast = synthkit.load_model(path, n_parallel=4, n_ctx=256)
        p_gguf = torch.softmax(torch.from_numpy(fast.logits(prompts)), -1)
        tv = 0.5 * (p_torch - p_gguf).abs().sum(-1)  # total variation distance per prompt
        assert (tv < tolerance).all(), (dtype, tv)
        assert (p_torch.argmax(-1) == p_gguf.argmax(-1)).all()
    fast = to_llamacpp(fresh, n_parallel=4, n_ctx=256)
    assert fast.backend == "llama.cpp" and fresh.weights_digest()[:8] in fast.name
    # a saved checkpoint folder loads on llama.cpp too (exported once, beside it)
    fresh.model.save_pretrained(tmp_path / "ckpt")
    fresh.tokenizer.save_pretrained(tmp_path / "ckpt")
    on_llama = synthkit.load_model(tmp_path / "ckpt", n_parallel=4, n_ctx=256)
    assert on_llama.backend == "llama.cpp" and (tmp_path / "ckpt" / "model-auto.gguf").exists()
    assert (on_llama.logits(prompts).argmax(-1) == p_torch.argmax(-1).numpy()).all()


# --- errors --------------------------------------------------------------------------------

def test_clear_errors(student, tmp_path):
    with pytest.raises(DataError, match="answer token"):
        sft(student, [{"prompt": "hi", "response": ""}], max_len=64, **QUIET)  # nothing to learn...
    with pytest.raises(DataError, match="fields"):
        sft(student, [{"question": "hi", "answer": "2"}], **QUIET)
    with pytest.raises(DataError, match="no training records"):
        sft(student, [], **QUIET)
    for bad in (dict(lr=0), dict(lr=5.0), dict(lr=float("nan")), dict(batch_size=0), dict(batch_size=2.5),
                dict(grad_accum=0), dict(max_len=100_000), dict(epochs=0)):
        with pytest.raises(TrainingError):
            sft(student, RECORDS, **bad, **QUIET)
    with pytest.raises(TrainingError, match="backend='torch'"):
        sft(synthkit.load_model(n_parallel=1, n_ctx=128), RECORDS, **QUIET)
    # too long: cut on the right, with a warning that says so
    short = len(encode(student, RECORDS[0]).ids) - 3  # keeps the prompt and part of the answer
    with pytest.warns(UserWarning, match="longer than max_len"):
        run = sft(student, RECORDS[:2], max_steps=1, batch_size=2, max_len=short, lr=1e-6, **QUIET)
    assert run.steps == 1
    # out of memory names the fix
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert "grad_accum" in str(out_of_memory_error(8, 256, 1, "cuda"))


def test_corrupt_checkpoints(student, tmp_path):
    ckpt = tmp_path / "run" / "checkpoint"
    ckpt.mkdir(parents=True)
    (ckpt / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="corrupt"):
        sft(student, RECORDS, out_dir=tmp_path / "run", resume=True, max_steps=1, **QUIET)
    student.model.save_pretrained(tmp_path / "saved")
    student.tokenizer.save_pretrained(tmp_path / "saved")
    weights = tmp_path / "saved" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a truncated download / full disk
    with pytest.raises(ModelLoadError):
        synthkit.load_model(tmp_path / "saved", backend="torch")
    with pytest.raises(ModelLoadError):
        synthkit.load_model(tmp_path / "saved")  # llama.cpp: the export cannot read it either


def test_cli_sft(tmp_path, capsys):
    from synthkit.cli import main
    from synthkit.records import write_jsonl
    data = write_jsonl([{"instruction": r["prompt"], "input": "", "output": r["response"],
                         "provenance": {"technique": "test"}} for r in RECORDS], tmp_path / "kept.jsonl")
    assert main(["sft", str(data), "--out", str(tmp_path / "out"), "--max-steps", "1",
                 "--batch-size", "2", "--device", "cpu"]) == 0
    assert (tmp_path / "out" / "model.safetensors").exists()
    assert "saved the fine-tuned model" in capsys.readouterr().out
    assert main(["sft", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o2")]) == 2
