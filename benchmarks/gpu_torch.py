"""The torch backend on a GPU, in one short call: the chunk loop against continuous batching.

Prepare here (CPU, seconds; writes the teacher's config and tokenizer, no weights, ~3 MB):

    python benchmarks/gpu_torch.py --prepare build/gpu_torch

Check the script end to end on the CPU at toy sizes (about a minute):

    python benchmarks/gpu_torch.py --run build/gpu_torch --dry-run

Then on the CUDA machine (carry `build/gpu_torch`; it needs torch and transformers, and
synthkit from the working tree, which is pure Python):

    python benchmarks/gpu_torch.py --run build/gpu_torch --out $OUT/gpu_torch.json

What it does there: builds SmolLM2-135M's architecture with random weights in bf16 (the
real weights are 270 MB in bf16, too big to carry; the decode cost is the same, only the
texts are noise and rows rarely stop before max_tokens), then generates, sampled
(temperature 0.8, top-p 0.95, top-k 50), one prompt per sequence:

1. 256 sequences x 256 new tokens, batch 256: `decoder="chunks-legacy"` (the first loop:
   fixed chunks, transformers' dynamic cache, one generator per row), then
   `decoder="static"` without CUDA graphs, then with them (the default);
2. 1,024 sequences x 256 new tokens with the default (batch 256, then batch 1,024).

Each line gives tokens, seconds, tok/s and the GPU's mean utilisation (nvidia-smi,
sampled every 200 ms) while it ran. A run is skipped when the time left (--budget-s,
default 420 s) looks too short for it, so the whole check fits a 10-minute call.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # synthkit from this tree

PROMPTS = ["Write a short story about a lighthouse keeper.", "Explain how a bicycle gear works.",
           "List five uses of vinegar at home.", "What makes a good password?",
           "Describe the water cycle to a child.", "Give three tips for learning a language.",
           "Why is the sky blue?", "Summarize the rules of chess in a paragraph."]


def prepare(folder: Path) -> None:
    """The teacher's config and tokenizer, read from the shipped GGUF (no weights loaded)."""
    from transformers import AutoConfig, AutoTokenizer

    from synthkit.models import embedded_model_path

    gguf = Path(embedded_model_path())
    folder.mkdir(parents=True, exist_ok=True)
    AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True).save_pretrained(folder)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True).save_pretrained(folder)
    print(f"wrote {sorted(p.name for p in folder.iterdir())} to {folder}")


class GPUUse:
    """Mean of nvidia-smi's utilization.gpu while the block runs (None without nvidia-smi)."""

    def __enter__(self):
        self.values, self.proc = [], None
        try:
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu",
                                          "--format=csv,noheader,nounits", "-lms", "200"],
                                         stdout=subprocess.PIPE, text=True)
            threading.Thread(target=self._read, daemon=True).start()
        except OSError:
            pass
        return self

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.values.append(float(line.split(",")[0]))
            except ValueError:
                pass

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()
        self.mean = sum(self.values) / len(self.values) if self.values else None


def run(folder: Path, out: str | None, budget_s: float, dry_run: bool = False) -> None:
    """dry_run: the same steps on the CPU at toy sizes (checks the script, measures nothing)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from synthkit.models import Sampling, load_model

    t_start = time.perf_counter()
    device = "cpu" if dry_run else "cuda"
    assert dry_run or torch.cuda.is_available(), "no CUDA device here"
    name = "CPU (dry run)" if dry_run else torch.cuda.get_device_name(0)
    sync = (lambda: None) if dry_run else torch.cuda.synchronize
    scale = 64 if dry_run else 1  # dry run: 4 sequences instead of 256
    print(name, "torch", torch.__version__, flush=True)
    ckpt = Path("/tmp/gpu_torch_ckpt")
    if not (ckpt / "config.json").exists():
        torch.manual_seed(0)
        config = AutoConfig.from_pretrained(folder)
        model = AutoModelForCausalLM.from_config(config).to(torch.bfloat16)
        model.save_pretrained(ckpt)
        from transformers import AutoTokenizer
        AutoTokenizer.from_pretrained(folder).save_pretrained(ckpt)
        del model
    m = load_model(ckpt, backend="torch", device=device, batch_size=256)
    chats = [m.apply_chat_template(p) for p in PROMPTS]
    s = Sampling(temperature=0.8, top_p=0.95, top_k=50, max_tokens=4 if dry_run else 256, seed=0)
    rows = []

    def one(label, n, batch, decoder="auto", graph="1", est_tok_s=2000.0):
        n, batch = max(1, n // scale), max(1, batch // scale)
        left = budget_s - (time.perf_counter() - t_start)
        if n * s.max_tokens / est_tok_s > left:
            print(f"skipped {label}: about {n * s.max_tokens / est_tok_s:.0f} s needed, {left:.0f} s left")
            return
        m.decoder, m.batch_size = decoder, batch
        os.environ["SYNTHKIT_CUDA_GRAPH"] = graph
        prompts = [chats[i % len(chats)] + f" ({i})" for i in range(n)]  # one prompt per sequence
        m.generate(prompts[:batch], sampling=s.replace(max_tokens=4), cache=False, progress=False)  # warm-up
        sync()
        with GPUUse() as use:
            outs = m.generate(prompts, sampling=s, cache=False, progress=False)
            sync()
        st = outs.stats
        row = {"run": label, "sequences": n, "batch": batch, "decoder": decoder, "cuda_graph": graph == "1",
               "tokens": st.completion_tokens, "seconds": round(st.seconds, 2),
               "tok_per_s": round(st.tokens_per_second, 1),
               "gpu_util_mean": None if use.mean is None else round(use.mean, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)

    one("256 x 256, chunk loop (before)", 256, 256, decoder="chunks-legacy", est_tok_s=1500)
    one("256 x 256, static cache, eager", 256, 256, decoder="static", graph="0", est_tok_s=3000)
    one("256 x 256, static cache + CUDA graph", 256, 256, decoder="static", est_tok_s=5000)
    one("1024 x 256, static + graph, batch 256", 1024, 256, decoder="static", est_tok_s=5000)
    one("1024 x 256, static + graph, batch 1024", 1024, 1024, decoder="static", est_tok_s=5000)
    result = {"device": name, "date": time.strftime("%Y-%m-%d"),
              "weights": "SmolLM2-135M architecture, random weights, bf16", "rows": rows}
    if out:
        Path(out).write_text(json.dumps(result, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prepare", type=Path, help="write config + tokenizer here (on the CPU machine)")
    ap.add_argument("--run", type=Path, help="the prepared folder (on the CUDA machine)")
    ap.add_argument("--out", help="JSON results")
    ap.add_argument("--budget-s", type=float, default=420.0)
    ap.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU: check the script")
    a = ap.parse_args()
    if a.prepare:
        prepare(a.prepare)
    elif a.run:
        run(a.run, a.out, a.budget_s, a.dry_run)
    else:
        ap.error("give --prepare FOLDER or --run FOLDER")


if __name__ == "__main__":
    main()
