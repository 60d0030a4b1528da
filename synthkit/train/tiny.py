"""A whole small language model you can read in one sitting: tokenizer, transformer,
pretraining loop, perplexity, sampling, save and load (nanoGPT in spirit).

    from synthkit.train.tiny import pretrain, perplexity, sample
    run = pretrain(texts, tokens=500_000)                # trains a ~1.3M-parameter model
    perplexity(run.model, run.tokenizer, held_out)       # exp(mean loss per token)
    sample(run.model, run.tokenizer, 8, max_tokens=64)   # eight new documents

Labs 07 and 08 train language models *from scratch*, in minutes, on two cores: so the
model is small (1-5M parameters) and so is its vocabulary. The teacher's 49k-token
vocabulary would make the embedding table alone bigger than the whole network, so each
run trains its own byte-level BPE tokenizer on its own text (with `tokenizers`, the
library behind Hugging Face's fast tokenizers): 4,096 tokens by default.

The corpus is one long stream of token ids, documents separated by an end-of-text
token; a training batch is `batch_size` random windows of `context + 1` tokens from it
(inputs, and the same tokens shifted by one as targets). Step s draws its windows from a
generator seeded with (seed, s), so a run killed and resumed sees exactly the batches it
would have seen: no random state needs saving. `tokens=` fixes the token budget
(steps = tokens / (batch_size x context)), which is how the labs compare data at equal
cost.

Training is the course's one loop (`loop.run`), as for every method in the course:
bf16 autocast where the hardware multiplies bf16 fast (CUDA, AVX512-BF16/AMX CPUs), fp32
elsewhere; a checkpoint folder written beside the old one and renamed over it. This file
adds what is pretraining's own: the batches (random windows), the loss (next-token
cross-entropy on every position) and the saved files (`save_tiny`).
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..bars import bar
from .loop import Method, TrainingError, load_weights, pick_precision, run, same_run, seed_everything

EOT = "<|endoftext|>"  # separates documents in the stream; also starts every sample
IGNORE = -100  # target value that carries no loss (padding)
PROVENANCE_FILE = "provenance.json"


# --- the tokenizer -------------------------------------------------------------------------

def train_tokenizer(texts, vocab_size: int = 4096, seed: int = 0):
    """A byte-level BPE tokenizer trained on `texts` (a `tokenizers.Tokenizer`).

    Byte-level: the 256 byte values are the base alphabet, so any string can be encoded
    (no unknown token). BPE then merges the most frequent neighbouring pairs until the
    vocabulary has `vocab_size` entries. Token 0 is the end-of-text token `EOT`.
    BPE training is deterministic; `seed` is recorded with the model for provenance."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    texts = _check_texts(texts, "train_tokenizer")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 300:
        raise TrainingError(f"vocab_size={vocab_size!r}: a byte-level BPE needs at least 300 entries "
                            f"(256 bytes + merges); the labs use 4096")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer, length=len(texts))
    return tokenizer


def _eot_id(tokenizer) -> int:
    eot = tokenizer.token_to_id(EOT)
    if eot is None:
        raise TrainingError(f"this tokenizer has no {EOT!r} token; make one with train_tokenizer(texts)")
    return eot


def _check_texts(texts, who: str) -> list[str]:
    if isinstance(texts, str):
        raise TrainingError(f"{who} takes a list of texts, not one string: wrap it as [text]")
    texts = list(texts)
    bad = next((t for t in texts if not isinstance(t, str)), None)
    if bad is not None:
        raise TrainingError(f"{who} takes strings; got a {type(bad).__name__} "
                            f"(for records, pass [r['text'] for r in records])")
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise TrainingError(f"{who} got no text (an empty list, or only blank strings)")
    return texts


# --- the model --------------------------------------------------------------------------------

