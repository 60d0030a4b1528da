"""Direct Preference Optimization: learn from (chosen, rejected) pairs with no reward model.

RLHF fits a reward model to preference pairs and then optimises the policy against it
with a KL leash to the starting model. Rafailov et al. (2023) showed that the best policy
under that objective can be written in closed form, so the reward model can be skipped:
the policy's own log-probability ratio to a frozen *reference* model acts as an
*implicit reward*, r(x, y) = beta * (log pi(y|x) - log ref(y|x)), and the loss is a
logistic regression that the chosen reply should out-score the rejected one (eq. 7):

    loss = -log sigmoid( beta * [(log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l))] )

Everything the loop needs is in this file:

* `sequence_logps`: the summed log-probability of each reply's tokens (prompt tokens
  carry none: the masks of `synthkit.train.data`, as in SFT);
* `reference_logps`: the same numbers under the frozen starting model, computed once
  before training (and saved beside the checkpoints, so a resumed run uses the
  *starting* model's numbers, not its own);
* `dpo_loss`: the equation above, returning the loss and both implicit rewards;
* `dpo`: training on the pairs with the course's one loop (`loop.run`: progress,
  tokens/s, bf16 autocast where the CPU is fast, checkpoints and resume), recording the
  reward margin at each step.

The loss is tested against TRL's implementation (tests/test_dpo.py).
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..bars import bar as progress_bar
from .data import IGNORE, DataError, Example, collate, encode
from .loop import (TrainingError, decoder_and_head, check_settings, find_checkpoint, fp32_master, model_method,
                   out_of_memory_error, pick_precision, plan_steps, run, seed_everything, settings_digest,
                   torch_model, warmup_steps)

# beta 0.1 is the paper's and TRL's default. lr: DPO moves a model further per step than
# SFT does (the loss pushes two sequences apart), so it trains at a smaller rate; 5e-6
# raised the margin on the lab's pairs within a few steps without wrecking neutral replies.
DEFAULT_BETA = 0.1
DEFAULT_LR = 5e-6
REFERENCE_FILE = "reference_logps.pt"
# what a checkpoint or the final summary carries of a DPOResult, besides its steps
RESULT_FIELDS = ("losses", "margins", "chosen_rewards", "rejected_rewards", "accuracies", "lrs", "step_seconds",
                 "tokens", "train_seconds", "reference_seconds")


# --- the loss --------------------------------------------------------------------------

def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor,
             beta: float = DEFAULT_BETA) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DPO loss over a batch of pairs, and each pair's implicit rewards.

    Inputs are summed log-probabilities of whole replies, one per pair. Returns
    (mean loss, chosen_rewards, rejected_rewards), the rewards being beta times the
    policy-to-reference log-ratio of each reply (detach them before logging).
    -logsigmoid is used rather than log(sigmoid(.)), which underflows to -inf for
    margins a trained model reaches easily."""
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return loss, chosen_rewards, rejected_rewards


# --- pairs -> examples -------------------------------------------------------------------

def pair_parts(record, number: int) -> tuple[list[dict], str, str]:
    """(prompt messages, chosen text, rejected text) of a preference record, plain or
    conversational (TRL's two preference formats)."""
    if not isinstance(record, dict) or not all(k in record for k in ("prompt", "chosen", "rejected")):
        keys = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise DataError(f"pair {number} has {keys}; DPO needs 'prompt', 'chosen' and 'rejected' (TRL's "
                        f"preference format, as `synthkit cai` writes it)")
    prompt, chosen, rejected = record["prompt"], record["chosen"], record["rejected"]
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if not isinstance(prompt, list) or not all(isinstance(m, dict) and "role" in m and "content" in m for m in prompt):
        raise DataError(f"pair {number}: 'prompt' must be a string or a list of {{'role', 'content'}} messages")

    def reply(value, name):
        if isinstance(value, list):  # conversational: the assistant turn(s)
            if not all(isinstance(m, dict) and m.get("role") == "assistant" for m in value) or not value:
                raise DataError(f"pair {number}: '{name}' as a list must hold assistant messages only")
            return "".join(m["content"] for m in value)
        if not isinstance(value, str):
            raise DataError(f"pair {number}: '{name}' must be a string or a list of assistant messages")
        return value

    return prompt, reply(chosen, "chosen"), reply(rejected, "rejected")


