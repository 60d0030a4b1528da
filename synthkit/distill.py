"""Distillation: a smaller, faster student learns to answer like the teacher.

Distillation is a synthetic-data pipeline: the teacher writes the answers (and, if we
let it, says how sure it was of every token), and the student trains on them. This
module holds the parts of that pipeline that are not the loss or the loop (those are
`synthkit.train.kd`):

1. **prompts** of our own: the course's seed tasks and questions about Wikipedia articles,
   split so that held-out prompts never share an article (or a seed task) with training;
2. **the student**: the teacher's architecture with a few of its layers copied over
   (`make_student(teacher, "layers:6")`, as DistilBERT did), or a small model of the same
   family trained from scratch (`"scratch:6:256"`), or any checkpoint of the same tokenizer;
3. **the teacher's targets**: its greedy (or sampled) answers, which are the hard targets,
   and its top-k next-token log-probabilities at every answer token, the soft targets,
   computed once and cached on disk;
4. **evaluation**: KL to the teacher, perplexity on teacher text and on real Wikipedia
   text, agreement with the teacher's greedy answers, and decoding speed; for a fair
   comparison of losses, a learning-rate sweep scored on validation answers (`sweep_lr`)
   and the soft loss's gradient size across temperatures on a real student
   (`soft_gradient_norms`, what the T² factor does).

    from synthkit import load_model, distill
    from synthkit.train import train_student
    teacher = load_model(backend="torch")
    records = distill.teacher_answers(teacher, distill.prompts(200))
    targets = distill.teacher_targets(teacher, records)          # cached
    student = distill.make_student(teacher, "layers:6")
    run = train_student(student, targets, mode="soft", max_steps=60)
    distill.evaluate(student, teacher, held_out_records)
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import re
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import SynthkitError
from .models.torch_backend import save_hf
from .train.data import IGNORE, collate
from .train.kd import Targets, kd_loss, top_k_log_probs, train_student


class DistillError(SynthkitError, ValueError):
    """A distillation setting or input cannot work; the message names the fix."""


# --- prompts ------------------------------------------------------------------------------
# Questions about an article, in our own words. The teacher is small: short, concrete
# questions get answers worth copying; long open-ended ones get rambling.
TEMPLATES = (
    "In two or three sentences, explain what {title} is.",
    "Give three short facts about {title}.",
    "Why does {title} matter? Answer in a few sentences.",
    "Explain {title} to a ten-year-old in a short paragraph.",
    "What is {title} best known for? Keep the answer brief.",
    "Write one sentence that defines {title}, then one that gives an example.",
    "Name two things that are closely related to {title} and say how.",
    "Summarise what someone should know first about {title}.",
)
HELD_OUT_SHARE = 0.2


def _held_out(key: str) -> bool:
    """A stable coin (by hash, not by position) that puts a fifth of the articles and
    seed tasks in the held-out split, the same on every machine."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 16**8 < HELD_OUT_SHARE


def prompts(n: int, *, split: str = "train", seed: int = 0, seed_tasks: bool = True) -> list[str]:
    """`n` instructions for the teacher to answer: questions about Wikipedia articles
    (one template each, drawn at random) mixed with the course's seed tasks.

    split "train" or "held-out": the two never share an article or a seed task."""
    from .data import seed_tasks as load_seeds, wiki_summaries

    if split not in ("train", "held-out"):
        raise DistillError(f"split={split!r}: choose 'train' or 'held-out'")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise DistillError(f"n must be a whole number >= 1; got {n!r}")
    want_held = split == "held-out"
    rng = random.Random(f"distill-prompts:{seed}:{split}")
    pool = []
    if seed_tasks:
        for t in load_seeds():
            if _held_out(t["id"]) == want_held:
                pool.append(t["instruction"] + (f"\n\n{t['input']}" if t.get("input") else ""))
    titles = [w["title"] for w in wiki_summaries() if _held_out("wiki:" + w["title"]) == want_held]
    rng.shuffle(titles)
    rng.shuffle(pool)
    out, seeds = [], iter(pool)
    for title in titles:
        if len(out) >= n:
            break
        if rng.random() < 0.15:  # about one prompt in seven is a seed task, while they last
            task = next(seeds, None)
            if task is not None:
                out.append(task)
                continue
        out.append(rng.choice(TEMPLATES).format(title=title))
    return out[:n]