@dataclass
class TinyConfig:
    vocab_size: int = 4096
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    context: int = 128
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("vocab_size", "n_layer", "n_head", "d_model", "context"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TrainingError(f"TinyConfig.{name} must be a whole number >= 1; got {value!r}")
        if self.d_model % self.n_head:
            raise TrainingError(f"d_model={self.d_model} must split evenly into n_head={self.n_head} heads")
        if not 0 <= self.dropout < 1:
            raise TrainingError(f"dropout={self.dropout!r} must be in [0, 1)")


class Block(nn.Module):
    """One transformer layer, pre-norm: x + attention(norm(x)), then x + mlp(norm(x)).

    Normalising the input of each branch (not its output) leaves a clean residual path
    from the embedding to the output, which is what lets small models train at a high
    learning rate without warm-up tricks beyond a short ramp."""

    def __init__(self, c: TinyConfig):
        super().__init__()
        self.n_head, self.dropout = c.n_head, c.dropout
        self.ln1, self.ln2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.proj = nn.Linear(c.d_model, c.d_model)
        self.mlp = nn.Sequential(nn.Linear(c.d_model, 4 * c.d_model), nn.GELU(),
                                 nn.Linear(4 * c.d_model, c.d_model), nn.Dropout(c.dropout))

    def forward(self, x, cache=None):
        """cache: (keys, values) of earlier positions, or None. Returns (x, new cache)."""
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if cache is not None:  # decoding: the new position attends to everything before it
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None and T > 1,
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp(self.ln2(x)), (k, v)


class TinyGPT(nn.Module):
    """A decoder-only transformer: token + position embeddings, `n_layer` blocks, a final
    norm, and an output layer that shares its weights with the token embedding (tied:
    the same vector reads a token in and scores it out, saving vocab x d_model weights)."""

    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        self.pos_emb = nn.Embedding(c.context, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight
        self.apply(_init)
        for block in self.blocks:  # GPT-2: scale the residual writes down with depth
            for layer in (block.proj, block.mlp[2]):
                nn.init.normal_(layer.weight, std=0.02 / math.sqrt(2 * c.n_layer))

    @property
    def n_params(self) -> int:
        """Trainable numbers, the tied embedding counted once."""
        return sum(p.numel() for p in self.parameters())

    @property
    def device(self) -> torch.device:
        return self.tok_emb.weight.device

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits (batch, length, vocab) for token ids (batch, length)."""
        return self.extend(ids)[0]

    def extend(self, ids: torch.Tensor, caches=None, start: int = 0):
        """(logits, caches) for `ids` placed at positions start, start+1, ...; `caches`
        (one (keys, values) per block, from an earlier call) holds the positions before
        `start`. Sampling feeds one new token at a time this way."""
        T = ids.shape[1]
        if start + T > self.config.context:
            raise TrainingError(f"{start + T} positions do not fit the model's context of "
                                f"{self.config.context}; cut the input into windows")
        x = self.drop(self.tok_emb(ids) + self.pos_emb(torch.arange(start, start + T, device=ids.device)))
        new = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if caches is None else caches[i])
            new.append(kv)
        return self.lm_head(self.ln_f(x)), new

    def save_pretrained(self, folder) -> None:
        """model.safetensors (the tied output weight stored once) + config.json."""
        from safetensors.torch import save_file
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        weights = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()
                   if k != "lm_head.weight"}
        save_file(weights, str(folder / "model.safetensors"))
        (folder / "config.json").write_text(json.dumps({"model_type": "synthkit-tiny-gpt",
                                                        **asdict(self.config)}, indent=1))


def _init(module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


# --- the corpus as a token stream ----------------------------------------------------------------

def encode_stream(tokenizer, texts) -> torch.Tensor:
    """All texts as one 1-D tensor of ids: doc EOT doc EOT ... (EOT first as well, so the
    first document is predicted from the same start as every other)."""
    eot = _eot_id(tokenizer)
    ids = [eot]
    for enc in tokenizer.encode_batch(list(texts)):
        ids.extend(enc.ids)
        ids.append(eot)
    return torch.tensor(ids, dtype=torch.long)


def batch_at(stream: torch.Tensor, step: int, batch_size: int, context: int, seed: int):
    """The (inputs, targets) of training step `step`: random windows, seeded by (seed, step)."""
    rng = np.random.default_rng([seed, step])
    starts = torch.from_numpy(rng.integers(0, len(stream) - context, size=batch_size))
    idx = starts[:, None] + torch.arange(context + 1)
    window = stream[idx]
    return window[:, :-1], window[:, 1:]


# --- the run ---------------------------------------------------------------------------------------

@dataclass
class TinyRun:
    """What `pretrain` did. `losses[i]` is the mean training loss per token at step i+1;
    `eval_curve` holds (step, perplexity on eval_texts); throughput counts training time only."""

    model: TinyGPT
    tokenizer: object
    config: TinyConfig
    losses: list[float] = field(default_factory=list)
    eval_curve: list[tuple[int, float]] = field(default_factory=list)
    steps: int = 0
    total_steps: int = 0
    batch_size: int = 32
    tokens_seen: int = 0
    train_seconds: float = 0.0
    precision: str = "fp32"
    device: str = "cpu"
    seed: int = 0
    resumed_from: int = 0
    out_dir: str | None = None
    data: dict = field(default_factory=dict)  # what it was trained on: documents, tokens, digest

    @property
    def tokens_per_s(self) -> float:
        trained = (self.steps - self.resumed_from) * self.batch_size * self.config.context
        return trained / self.train_seconds if self.train_seconds else 0.0

    @property
    def seconds_per_step(self) -> float:
        trained = self.steps - self.resumed_from
        return self.train_seconds / trained if trained else 0.0

    @property
    def n_params(self) -> int:
        return self.model.n_params

    def __str__(self) -> str:
        first, last = (f"{self.losses[0]:.3f}", f"{self.losses[-1]:.3f}") if self.losses else ("-", "-")
        ppl = f"; eval ppl {self.eval_curve[-1][1]:.1f}" if self.eval_curve else ""
        return (f"TinyGPT {self.n_params / 1e6:.2f}M params, {self.steps}/{self.total_steps} steps, "
                f"{self.tokens_seen:,} tokens ({self.precision}, {self.device}): loss {first} -> {last}{ppl}; "
                f"{self.tokens_per_s:,.0f} tokens/s")


def pretrain(texts, *, tokenizer=None, config: TinyConfig | None = None, tokens: int | None = None,
             steps: int | None = None, batch_size: int = 32, lr: float = 3e-3, seed: int = 0,
             eval_texts=None, eval_every: int | None = None, out_dir=None, progress: bool = True,
             desc: str | None = None, device=None, precision: str | None = None,
             save_every: int | None = None, source: str | None = None) -> TinyRun:
    """Train a TinyGPT from scratch on `texts` (a list of documents).

    tokenizer: a `train_tokenizer` result (default: train one on `texts`, sized
    config.vocab_size). config: the model's shape (default TinyConfig()).
    tokens / steps: the run's length, as a token budget (steps = ceil(tokens / (batch_size
    x context))) or a step count; neither = one pass over the corpus' tokens.
    lr: AdamW's peak rate, with a 10% warm-up and a cosine decay (3e-3 suits 1-5M params).
    eval_texts / eval_every: perplexity on held-out texts every `eval_every` steps and at the end.
    out_dir: checkpoints every `save_every` steps (default: about once a minute) and the final
    model; calling again with the same data and settings resumes a killed run, or loads a
    finished one without training. device: default CUDA when present. source: words for
    the provenance file ("Wikipedia summaries, en").
    """
    texts = _check_texts(texts, "pretrain")
    if tokens is not None and steps is not None:
        raise TrainingError("give tokens= (a token budget) or steps=, not both")
    for name, value in (("tokens", tokens), ("steps", steps), ("batch_size", batch_size),
                        ("eval_every", eval_every), ("save_every", save_every)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise TrainingError(f"{name} must be a whole number >= 1; got {value!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < 1:
        raise TrainingError(f"lr={lr!r}: a learning rate is a small positive number (tiny models: ~1e-3)")

    config = config or TinyConfig()
    if tokenizer is None:
        tokenizer = train_tokenizer(texts, config.vocab_size, seed)
    if tokenizer.get_vocab_size() > config.vocab_size:
        raise TrainingError(f"the tokenizer has {tokenizer.get_vocab_size()} tokens but the model only "
                            f"{config.vocab_size}: use TinyConfig(vocab_size={tokenizer.get_vocab_size()})")
    stream = encode_stream(tokenizer, texts)
    if len(stream) <= config.context + 1:
        raise TrainingError(f"the corpus is only {len(stream)} tokens; it needs more than one window of "
                            f"context + 1 = {config.context + 1} tokens (add text or lower context)")
    eval_texts = _check_texts(eval_texts, "pretrain(eval_texts=)") if eval_texts is not None else None
    per_step = batch_size * config.context
    total_steps = steps or math.ceil((tokens or len(stream)) / per_step)
    data = {"documents": len(texts), "tokens": len(stream), "characters": sum(map(len, texts)),
            "sha256": _digest(stream), "source": source}
    settings = {"config": asdict(config), "data": data["sha256"], "tokenizer": _tokenizer_digest(tokenizer),
                "total_steps": total_steps, "batch_size": batch_size, "lr": lr, "seed": seed}

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    prec = pick_precision(device, precision)
    seed_everything(seed)
    model = TinyGPT(config).to(device)
    result = TinyRun(model=model, tokenizer=tokenizer, config=config, total_steps=total_steps,
                     batch_size=batch_size, precision=prec.name, device=str(device), seed=seed,
                     out_dir=str(out_dir) if out_dir is not None else None, data=data)
    method = Method(
        name=desc or "pretrain", start=lambda: model, fields=RESULT_FIELDS,
        batches=lambda step: [tuple(t.to(device) for t in batch_at(stream, step, batch_size, config.context, seed))],
        loss=lambda net, xy, total: _next_token_loss(net, xy, total, per_step),
        evaluate=None if eval_texts is None else lambda step: (step, perplexity(model, tokenizer, eval_texts)),
        eval_field="eval_curve", postfix=lambda r: f"loss {r.losses[-1]:.3f}, {r.tokens_per_s:,.0f} tok/s",
        save=lambda folder: save_tiny(result, tokenizer, folder, provenance={
            "settings": settings, "losses": result.losses, "train_seconds": result.train_seconds,
            "resumed_from": result.resumed_from}),
        finished=lambda folder: _load_finished(folder, settings, result),
        out_of_memory=lambda where: TrainingError(
            f"out of memory on {where} with batch_size={batch_size}, context={config.context}: halve "
            f"batch_size (and double tokens' steps) or make the model smaller"))
    return run(method, result, settings=settings, precision=prec, lr=lr, betas=(0.9, 0.95), weight_decay=0.1,
               decay_vectors=False, warmup_steps=min(200, max(1, total_steps // 10)), eval_every=eval_every,
               out_dir=out_dir, save_every=save_every, resume=out_dir is not None, progress=progress)


# what a checkpoint carries of a TinyRun, besides its steps
RESULT_FIELDS = ("losses", "eval_curve", "train_seconds", "tokens_seen")


def _next_token_loss(model, batch, total: int, tokens: int) -> tuple[torch.Tensor, dict]:
    """Mean cross-entropy of every next token in the windows (inputs, targets)."""
    x, y = batch
    loss = F.cross_entropy(model(x).float().flatten(0, 1), y.flatten()) / total
    return loss, {"losses": loss.detach(), "tokens_seen": tokens}


def _bar(total: int, done: int, enabled: bool, desc: str):
    if not enabled:
        return None
    return bar(total=total, initial=done, desc=desc, unit="step")


# --- evaluation ------------------------------------------------------------------------------------

@torch.no_grad()
def token_losses(model: TinyGPT, tokenizer, texts, context: int | None = None,
                 batch_size: int = 64) -> list[np.ndarray]:
    """For each text, the loss (-log p, in nats) of each of its tokens given the ones before.

    A text is read as EOT + its tokens, so every one of its tokens is predicted (the
    first from the document start, as in training). A text longer than the context is
    cut into windows of `context` + 1 tokens that overlap by one: each token is predicted
    once, from the tokens since its window began. Windows are batched and padded; padded
    targets are IGNOREd, so padding changes no number."""
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TrainingError("token_losses takes a list of strings (wrap one text as [text])")
    texts = list(texts)
    context = context or model.config.context
    eot = _eot_id(tokenizer)
    windows, owner = [], []
    for i, enc in enumerate(tokenizer.encode_batch(list(texts))):
        ids = [eot] + enc.ids
        for start in range(0, len(ids) - 1, context):
            windows.append(ids[start:start + context + 1])
            owner.append(i)
    out = [[] for _ in texts]
    device, was_training = model.device, model.training
    model.eval()
    try:
        for b in range(0, len(windows), batch_size):
            chunk = windows[b:b + batch_size]
            width = max(len(w) for w in chunk)
            ids = torch.full((len(chunk), width), eot, dtype=torch.long)
            targets = torch.full((len(chunk), width - 1), IGNORE, dtype=torch.long)
            for r, w in enumerate(chunk):
                ids[r, :len(w)] = torch.tensor(w)
                targets[r, :len(w) - 1] = torch.tensor(w[1:])
            logits = model(ids[:, :-1].to(device)).float()
            loss = F.cross_entropy(logits.flatten(0, 1), targets.to(device).flatten(),
                                   ignore_index=IGNORE, reduction="none").view(len(chunk), -1).cpu()
            for r, w in enumerate(chunk):
                out[owner[b + r]].append(loss[r, :len(w) - 1].numpy())
    finally:
        model.train(was_training)
    return [np.concatenate(parts) if parts else np.zeros(0) for parts in out]


def perplexity(model: TinyGPT, tokenizer, texts, context: int | None = None) -> float:
    """exp(mean loss per token) over every predicted token of every text.

    Pooled over tokens, not averaged over texts: a long text counts for its length.
    Perplexity k reads as "as unsure as a fair choice among k tokens"."""
    losses = np.concatenate(token_losses(model, tokenizer, _check_texts(texts, "perplexity"), context))
    if not len(losses):
        raise TrainingError("perplexity needs at least one token of text")
    return float(np.exp(losses.mean()))


def text_perplexities(model: TinyGPT, tokenizer, texts, context: int | None = None) -> list[float]:
    """Each text's own perplexity (exp of its mean token loss): for ranking or filtering texts."""
    return [float(np.exp(l.mean())) if len(l) else float("nan")
            for l in token_losses(model, tokenizer, list(texts), context)]


