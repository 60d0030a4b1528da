"""`synthkit sft DATA --out DIR`: fine-tune on a JSON-lines file from the shell.

DATA holds records in any format `synthkit.train.data` reads: the kept records that
`synthkit magpie`, `self-instruct` and `rejection-sample` write, as they are, or
prompt/response and chat-messages files. A killed run continues with `--resume`.
"""
from __future__ import annotations

from . import options


def cmd_sft(args) -> int:
    from ..errors import SynthkitError
    from ..models import load_model
    from ..records import read_jsonl
    from ..train.sft import sft

    try:
        records = read_jsonl(args.data)
    except OSError as e:
        raise SynthkitError(f"cannot read {args.data} ({e.strerror}); pass a JSON-lines file") from None
    student = load_model(args.model, backend="torch", device=args.device)
    run = sft(student, records, epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
              grad_accum=args.grad_accum, lr=args.lr, max_len=args.max_len, seed=args.seed,
              lora=args.lora, out_dir=args.out, save_every=args.save_every, resume=args.resume,
              precision=args.precision)
    print(f"saved the fine-tuned model to {run.checkpoint} (load it with "
          f"synthkit.load_model({run.checkpoint!r}) on either backend)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("sft", help="fine-tune a model on a JSONL of prompt/response or chat records")
    p.add_argument("data", help="JSON-lines file of training records")
    p.add_argument("--out", required=True, help="folder for checkpoints and the fine-tuned model")
    options.training(p)
    p.add_argument("--epochs", type=float, default=1)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--lr", type=float, help="peak learning rate (default 5e-5 full, 1e-3 LoRA)")
    p.add_argument("--max-len", type=int, default=256, help="longer examples are cut (with a warning)")
    p.add_argument("--lora", action="store_true", help="train LoRA adapters (peft), merged at the end")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    p.add_argument("--save-every", type=int, help="checkpoint every N steps (default 50)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.set_defaults(func=cmd_sft)