def wiki_texts(n: int, *, seed: int = 0) -> list[str]:
    """Lead sections of `n` held-out Wikipedia articles (none of them asked about in the
    training prompts): the real human text for the perplexity check."""
    from .data import wiki_summaries

    texts = [w["text"] for w in wiki_summaries() if _held_out("wiki:" + w["title"])]
    random.Random(f"distill-wiki:{seed}").shuffle(texts)
    return texts[:n]


# --- the student ----------------------------------------------------------------------------
_LAYER = re.compile(r"^(model\.layers\.)(\d+)(\..*)$")


def pick_layers(n: int, k: int) -> list[int]:
    """Which k of a teacher's n layers a student keeps: evenly spaced, first and last
    included (gaps differ by at most one).

    Why both ends: the first layer turns embeddings into what every later layer expects,
    and the last one shapes what the output layer reads; the layers between change the
    residual stream a little each, so skipping evenly loses the least. DistilBERT kept
    every other layer of BERT for the same reason."""
    for name, value, low in (("n", n, 1), ("k", k, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise DistillError(f"{name} must be a whole number >= {low}; got {value!r}")
    if k > n:
        raise DistillError(f"cannot keep {k} of {n} layers; choose k <= {n}")
    if k == 1:
        return [n - 1]
    return [round(i * (n - 1) / (k - 1)) for i in range(k)]


def copy_layers(teacher_state: dict, keep: list[int]) -> dict:
    """The student's weights: every non-layer tensor as it is (embeddings, final norm,
    output layer) and teacher layer keep[j] renamed to student layer j."""
    out = {}
    for name, tensor in teacher_state.items():
        m = _LAYER.match(name)
        if m is None:
            out[name] = tensor
        elif int(m.group(2)) in keep:
            out[f"{m.group(1)}{keep.index(int(m.group(2)))}{m.group(3)}"] = tensor
    return out


def parse_spec(spec: str) -> dict:
    """'layers:6', 'layers:0,10,29', 'scratch:6:256' or a path, as a dict."""
    text = str(spec).strip()
    if text.startswith("layers:"):
        body = text.split(":", 1)[1]
        try:
            values = [int(v) for v in body.split(",") if v.strip()]
        except ValueError:
            values = []
        if not values or any(v < 0 for v in values):
            raise DistillError(f"student {spec!r}: write layers:K (keep K evenly spaced layers) or "
                               f"layers:I,J,... (keep those teacher layers), e.g. layers:6")
        return {"kind": "layers", "count": values[0]} if len(values) == 1 else {"kind": "layers", "keep": values}
    if text.startswith("scratch:"):
        parts = text.split(":")[1:]
        try:
            layers, hidden = (int(parts[0]), int(parts[1])) if len(parts) == 2 else (int(parts[0]), 256)
        except (ValueError, IndexError):
            layers = hidden = 0
        if layers < 1 or hidden < 64 or hidden % 64:
            raise DistillError(f"student {spec!r}: write scratch:LAYERS:HIDDEN with HIDDEN a multiple "
                               f"of 64, e.g. scratch:6:256")
        return {"kind": "scratch", "layers": layers, "hidden": hidden}
    path = Path(text).expanduser()
    if not path.exists():
        raise DistillError(f"student {spec!r} is neither layers:K, layers:I,J,..., scratch:L:H nor an "
                           f"existing checkpoint folder or GGUF file")
    return {"kind": "path", "path": str(path)}


def _teacher_config(teacher):
    config = teacher.model.config
    if getattr(config, "num_hidden_layers", None) is None or not hasattr(teacher.model, "model"):
        raise DistillError(f"{type(teacher.model).__name__} is not a decoder stack this module knows how to "
                           f"shrink (it needs config.num_hidden_layers and model.layers); pass a checkpoint "
                           f"as the student instead")
    return config


def student_config(teacher, spec: dict):
    """The transformers config of a student described by a parsed spec."""
    config = _teacher_config(teacher).to_dict()
    n = config["num_hidden_layers"]
    if spec["kind"] == "layers":
        keep = spec.get("keep") or pick_layers(n, spec["count"])
        bad = [i for i in keep if i >= n]
        if bad or len(set(keep)) != len(keep) or sorted(keep) != keep:
            raise DistillError(f"layers {keep}: give distinct teacher layers in increasing order, each "
                               f"below {n} (the teacher has {n})")
        config["num_hidden_layers"] = len(keep)
        if config.get("layer_types"):
            config["layer_types"] = [config["layer_types"][i] for i in keep]
    else:  # scratch: the teacher's family and tokenizer, smaller in every direction
        heads = spec["hidden"] // 64
        kv = heads // 3 if heads % 3 == 0 else heads
        config.update(num_hidden_layers=spec["layers"], hidden_size=spec["hidden"],
                      intermediate_size=int(round(spec["hidden"] * 8 / 3 / 64)) * 64,
                      num_attention_heads=heads, num_key_value_heads=kv, head_dim=64)
        config.pop("layer_types", None)
    return type(teacher.model.config).from_dict(config)


def make_student(teacher, spec: str = "layers:6", *, folder=None, seed: int = 0):
    """A torch-backend student for `teacher` (a torch-backend model).

    spec: "layers:K" keeps K evenly spaced teacher layers (`pick_layers`) with their
    weights and the teacher's embeddings, final norm and output layer; "layers:I,J,..."
    keeps those layers; "scratch:L:H" is a fresh L-layer model of width H with the
    teacher's tokenizer, randomly initialised; a path loads that checkpoint.
    The student is saved as an ordinary checkpoint (in `folder`, by default in the
    synthkit cache under a name made from the teacher and the spec) and loaded from there,
    so it is a model like any other: generate, train, save, export to llama.cpp."""
    from .cache import cache_dir
    from .models import load_model

    if getattr(teacher, "backend", None) != "torch":
        raise DistillError("the teacher must be a torch-backend model, whose full logits distillation "
                           "reads: teacher = load_model(backend='torch')")
    parsed = parse_spec(spec)
    if parsed["kind"] == "path":
        student = load_model(parsed["path"], backend="torch", device=str(teacher.model.device))
        if student.n_vocab != teacher.n_vocab or student.tokenize("Distil me.") != teacher.tokenize("Distil me."):
            raise DistillError(f"{parsed['path']} does not share the teacher's tokenizer; token-level "
                               f"distillation needs the same vocabulary on both sides")
        return student
    tag = hashlib.sha256(f"{teacher.fingerprint}|{json.dumps(parsed, sort_keys=True)}|{seed}".encode()).hexdigest()[:12]
    folder = Path(folder) if folder is not None else cache_dir() / "students" / f"{_safe(spec)}-{tag}"
    if not (folder / "config.json").exists():
        _build(teacher, parsed, folder, seed)
    student = load_model(folder, backend="torch", device=str(teacher.model.device))
    student.name = f"student {spec} of {teacher.name}"
    student.license = getattr(teacher, "license", "unknown")
    return student


def _build(teacher, parsed: dict, folder: Path, seed: int) -> None:
    from transformers import AutoModelForCausalLM

    config = student_config(teacher, parsed)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    if parsed["kind"] == "layers":
        keep = parsed.get("keep") or pick_layers(teacher.model.config.num_hidden_layers, parsed["count"])
        state = copy_layers(teacher.model.state_dict(), keep)
        missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        missing = [m for m in missing if not m.endswith("lm_head.weight")]
        if missing or unexpected:
            raise DistillError(f"the teacher's weights do not fit the student (missing {missing[:3]}, "
                               f"unexpected {unexpected[:3]})")
        model.config.distilled_from_layers = keep
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    save_hf(tmp, model, teacher.tokenizer)
    if folder.exists():
        import shutil
        shutil.rmtree(folder)
    tmp.rename(folder)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text))[:40]