@dataclass
class Pair:
    chosen: Example
    rejected: Example


def _cut(ex: Example, max_len: int) -> tuple[Example, bool]:
    if len(ex.ids) <= max_len:
        return ex, False
    return Example(ex.ids[:max_len], ex.taught[:max_len]), True


def encode_pairs(model, records, max_len: int) -> list[Pair]:
    """Token ids and reply masks for both sides of every pair.

    A pair is dropped when a side is blank, when both sides are the same text (no
    preference to learn), or when truncation leaves a side with no reply token; long
    replies are cut on the right with one warning. Nothing left is an error."""
    records = list(records)
    if not records:
        raise DataError("no preference pairs were given; pass a non-empty list (or JSONL file)")
    pairs, cut, dropped = [], 0, 0
    for i, r in enumerate(records):
        prompt, chosen, rejected = pair_parts(r, i)
        if not chosen.strip() or not rejected.strip() or chosen.strip() == rejected.strip():
            dropped += 1
            continue
        sides = []
        for text in (chosen, rejected):
            ex, was_cut = _cut(encode(model, {"messages": prompt + [{"role": "assistant", "content": text}]}, i),
                               max_len)
            cut += was_cut
            sides.append(ex)
        if not all(any(ex.taught[1:]) for ex in sides):
            dropped += 1
            continue
        pairs.append(Pair(*sides))
    if cut:
        warnings.warn(f"{cut} replies were longer than max_len={max_len} tokens and were cut on the right; "
                      f"raise max_len to keep them whole", stacklevel=3)
    if dropped and pairs:
        warnings.warn(f"{dropped} of {len(records)} pairs were skipped (a blank side, the same text on both "
                      f"sides, or no reply token left after truncation)", stacklevel=3)
    if not pairs:
        raise DataError(f"none of the {len(records)} pairs can be trained on (blank or identical replies, or "
                        f"prompts that fill max_len={max_len}); check 'chosen'/'rejected' or raise max_len")
    return pairs


def pair_batch(pairs: list[Pair], pad_id: int) -> dict[str, torch.Tensor]:
    """One batch holding the chosen replies first, then the rejected ones (one forward pass)."""
    return collate([p.chosen for p in pairs] + [p.rejected for p in pairs], pad_id)


# --- log-probabilities of replies ----------------------------------------------------------

def sequence_logps(net, batch: dict) -> torch.Tensor:
    """Summed log-probability of the taught (reply) tokens of each row, shape (rows,).

    As in `loop.taught_loss`, the output layer runs only at taught positions: a reply's
    log-probability needs no logits for prompt or padding tokens."""
    decoder, head = decoder_and_head(net)
    hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     use_cache=False).last_hidden_state
    where = batch["labels"] != IGNORE
    logits = head(hidden[where]).float()
    token_logps = -F.cross_entropy(logits, batch["labels"][where], reduction="none")
    rows = where.nonzero()[:, 0]
    return torch.zeros(where.shape[0], device=token_logps.device, dtype=token_logps.dtype).index_add(
        0, rows, token_logps)


@torch.no_grad()
def reference_logps(model, pairs: list[Pair], *, batch_size: int = 8, precision=None,
                    progress: bool = False) -> torch.Tensor:
    """(n_pairs, 2) summed log-probs of (chosen, rejected) under `model` as it is now:
    called once, before training, this is the frozen reference."""
    net = model.model
    was_training = net.training
    net.eval()
    prec = precision or pick_precision(net.device)
    out = []
    starts = range(0, len(pairs), batch_size)
    if progress:
        starts = progress_bar(iterable=starts, desc="reference log-probs", unit="batch")
    try:
        for s in starts:
            chunk = pairs[s:s + batch_size]
            b = {k: v.to(net.device) for k, v in pair_batch(chunk, model.pad_id).items()}
            with prec.autocast():
                logps = sequence_logps(net, b).float().cpu()
            out.append(torch.stack([logps[:len(chunk)], logps[len(chunk):]], dim=1))
    finally:
        net.train(was_training)
    return torch.cat(out)


