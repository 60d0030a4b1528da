"""The one training loop of the course, and the pieces it is made of.

`run` trains for every method: SFT (`sft.py`), distillation (`kd.py`), DPO (`dpo.py`)
and tiny-model pretraining (`tiny.py`). A method says only what is its own, in a
`Method`: how a step's micro-batches are made, the loss of one micro-batch (and the
numbers worth logging), and which result fields it keeps. The loop owns the rest, once:
the optimizer and its schedule, precision, gradient accumulation and clipping, resuming
a killed run, out-of-memory errors that name the fix, evaluation, the progress bar and
checkpoints. It reads like the textbook version (nanoGPT's one loop): for each step, for
each micro-batch, loss, backward; clip, step, schedule; log, evaluate, checkpoint.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..bars import bar
from ..errors import SynthkitError
from ..models.torch_backend import save_hf
from .data import IGNORE, plan_batches


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

def decoder_and_head(model):
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
    decoder, head = decoder_and_head(model)
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
    save_hf(tmp, model, tokenizer)
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


# --- planning ------------------------------------------------------------------------------------

def plan_steps(lengths: list[int], batch_size: int, grad_accum: int, epochs: float, max_steps: int | None,
               seed: int, encode: Callable[[list[int]], object]) -> tuple[int, Callable[[int], list]]:
    """(total optimizer steps, step -> that step's `grad_accum` micro-batches) of a run over
    examples of these lengths: `epochs` passes, or `max_steps` (which wins, cycling the data).

    The micro-batches (lists of example indices, similar lengths together: `data.plan_batches`)
    are fixed by the seed up front, so a resumed run trains on exactly the ones it had not
    reached; `encode(indices)` turns one into what the method's loss takes."""
    per_epoch = math.ceil(len(lengths) / batch_size)
    if max_steps is not None:
        total_steps, epochs = max_steps, max_steps * grad_accum / per_epoch
    else:
        total_steps = max(1, math.ceil(epochs * per_epoch / grad_accum))
    plan = plan_batches(lengths, batch_size, math.ceil(epochs), seed)

    def batches(step: int) -> list:
        return [encode(mb) for mb in plan[step * grad_accum:(step + 1) * grad_accum]]
    return total_steps, batches


def warmup_steps(warmup, total_steps: int) -> int:
    """`warmup` as a number of steps (an int, or a float >= 1) or a fraction of the run (a float < 1)."""
    return int(warmup) if isinstance(warmup, int) or warmup >= 1 else round(warmup * total_steps)


# --- the loop --------------------------------------------------------------------------------------

@dataclass
class Method:
    """What one way of training brings to `run`; everything else is the loop's.

    Each optimizer step, the loop asks `batches(step)` for the step's micro-batches and, for
    each, `loss(net, micro_batch, total)` (`net`: what `start` returned). It returns a tensor
    to backpropagate, the micro-batch's loss divided by `total`, the summed `size` of the
    step's micro-batches (taught tokens, pairs), so the gradients that add up over a step are
    those of one big batch however it is split; and {result field: number} to log, each a
    share of the step's value likewise (a tensor is read after the backward pass). The step's
    sums go into the result: list fields get them appended, counters add them up.
    `fields`: what the result keeps of a run, and a checkpoint carries; the loop logs "lrs"
    and "step_seconds" there too when they are among them, and adds up "train_seconds".
    """

    name: str  # the progress bar's label
    start: Callable[[], torch.nn.Module]  # ready the model once the run will train; returns what trains
    batches: Callable[[int], list]
    loss: Callable[[torch.nn.Module, object, float], tuple[torch.Tensor, dict]]
    fields: tuple[str, ...]
    save: Callable[[Path], None]  # write the trained model, and what the run did, to out_dir
    finished: Callable[[Path], bool]  # load a finished run from out_dir; False when there is none
    out_of_memory: Callable[[str], TrainingError]  # device -> the error that names the fix
    size: Callable[[object], float] = lambda micro_batch: 1
    postfix: Callable[[object], str] = lambda result: f"loss {result.losses[-1]:.3f}"  # progress bar text
    evaluate: Callable[[int], object] | None = None  # step -> an entry for the result's `eval_field`
    eval_field: str = "evals"
    stop: Callable[[torch.nn.Module], None] | None = None  # after training, also after an error
    tokenizer: object = None  # saved with each checkpoint


def run(method: Method, result, *, settings: dict, precision: Precision, lr: float, warmup_steps: int,
        weight_decay: float = 0.0, decay_vectors: bool = True, betas=(0.9, 0.999), max_grad_norm: float = 1.0,
        eval_every: int | None = None, out_dir=None, save_every: int | None = None, resume: bool = False,
        progress: bool = True):
    """Train with `method` from result.steps to result.total_steps, filling `result` in; returns it.

    AdamW at peak rate `lr` with `warmup_cosine`'s schedule (weight decay on 1-D weights
    too unless decay_vectors=False), gradients clipped to `max_grad_norm`, autocast by
    `precision`. settings: what must match for a run to be resumed or reused. With
    out_dir: a checkpoint every `save_every` steps (None: about once a minute) and the
    trained model at the end; resume=True goes on from the last checkpoint, or loads a run
    that already finished instead of training. eval_every: method.evaluate every so many
    steps, and at the end."""
    if resume and out_dir is None:
        raise TrainingError("resume needs out_dir=, the folder the checkpoints went to")
    out_dir = Path(out_dir) if out_dir is not None else None
    if resume and method.finished(out_dir):
        return result
    net = method.start()
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = _adamw(params, lr, weight_decay, decay_vectors, betas)
    scheduler = warmup_cosine(optimizer, warmup_steps, result.total_steps)
    if resume and (ckpt := find_checkpoint(out_dir)) is not None:
        restore_checkpoint(ckpt, settings, net, optimizer, scheduler, result, method.fields,
                           lora=hasattr(net, "get_base_model"))
    steps_bar = bar(total=result.total_steps, initial=result.steps, desc=method.name, unit="step") \
        if progress else None
    net.train()
    last_save = time.perf_counter()
    try:
        for step in range(result.steps, result.total_steps):
            t0 = time.perf_counter()
            numbers = _step(method, step, net, params, optimizer, precision, max_grad_norm)
            numbers["lrs"] = scheduler.get_last_lr()[0]
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            numbers["step_seconds"] = numbers["train_seconds"] = time.perf_counter() - t0
            _record(result, numbers, method.fields)
            result.steps = step + 1
            if steps_bar is not None:
                steps_bar.update(1)
                steps_bar.set_postfix_str(method.postfix(result), refresh=False)
            done = result.steps == result.total_steps
            if method.evaluate is not None and (done or (eval_every and result.steps % eval_every == 0)):
                _evaluate(method, net, result)
            due = result.steps % save_every == 0 if save_every else time.perf_counter() - last_save > 60
            if out_dir is not None and not done and due:
                save_checkpoint(out_dir / "checkpoint", net, method.tokenizer,
                                _state(settings, optimizer, scheduler, result, method.fields))
                last_save = time.perf_counter()
    finally:
        if steps_bar is not None:
            steps_bar.close()
        net.eval()
        if method.stop is not None:
            method.stop(net)
    if out_dir is not None:
        method.save(out_dir)
        for name in ("checkpoint", "checkpoint.old", "checkpoint.tmp"):  # no longer needed
            shutil.rmtree(out_dir / name, ignore_errors=True)
    if progress:
        print(result)
    return result


def _adamw(params, lr, weight_decay, decay_vectors, betas) -> torch.optim.AdamW:
    if decay_vectors:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas)
    # nanoGPT's split: decay the matrices only, not biases, norms' gains or other 1-D weights
    return torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                             lr=lr, betas=betas)