def size(model) -> dict:
    """Parameters of a torch-backend model, split into the embedding/output matrix (a
    fixed cost: vocabulary x width, shared when tied) and everything else."""
    emb = model.model.get_input_embeddings().weight
    total = sum(p.numel() for p in model.model.parameters())
    return {"params": total, "embedding": emb.numel(), "layers": total - emb.numel(),
            "n_layers": model.model.config.num_hidden_layers, "width": model.model.config.hidden_size}


# --- the teacher's targets -------------------------------------------------------------------
DEFAULT_TOP_K = 64  # see lab 06: at T=1 the top 64 hold ~97% of the teacher's mass on its own answers


def teacher_answers(teacher, prompt_list: list[str], *, max_tokens: int = 128, temperature: float = 0.0,
                    seed: int = 0, keep_truncated: bool = False, progress: bool = True) -> list[dict]:
    """The teacher's answers as training records (prompt, response, provenance): the hard
    targets. temperature 0 is greedy (the teacher's argmax answer, as in most
    distillation); answers cut off by max_tokens are dropped unless keep_truncated, since
    a record teaches the student to stop where it ends."""
    if not prompt_list:
        raise DistillError("no prompts were given; pass a non-empty list (see distill.prompts)")
    gens = teacher.chat(list(prompt_list), temperature=temperature, max_tokens=max_tokens, seed=seed,
                        progress=progress, desc="teacher answers")
    records = []
    for prompt, g in zip(prompt_list, gens):
        if (g.finish_reason != "stop" and not keep_truncated) or not g.text.strip():
            continue
        records.append({"prompt": prompt, "response": g.text, "response_ids": list(g.token_ids),
                        "provenance": {**g.provenance(), "technique": "distillation (teacher answer)",
                                       "license": getattr(teacher, "license", "unknown")}})
    return records


