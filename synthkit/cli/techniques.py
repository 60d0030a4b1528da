"""Practitioners' commands: make a dataset from the shell with the same code the labs use.

    synthkit magpie --n 200 --out magpie.jsonl
    synthkit self-instruct --n 200 --out self_instruct.jsonl

`--n` is the number of records in the file: generation goes on in rounds until that many
pass every filter, or until --max-candidates instructions have been drawn (default 10 x n),
and the command says how many it made and why the others were rejected. Each run shows
progress, resumes from the generation cache when re-run after a kill, writes kept records
(Alpaca fields + provenance) to --out and rejected ones, with the reason, beside it.
"""
from __future__ import annotations

from . import options

import time
from collections import Counter
from pathlib import Path

# SmolLM2-135M-Instruct answers at length, and a cut-off answer is rejected. Measured on the
# 41 of 48 Magpie instructions (seed 0) that passed the filters, answered with up to 880 new
# tokens: median 293 tokens; 44% finish within 256 (the old limit), 66% within 384, 76%
# within 512, 80% within 768, and 8 of 41 loop on past 880. So 512: three answers in four
# fit, and the last few percent would cost half as much generation again.
DEFAULT_MAX_TOKENS = 512


def _common(p):
    p.add_argument("--n", type=int, required=True, help="how many records to write")
    p.add_argument("--out", required=True, help="JSON-lines file for the kept records")
    p.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS,
                   help=f"new tokens allowed per response; longer ones are cut off and rejected "
                        f"(default {DEFAULT_MAX_TOKENS})")
    p.add_argument("--max-candidates", type=int, default=None,
                   help="stop after drawing this many instructions even if fewer than --n passed "
                        "(default 10 x n)")
    options.generation(p)
    options.scale(p)


def _check(args) -> int:
    """The draw cap, after checking the numbers a user typed."""
    from ..errors import SynthkitError
    if args.n < 1:
        raise SynthkitError(f"--n must be at least 1 (got {args.n})")
    if args.max_tokens < 1:
        raise SynthkitError(f"--max-tokens must be at least 1 (got {args.max_tokens})")
    cap = 10 * args.n if args.max_candidates is None else args.max_candidates
    if cap < args.n:
        raise SynthkitError(f"--max-candidates ({cap}) is below --n ({args.n}); allow at least n")
    return cap


def report(n: int, kept: list[dict], rejected: list[dict]) -> str:
    """'made 20 of 20 records from 31 instructions; rejected: 8 response incomplete, ...'"""
    reasons = Counter(r.get("reason", "?") for r in rejected)
    drawn = len(kept) + sum(c for why, c in reasons.items() if not why.startswith("surplus"))
    lines = [f"made {len(kept)} of {n} records from {drawn} instructions"
             + ("" if len(kept) >= n else " (stopped at the --max-candidates cap: raise it, or "
                                          "--max-tokens if answers were cut off)")]
    if reasons:
        lines.append("rejected: " + ", ".join(f"{c} {why}" for why, c in reasons.most_common()))
    return "\n".join(lines)


def _save(n: int, kept, rejected, out: str, started: float) -> int:
    from ..records import write_jsonl
    out_path = Path(out)
    write_jsonl(kept, out_path)
    rej_path = out_path.with_name(out_path.stem + ".rejected.jsonl")
    write_jsonl(rejected, rej_path)
    print(report(n, kept, rejected))
    print(f"kept {len(kept)} records -> {out_path}; rejected {len(rejected)} -> {rej_path} "
          f"({time.perf_counter() - started:.1f} s)")
    return 0 if len(kept) >= n else 1


def cmd_magpie(args) -> int:
    from .. import magpie
    cap = _check(args)
    started = time.perf_counter()
    sampling = magpie.RESPONSE_SAMPLING.replace(max_tokens=args.max_tokens)
    with options.open_model(args) as model:
        kept, rejected = magpie.make_dataset(model, args.n, seed=args.seed,
                                             responses=not args.no_responses, cache=not args.no_cache,
                                             response_sampling=sampling, max_candidates=cap)
    return _save(args.n, kept, rejected, args.out, started)


def cmd_self_instruct(args) -> int:
    """Bootstrap instructions, answer them, and grow the pool again while answers are lost.

    `bootstrap` is deterministic for a seed, so asking it for more instructions replays the
    rounds already made (from the cache) and only the new ones cost generation."""
    from .. import self_instruct as si
    cap = _check(args)
    started = time.perf_counter()
    sampling = si.RESPONSE_SAMPLING.replace(max_tokens=args.max_tokens)
    kept, lost, answered = [], [], set()
    want = args.n
    with options.open_model(args) as model:
        while True:
            pool, rejected = si.bootstrap(model, want, seed=args.seed, responses=False,
                                          cache=not args.no_cache)
            new = [r for r in pool if r["instruction"] not in answered]
            answered.update(r["instruction"] for r in new)
            ok, bad = si.add_responses(model, new, seed=args.seed, cache=not args.no_cache,
                                       sampling=sampling)
            kept, lost = kept + ok, lost + bad
            if len(kept) >= args.n or len(pool) < want or want >= cap:
                break  # enough, or the bootstrap ran out of rounds, or the cap
            rate = max(len(kept) / len(answered), 0.25)
            want = min(cap, want + max(1, round((args.n - len(kept)) / rate * 1.25)))
            print(f"self-instruct: {len(kept)}/{args.n} records; growing the pool to {want}", flush=True)
    surplus = [{**r, "reason": "surplus: n already reached"} for r in kept[args.n:]]
    return _save(args.n, kept[:args.n], rejected + lost + surplus, args.out, started)


def register(sub) -> None:
    m = sub.add_parser("magpie", help="make instruction/response pairs from the template alone")
    _common(m)
    m.add_argument("--no-responses", action="store_true", help="instructions only")
    m.set_defaults(func=cmd_magpie)
    s = sub.add_parser("self-instruct", help="bootstrap instructions from the seed tasks")
    _common(s)
    s.set_defaults(func=cmd_self_instruct)