# --- the loop ----------------------------------------------------------------------------

@dataclass
class DPOResult:
    """What a run did, step by step: `losses[i]`, `margins[i]` (mean chosen minus rejected
    implicit reward), `accuracies[i]` (share of pairs whose chosen out-scores the rejected)
    at step i+1, measured on that step's batch before its update."""

    losses: list[float] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)
    chosen_rewards: list[float] = field(default_factory=list)
    rejected_rewards: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)
    steps: int = 0
    total_steps: int = 0
    pairs: int = 0
    beta: float = DEFAULT_BETA
    tokens: int = 0  # real tokens through the policy (both sides), all steps
    train_seconds: float = 0.0
    reference_seconds: float = 0.0
    seconds: float = 0.0
    precision: str = "fp32"
    device: str = "cpu"
    checkpoint: str | None = None
    resumed_from: int = 0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.train_seconds if self.train_seconds else 0.0

    @property
    def seconds_per_step(self) -> float:
        trained = self.steps - self.resumed_from
        return self.train_seconds / trained if trained else 0.0

    def __str__(self) -> str:
        first, last = (f"{self.margins[0]:+.3f}", f"{self.margins[-1]:+.3f}") if self.margins else ("-", "-")
        return (f"DPO {self.steps}/{self.total_steps} steps on {self.pairs} pairs (beta {self.beta}, "
                f"{self.precision}, {self.device}): margin {first} -> {last}, loss "
                f"{self.losses[-1] if self.losses else float('nan'):.3f}; {self.seconds_per_step:.2f} s/step, "
                f"{self.tokens_per_s:.0f} tokens/s")


def dpo(policy, pairs, *, beta: float = DEFAULT_BETA, epochs: float = 1, max_steps: int | None = None,
        batch_size: int = 4, grad_accum: int = 1, lr: float = DEFAULT_LR, warmup: float = 0.1,
        max_len: int = 384, seed: int = 0, max_grad_norm: float = 1.0, precision: str | None = None,
        out_dir=None, save_every: int | None = None, resume: bool = False,
        progress: bool = True) -> DPOResult:
    """Train `policy` (a torch-backend model) on preference pairs with DPO, in place.

    pairs: dicts with prompt, chosen and rejected, plain strings or conversational
    message lists (TRL's formats; `synthkit.constitutional.to_pairs` makes them). The
    reference is `policy` as it is when called: its log-probs are computed once, first.
    beta: how far the policy may move from the reference (smaller = further).
    batch_size pairs per micro-batch (2 x batch_size sequences per forward pass).
    out_dir / save_every / resume: checkpoints as in `sft`; the reference log-probs are
    saved there too, so a resumed run keeps the starting model's numbers.
    """
    t_start = time.perf_counter()
    net = torch_model(policy, "dpo trains a torch-backend model: policy = load_model(backend='torch') "
                              "(train there, then synthkit.train.to_llamacpp(policy) for fast sampling)")
    if not isinstance(beta, (int, float)) or isinstance(beta, bool) or not math.isfinite(beta) or beta <= 0:
        raise TrainingError(f"beta must be a positive number (0.1 is usual); got {beta!r}")
    check_settings(lr=lr, batch_size=batch_size, grad_accum=grad_accum, epochs=epochs, max_steps=max_steps,
                   max_len=max_len, warmup=warmup, n_ctx=policy.n_ctx)
    if (resume or save_every) and out_dir is None:
        raise TrainingError("resume and save_every need out_dir=, the folder checkpoints go to")

    examples = encode_pairs(policy, pairs, max_len)
    ref = None  # the reference log-probs of every pair, (n_pairs, 2): `start` reads or computes them
    total_steps, batches = plan_steps([len(p.chosen.ids) + len(p.rejected.ids) for p in examples], batch_size,
                                      grad_accum, epochs, max_steps, seed,
                                      lambda mb: (pair_batch([examples[i] for i in mb], policy.pad_id), ref[mb]))
    n_warmup = warmup_steps(warmup, total_steps)
    settings = dict(pairs=settings_digest([[p.chosen.ids, p.chosen.taught, p.rejected.ids, p.rejected.taught]
                                           for p in examples]),
                    beta=beta, batch_size=batch_size, grad_accum=grad_accum, total_steps=total_steps, lr=lr,
                    warmup_steps=n_warmup, max_len=max_len, seed=seed)
    device = net.device
    prec = pick_precision(device, precision)
    result = DPOResult(total_steps=total_steps, pairs=len(examples), beta=beta, precision=prec.name,
                       device=str(device))
    out_dir = Path(out_dir) if out_dir is not None else None

    def start() -> torch.nn.Module:
        nonlocal ref
        net = fp32_master(policy)  # fp32 master weights; bf16 comes from autocast
        ref = _reference(policy, examples, settings, prec, out_dir, batch_size, progress, result)
        seed_everything(seed)
        return net

    method = model_method(
        policy, settings, result, name="dpo", start=start, batches=batches, fields=RESULT_FIELDS,
        size=lambda b: len(b[1]), loss=lambda net, b, n_pairs: _train_step(net, b, n_pairs, beta, device),
        postfix=lambda r: f"loss {r.losses[-1]:.3f}, margin {r.margins[-1]:+.3f}, {r.tokens_per_s:.0f} tok/s",
        out_of_memory=lambda where: out_of_memory_error(batch_size, max_len, grad_accum, where))
    run(method, result, settings=settings, precision=prec, lr=lr, warmup_steps=n_warmup,
        max_grad_norm=max_grad_norm, out_dir=out_dir, save_every=50 if save_every is None else save_every,
        resume=resume, progress=progress)
    result.seconds = time.perf_counter() - t_start
    return result


