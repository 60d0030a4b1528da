"""Knowledge distillation: the loss, and the loop that trains a student on a teacher.

A teacher's next-token *distribution* says more than its chosen token: after "The
capital of France is", a good teacher puts most of its mass on " Paris" but also ranks
" the" above " banana". Hinton et al. (2015) train the student to match the whole
distribution, softened by a temperature T so that the small probabilities (the "dark
knowledge") are visible to the loss:

    loss = T² · KL( softmax(z_teacher / T) || softmax(z_student / T) )

summed over the vocabulary and averaged over positions. Why T²: the gradient of the
softened KL with respect to the student's logits is (q - p) / T, and once T is large next
to the gaps between the logits, q - p itself shrinks like 1/T, so the gradient falls like
1/T². Multiplying by T² holds its size steady in that limit, so a hard-target term mixed
in keeps its relative weight as T changes. A real student at practical temperatures need
not be in that limit (lab 06 measures it: `synthkit.distill.soft_gradient_norms`), and
with Adam a constant factor on the whole loss nearly cancels anyway, so the learning rate
is tuned per loss (`synthkit.distill.sweep_lr`), not carried over from another T.

Storing the teacher's full distribution for every training token would cost 49,152
numbers per token, so the course keeps the teacher's top k log-probabilities (see
`synthkit.distill.teacher_targets`) and renormalises them over the kept k: the loss is
then the KL from that truncated teacher to the student, with the student's own
probabilities taken over the full vocabulary (so mass the student puts outside the
teacher's top k is pushed back in).

Three ways to use the teacher, compared in lab 06 at the same token budget (soft at T = 1
and at T = 2, every arm at its own learning rate):
- "hard": cross-entropy on the teacher's own answers (sequence-level distillation: SFT
  on teacher text, which is what most people mean by distillation);
- "soft": the KD loss above on the same positions;
- "both": alpha · hard + (1 - alpha) · soft.

The loop is the course's one loop (`loop.run`: the same batches as `sft`, precision,
schedule, checkpoints and resume), with the teacher's targets carried alongside each
example; this file adds only the distillation loss of a micro-batch.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .data import IGNORE, Example, collate
from .loop import (TrainingError, check_settings, decoder_and_head, evaluator, fp32_master, model_method,
                   out_of_memory_error, pick_precision, plan_steps, run, seed_everything, settings_digest, torch_model,
                   warmup_steps)
from .sft import RESULT_FIELDS as SFT_FIELDS
from .sft import SFTResult

MODES = ("hard", "soft", "both")
DEFAULT_TEMPERATURE = 2.0
# what a checkpoint or the final summary carries of a KDResult: SFT's, plus the per-step
# hard losses and KLs this loop also keeps
RESULT_FIELDS = (*SFT_FIELDS, "hard_losses", "kls")
DEFAULT_ALPHA = 0.5  # weight of the hard term in mode "both"
DEFAULT_LR = 3e-4  # measured for a 6-layer student copied from the 30-layer teacher (see lab 06)


# --- the losses -------------------------------------------------------------------------

def _check_temperature(temperature) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or temperature <= 0:
        raise TrainingError(f"temperature must be a positive number (1 = the model's own "
                            f"distribution, 2-4 = softer); got {temperature!r}")
    return float(temperature)


def _kl_rows(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) for each row, summed over the last axis; terms with p = 0 count 0
    (a teacher entry at -inf would otherwise give 0 · inf = nan)."""
    p = log_p.exp()
    return torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(-1)


def _reduce(per_row: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_row.mean()
    if reduction == "sum":
        return per_row.sum()
    if reduction == "none":
        return per_row
    raise ValueError(f"reduction={reduction!r}: choose 'mean', 'sum' or 'none'")


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
            temperature: float = DEFAULT_TEMPERATURE, reduction: str = "mean") -> torch.Tensor:
    """T² · KL(softmax(teacher/T) || softmax(student/T)), one value per row (position),
    summed over the vocabulary (last axis), then averaged over rows ("mean"), summed
    ("sum") or returned per row ("none"). Computed in fp32 whatever the inputs are."""
    t = _check_temperature(temperature)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape")
    log_p = F.log_softmax(teacher_logits.float() / t, dim=-1)
    log_q = F.log_softmax(student_logits.float() / t, dim=-1)
    return t * t * _reduce(_kl_rows(log_p, log_q), reduction)


