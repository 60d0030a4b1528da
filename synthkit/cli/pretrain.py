"""`synthkit textbooks` and `synthkit pretrain`: a synthetic textbook corpus, and a tiny
language model trained from scratch on any text.

    synthkit textbooks --tokens 50000 --out textbooks.jsonl.gz
    synthkit textbooks --tokens 2000000 --backend torch --batch-size 256 --out big.jsonl.gz   # on a GPU
    synthkit pretrain textbooks.jsonl.gz --tokens 500000 --out tiny-model/

`textbooks` walks the curriculum (Wikipedia subjects x article titles, `synthkit.pretrain`)
in chunks, asks the teacher for one passage per topic, judges each with the quality
filters, and stops once the passages that passed hold --tokens teacher tokens. Every
passage is written, failures too (with "passed" and "reasons"), so a reader can train on
the filtered or the unfiltered corpus. Generations are cached: run the same command again
after a kill and it resumes. `<out>.provenance.json` records the exact command, model,
backend, device, sampling, seed, counts and speed.

`pretrain` trains a `synthkit.train.tiny` model on a text file (documents separated by a
blank line) or JSON lines (a "text" field, or --field), holding out a few documents for
perplexity. Run the same command again to resume a killed run. The model, its tokenizer
and `provenance.json` (data, tokens, seed, versions, the command) land in --out.
"""
from __future__ import annotations

from . import options

import gzip
import json
import shlex
import sys
import time
from pathlib import Path