# --- sampling --------------------------------------------------------------------------------------

@torch.no_grad()
def sample(model: TinyGPT, tokenizer, n: int, *, max_tokens: int = 128, temperature: float = 1.0,
           top_k: int | None = None, seed: int = 0, prompt: str = "", batch_size: int = 64,
           progress: bool = True) -> list[str]:
    """`n` texts from the model, each started from EOT + `prompt` and ended at the next EOT
    or after `max_tokens` new tokens (the prompt is not repeated in the result).

    Rows are decoded together, `batch_size` at a time, on the model's device, with a
    key/value cache: each new token costs one position's work, not the whole prefix's.
    When a row reaches the context length, the cache restarts from its last half.
    temperature 0 = always the most likely token; top_k keeps the k likeliest."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise TrainingError(f"n must be a whole number >= 0; got {n!r}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise TrainingError(f"max_tokens must be a whole number >= 1; got {max_tokens!r}")
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise TrainingError(f"temperature={temperature!r} must be >= 0 (0 = greedy)")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise TrainingError(f"top_k={top_k!r} must be a whole number >= 1, or None")
    eot, context = _eot_id(tokenizer), model.config.context
    prefix = [eot] + tokenizer.encode(prompt).ids
    if len(prefix) >= context:
        raise TrainingError(f"the prompt is {len(prefix) - 1} tokens; it must be shorter than the "
                            f"context of {context}")
    generator = torch.Generator(device=model.device).manual_seed(seed)
    was_training = model.training
    model.eval()
    texts = []
    bar = _bar(n, 0, progress and n > 0, "sample")
    try:
        for b in range(0, n, batch_size):
            rows = min(batch_size, n - b)
            new = _decode_batch(model, prefix, rows, max_tokens, temperature, top_k, generator, eot)
            for row in new.tolist():
                row = row[:row.index(eot)] if eot in row else row
                texts.append(tokenizer.decode(row))
            if bar is not None:
                bar.update(rows)
    finally:
        model.train(was_training)
        if bar is not None:
            bar.close()
    return texts


def _decode_batch(model, prefix, rows, max_tokens, temperature, top_k, generator, eot) -> torch.Tensor:
    context = model.config.context
    ids = torch.tensor([prefix] * rows, device=model.device)
    logits, caches = model.extend(ids)
    pos = ids.shape[1]
    out, finished = [], torch.zeros(rows, dtype=torch.bool, device=model.device)
    for _ in range(max_tokens):
        nxt = _pick(logits[:, -1].float(), temperature, top_k, generator)
        out.append(nxt)
        finished |= nxt == eot
        if bool(finished.all()):
            break
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        if pos + 1 > context:  # full: start a fresh cache from the recent half
            keep = ids[:, -(context // 2):]
            logits, caches = model.extend(keep)
            pos = keep.shape[1]
        else:
            logits, caches = model.extend(nxt[:, None], caches, start=pos)
            pos += 1
    return torch.stack(out, dim=1).cpu()


def _pick(logits, temperature, top_k, generator) -> torch.Tensor:
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(1)


# --- saving, loading, resuming ------------------------------------------------------------------------

def _digest(stream: torch.Tensor) -> str:
    return hashlib.sha256(stream.numpy().astype(np.int32).tobytes()).hexdigest()[:16]


def _tokenizer_digest(tokenizer) -> str:
    return hashlib.sha256(tokenizer.to_str().encode()).hexdigest()[:16]


def _provenance(run: TinyRun | None, model: TinyGPT, tokenizer, extra: dict | None) -> dict:
    import tokenizers

    from .. import __version__
    info = {"model": "synthkit TinyGPT", "n_params": model.n_params, "config": asdict(model.config),
            "vocab_size": tokenizer.get_vocab_size(), "synthkit": __version__, "torch": torch.__version__,
            "tokenizers": tokenizers.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if run is not None:
        info.update(data=run.data, seed=run.seed, steps=run.steps, total_steps=run.total_steps,
                    batch_size=run.batch_size, tokens_seen=run.tokens_seen, precision=run.precision,
                    device=run.device, tokens_per_s=round(run.tokens_per_s),
                    final_loss=run.losses[-1] if run.losses else None, eval_curve=run.eval_curve)
    return {**info, **(extra or {})}


def save_tiny(run_or_model, tokenizer=None, folder=None, *, provenance: dict | None = None) -> Path:
    """Write a model to `folder`: model.safetensors, config.json, tokenizer.json and
    provenance.json (what data, how many tokens, seed, library versions; plus `provenance`).
    Pass a TinyRun (its tokenizer is used when `tokenizer` is None) or a TinyGPT + tokenizer."""
    if folder is None:
        raise TrainingError("save_tiny needs a folder: save_tiny(run, run.tokenizer, 'my-model')")
    run = run_or_model if isinstance(run_or_model, TinyRun) else None
    model = run.model if run is not None else run_or_model
    tokenizer = tokenizer if tokenizer is not None else getattr(run, "tokenizer", None)
    if not isinstance(model, TinyGPT) or tokenizer is None:
        raise TrainingError("save_tiny saves a TinyRun, or a TinyGPT with its tokenizer")
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / PROVENANCE_FILE).write_text(json.dumps(_provenance(run, model, tokenizer, provenance),
                                                     indent=1, default=str))
    return folder


def load_tiny(folder, device=None) -> tuple[TinyGPT, object]:
    """(model, tokenizer) saved by `save_tiny` or `pretrain(out_dir=...)`; the model in eval mode."""
    from tokenizers import Tokenizer
    folder = Path(folder)
    if not (folder / "config.json").is_file() or not (folder / "tokenizer.json").is_file():
        raise TrainingError(f"{folder} holds no tiny model (config.json and tokenizer.json are missing); "
                            f"make one with save_tiny or `synthkit pretrain DATA --out {folder}`")
    raw = json.loads((folder / "config.json").read_text())
    if raw.pop("model_type", None) != "synthkit-tiny-gpt":
        raise TrainingError(f"{folder}/config.json is not a synthkit tiny model; for a transformers "
                            f"checkpoint use synthkit.load_model({str(folder)!r})")
    model = TinyGPT(TinyConfig(**raw))
    load_weights(folder, model, lora=False)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return model.to(device).eval(), Tokenizer.from_file(str(folder / "tokenizer.json"))


def _load_finished(out_dir: Path, settings: dict, run: TinyRun) -> bool:
    """out_dir holds this very run, finished: load it instead of training again."""
    path = out_dir / PROVENANCE_FILE
    if not path.is_file():
        return False
    try:
        saved = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise TrainingError(f"{path} is corrupt ({e}); delete {out_dir} to train again") from None
    same_run(settings, saved.get("settings", {}), out_dir)
    load_weights(out_dir, run.model, lora=False)
    run.model.eval()
    run.losses, run.eval_curve = saved["losses"], [tuple(p) for p in saved.get("eval_curve") or []]
    run.steps, run.tokens_seen, run.train_seconds = saved["steps"], saved["tokens_seen"], saved["train_seconds"]
    run.resumed_from = saved.get("resumed_from", 0)
    return True
