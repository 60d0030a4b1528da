"""`synthkit cai` and `synthkit dpo`: preference pairs from a constitution, and training on them.

    synthkit cai course --out pairs.jsonl                 # the course's red-team prompts and rules
    synthkit cai prompts.jsonl --constitution rules.toml --out pairs.jsonl --format trl
    synthkit dpo pairs.jsonl --out my-model               # --resume after a kill

`cai` runs respond -> critique -> revise on every prompt (each names its principle in a
"principle" field, or all take --principle), prints how the critiques and revisions
compare with the programs' verdicts, and writes the pairs that pass --filter to --out,
with every loop record (original, critique, revision, verdicts, provenance) beside it in
``<out>.records.jsonl``. Generations are cached, so a killed run resumes where it stopped.

The pairs (revision chosen, original rejected) are the open DPO variant of Constitutional
AI, not Bai et al.'s method: the paper fine-tunes on the revisions, then trains with RL
against a preference model fitted to a model's choices between two sampled replies. For
the paper's first stage, fine-tune on the revisions instead: write each record's prompt
and revision as a {"prompt", "response"} record and run `synthkit sft` on them.
"""
from __future__ import annotations

from . import options

import time


def _pct(share: dict) -> str:
    if not share["n"]:
        return "n/a (none)"
    lo, hi = share["ci"]
    return f"{share['rate']:.0%} of {share['n']} [{lo:.0%}, {hi:.0%}]"


def cmd_cai(args) -> int:
    from .. import constitutional as cai
    from ..errors import SynthkitError
    from ..records import write_jsonl

    if args.n < 1:
        raise SynthkitError(f"--n must be at least 1 (replies per prompt); got {args.n}")
    if args.max_tokens < 1 or args.temperature < 0:
        raise SynthkitError("--max-tokens must be >= 1 and --temperature >= 0")
    started = time.perf_counter()
    constitution = cai.load_constitution(args.constitution)
    prompts = cai.cai_prompts()["red_team"] if args.prompts == "course" else cai.read_prompts(args.prompts)
    if args.principle is not None:
        constitution[args.principle]  # noqa: B018 - fails early, naming the principles there are
    for p in prompts:  # every principle named must exist before any generation starts
        pid = p.get("principle") or args.principle
        if pid is None:
            raise SynthkitError(f"prompt {p['id']!r} names no principle; add a \"principle\" field or pass "
                                f"--principle (one of {', '.join(constitution.ids)})")
        if pid not in constitution.ids:
            raise SynthkitError(f"prompt {p['id']!r} names principle {pid!r}, which {constitution.source} "
                                f"does not have (it has {', '.join(constitution.ids)})")
    respond = cai.RESPOND.replace(temperature=args.temperature, max_tokens=args.max_tokens)
    revise = cai.REVISE.replace(temperature=args.temperature, max_tokens=args.max_tokens)
    with options.open_model(args) as model:
        records = cai.constitutional_ai(model, prompts, constitution, n=args.n, principle=args.principle,
                                        respond=respond, revise=revise, seed=args.seed,
                                        cache=not args.no_cache)
    pairs = cai.to_pairs(records, args.filter)
    rows = {"full": pairs, "trl": cai.to_trl(pairs), "chat": cai.to_trl(pairs, conversational=True)}[args.format]
    out = write_jsonl(rows, args.out)
    rec = write_jsonl(records, out.with_name(out.stem + ".records.jsonl"))
    table = cai.critique_table(records)
    rates = cai.revision_rates(records)
    print(f"{len(records)} replies to {len(prompts)} prompts under {constitution.tag()}:")
    print(f"  first replies that comply:  {_pct(cai.compliance(records))}")
    print(f"  revisions that comply:      {_pct(cai.compliance(records, 'revision'))}")
    print(f"  critiques right:            {_pct(table['accuracy'])}  (TP {table['TP']}, FP {table['FP']}, "
          f"FN {table['FN']}, TN {table['TN']}; unclear {table['unclear']['k']})")
    print(f"  revisions that fix:         {_pct(rates['fix'])}")
    print(f"  revisions that break:       {_pct(rates['break'])}")
    print(f"{len(pairs)} pairs pass filter {args.filter!r} -> {out} ({args.format}); every record -> {rec} "
          f"({time.perf_counter() - started:.1f} s)")
    return 0