def _command() -> str:
    return "synthkit " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def cmd_textbooks(args) -> int:
    from .. import __version__, pretrain
    from ..errors import SynthkitError

    if args.tokens < 1 or (args.chunk is not None and args.chunk < 1) or args.max_tokens < 16:
        raise SynthkitError("--tokens and --chunk must be >= 1 and --max-tokens >= 16")
    out = Path(args.out)
    subjects = [s.strip() for s in args.subjects.split(",")] if args.subjects else None
    started = time.perf_counter()
    from ..models import cuda_available
    on_gpu = args.backend == "torch" and cuda_available()
    kwargs = {"batch_size": args.batch_size or (256 if on_gpu else 16)} if args.backend == "torch" else {}
    sampling = pretrain.SAMPLING.replace(temperature=args.temperature, max_tokens=args.max_tokens)
    prov_path = out.with_name(out.name + ".provenance.json")

    def write_provenance(passages, kept_tokens):
        report = pretrain.filter_report(passages)
        seconds = time.perf_counter() - started
        prov_path.write_text(json.dumps({
            "command": _command(), "technique": pretrain.TECHNIQUE, "synthkit": __version__,
            "model": getattr(model, "name", "?"), "model_path": str(getattr(model, "path", "")),
            "backend": model.backend, "device": str(getattr(model, "device", "cpu")),
            "license": getattr(model, "license", None), "sampling": sampling.__dict__, "seed": args.seed,
            "subjects": subjects or "all", "target_tokens": args.tokens, "passages": len(passages),
            "kept": report["kept"], "kept_tokens": kept_tokens,
            "all_tokens": sum(p["tokens"] for p in passages), "reasons": report["reasons"],
            "complete": kept_tokens >= args.tokens, "seconds": round(seconds, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "token_count": "teacher tokens (SmolLM2 tokenizer) of the passages that passed the filters",
        }, indent=1, default=str), encoding="utf-8")

    with options.open_model(args, **kwargs) as model:
        # on Ray a chunk is one Ray Data run (its actors start, load, work, stop): give every
        # actor two shards of it, or most of the cluster would wait
        chunk = args.chunk or (2 * model.actors * model.shard_size if args.ray
                               else 4 * kwargs["batch_size"] if on_gpu else 64)
        passages = pretrain.make_textbooks(model, args.tokens, seed=args.seed, chunk=chunk,
                                           subjects=subjects, sampling=sampling, out=out,
                                           cache=not args.no_cache, on_chunk=write_provenance)
    kept = [p for p in passages if p["passed"]]
    seconds = time.perf_counter() - started
    print(f"{len(passages)} passages, {len(kept)} passed the filters ({sum(p['tokens'] for p in kept):,} teacher "
          f"tokens) -> {out}; provenance in {prov_path} ({seconds:.0f} s)")
    return 0


def read_documents(path, field: str = "text") -> list[str]:
    """Documents from a .txt file (separated by blank lines) or JSON lines (.jsonl, .jsonl.gz)."""
    from ..errors import SynthkitError
    path = Path(path)
    if not path.is_file():
        raise SynthkitError(f"{path} does not exist; pass a text file or a JSON-lines file of documents")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            raw = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise SynthkitError(f"cannot read {path} as UTF-8 text ({e}); pass a text or JSON-lines file") from None
    if ".jsonl" in path.name or ".json" in path.name:
        docs = []
        for number, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise SynthkitError(f"{path}:{number} is not valid JSON ({e.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get(field), str):
                raise SynthkitError(f"{path}:{number} has no string field {field!r}; name the field with --field")
            docs.append(record[field])
        return docs
    return [d.strip() for d in raw.split("\n\n") if d.strip()]


def cmd_pretrain(args) -> int:
    import random

    from ..errors import SynthkitError
    from ..train.tiny import TinyConfig, pretrain

    docs = read_documents(args.data, args.field)
    if len(docs) < 2:
        raise SynthkitError(f"{args.data} holds {len(docs)} document(s); pretraining needs more text")
    order = list(range(len(docs)))
    random.Random(args.seed).shuffle(order)
    n_eval = max(1, round(args.eval_share * len(docs))) if args.eval_share > 0 else 0
    held = [docs[i] for i in order[:n_eval]]
    train = [docs[i] for i in order[n_eval:]]
    config = TinyConfig(vocab_size=args.vocab, n_layer=args.layers, n_head=args.heads, d_model=args.d_model,
                        context=args.context)
    out = Path(args.out)
    run = pretrain(train, config=config, tokens=args.tokens, steps=args.steps, batch_size=args.batch_size,
                   lr=args.lr, seed=args.seed, eval_texts=held or None, eval_every=args.eval_every,
                   out_dir=out, source=str(Path(args.data).resolve()), precision=args.precision)
    prov = out / "provenance.json"
    info = json.loads(prov.read_text())
    info.setdefault("commands", [])
    info["commands"].append(_command())
    info.update(held_out_documents=len(held), train_documents=len(train))
    prov.write_text(json.dumps(info, indent=1, default=str))
    ppl = f", held-out perplexity {run.eval_curve[-1][1]:.1f}" if run.eval_curve else ""
    print(f"{run.n_params / 1e6:.2f}M parameters, {run.tokens_seen:,} tokens{ppl} -> {out}")
    return 0


def register(sub) -> None:
    t = sub.add_parser("textbooks", help="a synthetic textbook corpus on a curriculum of topics (lab 07)")
    t.add_argument("--tokens", type=int, required=True,
                   help="stop once the passages that passed the filters hold this many teacher tokens")
    t.add_argument("--out", required=True, help="JSON-lines file (.jsonl or .jsonl.gz) for every passage")
    t.add_argument("--batch-size", type=int,
                   help="torch backend: sequences decoded together (default 256 on CUDA, 16 on CPU)")
    t.add_argument("--chunk", type=int,
                   help="topics per generation call, written out after each (default 64; 4 x batch on CUDA)")
    t.add_argument("--subjects", help="comma-separated subject labels (default: all, round-robin)")
    options.generation(t, temperature=0.8, max_tokens=200,
                       backend_help="llama.cpp (CPU) or torch (CUDA when present; use a large --batch-size there)")
    options.scale(t)
    t.set_defaults(func=cmd_textbooks)

    p = sub.add_parser("pretrain", help="train a tiny language model from scratch on a text or JSONL file")
    p.add_argument("data", help="a .txt file (documents separated by blank lines) or .jsonl/.jsonl.gz")
    p.add_argument("--out", required=True, help="folder for checkpoints, the model and provenance.json")
    p.add_argument("--field", default="text", help="the JSON field that holds the text (default text)")
    p.add_argument("--tokens", type=int, help="token budget (default: one pass over the data)")
    p.add_argument("--steps", type=int, help="optimizer steps instead of a token budget")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--vocab", type=int, default=4096, help="BPE vocabulary size (default 4096)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d-model", type=int, default=128, help="width (default 128: about 1.3M parameters)")
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--eval-share", type=float, default=0.05, help="documents held out for perplexity")
    p.add_argument("--eval-every", type=int, help="steps between held-out perplexity measurements")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    options.seed(p)
    p.set_defaults(func=cmd_pretrain)
