"""Practitioners' commands: make a dataset from the shell with the same code the labs use.

    synthkit magpie --n 200 --out magpie.jsonl
    synthkit self-instruct --n 200 --out self_instruct.jsonl

Each run shows progress, resumes from the generation cache when re-run after a kill,
writes kept records (Alpaca fields + provenance) to --out and rejected ones, with the
reason, beside it.
"""
from __future__ import annotations

import time
from pathlib import Path


def _model(args):
    from .models import load_model
    return load_model(args.model, backend=args.backend)


def _common(p):
    p.add_argument("--n", type=int, required=True, help="how many instructions to generate")
    p.add_argument("--out", required=True, help="JSON-lines file for the kept records")
    p.add_argument("--model", help="a GGUF file or HF checkpoint directory (default: embedded teacher)")
    p.add_argument("--backend", default="llama.cpp", choices=["llama.cpp", "torch"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-cache", action="store_true", help="do not read or write the generation cache")


def _save(kept, rejected, out: str, started: float) -> int:
    from .records import write_jsonl
    out_path = Path(out)
    write_jsonl(kept, out_path)
    rej_path = out_path.with_name(out_path.stem + ".rejected.jsonl")
    write_jsonl(rejected, rej_path)
    print(f"kept {len(kept)} records -> {out_path}; rejected {len(rejected)} -> {rej_path} "
          f"({time.perf_counter() - started:.1f} s)")
    return 0


def cmd_magpie(args) -> int:
    from . import magpie
    started = time.perf_counter()
    kept, rejected = magpie.make_dataset(_model(args), args.n, seed=args.seed,
                                         responses=not args.no_responses, cache=not args.no_cache)
    return _save(kept, rejected, args.out, started)


def cmd_self_instruct(args) -> int:
    from . import self_instruct
    started = time.perf_counter()
    kept, rejected = self_instruct.bootstrap(_model(args), args.n, seed=args.seed,
                                             cache=not args.no_cache)
    return _save(kept, rejected, args.out, started)


def register(sub) -> None:
    m = sub.add_parser("magpie", help="make instruction/response pairs from the template alone")
    _common(m)
    m.add_argument("--no-responses", action="store_true", help="instructions only")
    m.set_defaults(func=cmd_magpie)
    s = sub.add_parser("self-instruct", help="bootstrap instructions from the seed tasks")
    _common(s)
    s.set_defaults(func=cmd_self_instruct)
