"""The torch backend: same interface and same sampling semantics as llama.cpp."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

import synthkit
from synthkit.errors import DeviceUnavailableError, ModelLoadError
from synthkit.magpie import pre_query_template

NO_CACHE = dict(cache=False, progress=False)
QUESTIONS = ["hi", "Name three colors.",
             "What is the capital of France? Answer in one long sentence with many words."]


@pytest.fixture(scope="module")
def m(torch_teacher):
    # One thread: on a busy 2-core machine torch's two OpenMP threads keep waiting for
    # each other (measured: 13 s instead of 0.9 s for the same small batch).
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch_teacher
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def llama(llama_model):
    return llama_model   # the session's llama.cpp teacher (conftest)


@pytest.fixture(scope="module")
def chats(m):
    return [m.apply_chat_template(q) for q in QUESTIONS]


def test_attributes(m):
    assert m.backend == "torch" and m.device == "cpu"
    assert m.n_vocab == 49152 and m.n_ctx == 8192
    assert m.chat_template and "<|im_start|>" in m.chat_template
    assert m.eos_token == "<|im_end|>" and m.tokenize("<|im_end|>") in ([i] for i in m.eos_ids)
    assert m.fingerprint.endswith(":gumbel32:cpu:float32")  # the sampler is part of the key


def test_tokens_match_llamacpp(m, llama, chats):
    # special tokens in the text are parsed as special tokens, exactly as llama.cpp does
    for p in chats:
        assert m.prompt_ids(p) == llama.prompt_ids(p)
    assert m.detokenize(m.tokenize("héllo  world\n 日本")) == "héllo  world\n 日本"


def test_sampler_chain_matches_llamacpp_order():
    import torch
    from synthkit import Sampling
    from synthkit.models.torch_backend import filtered_probs

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))

    def support(**params):  # the token ids that can still be drawn
        probs, ids = filtered_probs(logits, Sampling(**params))
        return ids[probs > 0].tolist()

    assert support(top_k=2, top_p=1.0) == [0, 1]
    assert support(top_k=0, top_p=0.79) == [0, 1]  # 0.5 + 0.3 reaches 0.79
    assert support(top_k=0, top_p=0.81) == [0, 1, 2]
    assert support(top_k=0, top_p=0.1) == [0]  # at least one token
    assert support(top_k=0, top_p=1.0, min_p=0.5) == [0, 1]  # 0.15 < 0.5 * 0.5
    # top-p renormalizes over what top-k left: 0.5/0.8 = 0.625 >= 0.6
    assert support(top_k=2, top_p=0.6) == [0]
    # temperature comes last: it reshapes the survivors, it does not choose them
    assert support(top_k=0, top_p=0.79, temperature=5.0) == [0, 1]
    probs, _ = filtered_probs(logits, Sampling(top_k=2, top_p=1.0, temperature=1.0))
    assert torch.allclose(probs[0, :2], torch.tensor([0.625, 0.375]))


def test_greedy_is_deterministic_and_batch_independent(m, chats):
    together = m.generate(chats, temperature=0, max_tokens=8, **NO_CACHE)
    for p, g in zip(chats, together):  # left padding changes nothing a row computes
        assert m.generate(p, temperature=0, max_tokens=8, **NO_CACHE)[0].text == g.text


def test_seeded_sampling(m):
    pre = pre_query_template(m.chat_template)
    a = m.generate(pre, n=4, max_tokens=6, seed=0, **NO_CACHE)
    assert a.texts == m.generate(pre, n=4, max_tokens=6, seed=0, **NO_CACHE).texts
    assert len(set(a.texts)) == 4  # each index has its own seed
    assert m.generate(pre, n=4, max_tokens=6, seed=1, **NO_CACHE).texts != a.texts
    # a sequence's sample does not depend on its batch mates
    old = m.batch_size
    try:
        m.batch_size = 1
        assert m.generate(pre, n=4, max_tokens=6, seed=0, **NO_CACHE).texts == a.texts
    finally:
        m.batch_size = old


def test_finish_reasons(m, chats):
    g = m.generate(chats[1], temperature=0, max_tokens=3, **NO_CACHE)[0]
    assert g.finish_reason == "length" and g.completion_tokens == 3 == len(g.token_ids)
    g = m.generate(chats[0], temperature=0, max_tokens=40, **NO_CACHE)[0]  # "hi": a short answer
    assert g.finish_reason == "stop" and 0 < g.completion_tokens < 40
    assert g.prompt_tokens == len(m.prompt_ids(chats[0]))
    old = m.n_ctx
    try:
        m.n_ctx = len(m.prompt_ids(chats[1])) + 2
        with pytest.warns(UserWarning, match="ran out of context"):
            g = m.generate(chats[1], temperature=0, max_tokens=10, **NO_CACHE)[0]
        assert g.finish_reason == "context" and g.completion_tokens == 2
    finally:
        m.n_ctx = old


def test_stop_strings_cut_the_text(m, chats):
    full = m.generate(chats[2], temperature=0, max_tokens=10, **NO_CACHE)[0].text
    word = full.split()[3]
    g = m.generate(chats[2], temperature=0, max_tokens=10, stop=[word], **NO_CACHE)[0]
    assert g.finish_reason == "stop"
    assert g.text == full[:full.find(word)]


def test_logprobs(m, chats):
    g = m.generate(chats[1], temperature=0, max_tokens=4, logprobs=5, **NO_CACHE)[0]
    assert len(g.logprobs) == g.completion_tokens
    for lp in g.logprobs:
        values = [v for _, v in lp["top"]]
        assert len(values) == 5 and values == sorted(values, reverse=True)
        assert lp["logprob"] <= 0
        assert lp["top"][0] == [lp["token"], lp["logprob"]]  # greedy picks the top token


def test_logits_match_greedy(m, chats):
    logits = m.logits(chats[:2])
    assert logits.shape == (2, m.n_vocab) and logits.dtype == np.float32
    first = [g.token_ids[0] for g in m.generate(chats[:2], temperature=0, max_tokens=1, **NO_CACHE)]
    assert logits.argmax(-1).tolist() == first


def test_same_weights_as_llamacpp(m, llama):
    # Both backends read the same Q4_1 file (llama.cpp a Q8_0 copy of it, and it also
    # quantizes activations), so logits differ by up to ~1 and a near-tie can flip the
    # argmax: "What is the capital of France?" has a top-2 margin of 0.08 and does flip.
    # These five have margins above 0.5 and agree.
    prompts = [m.apply_chat_template(q) for q in
               ["Write a poem about autumn.", "How do I sort a list in Python?", "hi",
                "What is 2+2?", "Tell me a joke."]]
    ours = m.generate(prompts, temperature=0, max_tokens=1, **NO_CACHE).texts
    theirs = llama.generate(prompts, temperature=0, max_tokens=1, **NO_CACHE).texts
    assert ours == theirs


def test_hf_checkpoint_directory(m, chats, tmp_path):
    # the second way in: an HF checkpoint folder (here the dequantized GGUF, saved)
    m.model.save_pretrained(tmp_path)
    m.tokenizer.save_pretrained(tmp_path)
    h = synthkit.load_model(tmp_path, backend="torch", device="cpu")
    assert h.prompt_ids(chats[1]) == m.prompt_ids(chats[1]) and h.eos_ids == m.eos_ids
    assert h.chat_template == m.chat_template and h.fingerprint != m.fingerprint
    assert (h.generate(chats[1], temperature=0, max_tokens=6, **NO_CACHE).texts
            == m.generate(chats[1], temperature=0, max_tokens=6, **NO_CACHE).texts)


def test_the_gguf_is_read_once_into_a_checkpoint_copy_with_the_same_tensors(m, tmp_path, monkeypatch):
    """Reading the GGUF is slow (~17 s), so its dequantized weights are kept as an fp32
    checkpoint in the model cache; that copy must hold exactly what the reader gives,
    a damaged copy must be replaced, and an unwritable cache must still load."""
    import torch
    from synthkit.models import embedded_model_path
    from synthkit.models import torch_backend as tb

    path = embedded_model_path()
    copy = tb._checkpoint_copy(path)
    assert (copy / "config.json").exists() and (copy / "model.safetensors").exists()  # `m` made or found it
    tokenizer, direct = tb._read_gguf(path, torch.float32)
    loaded = m.model.state_dict()
    assert all(torch.equal(t, loaded[k]) for k, t in direct.state_dict().items())
    assert tokenizer.chat_template == m.tokenizer.chat_template
    assert tokenizer("Hi<|im_end|>\n日本").input_ids == m.tokenizer("Hi<|im_end|>\n日本").input_ids

    # what happens when the copy cannot be used: the file is read instead (counted, not redone)
    import shutil
    reads = []
    monkeypatch.setattr(tb, "_read_gguf", lambda p, dtype: reads.append(p) or (tokenizer, direct))
    monkeypatch.setenv("SYNTHKIT_MODEL_CACHE", str(tmp_path / "models"))
    made = tb._checkpoint_copy(path)
    shutil.copytree(copy, made)
    assert torch.equal(tb._load_gguf(path, torch.float32)[1].lm_head.weight, direct.lm_head.weight) and not reads
    (made / "model.safetensors").write_bytes(b"damaged")
    again = tb._load_gguf(path, torch.float32)[1]   # read the file, saved a new copy, loaded it
    assert len(reads) == 1 and (made / "config.json").exists()
    assert again is not direct and torch.equal(again.lm_head.weight, direct.lm_head.weight)
    shutil.rmtree(tmp_path / "models")
    (tmp_path / "models").write_text("a file where the cache folder should be")
    assert tb._load_gguf(path, torch.float32)[1] is direct and len(reads) == 2


def test_load_errors(tmp_path):
    from synthkit.models.torch_backend import TorchModel

    with pytest.raises(ModelLoadError):
        TorchModel(tmp_path / "missing.gguf")
    with pytest.raises(ModelLoadError):
        synthkit.load_model(tmp_path / "missing.gguf", backend="torch")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"this is not a model")
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        synthkit.load_model(bad, backend="torch")
    with pytest.raises(ModelLoadError, match="config.json"):
        synthkit.load_model(tmp_path, backend="torch")


def test_cuda_unavailable():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceUnavailableError):
        synthkit.load_model(backend="torch", device="cuda")


def test_generation_precision_is_opt_in_with_its_own_cache_key(m, chats):
    # fp32 by default (bf16 autocast measured no faster for batched decoding, see the
    # backend's notes); bf16 gives slightly different texts, so different cache keys
    base = m.fingerprint
    fp32 = m.logits(chats[:1])
    m.set_generation_precision("bf16")
    try:
        assert m.fingerprint == base + ":autocast-bf16"
        bf16 = m.logits(chats[:1])
        assert not np.array_equal(bf16, fp32) and bf16.argmax() == fp32.argmax()
    finally:
        m.set_generation_precision("auto")
    assert m.fingerprint == base
    with pytest.raises(ValueError):
        m.set_generation_precision("fp8")


# --- continuous batching, static cache, counter-based sampling ---------------------------

EXPECTED = os.path.join(os.path.dirname(__file__), "data", "torch_greedy_expected.json")


def test_greedy_equals_the_chunk_loop_before_the_static_cache(m):
    # saved from the first decoder (fixed chunks on transformers' cache) before the
    # static cache replaced it: greedy tokens and top-k log-probs must not move
    import json

    saved = json.load(open(EXPECTED))
    assert m._decoder() == "static"
    prompts = [m.apply_chat_template(q) for q in saved["questions"]]
    old = m.batch_size
    try:
        m.batch_size = 2  # fewer slots than prompts: rows join as others finish
        got = m.generate(prompts, temperature=0, max_tokens=24, **NO_CACHE)
    finally:
        m.batch_size = old
    assert [g.token_ids for g in got] == saved["token_ids"]
    lp = m.generate(m.apply_chat_template(saved["logprobs_question"]), temperature=0, max_tokens=4,
                    logprobs=3, **NO_CACHE)[0].logprobs
    for a, b in zip(lp, saved["logprobs"]):
        assert a["token"] == b["token"] and [t for t, _ in a["top"]] == [t for t, _ in b["top"]]
        assert np.allclose([v for _, v in a["top"]], [v for _, v in b["top"]], atol=1e-4)


def test_sampled_tokens_do_not_depend_on_the_batch(m, chats):
    # the same request alone, and inside a busy batch with fewer slots than requests
    # (so it is admitted into a slot another row left), gives the same tokens
    pre = pre_query_template(m.chat_template)
    alone = m.generate(chats[1], max_tokens=10, seed=3, **NO_CACHE)[0]
    old = m.batch_size
    try:
        m.batch_size = 3
        busy = m.generate([pre] * 4 + [chats[0], chats[1], chats[2]], max_tokens=10, seed=3, **NO_CACHE)
        m.decoder = "chunks"  # the chunk loop draws with the same sampler: same samples
        chunks = m.generate([pre] * 4 + [chats[0], chats[1], chats[2]], max_tokens=10, seed=3, **NO_CACHE)
    finally:
        m.batch_size, m.decoder = old, "auto"
    assert busy[5].token_ids == alone.token_ids
    assert chunks.texts == busy.texts
    assert len(set(busy.texts[:4])) > 1  # the four samples of one prompt differ


def test_static_decode_step_matches_a_full_forward(m, chats):
    # one decode step on the static cache, rows at different positions, gives the logits
    # transformers computes for the whole sequence at once
    import torch
    from synthkit.models.static_decode import StaticKV, decode_step

    ids = [m.prompt_ids(p) for p in chats[:2]]
    nxt = [11, 42]
    with torch.inference_mode():
        kv = StaticKV(m.model, 2, max(len(i) for i in ids) + 4, torch.float32, "cpu")
        for slot, p in enumerate(ids):
            out = m.model(input_ids=torch.tensor([p]), use_cache=True)
            cache = getattr(out, "cache", None) or out.past_key_values
            kv.load(slot, torch.stack([layer.keys[0] for layer in cache.layers]),
                    torch.stack([layer.values[0] for layer in cache.layers]), len(p))
        got = decode_step(m.model, kv, torch.tensor(nxt), torch.tensor([len(p) for p in ids]), 2,
                          max(len(p) for p in ids) + 1)
        for row, (p, t) in enumerate(zip(ids, nxt)):
            want = m.model(input_ids=torch.tensor([p + [t]])).logits[0, -1].float()
            assert torch.allclose(got[row], want, atol=1e-3)


def test_gumbel_draws_follow_the_distribution():
    import torch
    from synthkit.models.static_decode import gumbel_pick, uniforms

    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).repeat(20000, 1)
    ids = torch.tensor([[7, 3, 9, 1]]).repeat(20000, 1)
    seeds = torch.arange(20000)
    picks = gumbel_pick(probs, ids, seeds, torch.zeros(20000, dtype=torch.long))
    share = [(picks == t).float().mean().item() for t in (7, 3, 9, 1)]
    assert np.allclose(share, [0.5, 0.3, 0.15, 0.05], atol=0.015)
    # a row's noise is a function of (seed, position, token id) alone: shuffling the rows
    # or the candidates changes nothing
    u = uniforms(seeds[:5], torch.arange(5), ids[:5])
    perm = torch.tensor([3, 0, 4, 1, 2])
    assert torch.equal(uniforms(seeds[perm], torch.arange(5)[perm], ids[:5].flip(1)), u[perm].flip(1))
    assert (u > 0).all() and (u < 1).all() and len(set(u.flatten().tolist())) == u.numel()
    # and it changes with the position
    assert not torch.equal(uniforms(seeds[:5], torch.arange(5) + 1, ids[:5]), u)


def test_generation_restores_the_thread_count(m, chats):
    import torch

    before = torch.get_num_threads()
    m.generate(chats[0], max_tokens=3, **NO_CACHE)
    assert torch.get_num_threads() == before


def test_fixed_shape_steps_give_the_same_tokens(m):
    # the step a CUDA graph captures attends over the whole preallocated length; on CPU
    # the same code runs eagerly and must give the same greedy tokens
    import json

    saved = json.load(open(EXPECTED))
    prompts = [m.apply_chat_template(q) for q in saved["questions"][:3]]
    old = m.batch_size
    m.fixed_shapes, m.batch_size = True, 2  # rows join slots where dead rows wrote
    try:
        graph_shaped = m.generate(prompts, temperature=0, max_tokens=24, **NO_CACHE)  # all slots
        os.environ["SYNTHKIT_CUDA_GRAPH"] = "0"
        eager = m.generate(prompts, temperature=0, max_tokens=24, **NO_CACHE)  # live rows only
    finally:
        m.fixed_shapes, m.batch_size = None, old
        os.environ.pop("SYNTHKIT_CUDA_GRAPH", None)
    assert [g.token_ids for g in graph_shaped] == saved["token_ids"][:3]
    assert [g.token_ids for g in eager] == saved["token_ids"][:3]


def test_bench_compares_the_torch_decoders():
    from synthkit.bench import _ratios

    rows = [dict(backend="torch", mode="batch_size=32, chunk loop", weights="w", tok_per_s=80.0),
            dict(backend="torch", mode="batch_size=32", weights="w", tok_per_s=100.0),
            dict(backend="torch", mode="batch_size=32", weights="w, bf16 autocast", tok_per_s=120.0),
            dict(backend="torch", mode="batch_size=1", weights="w", tok_per_s=20.0)]
    ratios = _ratios(rows)
    assert ratios["torch batched / batch_size=1"] == 5.0
    assert ratios["torch static-cache batching / the chunk loop"] == 1.25


def test_synthkit_threads_fixes_torch_threads(m, chats, monkeypatch):
    import torch

    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: seen.append(n) or real(n))
    monkeypatch.setenv("SYNTHKIT_THREADS", "2")
    before = torch.get_num_threads()
    m.generate(chats[0], max_tokens=2, **NO_CACHE)
    assert torch.get_num_threads() == before and (seen[:1] == [2] or before == 2)


def test_the_cpu_cache_grows_as_rows_get_longer(m):
    # off CUDA the cache starts just past the longest prompt and doubles as rows grow
    import json

    saved = json.load(open(EXPECTED))
    prompts = [m.apply_chat_template(q) for q in saved["questions"]]
    old = m.batch_size
    m.kv_margin, m.batch_size = 1, 3
    try:
        got = m.generate(prompts, temperature=0, max_tokens=24, **NO_CACHE)
    finally:
        m.kv_margin, m.batch_size = 64, old
    assert [g.token_ids for g in got] == saved["token_ids"]