def encode_answers(teacher, records: list[dict], max_len: int = 384) -> list:
    """Training examples from the teacher's answers, with the answer's tokens exactly as
    the teacher generated them (`response_ids`) rather than its text tokenized again.

    Why: a model sometimes spells a word in pieces its tokenizer would not choose, and from
    that spot on the re-tokenized text is a sequence the teacher never produced (in one of
    six short test answers, 5 of 8 answer positions then disagreed with the teacher's own
    top choice). Records without `response_ids` are encoded from their text, as
    `synthkit.train.data` does."""
    from .train.data import Example, encode

    examples = []
    for i, r in enumerate(records):
        ids = r.get("response_ids") if isinstance(r, dict) else None
        if not ids:
            examples.append(encode(teacher, r, i))
            continue
        user = [{"role": "user", "content": r["prompt"]}]
        before = teacher.apply_chat_template(user, add_generation_prompt=True)
        whole = teacher.apply_chat_template(user + [{"role": "assistant", "content": r["response"]}],
                                            add_generation_prompt=False)
        tail = whole[len(before):]
        if not whole.startswith(before) or not tail.startswith(r["response"]):
            examples.append(encode(teacher, r, i))  # a template that rewrites the turn: use the text
            continue
        prompt_ids = teacher.prompt_ids(before)
        end = teacher.tokenize(tail[len(r["response"]):])  # the template's end of turn
        answer = [int(t) for t in ids] + end
        examples.append(Example(prompt_ids + answer, [False] * len(prompt_ids) + [True] * len(answer),
                                empty=not r["response"].strip()))
    kept = [Example(e.ids[:max_len], e.taught[:max_len]) for e in examples if not e.empty]
    kept = [e for e in kept if any(e.taught[1:])]
    if not kept:
        raise DistillError(f"none of the {len(records)} answers has a token to learn from within "
                           f"max_len={max_len}; check the records or raise max_len")
    return kept


def _targets_key(teacher, examples, k: int, precision: str) -> str:
    blob = json.dumps([teacher.fingerprint, k, precision, [e.ids for e in examples], [e.taught for e in examples]])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def teacher_targets(teacher, records: list[dict], *, k: int = DEFAULT_TOP_K, max_len: int = 384,
                    batch_size: int = 8, precision: str = "fp32", cache: bool = True,
                    progress: bool = True) -> Targets:
    """Encode `records` (the teacher's answers) into training examples and compute, once,
    the teacher's top-k next-token log-probabilities at every answer token.

    Cached on disk (by teacher, examples, k and precision), so a second run, or a second
    arm, costs a file read. k=64 keeps about 97% of the mass at T=1 for a few hundred
    bytes per token instead of 49,152 floats."""
    from .cache import cache_dir
    from .train.loop import pick_precision

    examples = encode_answers(teacher, records, max_len)
    path = cache_dir() / "kd-targets" / f"{_targets_key(teacher, examples, k, precision)}.npz"
    if cache and path.exists():
        data = np.load(path)
        cuts = np.cumsum(data["counts"])[:-1]
        return Targets(examples, np.split(data["ids"], cuts), np.split(data["logprobs"], cuts), k,
                       teacher.fingerprint)
    prec = pick_precision(teacher.model.device, precision)
    ids_out, lps_out = [], []
    bar = _bar(len(examples), "teacher top-k", progress)
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            logits, _ = _taught_logits(teacher, collate(chunk, teacher.pad_id), prec)
            ids, lps = top_k_log_probs(logits, k)
            ids, lps = ids.cpu().numpy().astype(np.int32), lps.cpu().numpy().astype(np.float32)
            cuts = np.cumsum([sum(e.taught[1:]) for e in chunk])[:-1]
            ids_out += np.split(ids, cuts)
            lps_out += np.split(lps, cuts)
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, ids=np.concatenate(ids_out), logprobs=np.concatenate(lps_out),
                 counts=np.array([len(i) for i in ids_out]))
        tmp.rename(path)
    return Targets(examples, ids_out, lps_out, k, teacher.fingerprint)


