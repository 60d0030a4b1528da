"""Batched decoding speed of each weight format llama.cpp can copy the embedded model to.

    python benchmarks/weight_formats.py [--n 32] [--max-tokens 64] [--repeat 2]

The measurement behind `llamacpp.best_format`: the same batched Magpie generation (the
`synthkit bench` settings) on the shipped Q4_1 file and on bf16, f16 and Q8_0 copies,
best of `--repeat` runs each, interleaved so a change in the machine's load hits every
format alike. Also prints what llama.cpp says its CPU backend was built with.
"""
from __future__ import annotations

import argparse
import os

from synthkit import Sampling, load_model
from synthkit.magpie import pre_query_template


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="pin the thread count (default: adaptive)")
    args = ap.parse_args()
    import llama_cpp
    print(llama_cpp.llama_print_system_info().decode().strip())
    print(f"load before: {os.getloadavg()}")
    s = Sampling(temperature=0.8, top_p=0.95, top_k=50, max_tokens=args.max_tokens, seed=0)
    models = {fmt: load_model(requantize=fmt, n_threads=args.threads or None)
              for fmt in ("bf16", "f16", "q8_0", None)}
    prompt = pre_query_template(models["bf16"].chat_template, models["bf16"].bos_token)
    best: dict = {}
    for r in range(args.repeat):
        for fmt, m in models.items():
            m.generate(prompt, n=2, sampling=s.replace(max_tokens=4, seed=99), cache=False, progress=False)
            out = m.generate(prompt, n=args.n, sampling=s, cache=False, progress=False)
            rate = out.stats.tokens_per_second
            best[fmt] = max(best.get(fmt, 0.0), rate)
            print(f"  run {r + 1}  {m.weights:46s} {out.stats.completion_tokens:5d} tok "
                  f"{out.stats.seconds:6.2f} s {rate:7.1f} tok/s", flush=True)
    print("best of each:", {str(k): round(v, 1) for k, v in best.items()})
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
