"""`synthkit distill`: train a smaller student on a teacher, from the shell.

    synthkit distill --student layers:6 --out student/
    synthkit distill --teacher my-model/ --student layers:8 --mode both --prompts prompts.jsonl --out s8/

The teacher (default: the embedded SmolLM2-135M-Instruct, on the torch backend for its
full logits) answers the prompts (greedy; cached), its top-k log-probabilities at every
answer token are computed once (cached on disk), and the student trains on them with
`--mode hard` (the answers only), `soft` (the distribution, at --temperature) or `both`.
A killed run continues with `--resume`. The student lands in --out as an ordinary
checkpoint (load it with `synthkit.load_model(DIR)` on either backend), with
`distillation.json` beside it: what it was distilled from, how, and what it scored.
"""
from __future__ import annotations

from . import options

import json
import time
from pathlib import Path


def read_prompts(path) -> list[str]:
    """Prompts from a file: JSON lines with "prompt" / "instruction" (+ "input") /
    "messages" (the first user turn), or plain text with one prompt per line."""
    from ..errors import SynthkitError

    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise SynthkitError(f"cannot read {path} ({e.strerror}); pass a JSON-lines or text file of prompts") from None
    out = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        if not line.startswith("{"):
            out.append(line)
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise SynthkitError(f"{path}, line {number}: not valid JSON ({e.msg}); write one JSON object "
                                f"or one plain-text prompt per line") from None
        if isinstance(record.get("prompt"), str):
            out.append(record["prompt"])
        elif isinstance(record.get("instruction"), str):
            out.append(record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else ""))
        elif isinstance(record.get("messages"), list):
            user = next((m.get("content") for m in record["messages"] if isinstance(m, dict)
                         and m.get("role") == "user"), None)
            if not isinstance(user, str):
                raise SynthkitError(f"{path}, line {number}: 'messages' has no user turn to use as the prompt")
            out.append(user)
        else:
            raise SynthkitError(f"{path}, line {number} has fields {sorted(record)}; give each record a "
                                f"'prompt', an 'instruction' or 'messages'")
    if not out:
        raise SynthkitError(f"{path} holds no prompts")
    return out