def _taught_logits(model, batch: dict, prec=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits at the taught positions (rows, vocab) in fp32, the taught labels)."""
    import contextlib

    from .train.loop import decoder_and_head

    net = model.model
    device = net.device
    decoder, head = decoder_and_head(net)
    ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    labels = batch["labels"].to(device)
    with prec.autocast() if prec is not None else contextlib.nullcontext():
        hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        where = labels != IGNORE
        logits = head(hidden[where]).float()
    return logits, labels[where]


def top_k_mass(teacher, targets: Targets, ks=(1, 8, 16, 32, 64, 128, 256), temperatures=(1.0, 2.0),
               n_examples: int = 16, batch_size: int = 8) -> dict:
    """How much of the teacher's (softened) distribution its top k tokens hold, averaged
    over the answer tokens of the first `n_examples` examples: {T: {k: mean mass}}.
    Needs the full logits, so it recomputes them for those examples."""
    sums = {t: {k: 0.0 for k in ks} for t in temperatures}
    rows = 0
    with torch.inference_mode():
        examples = targets.examples[:n_examples]
        for start in range(0, len(examples), batch_size):
            logits, _ = _taught_logits(teacher, collate(examples[start:start + batch_size], teacher.pad_id))
            rows += len(logits)
            for t in temperatures:
                top = F.softmax(logits / t, dim=-1).topk(max(ks), dim=-1).values.cumsum(-1)
                for k in ks:
                    sums[t][k] += float(top[:, k - 1].sum())
    return {t: {k: v / rows for k, v in by_k.items()} for t, by_k in sums.items()}


# --- evaluation ----------------------------------------------------------------------------

_TEACHER_MEMO: dict = {}  # one entry: the teacher's log-probs on the last held-out set scored


def _teacher_log_probs(teacher, examples, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The teacher's full log-probabilities (fp16) and labels at the taught positions of
    each batch, computed once per (teacher weights, examples): scoring several students,
    or one student every few steps, then costs only the students' forward passes."""
    key = (teacher.fingerprint, batch_size, hashlib.sha256(json.dumps(
        [[e.ids, e.taught] for e in examples]).encode()).hexdigest())
    if key not in _TEACHER_MEMO:
        _TEACHER_MEMO.clear()
        batches = []
        with torch.inference_mode():
            for start in range(0, len(examples), batch_size):
                logits, labels = _taught_logits(teacher, collate(examples[start:start + batch_size], teacher.pad_id))
                batches.append((F.log_softmax(logits, -1).half(), labels))
        _TEACHER_MEMO[key] = batches
    return _TEACHER_MEMO[key]


def forced_scores(student, teacher, examples, *, batch_size: int = 4) -> dict:
    """Teacher-forced scores on held-out teacher answers: the exact KL(teacher || student)
    over the full vocabulary at T=1 (per token, and per example in `kl_per_example` for
    paired comparisons), the student's perplexity on the teacher's text, and top-1
    agreement (the share of answer tokens where the student's most likely next token is
    the teacher's token). `teacher_entropy` (nats per token) gives the KL a scale: how
    unsure the teacher itself is on these answers. The teacher's side is computed once and
    kept (in fp16) for the next call."""
    examples = examples.examples if isinstance(examples, Targets) else examples
    per_example, total_kl, nll, agree, entropy, n = [], 0.0, 0.0, 0.0, 0.0, 0
    teacher_side = _teacher_log_probs(teacher, examples, batch_size)
    with torch.inference_mode():
        for (log_p, labels), start in zip(teacher_side, range(0, len(examples), batch_size)):
            chunk = examples[start:start + batch_size]
            s_logits, _ = _taught_logits(student, collate(chunk, teacher.pad_id))
            log_p, log_q = log_p.float(), F.log_softmax(s_logits, -1)
            kl = (log_p.exp() * (log_p - log_q)).sum(-1)
            per_example += [float(part.mean()) for part in kl.split([sum(e.taught[1:]) for e in chunk])]
            total_kl += float(kl.sum())
            entropy -= float((log_p.exp() * log_p).sum())
            nll += float(F.nll_loss(log_q, labels, reduction="sum"))
            agree += float((s_logits.argmax(-1) == labels).sum())
            n += len(labels)
    return {"kl": total_kl / n, "ppl_teacher_text": math.exp(nll / n), "top1_agreement": agree / n,
            "tokens": n, "kl_per_example": per_example, "teacher_entropy": entropy / n}


