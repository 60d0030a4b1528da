"""`synthkit audit`: check a synthetic data set before training on it.

    synthkit audit magpie.jsonl
    synthkit audit solved.jsonl --reference wiki --eval held_out.jsonl --json report.json --card README.md

Runs the provenance, personal-data, verbatim-overlap and contamination checks of
`synthkit.audit` on every record, prints a summary, and optionally writes every finding
as JSON (`line`, `check`, `kind`, ...) and a Hugging Face dataset card. Exit status: 0 when
nothing was found, 1 when something was (so a pipeline can stop), 2 on an error.
This is an engineering check, not legal advice.
"""
from __future__ import annotations

import time
from pathlib import Path


def _texts_of(spec: str, what: str) -> tuple[list[str], list[str] | None]:
    """Texts from `wiki` (the course's Wikipedia summaries), a .jsonl file (every text
    field of every record) or a plain text file (one text per non-blank line)."""
    from .. import audit
    from ..errors import SynthkitError

    if spec == "wiki":
        from ..data import wiki_summaries
        rows = wiki_summaries()
        return [r["text"] for r in rows], [r["title"] for r in rows]
    path = Path(spec)
    if not path.is_file():
        raise SynthkitError(f"{what} {spec!r} is not a file; give a .jsonl or .txt file, or 'wiki' for the "
                            f"course's Wikipedia summaries")
    if path.suffix == ".jsonl":
        texts = []
        for line, record, problem in audit.read_records(path):
            if problem is not None:
                raise SynthkitError(f"{what} {path}, line {line}: {problem.detail}")
            texts.append(" ".join(audit.text_fields(record).values()))
        return texts, None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise SynthkitError(f"{what} {path} is not UTF-8 text; give a .jsonl or .txt file") from None
    return [line for line in lines if line.strip()], None


def cmd_audit(args) -> int:
    from .. import audit
    from ..errors import SynthkitError

    if args.ngram < 1:
        raise SynthkitError(f"--ngram must be at least 1; got {args.ngram}")
    if args.max_line_bytes < 1:
        raise SynthkitError(f"--max-line-bytes must be at least 1; got {args.max_line_bytes}")
    started = time.perf_counter()
    reference = names = None
    if args.reference:
        reference, names = _texts_of(args.reference, "--reference")
    eval_sets = {}
    for spec in args.eval or ():
        eval_sets[Path(spec).stem if spec != "wiki" else "wiki"] = _texts_of(spec, "--eval")[0]
    checks = tuple(c.strip() for c in args.checks.split(",")) if args.checks else audit.CHECKS
    report = audit.audit(args.data, reference=reference, reference_names=names, eval_sets=eval_sets,
                         n=args.ngram, checks=checks, max_line_bytes=args.max_line_bytes)
    print(report.summary(examples=args.examples))
    if args.json:
        print(f"findings -> {report.write_json(args.json)}")
    if args.card:
        card = audit.dataset_card(report, pretty_name=args.name or Path(args.data).stem)
        Path(args.card).parent.mkdir(parents=True, exist_ok=True)
        card.save(args.card)
        print(f"dataset card -> {args.card}")
    print(f"({time.perf_counter() - started:.1f} s)")
    if report.error:
        return 2
    return 1 if report.findings else 0


def register(sub) -> None:
    from ..audit import CHECKS, MAX_LINE_BYTES, NGRAM

    p = sub.add_parser("audit", help="check a JSONL data set: provenance, personal data, copying, contamination")
    p.add_argument("data", help="the JSON-lines file to audit")
    p.add_argument("--reference", help="texts to check verbatim copying against: 'wiki' (the course's Wikipedia "
                                       "summaries), a .jsonl or a .txt file (one text per line)")
    p.add_argument("--eval", action="append", metavar="FILE",
                   help="a held-out evaluation set (.jsonl or .txt) to check contamination against; repeatable")
    p.add_argument("--json", metavar="REPORT", help="write every finding as JSON here")
    p.add_argument("--card", metavar="README.md", help="write a Hugging Face dataset card here")
    p.add_argument("--name", help="the data set's name in the card (default: the file's name)")
    p.add_argument("--checks", help=f"comma-separated subset of {','.join(CHECKS)} (default: all)")
    p.add_argument("--ngram", type=int, default=NGRAM, help=f"n-gram length in words for overlap and "
                                                            f"contamination (default {NGRAM})")
    p.add_argument("--max-line-bytes", type=int, default=MAX_LINE_BYTES,
                   help=f"longest line read as a record (default {MAX_LINE_BYTES:,})")
    p.add_argument("--examples", type=int, default=3, help="findings shown per check (default 3)")
    p.set_defaults(func=cmd_audit)