def _step(method: Method, step: int, net, params, optimizer, precision: Precision, max_grad_norm) -> dict:
    """One optimizer step: forward and backward over the step's micro-batches (gradients add
    up: gradient accumulation), clip, update. Returns the logged numbers, summed."""
    try:
        micro = method.batches(step)
        total = sum(method.size(b) for b in micro)
        numbers = {}
        for b in micro:
            with precision.autocast():
                loss, logged = method.loss(net, b, total)
            loss.backward()
            for k, v in logged.items():
                numbers[k] = numbers.get(k, 0) + (v.item() if torch.is_tensor(v) else v)
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimizer.step()
        if params[0].device.type == "cuda":
            torch.cuda.synchronize(params[0].device)  # so the step's time is its own
    except Exception as e:
        if is_out_of_memory(e):
            raise method.out_of_memory(str(params[0].device)) from None
        raise
    return numbers


def _record(result, numbers: dict, fields) -> None:
    """A step's numbers into the result, for the fields it keeps: lists grow, counters add up."""
    for k, v in numbers.items():
        if k in fields:
            held = getattr(result, k)
            if isinstance(held, list):
                held.append(v)
            else:
                setattr(result, k, held + v)


def _evaluate(method: Method, net, result) -> None:
    net.eval()
    try:
        entry = method.evaluate(result.steps)
    finally:
        net.train()
    getattr(result, method.eval_field).append(entry)