def soft_gradient_norms(student, teacher, examples, temperatures=(1, 2, 4, 8), *, batch_size: int = 4) -> dict:
    """How big the soft loss's gradient is at each temperature on a real student:
    {T: {"with T²": norm, "without T²": norm}}, the norm of d loss / d student logits over
    the taught positions of `examples` (the loss averaged over them, as in training), the
    teacher's side its full distribution softened by T.

    Why measure it: Hinton et al. (2015) multiply the softened KL by T² because its
    gradient falls like 1/T² once T is large next to the gaps between logits. Whether a
    real student at practical temperatures is in that limit is a measurement, and it
    differs from student to student. "without T²" is the same gradient divided by T²
    (exactly what dropping the factor does)."""
    examples = examples.examples if isinstance(examples, Targets) else examples
    teacher_side = _teacher_log_probs(teacher, examples, batch_size)
    squares = {float(t): 0.0 for t in temperatures}
    rows = 0
    for (log_p, _), start in zip(teacher_side, range(0, len(examples), batch_size)):
        with torch.inference_mode():
            s_logits, _ = _taught_logits(student, collate(examples[start:start + batch_size], teacher.pad_id))
        s_logits, log_p = s_logits.clone(), log_p.float()  # out of inference mode, so autograd can use them
        rows += len(s_logits)
        for t in squares:
            z = s_logits.clone().requires_grad_(True)
            kd_loss(z, log_p, t, reduction="sum").backward()  # log-probs are logits up to a per-row shift
            squares[t] += float(z.grad.pow(2).sum())
    return {t: {"with T²": math.sqrt(sq) / rows, "without T²": math.sqrt(sq) / rows / t ** 2}
            for t, sq in squares.items()}


def sweep_lr(student, teacher, targets: Targets, validation, rates, *, max_steps: int, start: dict | None = None,
             **settings) -> dict:
    """Validation KL to the teacher after a short run at each learning rate: {rate: KL}.

    Every run starts from the same weights (`start`, by default the student's weights
    now) and trains `max_steps` steps of `train_student` on `targets` with `settings`
    (mode, temperature, batch size...); it is scored on `validation`, teacher answers
    that neither the runs nor the final comparison train on and that are not the test
    set either, so the test set does not choose the rate it then judges. The student
    is put back to `start` afterwards.

    Why each arm gets its own rate: changing the loss (hard or soft, T, the T² factor)
    changes the size and the direction of its gradient, so at one shared rate a
    comparison of losses is partly a comparison of how well that rate suits each."""
    rates = list(rates)
    if not rates:
        raise DistillError("give at least one learning rate to try")
    start = start if start is not None else {k: v.clone() for k, v in student.model.state_dict().items()}
    scores = {}
    try:
        for lr in rates:
            student.model.load_state_dict(start)
            train_student(student, targets, lr=lr, max_steps=max_steps, progress=False, **settings)
            scores[lr] = forced_scores(student, teacher, validation)["kl"]
    finally:
        student.model.load_state_dict(start)
    return scores


def text_perplexity(model, texts: list[str], *, max_len: int = 128, batch_size: int = 8) -> float:
    """Perplexity of `model` on plain text (every token after the first of each text, the
    texts cut to max_len tokens): how well it still models real human writing."""
    from .train.data import Example

    examples = []
    for t in texts:
        ids = model.prompt_ids(t)[:max_len]
        if len(ids) >= 2:
            examples.append(Example(ids, [True] * len(ids)))
    if not examples:
        raise DistillError("no text long enough to score; pass texts of at least two tokens")
    nll, n = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            logits, labels = _taught_logits(model, collate(examples[start:start + batch_size], model.pad_id))
            nll += float(F.cross_entropy(logits, labels, reduction="sum"))
            n += len(labels)
    return math.exp(nll / n)


