"""The torch backend's decoders side by side on this CPU, in one run.

    python benchmarks/torch_decode.py [--n 32] [--max-tokens 64] [--precisions fp32,bf16]

Same 32 Magpie prompts x 64 new tokens and sampling settings as `synthkit bench`
(temperature 0.8, top-p 0.95, top-k 50), batch size n: the first decoder (fixed chunks,
transformers' dynamic cache, one generator per row: `decoder="chunks-legacy"`) against
continuous batching on the static cache (`decoder="static"`), in fp32 and under bf16
autocast, then the llama.cpp batched path for comparison. Prints tok/s per row and the
CPU's name and flags that matter (AVX512-BF16, AMX).
"""
from __future__ import annotations

import argparse
import json
import platform

from synthkit.bench import SETTINGS, _batched
from synthkit.magpie import pre_query_template
from synthkit.models import Sampling, load_model


def cpu_name() -> str:
    name, flags = platform.processor() or "?", set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    has = [f for f, label in (("avx512_bf16", "AVX512-BF16"), ("amx_tile", "AMX")) if f in flags]
    import os
    return f"{os.cpu_count()} cores of {name}" + (f" with {', '.join(has)}" if has else "") \
        .replace("avx512_bf16", "AVX512-BF16").replace("amx_tile", "AMX")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--decoders", default="chunks-legacy,static")
    ap.add_argument("--no-llama", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    print(cpu_name())
    s = Sampling(max_tokens=a.max_tokens, **SETTINGS)
    rows = []
    m = load_model(backend="torch", batch_size=a.n)
    prompt = pre_query_template(m.chat_template, m.bos_token)
    for prec in a.precisions.split(","):
        m.set_generation_precision(prec)
        for dec in a.decoders.split(","):
            m.decoder = dec
            tokens, seconds = _batched(m, prompt, a.n, s)
            rows.append({"backend": "torch", "decoder": dec, "precision": prec, "tokens": tokens,
                         "seconds": round(seconds, 2), "tok_per_s": round(tokens / seconds, 1)})
            print(f"torch {dec:14s} {prec:5s} batch {a.n}: {tokens} tok {seconds:6.2f} s "
                  f"{tokens / seconds:7.1f} tok/s", flush=True)
    del m
    if not a.no_llama:
        lm = load_model()
        tokens, seconds = _batched(lm, prompt, a.n, s)
        rows.append({"backend": "llama.cpp", "decoder": "batched", "precision": lm.weights,
                     "tokens": tokens, "seconds": round(seconds, 2), "tok_per_s": round(tokens / seconds, 1)})
        print(f"llama.cpp batched {lm.weights}: {tokens} tok {seconds:6.2f} s {tokens / seconds:7.1f} tok/s")
    if a.json:
        json.dump({"cpu": cpu_name(), "rows": rows}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
