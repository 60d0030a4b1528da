"""Supervised fine-tuning (SFT): teach a model to give the answers in a dataset.

    from synthkit import load_model
    from synthkit.train import sft
    student = load_model(backend="torch")
    run = sft(student, records, epochs=1, batch_size=8)
    run.losses, run.tokens_per_s        # the student is now trained, in place

The whole loop is `sft` below, in plain PyTorch: for each optimizer step, run the
step's micro-batches forward and backward (gradients add up: gradient accumulation),
clip, take the optimizer step, move the learning rate along its schedule. Loss is
counted on the answer tokens only (`data.py`), and the output layer is applied only
where there is loss (`loop.taught_loss`).

Precision is chosen from the machine (`loop.pick_precision`): bf16 autocast where the
hardware multiplies bf16 fast (CUDA, and CPUs with AVX512-BF16 or AMX), fp32 elsewhere.
The optimizer always updates fp32 weights.

With `out_dir`, a checkpoint (weights, optimizer, schedule, random state, step) is
written every `save_every` steps and the trained model is saved at the end as an
ordinary transformers checkpoint that `load_model(out_dir)` opens on either backend.
`resume=True` continues a killed run from its last checkpoint, on exactly the batches
it had not trained on yet.
"""
from __future__ import annotations

import inspect
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..bars import bar
from .data import IGNORE, collate, encode_all, plan_batches
from .loop import (TrainingError, check_settings, find_checkpoint, is_out_of_memory, load_finished,
                   out_of_memory_error, pick_precision, rng_state, save_checkpoint,
                   restore_checkpoint, seed_everything, settings_digest, taught_loss, warmup_cosine)

# Full fine-tuning or LoRA (r=16), measured with SmolLM2-135M:
# - speed per step (benchmarks/bench_train.py, 16 x 64 tokens, 2 cores of an AVX512-BF16 /
#   AMX Xeon, bf16 autocast): full 2.40 s, LoRA 1.59 s (fp32: 3.83 s and 2.54 s);
# - learning per step (64 word problems, batch 8, 10 steps, held-out answer loss from
#   2.26): full 0.49 (lr 5e-5 or 1e-4), LoRA 0.54 at lr 1e-3 but 0.90 at lr 2e-4.
# LoRA is ~1.5x faster per step and a little behind per step; full fine-tuning stays the
# default (no extra package, the labs' runs are a few dozen steps, so seconds apart);
# for long CPU runs, lora=True with its default lr of 1e-3 is the better use of time.
DEFAULT_LR = {False: 5e-5, True: 1e-3}  # full fine-tuning / LoRA adapters
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SUMMARY_FILE = "trainer_state.json"


@dataclass
class SFTResult:
    """What a run did. `losses[i]` is the mean loss per answer token at step i+1;
    throughput counts real (non-padding) tokens and training time only (no evals, no saves)."""

    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)  # training time of each step
    evals: list[dict] = field(default_factory=list)  # {"step": s, "value": eval_fn's return}
    steps: int = 0
    total_steps: int = 0
    examples: int = 0
    tokens: int = 0  # real tokens seen (prompt + answer), all steps
    taught_tokens: int = 0  # of which carried loss
    train_seconds: float = 0.0
    seconds: float = 0.0  # wall time of the call, evals and saves included
    precision: str = "fp32"
    lora: bool = False
    device: str = "cpu"
    checkpoint: str | None = None  # the saved model folder, when out_dir was given
    resumed_from: int = 0  # the step a resumed run started at

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.train_seconds if self.train_seconds else 0.0

    @property
    def seconds_per_step(self) -> float:
        trained = self.steps - self.resumed_from
        return self.train_seconds / trained if trained else 0.0

    def __str__(self) -> str:
        first, last = (f"{self.losses[0]:.3f}", f"{self.losses[-1]:.3f}") if self.losses else ("-", "-")
        return (f"SFT {self.steps}/{self.total_steps} steps on {self.examples} examples "
                f"({'LoRA' if self.lora else 'full'}, {self.precision}, {self.device}): loss {first} -> {last}; "
                f"{self.seconds_per_step:.2f} s/step, {self.tokens_per_s:.0f} tokens/s")