def _train_step(net, batch, n_pairs: int, beta: float, device) -> tuple[torch.Tensor, dict]:
    """The DPO loss of one micro-batch of an optimizer step's `n_pairs` pairs, weighted by
    its share of them (so the step's gradient is that of one big batch), and what it logs:
    the loss, the mean margin, both rewards and the accuracy, likewise shares of the step's."""
    b, r = batch
    b, r = {k: v.to(device) for k, v in b.items()}, r.to(device)
    logps = sequence_logps(net, b).float()
    k = len(r)
    loss, chosen_r, rejected_r = dpo_loss(logps[:k], logps[k:], r[:, 0], r[:, 1], beta)
    with torch.no_grad():
        logged = {"losses": loss.item() * k, "margins": (chosen_r - rejected_r).sum().item(),
                  "chosen_rewards": chosen_r.sum().item(), "rejected_rewards": rejected_r.sum().item(),
                  "accuracies": (chosen_r > rejected_r).float().sum().item()}
    return loss * k / n_pairs, {**{name: v / n_pairs for name, v in logged.items()},
                                "tokens": int(batch[0]["attention_mask"].sum())}


def _reference(policy, examples, settings, prec, out_dir, batch_size, progress, result) -> torch.Tensor:
    """The reference log-probs: read from out_dir when this run saved them before,
    else computed now (the policy is still the starting model) and saved there."""
    t0 = time.perf_counter()
    path = out_dir / REFERENCE_FILE if out_dir is not None else None
    if path is not None and path.exists():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if saved["pairs"] == settings["pairs"]:
                return saved["logps"]
        except Exception as e:
            raise TrainingError(f"{path} is unreadable ({type(e).__name__}); delete it (and the "
                                f"checkpoint beside it) to start over") from None
        if find_checkpoint(out_dir) is not None:
            raise TrainingError(f"{out_dir} holds a run on other pairs; use another out_dir, or delete it")
    ref = reference_logps(policy, examples, batch_size=max(batch_size, 8), precision=prec, progress=progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"pairs": settings["pairs"], "logps": ref}, path)
    result.reference_seconds = time.perf_counter() - t0
    return ref