def greedy_agreement(student_ids: list[list[int]], teacher_ids: list[list[int]], n: int = 16) -> dict:
    """How closely free-running greedy answers follow the teacher's: the share whose first
    `n` tokens equal the teacher's, and the mean length of the common prefix (in tokens,
    up to n)."""
    if len(student_ids) != len(teacher_ids) or not student_ids:
        raise DistillError("pass one student and one teacher answer per prompt (and at least one)")
    prefixes, exact = [], []
    for s, t in zip(student_ids, teacher_ids):
        m = 0
        while m < min(n, len(s), len(t)) and s[m] == t[m]:
            m += 1
        prefixes.append(m)
        exact.append(list(s[:n]) == list(t[:n]))  # a teacher answer shorter than n must end there too
    return {f"first_{n}_match": float(np.mean(exact)), "common_prefix": float(np.mean(prefixes))}


def decode(model, prompt_list: list[str], *, max_tokens: int = 48, batch_size: int | None = None):
    """Greedy answers to `prompt_list`, never from the cache (so the speed is real):
    (Generations, tokens per second)."""
    old = getattr(model, "batch_size", None)
    if batch_size is not None and old is not None:
        model.batch_size = batch_size
    try:
        gens = model.chat(list(prompt_list), temperature=0.0, max_tokens=max_tokens, cache=False, progress=False)
    finally:
        if old is not None:
            model.batch_size = old
    return gens, gens.stats.tokens_per_second


def decode_speed(model, prompt_list: list[str], *, tokens: int = 32, repeats: int = 3) -> float:
    """Tokens per second of greedy decoding when every prompt decodes exactly `tokens`
    steps (the end of the answer is ignored), prefill not counted; the best of `repeats`.

    Why not `decode`'s tokens/s: there, rows that end early leave the batch and the
    smaller batch does less work per step, so two models' speeds would differ by how
    long their answers are, not only by their size. Same prompts, same steps, same batch
    (the first `model.batch_size` prompts) for every model: the ratio of two speeds is the
    speed-up. The best of a few repeats, because a shared machine only ever slows a run."""
    from .models.torch_backend import _Batch
    if not prompt_list or tokens < 1 or repeats < 1:
        raise ValueError("decode_speed needs at least one prompt, tokens >= 1 and repeats >= 1")
    ids = [model.prompt_ids(model.apply_chat_template(p)) for p in prompt_list[:model.batch_size]]
    best = math.inf
    with torch.inference_mode():
        for _ in range(repeats):
            batch = _Batch(model, ids)
            batch.step(batch.logits.argmax(-1).tolist())  # warm-up step, not timed
            start = time.perf_counter()
            for _ in range(tokens):
                batch.step(batch.logits.argmax(-1).tolist())
            best = min(best, time.perf_counter() - start)
    return len(ids) * tokens / best


def evaluate(student, teacher, held_out: Targets | list, *, prompts_for_agreement: list[str] | None = None,
             teacher_greedy: list[list[int]] | None = None, wiki: list[str] | None = None,
             max_tokens: int = 48, n_match: int = 16, speed: dict | None = None) -> dict:
    """Every score of the distillation table for one student (see the functions above).
    held_out: Targets (or examples) of held-out teacher answers; prompts_for_agreement and
    teacher_greedy: held-out prompts and the teacher's greedy token ids for them; wiki:
    real texts for the perplexity on human writing; speed: `decode_speed`'s tokens and
    repeats (its defaults where None)."""
    examples = held_out.examples if isinstance(held_out, Targets) else held_out
    row = forced_scores(student, teacher, examples)
    if wiki:
        row["ppl_wikipedia"] = text_perplexity(student, wiki)
    if prompts_for_agreement:
        start = time.perf_counter()
        gens, _ = decode(student, prompts_for_agreement, max_tokens=max_tokens)
        row["decode_seconds"] = time.perf_counter() - start
        row["decode_tok_s"] = decode_speed(student, prompts_for_agreement, **(speed or {}))
        if teacher_greedy is not None:
            row.update(greedy_agreement([g.token_ids for g in gens], teacher_greedy, n_match))
    return row


def _bar(total: int, desc: str, enabled: bool):
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="ex", dynamic_ncols=True)
