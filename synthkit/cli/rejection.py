"""`synthkit rejection-sample`: a verified data set of solved problems, from the shell.

    synthkit rejection-sample --tasks arithmetic --k 8 --out solved.jsonl
    synthkit rejection-sample --tasks word,units,code --n 100 --signal majority --out voted.jsonl

Samples K attempts per problem, keeps those the chosen signal accepts, and writes the
accepted records to --out and the rejected ones beside it (``<out>.rejected.jsonl``).
Every record has prompt and response (what `synthkit sft` trains on), the problem's id,
its verdict (accepted or not, the signal, the reason, and each signal's vote) and its
provenance. Generations are cached: a killed run resumes where it stopped.
"""
from __future__ import annotations

from . import options

import time

# "arithmetic" is the everyday name for the two kinds of sums; the others are as in `data`.
FAMILIES = {"arithmetic": ("add", "mul"), "add": ("add",), "mul": ("mul",), "word": ("word",),
            "units": ("units",), "code": ("code",)}


def make_tasks(families: str, n: int, seed: int) -> list[dict]:
    """`n` tasks per kind named in `families` (comma-separated), each with an id."""
    from ..data import arithmetic_tasks, code_tasks
    from ..errors import SynthkitError

    names = [f.strip() for f in families.split(",") if f.strip()]
    unknown = [f for f in names if f not in FAMILIES]
    if not names or unknown:
        raise SynthkitError(f"unknown task family {', '.join(unknown) or repr(families)}; "
                            f"choose from {', '.join(FAMILIES)} (comma-separated)")
    tasks = []
    for kind in dict.fromkeys(k for f in names for k in FAMILIES[f]):
        batch = code_tasks(n, seed=seed) if kind == "code" else arithmetic_tasks(n, seed=seed, kind=kind)
        tasks += [{**t, "id": f"{kind}-{seed}-{i}"} for i, t in enumerate(batch)]
    return tasks


def cmd_rejection_sample(args) -> int:
    from .. import rejection
    from ..errors import SynthkitError
    from ..records import write_jsonl

    for name, value, low in (("--k", args.k, 1), ("--n", args.n, 1), ("--max-tokens", args.max_tokens, 1)):
        if value < low:
            raise SynthkitError(f"{name} must be at least {low}; got {value}")
    if args.max_per_task is not None and args.max_per_task < 1:
        raise SynthkitError(f"--max-per-task must be at least 1; got {args.max_per_task}")
    if args.temperature < 0:
        raise SynthkitError(f"--temperature must be >= 0; got {args.temperature}")
    started = time.perf_counter()
    tasks = make_tasks(args.tasks, args.n, args.seed)
    sampling = rejection.SAMPLING.replace(temperature=args.temperature, max_tokens=args.max_tokens)
    with options.open_model(args) as model:
        accepted, rejected = rejection.rejection_sample(
            model, tasks, args.k, args.signal, sampling=sampling, seed=args.seed,
            max_per_task=args.max_per_task, cache=not args.no_cache)
    out = write_jsonl(accepted, args.out)
    rej = write_jsonl(rejected, out.with_name(out.stem + ".rejected.jsonl"))
    solved = len({r["task_id"] for r in accepted})
    print(f"{len(tasks)} problems x {args.k} attempts, signal {args.signal!r}: accepted {len(accepted)} "
          f"({solved} problems with at least one) -> {out}; rejected {len(rejected)} -> {rej} "
          f"({time.perf_counter() - started:.1f} s)")
    return 0


def register(sub) -> None:
    from ..rejection import SIGNALS

    p = sub.add_parser("rejection-sample", help="sample K answers per problem, keep the verified ones")
    p.add_argument("--tasks", default="arithmetic",
                   help=f"task families, comma-separated: {', '.join(FAMILIES)} (default arithmetic)")
    p.add_argument("--n", type=int, default=50, help="problems per task kind (default 50)")
    p.add_argument("--k", type=int, default=8, help="attempts per problem (default 8)")
    p.add_argument("--signal", default="exact", choices=SIGNALS,
                   help="what decides what is kept (default exact: the verifier)")
    p.add_argument("--out", required=True, help="JSON-lines file for the accepted records")
    p.add_argument("--max-per-task", type=int, help="keep at most this many per problem")
    options.generation(p, temperature=0.8, max_tokens=256)
    options.scale(p)
    p.set_defaults(func=cmd_rejection_sample)