def cmd_distill(args) -> int:
    from .. import distill
    from ..errors import SynthkitError
    from ..models import load_model
    from ..train.kd import train_student

    for name, value, low in (("--n", args.n, 1), ("--max-tokens", args.max_tokens, 1), ("--top-k", args.top_k, 1),
                             ("--batch-size", args.batch_size, 1), ("--steps", args.steps, 1),
                             ("--held-out", args.held_out, 0)):
        if value is not None and value < low:
            raise SynthkitError(f"{name} must be at least {low}; got {value}")
    if not 0 <= args.alpha <= 1:
        raise SynthkitError(f"--alpha must be between 0 and 1; got {args.alpha}")
    if args.temperature <= 0:
        raise SynthkitError(f"--temperature must be > 0 (1 = the teacher's own distribution); got {args.temperature}")
    distill.parse_spec(args.student)  # a bad spec fails before the teacher loads
    started = time.perf_counter()
    out = Path(args.out)
    teacher = load_model(args.teacher, backend="torch", device=args.device)
    if args.top_k > teacher.n_vocab:
        raise SynthkitError(f"--top-k {args.top_k} is more than the vocabulary ({teacher.n_vocab})")
    train_prompts = read_prompts(args.prompts) if args.prompts else distill.prompts(args.n, seed=args.seed)
    held_prompts = distill.prompts(args.held_out, split="held-out", seed=args.seed) if args.held_out else []
    records = distill.teacher_answers(teacher, train_prompts, max_tokens=args.max_tokens, seed=args.seed)
    if not records:
        raise SynthkitError(f"the teacher finished none of the {len(train_prompts)} answers within "
                            f"--max-tokens {args.max_tokens}; raise --max-tokens")
    targets = distill.teacher_targets(teacher, records, k=args.top_k)
    print(f"teacher: {len(records)} of {len(train_prompts)} answers finished, {targets.taught_tokens} answer "
          f"tokens, top-{targets.k} log-probs kept (mean mass {targets.mass().mean():.3f})")
    student = distill.make_student(teacher, args.student)
    steps = args.steps or max(1, round(args.epochs * len(targets) / args.batch_size))
    run = train_student(student, targets, mode=args.mode, temperature=args.temperature, alpha=args.alpha,
                        max_steps=steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                        out_dir=out, save_every=args.save_every, resume=args.resume, precision=args.precision)
    scores = {}
    if held_prompts:
        held = distill.teacher_answers(teacher, held_prompts, max_tokens=args.max_tokens, seed=args.seed,
                                       progress=False)
        if held:
            examples = distill.encode_answers(teacher, held)
            scores = distill.forced_scores(student, teacher, examples)
            print(f"held-out ({len(held)} teacher answers): KL to teacher {scores['kl']:.3f}, perplexity on "
                  f"teacher text {scores['ppl_teacher_text']:.2f}, top-1 agreement {scores['top1_agreement']:.1%}")
    info = {"teacher": {"path": teacher.path, "name": teacher.name, "fingerprint": teacher.fingerprint,
                        "license": getattr(teacher, "license", "unknown")},
            "student": {"spec": args.student, **distill.size(student),
                        "layers_from_teacher": getattr(student.model.config, "distilled_from_layers", None)},
            "teacher_params": distill.size(teacher)["params"],
            "mode": args.mode, "temperature": args.temperature, "alpha": args.alpha if args.mode == "both" else None,
            "top_k": targets.k, "top_k_mass": float(targets.mass().mean()),
            "prompts": args.prompts or f"distill.prompts({args.n}, seed={args.seed})",
            "records": len(records), "answer_tokens": targets.taught_tokens, "max_tokens": args.max_tokens,
            "steps": run.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
            "tokens": run.tokens, "seconds_per_step": run.seconds_per_step, "tokens_per_s": run.tokens_per_s,
            "precision": run.precision, "kl_first_last": [run.kls[0], run.kls[-1]] if run.kls else None,
            "held_out": scores, "seconds": time.perf_counter() - started}
    (out / "distillation.json").write_text(json.dumps(info, indent=1, default=str))
    print(f"saved the student ({info['student']['params'] / 1e6:.0f}M parameters, teacher "
          f"{info['teacher_params'] / 1e6:.0f}M) to {out}, with its provenance in {out / 'distillation.json'}")
    return 0


def register(sub) -> None:
    from ..distill import DEFAULT_TOP_K
    from ..train.kd import DEFAULT_ALPHA, DEFAULT_LR, DEFAULT_TEMPERATURE, MODES

    p = sub.add_parser("distill", help="train a smaller student on a teacher's answers and distribution")
    p.add_argument("--teacher", help="GGUF file or HF checkpoint folder (default: the embedded teacher)")
    p.add_argument("--student", default="layers:6",
                   help="layers:K (K evenly spaced teacher layers, copied), layers:I,J,... , scratch:L:H "
                        "(new L-layer model of width H), or a checkpoint folder (default layers:6)")
    p.add_argument("--out", required=True, help="folder for checkpoints, the student and distillation.json")
    p.add_argument("--mode", choices=MODES, default="soft",
                   help="hard: the teacher's answers; soft: its distribution; both (default soft)")
    p.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE)
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="weight of the hard loss in --mode both")
    p.add_argument("--prompts", help="JSONL (prompt / instruction / messages) or text file, one prompt a line "
                                     "(default: the course's own prompts)")
    p.add_argument("--n", type=int, default=200, help="built-in prompts to use when --prompts is not given")
    p.add_argument("--held-out", type=int, default=32, help="held-out prompts to score the student on (0: none)")
    p.add_argument("--max-tokens", type=int, default=128, help="longest teacher answer (longer ones are dropped)")
    p.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help="teacher log-probs kept per token")
    p.add_argument("--steps", type=int, help="optimizer steps (default: --epochs over the answers)")
    p.add_argument("--epochs", type=float, default=2)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=DEFAULT_LR)
    options.training(p, model=False)
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    p.add_argument("--save-every", type=int, help="checkpoint every N steps (default 50)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.set_defaults(func=cmd_distill)
