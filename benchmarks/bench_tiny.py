"""Pretraining throughput of `synthkit.train.tiny`: tokens/s in fp32 and under bf16
autocast, for a few widths, on real Wikipedia text; and sampling speed.

    python benchmarks/bench_tiny.py                       # CPU: widths 128 and 256
    python benchmarks/bench_tiny.py --widths 128,256,512 --device cuda

Each configuration trains `--steps` steps after a short untimed warm-up run of the same
shape (so allocator and kernel start-up are not counted); tokens/s is the run's own
(batch x context x steps / training seconds). All ratios come from this one run; on a
shared machine, run it with `uptime` beside it and read the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="128,256")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--device", default=None)
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    from synthkit.data import wiki_summaries
    from synthkit.train.tiny import TinyConfig, pretrain, sample, train_tokenizer

    texts = [r["text"] for r in wiki_summaries("en")[:3000]]
    tok = train_tokenizer(texts, 4096)
    rows = []
    for width in map(int, args.widths.split(",")):
        config = TinyConfig(vocab_size=4096, n_layer=args.layers, n_head=4, d_model=width, context=args.context)
        for prec in args.precisions.split(","):
            kw = dict(tokenizer=tok, config=config, batch_size=args.batch, progress=False, precision=prec,
                      device=args.device)
            pretrain(texts, steps=3, **kw)  # warm-up
            run = pretrain(texts, steps=args.steps, **kw)
            t = time.perf_counter()
            sample(run.model, tok, 32, max_tokens=64, progress=False)
            sampled = 32 * 64 / (time.perf_counter() - t)
            rows.append({"width": width, "params": run.n_params, "precision": run.precision,
                         "device": run.device, "tokens_per_s": round(run.tokens_per_s),
                         "s_per_step": round(run.seconds_per_step, 3), "sample_tokens_per_s": round(sampled)})
            print(json.dumps(rows[-1]), flush=True)
    print(f"load average: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
