"""`synthkit bench`: what batching buys, measured on this machine.

The popular way to drive llama.cpp from Python is a loop of `create_completion` calls,
one prompt at a time: every step reads all the weights from memory to produce a single
token. Batched decoding reads them once per step for the whole batch. This benchmark
runs the same Magpie prompts, lengths and sampling settings both ways, on each backend,
and prints tokens/s and the ratio.
"""
from __future__ import annotations

import json
import time

from .magpie import pre_query_template
from .models import Sampling, available_backends, embedded_model_path, load_model


def _loop_llama_cpp(path: str, prompt: str, n: int, s: Sampling) -> tuple[int, float]:
    """One prompt at a time through llama-cpp-python's high-level API."""
    import llama_cpp

    llm = llama_cpp.Llama(str(path), n_ctx=2048, verbose=False)
    llm.create_completion(prompt, max_tokens=4)  # warm-up
    tokens, t0 = 0, time.perf_counter()
    for i in range(n):
        r = llm.create_completion(prompt, max_tokens=s.max_tokens, temperature=s.temperature,
                                  top_p=s.top_p, top_k=s.top_k, min_p=s.min_p, seed=i)
        tokens += r["usage"]["completion_tokens"]
    return tokens, time.perf_counter() - t0


def _batched(model, prompt: str, n: int, s: Sampling) -> tuple[int, float]:
    model.generate(prompt, n=2, sampling=s.replace(max_tokens=4, seed=s.seed + 1),
                   cache=False, progress=False)  # warm-up
    out = model.generate(prompt, n=n, sampling=s, cache=False, progress=False)
    return out.stats.completion_tokens, out.stats.seconds


def run_bench(n: int = 32, max_tokens: int = 64, backends=("llama.cpp", "torch"),
              json_out: str | None = None) -> dict:
    s = Sampling(temperature=0.8, top_p=0.95, top_k=50, max_tokens=max_tokens, seed=0)
    rows: list[dict] = []
    ok = available_backends()

    def record(backend, how, weights, tokens, seconds):
        rows.append({"backend": backend, "mode": how, "weights": weights, "tokens": tokens,
                     "seconds": round(seconds, 3), "tok_per_s": round(tokens / seconds, 1)})
        r = rows[-1]
        print(f"  {backend:10s} {how:24s} {weights:26s} {tokens:5d} tok {seconds:7.2f} s "
              f"{r['tok_per_s']:8.1f} tok/s", flush=True)

    print(f"{n} Magpie prompts x {max_tokens} new tokens, temperature {s.temperature}, "
          f"top_p {s.top_p}, top_k {s.top_k}")
    shipped = embedded_model_path()
    if "llama.cpp" in backends and ok.get("llama.cpp") == "ok":
        model = load_model()  # loads a Q8_0 copy of the shipped Q4_1 file (see llamacpp.py)
        prompt = pre_query_template(model.chat_template, model.bos_token)
        record("llama.cpp", "loop create_completion", "shipped Q4_1", *_loop_llama_cpp(shipped, prompt, n, s))
        record("llama.cpp", "loop create_completion", "Q8_0 copy", *_loop_llama_cpp(model.path, prompt, n, s))
        record("llama.cpp", "batched (as shipped)", "shipped Q4_1",
               *_batched(load_model(requantize=None), prompt, n, s))
        record("llama.cpp", "batched (synthkit)", "Q8_0 copy", *_batched(model, prompt, n, s))
        del model
    if "torch" in backends and ok.get("torch") == "ok":
        for bs in (1, n):
            model = load_model(backend="torch", batch_size=bs)
            prompt = pre_query_template(model.chat_template, model.bos_token)
            record("torch", f"batch_size={bs}", f"GGUF->{model.dtype} {model.device}",
                   *_batched(model, prompt, n, s))
            del model
    result = {"n": n, "max_tokens": max_tokens, "rows": rows, "ratios": _ratios(rows)}
    for name, value in result["ratios"].items():
        print(f"  ratio {name}: {value:.2f}x")
    if json_out:
        with open(json_out, "w") as f:
            json.dump(result, f, indent=2)
    return result


def _ratios(rows: list[dict]) -> dict[str, float]:
    def rate(backend, mode, weights=None):
        for r in rows:
            if r["backend"] == backend and r["mode"].startswith(mode) and (weights is None or r["weights"] == weights):
                return r["tok_per_s"]
        return None

    pairs = {
        "llama.cpp batched (synthkit) / loop on the shipped file":
            (rate("llama.cpp", "batched (synthkit)"), rate("llama.cpp", "loop", "shipped Q4_1")),
        "llama.cpp batched / loop, both on the Q8_0 copy":
            (rate("llama.cpp", "batched (synthkit)"), rate("llama.cpp", "loop", "Q8_0 copy")),
        "llama.cpp batched / loop, both on the shipped Q4_1":
            (rate("llama.cpp", "batched (as shipped)"), rate("llama.cpp", "loop", "shipped Q4_1")),
        "torch batched / batch_size=1":
            (next((r["tok_per_s"] for r in rows if r["backend"] == "torch" and r["mode"] != "batch_size=1"), None),
             rate("torch", "batch_size=1")),
    }
    return {k: a / b for k, (a, b) in pairs.items() if a and b}