def cmd_dpo(args) -> int:
    from ..errors import SynthkitError
    from ..models import load_model
    from ..records import read_jsonl
    from ..train.dpo import DEFAULT_LR, pair_parts, dpo

    try:
        pairs = read_jsonl(args.pairs)
    except OSError as e:
        raise SynthkitError(f"cannot read {args.pairs} ({e.strerror}); pass a JSON-lines file of "
                            f"prompt/chosen/rejected pairs (what `synthkit cai` writes)") from None
    if not pairs:
        raise SynthkitError(f"{args.pairs} holds no pairs; run `synthkit cai ... --out {args.pairs}` first")
    for i, record in enumerate(pairs):  # every record is checked before the model loads
        pair_parts(record, i)
    policy = load_model(args.model, backend="torch", device=args.device)
    run = dpo(policy, pairs, beta=args.beta, epochs=args.epochs, max_steps=args.max_steps,
              batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr or DEFAULT_LR,
              max_len=args.max_len, seed=args.seed, out_dir=args.out, save_every=args.save_every,
              resume=args.resume, precision=args.precision)
    print(f"saved the DPO-trained model to {run.checkpoint} (load it with "
          f"synthkit.load_model({run.checkpoint!r}) on either backend)")
    return 0


def register(sub) -> None:
    from ..constitutional import PAIR_FILTERS

    p = sub.add_parser("cai", help="preference pairs by self-critique and revision against a constitution "
                                   "(revision chosen, original rejected: the open DPO variant of Constitutional AI)")
    p.add_argument("prompts", help="JSONL of {\"prompt\", \"principle\"} records, or 'course' for the course's "
                                   "red-team prompts")
    p.add_argument("--out", required=True, help="JSON-lines file for the pairs")
    p.add_argument("--constitution", help="TOML file of principles (default: synthkit's own)")
    p.add_argument("--principle", help="the principle for prompts that name none")
    p.add_argument("--filter", default="verified", choices=PAIR_FILTERS,
                   help="which pairs to keep: verified (the program says chosen complies and rejected "
                        "does not; default), critique (the model's critique found a violation), none "
                        "(every revision that differs from its original)")
    p.add_argument("--format", default="full", choices=["full", "trl", "chat"],
                   help="full: pairs with principle, verdict and provenance; trl: prompt/chosen/rejected "
                        "strings only; chat: TRL's conversational format")
    p.add_argument("--n", type=int, default=1, help="replies per prompt (default 1)")
    options.generation(p, temperature=0.7, max_tokens=160)
    options.scale(p)
    p.set_defaults(func=cmd_cai)

    d = sub.add_parser("dpo", help="train a model on preference pairs with DPO (--resume after a kill)")
    d.add_argument("pairs", help="JSON-lines file of prompt/chosen/rejected pairs (TRL's format)")
    d.add_argument("--out", required=True, help="folder for checkpoints and the trained model")
    options.training(d)
    d.add_argument("--beta", type=float, default=0.1, help="strength of the pull to the starting model")
    d.add_argument("--epochs", type=float, default=1)
    d.add_argument("--max-steps", type=int)
    d.add_argument("--batch-size", type=int, default=4, help="pairs per micro-batch")
    d.add_argument("--grad-accum", type=int, default=1)
    d.add_argument("--lr", type=float, help="peak learning rate (default 5e-6)")
    d.add_argument("--max-len", type=int, default=384)
    d.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    d.add_argument("--save-every", type=int, help="checkpoint every N steps (default 50)")
    d.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    d.set_defaults(func=cmd_dpo)
