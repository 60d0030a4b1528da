"""Which way of sharing the cores works? Measures each option in fresh processes.

    python benchmarks/sharing_options.py [--n 32] [--max-tokens 64] [--repeat 2]

For every option (an OpenMP wait policy set before llama.cpp loads, a fixed thread count,
or synthkit's adaptive `CoreShare`) it runs the same batched Magpie generation
  alone, beside one CPU-bound busy loop, and as two synthkit processes at once,
and prints tok/s plus the two ratios `synthkit bench --contended` reports (busy / alone,
both together / alone). Every process is new, so an environment variable read when the
OpenMP runtime loads really applies. This is the measurement behind cores.py's design.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

OPTIONS = {  # name: (environment, n_threads or None for adaptive)
    "2 threads, OpenMP default": ({}, 2),
    "2 threads, OMP_WAIT_POLICY=passive": ({"OMP_WAIT_POLICY": "passive"}, 2),
    "2 threads, GOMP_SPINCOUNT=10000": ({"GOMP_SPINCOUNT": "10000"}, 2),
    "1 thread": ({}, 1),
    "adaptive (synthkit default)": ({}, None),
    "adaptive + OMP_WAIT_POLICY=passive": ({"OMP_WAIT_POLICY": "passive"}, None),
}


def worker(n: int, max_tokens: int, threads: int, fmt: str) -> None:
    from synthkit import Sampling, load_model
    from synthkit.magpie import pre_query_template

    model = load_model(n_threads=threads or None, requantize=None if fmt == "none" else fmt)
    prompt = pre_query_template(model.chat_template, model.bos_token)
    s = Sampling(temperature=0.8, top_p=0.95, top_k=50, max_tokens=max_tokens, seed=0)
    model.generate(prompt, n=2, sampling=s.replace(max_tokens=4), cache=False, progress=False)
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.time()
    out = model.generate(prompt, n=n, sampling=s, cache=False, progress=False)
    print(json.dumps({"tokens": out.stats.completion_tokens, "start": start, "end": time.time()}),
          flush=True)


def run_workers(k: int, env: dict, threads, args) -> float:
    """Start k generating processes together; combined tok/s over the whole span."""
    cmd = [sys.executable, __file__, "--worker", str(args.n), str(args.max_tokens),
           str(threads or 0), args.format]
    procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, **env}) for _ in range(k)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        runs = [json.loads(p.stdout.readline()) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    span = max(r["end"] for r in runs) - min(r["start"] for r in runs)
    return sum(r["tokens"] for r in runs) / span


def measure(env: dict, threads, args) -> dict:
    alone = run_workers(1, env, threads, args)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        beside = run_workers(1, env, threads, args)
    finally:
        busy.kill()
        busy.wait()
    pair = run_workers(2, env, threads, args)
    return {"alone": alone, "busy": beside, "pair": pair}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--format", default="auto", help="requantize= for the model (auto, q8_0, bf16, none)")
    ap.add_argument("--only", help="comma-separated option numbers (1-based) to run")
    args = ap.parse_args()
    chosen = list(OPTIONS.items())
    if args.only:
        chosen = [chosen[int(i) - 1] for i in args.only.split(",")]
    print(f"load before: {os.getloadavg()}")
    results = []
    for name, (env, threads) in chosen:
        for r in range(args.repeat):
            results.append((name, measure(env, threads, args)))
            m = results[-1][1]
            print(f"{name:38s} alone {m['alone']:6.1f}  beside busy {m['busy']:6.1f}  "
                  f"two together {m['pair']:6.1f} tok/s", flush=True)
    # one yardstick for every option: the fastest 'alone' of the run (on a busy machine an
    # adaptive option's own 'alone' can be low, which would flatter its ratios)
    idle = max(m["alone"] for _, m in results)
    print(f"ratios to the best alone figure ({idle:.1f} tok/s):")
    for name, m in results:
        print(f"  {name:38s} beside busy {m['busy'] / idle:4.0%}   two together {m['pair'] / idle:4.0%}")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