def sft(student, records, *, epochs: float = 1, max_steps: int | None = None, batch_size: int = 8,
        grad_accum: int = 1, lr: float | None = None, warmup: float = 0.1, max_len: int = 256,
        seed: int = 0, lora: bool = False, lora_r: int = 16, weight_decay: float = 0.0,
        max_grad_norm: float = 1.0, precision: str | None = None, eval_fn=None,
        eval_every: int | None = None, out_dir=None, save_every: int | None = None,
        resume: bool = False, progress: bool = True) -> SFTResult:
    """Fine-tune `student` (a torch-backend model) on `records`, in place.

    records: dicts with "messages", or "prompt" + "response"/"completion", or Alpaca
    "instruction" (+ "input") + "output"; see `synthkit.train.data`.
    epochs / max_steps: run length (max_steps, when given, wins and cycles the data).
    batch_size x grad_accum: examples per optimizer step. lr: peak learning rate (default
    5e-5 full, 1e-3 LoRA); warmup: steps (int) or a fraction of the run (float < 1).
    max_len: longer examples are cut on the right, with a warning. lora: train rank-`lora_r`
    adapters (peft) and merge them into the weights at the end.
    eval_fn(student) or eval_fn(student, step): called every `eval_every` steps and at the
    end; its returns land in `.evals`. out_dir / save_every / resume: see the module notes.
    """
    t_start = time.perf_counter()
    model = getattr(student, "model", None)
    if getattr(student, "backend", None) != "torch" or not isinstance(model, torch.nn.Module):
        raise TrainingError("sft trains a torch-backend model: student = load_model(backend='torch') "
                            "(train there, then synthkit.train.to_llamacpp(student) for fast sampling)")
    lr = DEFAULT_LR[bool(lora)] if lr is None else lr
    check_settings(lr=lr, batch_size=batch_size, grad_accum=grad_accum, epochs=epochs,
                   max_steps=max_steps, max_len=max_len, warmup=warmup, n_ctx=student.n_ctx)
    if eval_every is not None and (not isinstance(eval_every, int) or eval_every < 1):
        raise TrainingError(f"eval_every must be a whole number of steps >= 1; got {eval_every!r}")
    if (resume or save_every) and out_dir is None:
        raise TrainingError("resume and save_every need out_dir=, the folder checkpoints go to")

    examples = encode_all(student, records, max_len)
    lengths = [len(e.ids) for e in examples]
    per_epoch = math.ceil(len(examples) / batch_size)
    if max_steps is not None:
        total_steps = max_steps
        plan = plan_batches(lengths, batch_size, math.ceil(max_steps * grad_accum / per_epoch), seed)
    else:
        total_steps = max(1, math.ceil(epochs * per_epoch / grad_accum))
        plan = plan_batches(lengths, batch_size, math.ceil(epochs), seed)
    warmup_steps = int(warmup) if isinstance(warmup, int) or warmup >= 1 else round(warmup * total_steps)
    settings = dict(examples=settings_digest([e.ids for e in examples] + [e.taught for e in examples]),
                    batch_size=batch_size, grad_accum=grad_accum, total_steps=total_steps, lr=lr,
                    warmup_steps=warmup_steps, max_len=max_len, seed=seed, lora=bool(lora),
                    lora_r=lora_r if lora else None, weight_decay=weight_decay)

    device = model.device
    prec = pick_precision(device, precision)
    result = SFTResult(total_steps=total_steps, examples=len(examples), precision=prec.name,
                       lora=bool(lora), device=str(device))
    out_dir = Path(out_dir) if out_dir is not None else None
    if resume and load_finished(out_dir, SUMMARY_FILE, settings, student.model, result, RESULT_FIELDS):
        result.seconds = time.perf_counter() - t_start
        return result

    if any(p.dtype != torch.float32 for p in model.parameters()):
        # bf16 weights (the torch backend's choice on CUDA) would round most small updates
        # away: train fp32 master weights; bf16 speed comes from autocast instead
        student.model = model = model.float()
        student.dtype = torch.float32
    seed_everything(seed)
    net = _with_lora(model, lora_r) if lora else model
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    scheduler = warmup_cosine(optimizer, warmup_steps, total_steps)
    if resume and (ckpt := find_checkpoint(out_dir)) is not None:
        restore_checkpoint(ckpt, settings, net, optimizer, scheduler, result, RESULT_FIELDS, lora=bool(lora))
    if save_every is None and out_dir is not None:
        save_every = 50

    bar = _bar(total_steps, result.steps, progress)
    net.train()
    try:
        for step in range(result.steps, total_steps):
            t0 = time.perf_counter()
            batches = [collate([examples[i] for i in mb], student.pad_id)
                       for mb in plan[step * grad_accum:(step + 1) * grad_accum]]
            try:
                loss, tokens, taught = _train_step(net, batches, prec, device)
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
                optimizer.step()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)  # so the step's time is its own
            except Exception as e:
                if is_out_of_memory(e):
                    raise out_of_memory_error(batch_size, max_len, grad_accum, str(device)) from None
                raise
            result.lrs.append(scheduler.get_last_lr()[0])
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            result.losses.append(loss)
            result.steps, result.tokens = step + 1, result.tokens + tokens
            result.taught_tokens += taught
            result.step_seconds.append(time.perf_counter() - t0)
            result.train_seconds += result.step_seconds[-1]
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"loss {loss:.3f}, {result.tokens_per_s:.0f} tok/s", refresh=False)
            done = result.steps == total_steps
            if eval_fn is not None and (done or (eval_every and result.steps % eval_every == 0)):
                _evaluate(eval_fn, student, net, result)
            if out_dir is not None and not done and result.steps % save_every == 0:
                save_checkpoint(out_dir / "checkpoint", net, student.tokenizer,
                                _state(settings, optimizer, scheduler, result))
    finally:
        if bar is not None:
            bar.close()
        net.eval()
        if lora:  # fold the adapters into the weights: the student stays a plain model
            student.model = net.merge_and_unload()
            student.model.requires_grad_(True)  # peft froze the base weights; unfreeze them
    if out_dir is not None:
        result.checkpoint = str(_save_final(out_dir, student, settings, result))
    result.seconds = time.perf_counter() - t_start
    if progress:
        print(result)
    return result


