"""Training throughput: seconds per step and tokens/s of `synthkit.train.sft`, for full
fine-tuning in fp32 and under bf16 autocast, and for LoRA (r=16) in both precisions;
optionally the torch backend's generation in fp32 against bf16.

    python benchmarks/bench_train.py                      # CPU (the course's laptop case)
    python benchmarks/bench_train.py --device cuda        # a GPU: same code, same numbers printed
    python benchmarks/bench_train.py --generation         # also: batch-32 generation fp32 vs bf16

Every configuration trains the embedded SmolLM2-135M on real Wikipedia text, batches of
--batch examples cut to --len tokens, for --steps timed optimizer steps after one
untimed warm-up step (and a warm-up run of each precision before any timing); the median
step is reported. All ratios are measured in this one run.

Measured on an H200 (random weights, this script, --batch 32 --len 256): full fp32 0.21 s
per step (32k tokens/s), full bf16 0.31-0.68 s, LoRA 0.22-0.26 s: a 135M model leaves the
GPU waiting on Python and kernel launches, so bf16 autocast's extra casts cost more than
its faster products save. PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True halved the bf16
step (0.68 -> 0.31 s). Bigger models or batches are where bf16 pays on a GPU.

On a machine without the embedded model's package (a bare GPU box with only torch and
transformers), use --skeleton DIR: a folder with the model's config and tokenizer (made
here with --save-skeleton DIR, a few MB); the same architecture is then built with random
weights, which changes nothing about speed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

CONFIGS = [("full", "fp32"), ("full", "bf16"), ("lora", "fp32"), ("lora", "bf16")]


def load_student(device: str, skeleton: str | None):
    from synthkit import load_model
    if skeleton is None:
        return load_model(backend="torch", device=device)
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    config = AutoConfig.from_pretrained(skeleton, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(skeleton, local_files_only=True)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    folder = tempfile.mkdtemp(prefix="bench-train-")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return load_model(folder, backend="torch", device=device)


def save_skeleton(folder: str) -> None:
    """The embedded model's config and tokenizer, without its weights (a few MB)."""
    from transformers import AutoConfig, AutoTokenizer
    from synthkit import embedded_model_path
    path = embedded_model_path()
    AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name).save_pretrained(folder)
    print(f"saved the config and tokenizer of {path.name} to {folder}")


