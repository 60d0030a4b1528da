"""Supervised fine-tuning (SFT): teach a model to give the answers in a dataset.

    from synthkit import load_model
    from synthkit.train import sft
    student = load_model(backend="torch")
    run = sft(student, records, epochs=1, batch_size=8)
    run.losses, run.tokens_per_s        # the student is now trained, in place

What is SFT's own is here: its batches (prompt + answer, `data.py`) and its loss,
counted on the answer tokens only, with the output layer applied only where there is
loss (`loop.taught_loss`). The loop is the course's one loop, `loop.run`, in plain
PyTorch: for each optimizer step, run the step's micro-batches forward and backward
(gradients add up: gradient accumulation), clip, take the optimizer step, move the
learning rate along its schedule.

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

import time
from dataclasses import dataclass, field

import torch

from .data import IGNORE, collate, encode_all
from .loop import (TrainingError, check_settings, evaluator, fp32_master, model_method, out_of_memory_error,
                   pick_precision, plan_steps, run, seed_everything, settings_digest, taught_loss,
                   torch_model, warmup_steps)

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
    model = torch_model(student, "sft trains a torch-backend model: student = load_model(backend='torch') "
                                 "(train there, then synthkit.train.to_llamacpp(student) for fast sampling)")
    lr = DEFAULT_LR[bool(lora)] if lr is None else lr
    check_settings(lr=lr, batch_size=batch_size, grad_accum=grad_accum, epochs=epochs,
                   max_steps=max_steps, max_len=max_len, warmup=warmup, n_ctx=student.n_ctx)
    if eval_every is not None and (not isinstance(eval_every, int) or eval_every < 1):
        raise TrainingError(f"eval_every must be a whole number of steps >= 1; got {eval_every!r}")
    if (resume or save_every) and out_dir is None:
        raise TrainingError("resume and save_every need out_dir=, the folder checkpoints go to")

    examples = encode_all(student, records, max_len)
    total_steps, batches = plan_steps([len(e.ids) for e in examples], batch_size, grad_accum, epochs,
                                      max_steps, seed, lambda mb: collate([examples[i] for i in mb], student.pad_id))
    n_warmup = warmup_steps(warmup, total_steps)
    settings = dict(examples=settings_digest([e.ids for e in examples] + [e.taught for e in examples]),
                    batch_size=batch_size, grad_accum=grad_accum, total_steps=total_steps, lr=lr,
                    warmup_steps=n_warmup, max_len=max_len, seed=seed, lora=bool(lora),
                    lora_r=lora_r if lora else None, weight_decay=weight_decay)
    device = model.device
    prec = pick_precision(device, precision)
    result = SFTResult(total_steps=total_steps, examples=len(examples), precision=prec.name,
                       lora=bool(lora), device=str(device))

    def start() -> torch.nn.Module:
        net = fp32_master(student)
        seed_everything(seed)
        return _with_lora(net, lora_r) if lora else net

    def stop(net) -> None:
        if lora:  # fold the adapters into the weights: the student stays a plain model
            student.model = net.merge_and_unload()
            student.model.requires_grad_(True)  # peft froze the base weights; unfreeze them

    method = model_method(
        student, settings, result, name="sft", start=start, stop=stop, batches=batches, fields=RESULT_FIELDS,
        size=lambda b: int((b["labels"] != IGNORE).sum()),
        loss=lambda net, b, taught: _loss(net, b, taught, device),
        evaluate=evaluator(eval_fn, student),
        postfix=lambda r: f"loss {r.losses[-1]:.3f}, {r.tokens_per_s:.0f} tok/s",
        out_of_memory=lambda where: out_of_memory_error(batch_size, max_len, grad_accum, where))
    run(method, result, settings=settings, precision=prec, lr=lr, warmup_steps=n_warmup, weight_decay=weight_decay,
        max_grad_norm=max_grad_norm, eval_every=eval_every, out_dir=out_dir,
        save_every=50 if save_every is None else save_every, resume=resume, progress=progress)
    result.seconds = time.perf_counter() - t_start
    return result


def _loss(net, batch: dict, taught: int, device) -> tuple[torch.Tensor, dict]:
    """The loss per taught token of the step (`taught` of them in all its micro-batches),
    on this micro-batch's taught tokens, and what it logs."""
    loss = taught_loss(net, {k: v.to(device) for k, v in batch.items()}) / taught
    return loss, {"losses": loss.detach(), "tokens": int(batch["attention_mask"].sum()),
                  "taught_tokens": int((batch["labels"] != IGNORE).sum())}


def _with_lora(model, r: int):
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise TrainingError("lora=True needs the peft package: pip install peft (or synthkit[lora])") from None
    config = LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules=LORA_TARGETS,
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


# what a checkpoint or the final summary carries of an SFTResult, besides its steps
RESULT_FIELDS = ("losses", "lrs", "step_seconds", "evals", "tokens", "taught_tokens", "train_seconds")
