"""Pieces every training loop in the course shares: precision, the loss on taught
tokens only, the learning-rate schedule, checkpoints, and errors that name the fix.

Each piece is a short function so that a loop (`sft.py`) reads top to bottom like the
textbook version: for each step, for each micro-batch, loss, backward; clip, step, schedule.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SynthkitError
from .data import IGNORE


class TrainingError(SynthkitError):
    """Training cannot start or go on; the message names the fix."""


# --- precision ------------------------------------------------------------------------

def cpu_has_fast_bf16() -> bool:
    """True when this CPU multiplies bf16 matrices in hardware (AVX512-BF16 or AMX).

    Without those instructions bf16 is emulated and slower than fp32, so the answer
    must come from the machine, not from a default. Asked of torch first, then of
    /proc/cpuinfo (Linux)."""
    cpu = getattr(torch._C, "_cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(cpu, probe, None)
        if fn is not None:
            with contextlib.suppress(Exception):
                if fn():
                    return True
    with contextlib.suppress(OSError):
        flags = Path("/proc/cpuinfo").read_text().split()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    return False


@dataclass(frozen=True)
class Precision:
    """How matrix products run: "bf16" = autocast to bfloat16 over fp32 master weights
    (the optimizer still updates fp32 numbers, so small updates are not rounded away)."""

    name: str  # "bf16" or "fp32"
    device_type: str  # "cpu" or "cuda"

    def autocast(self):
        if self.name == "bf16":
            return torch.autocast(self.device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


def pick_precision(device, requested: str | None = None) -> Precision:
    """bf16 on CUDA cards that support it and on CPUs with fast bf16; fp32 elsewhere.
    `requested` (or $SYNTHKIT_PRECISION): "auto", "bf16" or "fp32"."""
    device_type = torch.device(device).type
    requested = (requested or os.environ.get("SYNTHKIT_PRECISION") or "auto").lower()
    if requested not in ("auto", "bf16", "fp32"):
        raise TrainingError(f"precision={requested!r}: choose 'auto', 'bf16' or 'fp32'")
    if requested != "auto":
        return Precision(requested, device_type)
    if device_type == "cuda":
        fast = torch.cuda.is_bf16_supported()
    else:
        fast = device_type == "cpu" and cpu_has_fast_bf16()
    return Precision("bf16" if fast else "fp32", device_type)


# --- the loss ---------------------------------------------------------------------------

def _parts(model):
    """(decoder, lm_head) of a causal LM, seen through a peft wrapper if there is one."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else getattr(base, base.base_model_prefix)
    return decoder, base.get_output_embeddings()


def taught_loss(model, batch: dict) -> torch.Tensor:
    """Summed cross-entropy over the taught tokens of a batch (divide by their count).

    A causal LM's usual forward computes logits for every position: (batch x length x
    49,152 vocabulary) numbers, most of which belong to prompt or padding tokens whose
    loss is thrown away. We run the decoder, pick the hidden states at taught positions
    only, and apply the output layer to those: the same loss, a fraction of the work.
    """
    decoder, head = _parts(model)
    hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     use_cache=False).last_hidden_state
    where = batch["labels"] != IGNORE
    logits = head(hidden[where]).float()  # (taught tokens, vocab), softmax in fp32
    return F.cross_entropy(logits, batch["labels"][where], reduction="sum")


# --- learning rate ------------------------------------------------------------------------

def warmup_cosine(optimizer, warmup_steps: int, total_steps: int, floor: float = 0.1):
    """Linear warm-up from ~0 to the peak rate, then a cosine down to `floor` x peak.

    Warm-up keeps the first updates, made with a fresh optimizer's noisy statistics,
    small; the decay lets the last steps settle instead of bouncing."""
    def factor(step: int) -> float:  # step counts optimizer steps already taken
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --- random state --------------------------------------------------------------------------

def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- checkpoints ---------------------------------------------------------------------------
# A checkpoint is a folder: the weights as a normal transformers checkpoint (or, for
# LoRA, the adapter), plus state.pt with everything else a resumed run needs. It is
# written beside the old one and renamed over it, so a kill during a save leaves the
# previous checkpoint intact.

STATE_FILE = "state.pt"


def save_checkpoint(folder: Path, model, tokenizer, state: dict) -> None:
    folder = Path(folder)
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    torch.save(state, tmp / STATE_FILE)
    (tmp / "progress.json").write_text(json.dumps({"step": state["step"], "total_steps": state["total_steps"]}))
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(out_dir: Path) -> Path | None:
    """The latest complete checkpoint under out_dir (a half-renamed one counts too)."""
    for name in ("checkpoint", "checkpoint.old"):
        folder = Path(out_dir) / name
        if (folder / STATE_FILE).exists():
            return folder
    return None


def load_state(folder: Path) -> dict:
    try:
        return torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=False)
    except Exception as e:
        raise TrainingError(f"the checkpoint {folder} is corrupt or unreadable ({type(e).__name__}: "
                            f"{str(e)[:120]}); delete that folder to start over, or resume=False") from None