def top_k_log_probs(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k most likely tokens of each row, best first: (ids, log-probabilities under the
    full distribution). exp(logsumexp) of the returned log-probs is the mass they keep."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= logits.shape[-1]:
        raise ValueError(f"k must be a whole number from 1 to the vocabulary size "
                         f"({logits.shape[-1]}); got {k!r}")
    logp = F.log_softmax(logits.float(), dim=-1)
    values, ids = logp.topk(k, dim=-1)
    return ids, values


def renormalise(logprobs: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the kept tokens renormalised over the kept tokens only
    (their probabilities then sum to 1): subtract their log-sum-exp."""
    return logprobs - torch.logsumexp(logprobs, dim=-1, keepdim=True)


def sparse_kd_loss(student_logits: torch.Tensor, teacher_ids: torch.Tensor, teacher_logprobs: torch.Tensor,
                   temperature: float = DEFAULT_TEMPERATURE, reduction: str = "mean") -> torch.Tensor:
    """`kd_loss` against a teacher known only by its top-k: ids (rows, k) and their
    log-probabilities (rows, k) under the teacher's full distribution (or any shift of
    them: llama.cpp's top-k log-probs work as they are).

    The teacher side is the softened distribution renormalised over the kept k:
    softmax(logprobs / T) (dividing log-probs by T and renormalising is the same as
    dividing logits by T, since log-probs are logits minus a per-row constant). The
    student side is its full-vocabulary log-softmax at T, read at the teacher's ids.
    With k = the vocabulary this is exactly `kd_loss`."""
    t = _check_temperature(temperature)
    if teacher_ids.shape != teacher_logprobs.shape or teacher_ids.shape[:-1] != student_logits.shape[:-1]:
        raise ValueError(f"teacher ids {tuple(teacher_ids.shape)} and log-probs {tuple(teacher_logprobs.shape)} "
                         f"must both be (rows, k) with the student's rows {tuple(student_logits.shape[:-1])}")
    log_p = F.log_softmax(teacher_logprobs.float() / t, dim=-1)
    log_q = F.log_softmax(student_logits.float() / t, dim=-1).gather(-1, teacher_ids.long())
    return t * t * _reduce(_kl_rows(log_p, log_q), reduction)


# --- the teacher's targets, aligned with the training examples ---------------------------

@dataclass
class Targets:
    """Training examples (prompt + teacher answer, with the taught mask) and, for every
    taught position of each, the teacher's top-k next-token ids and log-probabilities.

    Row j of ids[i] / logprobs[i] belongs to the j-th position of example i whose label is
    taught (in order), which is exactly the order `collate` + `labels != IGNORE` picks the
    student's logits in."""

    examples: list[Example]
    ids: list[np.ndarray]  # (taught positions, k) int32 per example
    logprobs: list[np.ndarray]  # (taught positions, k) float32 per example
    k: int
    teacher: str = ""  # the teacher's fingerprint

    def __len__(self) -> int:
        return len(self.examples)

    def subset(self, index) -> "Targets":
        index = list(index)
        return Targets([self.examples[i] for i in index], [self.ids[i] for i in index],
                       [self.logprobs[i] for i in index], self.k, self.teacher)

    def mass(self) -> np.ndarray:
        """Probability mass the kept k tokens hold at each taught position (1.0 = all)."""
        rows = np.concatenate(self.logprobs).astype(np.float64)
        top = rows.max(-1, keepdims=True)
        return np.exp(top[:, 0] + np.log(np.exp(rows - top).sum(-1)))

    @property
    def taught_tokens(self) -> int:
        return int(sum(len(i) for i in self.ids))

    def batch(self, index: list[int], pad_id: int) -> tuple[dict, torch.Tensor, torch.Tensor]:
        b = collate([self.examples[i] for i in index], pad_id)
        ids = torch.from_numpy(np.concatenate([self.ids[i] for i in index]))
        lps = torch.from_numpy(np.concatenate([self.logprobs[i] for i in index]))
        n = int((b["labels"] != IGNORE).sum())
        if n != len(ids):
            raise TrainingError(f"the teacher targets do not line up with the examples ({len(ids)} target "
                                f"rows for {n} taught tokens); recompute them with distill.teacher_targets")
        return b, ids, lps


# --- the loop ---------------------------------------------------------------------------

@dataclass
class KDResult(SFTResult):
    """What a distillation run did: SFTResult's fields (losses = the loss that was trained),
    plus, every step, the hard loss (cross-entropy on the teacher's tokens) and the KL to
    the teacher at T = 1 on that step's batch, whatever the mode, so arms compare."""

    mode: str = "soft"
    temperature: float = DEFAULT_TEMPERATURE
    alpha: float = DEFAULT_ALPHA
    top_k: int = 0
    hard_losses: list[float] = field(default_factory=list)
    kls: list[float] = field(default_factory=list)

    def __str__(self) -> str:
        kl = f"KL to teacher {self.kls[0]:.3f} -> {self.kls[-1]:.3f}" if self.kls else "no steps"
        return (f"KD ({self.mode}, T={self.temperature:g}) {self.steps}/{self.total_steps} steps on "
                f"{self.examples} examples ({self.precision}, {self.device}): {kl}; "
                f"{self.seconds_per_step:.2f} s/step, {self.tokens_per_s:.0f} tokens/s")


def train_student(student, targets: Targets, *, mode: str = "soft", temperature: float = DEFAULT_TEMPERATURE,
                  alpha: float = DEFAULT_ALPHA, epochs: float = 1, max_steps: int | None = None,
                  batch_size: int = 8, grad_accum: int = 1, lr: float = DEFAULT_LR, warmup: float = 0.1,
                  seed: int = 0, weight_decay: float = 0.0, max_grad_norm: float = 1.0,
                  precision: str | None = None, eval_fn=None, eval_every: int | None = None,
                  out_dir=None, save_every: int | None = None, resume: bool = False,
                  progress: bool = True) -> KDResult:
    """Train `student` (a torch-backend model sharing the teacher's tokenizer) on the
    teacher's `targets`, in place. mode: "hard", "soft" or "both" (see the module notes);
    every mode sees the same batches, so arms trained for the same steps saw the same
    tokens. The other arguments are `sft`'s, with the same meaning."""
    t_start = time.perf_counter()
    model = torch_model(student, "train_student trains a torch-backend model: student = synthkit.distill."
                                 "make_student(teacher, 'layers:6') or load_model(path, backend='torch')")
    temperature = _check_kd(student, targets, mode, temperature, alpha)
    lengths = [len(e.ids) for e in targets.examples]
    check_settings(lr=lr, batch_size=batch_size, grad_accum=grad_accum, epochs=epochs, max_steps=max_steps,
                   max_len=max(2, max(lengths)), warmup=warmup, n_ctx=student.n_ctx)
    if (resume or save_every) and out_dir is None:
        raise TrainingError("resume and save_every need out_dir=, the folder checkpoints go to")

    total_steps, batches = plan_steps(lengths, batch_size, grad_accum, epochs, max_steps, seed,
                                      lambda mb: targets.batch(mb, student.pad_id))
    n_warmup = warmup_steps(warmup, total_steps)
    settings = dict(examples=settings_digest([e.ids for e in targets.examples] + [e.taught for e in targets.examples]),
                    teacher=targets.teacher, k=targets.k, mode=mode, temperature=temperature,
                    alpha=alpha if mode == "both" else None, batch_size=batch_size, grad_accum=grad_accum,
                    total_steps=total_steps, lr=lr, warmup_steps=n_warmup, seed=seed,
                    weight_decay=weight_decay, lora=False)
    device = model.device
    prec = pick_precision(device, precision)
    result = KDResult(total_steps=total_steps, examples=len(targets), precision=prec.name, device=str(device),
                      mode=mode, temperature=temperature, alpha=alpha, top_k=targets.k)

    def start() -> torch.nn.Module:
        net = fp32_master(student)  # fp32 master weights, bf16 by autocast
        seed_everything(seed)
        return net

    method = model_method(
        student, settings, result, name=f"distil ({mode})", start=start, batches=batches, fields=RESULT_FIELDS,
        size=lambda b: len(b[1]),  # taught tokens: one row of teacher targets each
        loss=lambda net, b, taught: _kd_loss(net, b, taught, device, mode, temperature, alpha),
        evaluate=evaluator(eval_fn, student),
        postfix=lambda r: f"loss {r.losses[-1]:.3f}, KL {r.kls[-1]:.3f}, {r.tokens_per_s:.0f} tok/s",
        out_of_memory=lambda where: out_of_memory_error(batch_size, max(lengths), grad_accum, where))
    run(method, result, settings=settings, precision=prec, lr=lr, warmup_steps=n_warmup, weight_decay=weight_decay,
        max_grad_norm=max_grad_norm, eval_every=eval_every, out_dir=out_dir,
        save_every=50 if save_every is None else save_every, resume=resume, progress=progress)
    result.seconds = time.perf_counter() - t_start
    return result


def _check_kd(student, targets, mode, temperature, alpha) -> float:
    """Refuse a distillation that cannot run, naming the fix; returns the temperature."""
    if mode not in MODES:
        raise TrainingError(f"mode={mode!r}: choose 'hard' (the teacher's tokens), 'soft' (its "
                            f"distribution) or 'both'")
    temperature = _check_temperature(temperature)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise TrainingError(f"alpha (the hard loss's weight in mode 'both') must be in [0, 1]; got {alpha!r}")
    if not isinstance(targets, Targets) or not len(targets):
        raise TrainingError("targets must be a non-empty synthkit.train.kd.Targets "
                            "(make one with synthkit.distill.teacher_targets)")
    if student.n_vocab < max(int(i.max()) for i in targets.ids if len(i)) + 1:
        raise TrainingError(f"the student's vocabulary ({student.n_vocab}) is smaller than the teacher's: "
                            f"distillation needs a student with the teacher's tokenizer")
    return temperature


def _kd_loss(net, batch, taught: int, device, mode: str, temperature: float, alpha: float):
    """The trained loss of one micro-batch per taught token of its step (`taught` in all),
    and what it logs: that loss, the hard loss (cross-entropy on the teacher's tokens) and
    the KL to the teacher at T=1, likewise per taught token, and the tokens seen."""
    b, ids, lps = batch
    b = {k: v.to(device) for k, v in b.items()}
    ids, lps = ids.to(device), lps.to(device)
    decoder, head = decoder_and_head(net)
    hidden = decoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                     use_cache=False).last_hidden_state
    where = b["labels"] != IGNORE
    logits = head(hidden[where]).float()
    hard = F.cross_entropy(logits, b["labels"][where], reduction="sum")
    soft = sparse_kd_loss(logits, ids, lps, temperature, reduction="sum") if mode != "hard" else None
    loss = hard if mode == "hard" else soft if mode == "soft" else alpha * hard + (1 - alpha) * soft
    with torch.no_grad():
        kl1 = soft if (soft is not None and temperature == 1.0) else \
            sparse_kd_loss(logits.detach(), ids, lps, 1.0, reduction="sum")
    return loss / taught, {"losses": loss.item() / taught, "hard_losses": hard.item() / taught,
                           "kls": kl1.item() / taught, "tokens": int(batch[0]["attention_mask"].sum()),
                           "taught_tokens": len(ids)}