def _state(settings, optimizer, scheduler, result, fields) -> dict:
    """Everything a resumed run needs besides the weights (see `restore_checkpoint`)."""
    return {"settings": settings, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": rng_state(), "step": result.steps, "total_steps": result.total_steps,
            "result": {k: getattr(result, k) for k in fields}}


# --- models from synthkit.load_model: sft, train_student, dpo --------------------------------------
# They train in place and are saved as an ordinary transformers checkpoint that
# `load_model(out_dir)` opens on either backend, beside SUMMARY_FILE: what the run did.

SUMMARY_FILE = "trainer_state.json"


def torch_model(model, message: str) -> torch.nn.Module:
    """The torch module of a torch-backend model; else a TrainingError saying `message`."""
    net = getattr(model, "model", None)
    if getattr(model, "backend", None) != "torch" or not isinstance(net, torch.nn.Module):
        raise TrainingError(message)
    return net


def fp32_master(model) -> torch.nn.Module:
    """bf16 weights (the torch backend's choice on CUDA) would round most small updates
    away: train fp32 master weights; bf16 speed comes from autocast instead."""
    if any(p.dtype != torch.float32 for p in model.model.parameters()):
        model.model = model.model.float()
        model.dtype = torch.float32
    return model.model


def model_method(model, settings: dict, result, **parts) -> Method:
    """A Method for a model from `load_model`: saved with its tokenizer and SUMMARY_FILE;
    a finished run is read back from there. `parts`: the rest of the Method."""
    return Method(**parts, tokenizer=model.tokenizer,
                  save=lambda out_dir: save_model(out_dir, model, settings, result),
                  finished=lambda out_dir: load_finished(out_dir, SUMMARY_FILE, settings, model.model, result,
                                                         parts["fields"]))


def save_model(out_dir: Path, model, settings: dict, result) -> None:
    """The trained model as a transformers checkpoint, plus what the run did (SUMMARY_FILE)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_hf(out_dir, model.model, model.tokenizer)
    summary = {"settings": settings, "complete": result.steps == result.total_steps, **asdict(result)}
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, default=str))
    result.checkpoint = str(out_dir)


def evaluator(eval_fn, model) -> Callable[[int], dict] | None:
    """eval_fn(model) or eval_fn(model, step) as a Method's evaluate: step -> {"step", "value"}."""
    if eval_fn is None:
        return None

    def evaluate(step: int) -> dict:
        takes_step = len(inspect.signature(eval_fn).parameters) >= 2
        return {"step": step, "value": eval_fn(model, step) if takes_step else eval_fn(model)}
    return evaluate