def records(n: int) -> list[dict]:
    """Real text: Wikipedia leads, or (where that package is absent, e.g. a bare GPU box)
    the paragraphs of this course's own chapters."""
    try:
        from synthkit.data import wiki_summaries
        docs = [(d["title"], d["text"]) for d in wiki_summaries() if len(d["text"]) > 600]
    except Exception:
        root = Path(__file__).resolve().parent.parent / "chapters"
        paras = [p for f in sorted(root.glob("*.md")) for p in f.read_text().split("\n\n") if len(p) > 400]
        docs = [(f"part {i} of the course", p) for i, p in enumerate(paras)]
    docs = (docs * (n // max(1, len(docs)) + 1))[:n]
    return [{"prompt": f"Write an encyclopedia paragraph about {title}.", "response": text}
            for title, text in docs]


def bench_training(student, recs, args) -> list[dict]:
    from synthkit.train import sft
    rows = []
    initial = {k: v.detach().clone() for k, v in student.model.state_dict().items()}
    # Kernels are picked and memory pools grow on first use of each shape and dtype: on an
    # H200 the first bf16 run's steps took 0.3-1.7 s, later ones 0.13 s. Warm both up first.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for precision in ("bf16", "fp32"):
            sft(student, recs, max_steps=2, batch_size=args.batch, max_len=args.len,
                precision=precision, progress=False, lr=1e-5)
    for kind, precision in CONFIGS:
        if kind == "lora":
            try:
                import peft  # noqa: F401
            except ImportError:
                print(f"{kind:5} {precision}: skipped (peft is not installed)")
                continue
        student.model.load_state_dict(initial)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "examples were cut": on purpose, to --len tokens
            run = sft(student, recs, max_steps=args.steps + 1, batch_size=args.batch, max_len=args.len,
                      lora=kind == "lora", precision=precision, progress=False, lr=1e-5)
        timed = run.step_seconds[1:]
        s = statistics.median(timed)
        tokens = run.tokens / run.steps
        rows.append({"kind": kind, "precision": precision, "device": run.device, "s_per_step": s,
                     "tokens_per_s": tokens / s, "tokens_per_step": tokens, "steps": len(timed)})
        print(f"{kind:5} {precision}: {s:6.2f} s/step, {tokens / s:7.0f} tokens/s "
              f"({tokens:.0f} tokens/step, median of {len(timed)} steps)", flush=True)
    base = next((r for r in rows if r["kind"] == "full" and r["precision"] == "fp32"), None)
    if base:
        for r in rows:
            print(f"  {r['kind']:5} {r['precision']}: {base['s_per_step'] / r['s_per_step']:.2f}x "
                  f"the speed of full fp32")
    return rows


def bench_generation(student, args) -> list[dict]:
    """Batch-32 greedy generation on the torch backend: fp32, bf16 autocast over fp32
    weights (what a model being trained can use), and bf16 weights."""
    prompts = [student.apply_chat_template(f"Tell me one fact about the number {i}.") for i in range(32)]
    rows, texts = [], {}
    saved = {k: v.detach().clone() for k, v in student.model.state_dict().items()}
    old_bs = student.batch_size
    student.batch_size = 32
    try:
        for label in ("fp32", "bf16-autocast", "bf16-weights"):
            student.set_generation_precision("bf16" if label == "bf16-autocast" else "fp32")
            if label == "bf16-weights":
                student.model.to(torch.bfloat16)
                student.dtype = torch.bfloat16
            student.generate(prompts[:2], temperature=0, max_tokens=4, cache=False, progress=False)  # warm-up
            t = time.perf_counter()
            g = student.generate(prompts, temperature=0, max_tokens=args.gen_tokens, cache=False, progress=False)
            dt = time.perf_counter() - t
            texts[label] = g.texts
            rows.append({"generation": label, "tok_per_s": g.stats.completion_tokens / dt, "seconds": dt})
            print(f"generation {label:13}: {g.stats.completion_tokens / dt:6.1f} tok/s "
                  f"(32 sequences x up to {args.gen_tokens} tokens, {dt:.1f} s)", flush=True)
    finally:
        student.batch_size = old_bs
        student.model.float()
        student.model.load_state_dict(saved)
        student.dtype = torch.float32
        student.set_generation_precision("auto")
    for r in rows[1:]:
        same = sum(a == b for a, b in zip(texts["fp32"], texts[r["generation"]]))
        print(f"  {r['generation']}: {r['tok_per_s'] / rows[0]['tok_per_s']:.2f}x fp32's speed; "
              f"greedy texts identical to fp32's: {same}/32")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--len", type=int, default=64)
    p.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    p.add_argument("--generation", action="store_true", help="also time torch-backend generation")
    p.add_argument("--gen-tokens", type=int, default=64)
    p.add_argument("--skeleton", help="config + tokenizer folder: random weights, no embedded model needed")
    p.add_argument("--save-skeleton", metavar="DIR", help="write the embedded model's config + tokenizer and exit")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    if args.save_skeleton:
        return save_skeleton(args.save_skeleton)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    from synthkit.train.loop import cpu_has_fast_bf16
    print(f"CPU has fast bf16: {cpu_has_fast_bf16()}")
    student = load_student(args.device, args.skeleton)
    recs = records(max(64, args.batch * (args.steps + 1)))
    out = {"training": bench_training(student, recs, args)}
    if args.generation:
        out["generation"] = bench_generation(student, args)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