def load_weights(folder: Path, model, lora: bool) -> None:
    """Put the checkpoint's weights into `model` (the same architecture, built already)."""
    from safetensors.torch import load_file
    name = "adapter_model.safetensors" if lora else "model.safetensors"
    try:
        weights = load_file(str(Path(folder) / name), device="cpu")
    except Exception as e:
        raise TrainingError(f"the checkpoint {folder} has unreadable weights ({type(e).__name__}: "
                            f"{str(e)[:120]}); delete that folder to start over, or resume=False") from None
    if lora:
        from peft import set_peft_model_state_dict
        set_peft_model_state_dict(model, weights)
    else:
        missing, unexpected = model.load_state_dict(weights, strict=False)
        # tied embeddings are saved once: the output layer shares the input embedding
        missing = [k for k in missing if not k.endswith("lm_head.weight")]
        if missing or unexpected:
            raise TrainingError(f"the checkpoint {folder} does not fit this model (missing {missing[:3]}, "
                                f"unexpected {unexpected[:3]}); resume with the model it was trained from")


# --- resuming a run ----------------------------------------------------------------------------

def settings_digest(obj) -> str:
    """A short fingerprint of what a run trains on, kept among its settings."""
    return hashlib.sha256(json.dumps(obj).encode()).hexdigest()[:16]


def same_run(settings: dict, saved: dict, where) -> None:
    """Refuse to resume, or to reuse, a run whose data or settings differ from these."""
    differ = [k for k in settings if settings[k] != saved.get(k)]
    if differ:
        raise TrainingError(f"{where} holds a run with other settings ({', '.join(differ)} differ); "
                            f"resume with the same data and settings, or use another out_dir (or resume=False)")


def restore_checkpoint(folder: Path, settings: dict, net, optimizer, scheduler, result, fields, lora: bool = False) -> None:
    """Put a checkpoint back (weights, optimizer, schedule, random state) and the `fields`
    of `result` measured so far, so a killed run goes on exactly where it stopped."""
    state = load_state(folder)
    same_run(settings, state.get("settings", {}), folder)
    load_weights(folder, net, lora)
    try:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        for k in fields:
            setattr(result, k, state["result"][k])
        result.steps = result.resumed_from = state["step"]
    except (KeyError, ValueError, RuntimeError, TypeError) as e:
        raise TrainingError(f"the checkpoint {folder} is incomplete or corrupt ({e}); delete it "
                            f"to start over, or resume=False") from None


def load_finished(out_dir: Path | None, summary_file: str, settings: dict, model, result, fields) -> bool:
    """A run asked to resume that already finished: load its weights and what it measured
    (`fields` of `result`, plus its steps), train nothing. False when there is none."""
    path = Path(out_dir) / summary_file if out_dir is not None else None
    if path is None or not path.exists():
        return False
    try:
        summary = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise TrainingError(f"{path} is corrupt ({e}); delete {out_dir} to train again") from None
    if not summary.get("complete"):
        return False
    same_run(settings, summary.get("settings", {}), out_dir)
    load_weights(out_dir, model, lora=False)
    try:
        for k in (*fields, "steps"):
            setattr(result, k, summary[k])
    except KeyError as e:
        raise TrainingError(f"{path} lacks {e}; delete {out_dir} to train again") from None
    result.resumed_from, result.checkpoint = 0, str(out_dir)
    return True


# --- errors ------------------------------------------------------------------------------------

def is_out_of_memory(e: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None)
    return (oom is not None and isinstance(e, oom)) or (
        isinstance(e, RuntimeError) and ("out of memory" in str(e) or "can't allocate memory" in str(e)))


def out_of_memory_error(batch_size: int, max_len: int, grad_accum: int, device: str) -> TrainingError:
    return TrainingError(
        f"out of memory on {device} with batch_size={batch_size}, max_len={max_len}: halve batch_size "
        f"and double grad_accum (now {grad_accum}) to keep the same effective batch, or lower max_len, "
        f"or train LoRA adapters (lora=True), which need no optimizer state for the frozen weights")


def check_settings(*, lr, batch_size, grad_accum, epochs, max_steps, max_len, warmup, n_ctx) -> None:
    """Refuse settings that cannot train, before any work starts."""
    def whole(name, value, low=1):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise TrainingError(f"{name} must be a whole number >= {low}; got {value!r}")
    whole("batch_size", batch_size)
    whole("grad_accum", grad_accum)
    whole("max_len", max_len, 2)
    if max_steps is not None:
        whole("max_steps", max_steps)
    if not isinstance(epochs, (int, float)) or isinstance(epochs, bool) or epochs <= 0:
        raise TrainingError(f"epochs must be a positive number; got {epochs!r}")
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or not 0 < lr < 1:
        raise TrainingError(f"lr={lr!r} makes no sense: a learning rate is a small positive number "
                            f"(fine-tuning uses about 1e-5 to 1e-3)")
    if not isinstance(warmup, (int, float)) or warmup < 0:
        raise TrainingError(f"warmup must be a number of steps (int) or a fraction of the run "
                            f"(float < 1); got {warmup!r}")
    if max_len > n_ctx:
        raise TrainingError(f"max_len={max_len} is longer than the model's context of {n_ctx} tokens; "
                            f"use max_len <= {n_ctx}")