def _train_step(net, batches, prec, device) -> tuple[float, int, int]:
    """Forward and backward over one optimizer step's micro-batches.

    Each micro-batch's summed loss is divided by the taught tokens of the *whole* step,
    so the accumulated gradient equals that of one big batch, however the tokens fall
    into micro-batches."""
    taught = sum(int((b["labels"] != IGNORE).sum()) for b in batches)
    total, tokens = 0.0, 0
    for b in batches:
        b = {k: v.to(device) for k, v in b.items()}
        with prec.autocast():
            loss = taught_loss(net, b) / taught
        loss.backward()
        total += loss.item()
        tokens += int(b["attention_mask"].sum())
    return total, tokens, taught


def _evaluate(eval_fn, student, net, result: SFTResult) -> None:
    net.eval()
    try:
        takes_step = len(inspect.signature(eval_fn).parameters) >= 2
        value = eval_fn(student, result.steps) if takes_step else eval_fn(student)
    finally:
        net.train()
    result.evals.append({"step": result.steps, "value": value})


def _with_lora(model, r: int):
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise TrainingError("lora=True needs the peft package: pip install peft (or synthkit[lora])") from None
    config = LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules=LORA_TARGETS,
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def _bar(total: int, done: int, enabled: bool):
    if not enabled:
        return None
    return bar(total=total, initial=done, desc="sft", unit="step")


# --- saving and resuming ----------------------------------------------------------------------

def _state(settings, optimizer, scheduler, result: SFTResult) -> dict:
    return {"settings": settings, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": rng_state(), "step": result.steps, "total_steps": result.total_steps,
            "result": asdict(result)}


# what a checkpoint or the final summary carries of an SFTResult, besides its steps
RESULT_FIELDS = ("losses", "lrs", "step_seconds", "evals", "tokens", "taught_tokens", "train_seconds")


def _save_final(out_dir: Path, student, settings, result: SFTResult) -> Path:
    """The trained model as an ordinary transformers checkpoint, plus what the run did;
    the resume checkpoint is no longer needed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    student.model.save_pretrained(out_dir)
    student.tokenizer.save_pretrained(out_dir)
    summary = {"settings": settings, "complete": result.steps == result.total_steps, **asdict(result)}
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, default=str))
    for name in ("checkpoint", "checkpoint.old", "checkpoint.tmp"):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    return out_dir
