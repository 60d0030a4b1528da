"""One generation interface; the backends only know how to stream finished sequences.

`Model.generate` does everything that is the same for every backend: validate the
sampling parameters, look up the cache, tokenize and check prompt lengths before any
work starts, show progress and tokens/s, and write each finished sequence to the cache
the moment it finishes. A backend implements `_stream(requests, sampling)`, which yields
sequences as they finish, in any order.
"""
from __future__ import annotations

import hashlib
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator, Sequence

from ..bars import bar
from ..cache import make_key, resolve_cache
from ..errors import PromptTooLongError
from .chat import render_chat
from .sampling import Sampling, sequence_seed


@dataclass
class Generation:
    """One generated sequence and where it came from.

    `text` is cut before the first stop string; `token_ids`, `completion_tokens` and
    `logprobs` describe everything that was generated, the stop string's tokens included.
    """

    prompt: str
    text: str
    finish_reason: str  # "stop" (end-of-turn or a stop string), "length", "context"
    prompt_tokens: int
    completion_tokens: int
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[dict] | None = None  # per token: {"token", "logprob", "top": [[text, logprob], ...]}
    index: int = 0  # sample number for this prompt (0..n-1)
    seed: int = 0  # the run seed; the sequence's own seed is derived from it
    model: str = ""
    backend: str = ""
    params: dict = field(default_factory=dict)
    cached: bool = False

    def provenance(self) -> dict:
        """What a dataset record should carry about how this text was made."""
        return {"model": self.model, "backend": self.backend, "params": self.params,
                "seed": self.seed, "index": self.index}

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Request:
    """What a backend is asked to generate: one sequence."""

    slot: int
    prompt: str
    prompt_ids: list[int]
    seed: int  # this sequence's own seed
    index: int


@dataclass
class GenerationStats:
    sequences: int = 0
    from_cache: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (f"{self.sequences} sequences ({self.from_cache} from cache): "
                f"{self.completion_tokens} new tokens in {self.seconds:.2f} s = "
                f"{self.tokens_per_second:.1f} tok/s")


class Generations(list):
    """A list of Generation, plus the stats of the call that made it."""

    stats: GenerationStats

    @property
    def texts(self) -> list[str]:
        return [g.text for g in self]


class Model:
    """Base class: see `synthkit.load_model` for how to get one."""

    backend = "?"
    name = "?"
    path = ""
    device = "cpu"
    license = "unknown"
    n_ctx = 2048
    chat_template: str | None = None
    bos_token = ""
    eos_token = ""
    add_bos = False

    # --- what a backend provides -------------------------------------------------
    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        raise NotImplementedError

    def detokenize(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def _stream(self, requests: list[Request], sampling: Sampling) -> Iterator[tuple[Request, Generation]]:
        raise NotImplementedError

    def logits(self, prompts: list[str]):
        """Full next-token logits after each prompt: array (len(prompts), n_vocab)."""
        raise NotImplementedError

    def is_end_of_turn(self, token: int) -> bool:
        raise NotImplementedError

    def _fingerprint_extra(self) -> str:
        return ""

    # --- shared ------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """Identifies the weights and backend, for cache keys: same file, same key; weights
        changed in memory (by training) add a digest of themselves, so the cache follows them."""
        if not hasattr(self, "_fingerprint"):
            self._fingerprint = f"{self.backend}:{file_fingerprint(self.path)}{self._fingerprint_extra()}"
        return self._fingerprint + self._weights_tag()

    def _weights_tag(self) -> str:
        return ""  # a backend whose weights can change in memory overrides this

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def prompt_ids(self, prompt: str) -> list[int]:
        """Token ids the model sees for a prompt: special tokens parsed, BOS added if the
        model wants one and the prompt does not already start with it."""
        ids = self.tokenize(prompt, add_special=False)
        bos = getattr(self, "bos_id", None)
        if self.add_bos and bos is not None and (not ids or ids[0] != bos):
            ids = [bos] + ids
        return ids

    def apply_chat_template(self, messages, add_generation_prompt: bool = True, **extra) -> str:
        """Render a conversation (list of {"role", "content"} or one user string)."""
        return render_chat(self.chat_template or "", messages, bos_token=self.bos_token,
                           eos_token=self.eos_token,
                           add_generation_prompt=add_generation_prompt, **extra)

    def chat(self, conversations, sampling: Sampling | None = None, **kwargs) -> Generations:
        """Generate assistant replies. `conversations`: a user string, a list of strings,
        or a list of message lists."""
        if isinstance(conversations, str):
            conversations = [conversations]
        prompts = [self.apply_chat_template(c) for c in conversations]
        return self.generate(prompts, sampling, **kwargs)

    def generate(self, prompts: str | Iterable[str], sampling: Sampling | None = None, *,
                 n: int = 1, cache=True, progress: bool = True, desc: str | None = None,
                 **overrides) -> Generations:
        """Complete each prompt `n` times; returns prompt-major Generations.

        `overrides` change single sampling fields: generate(p, temperature=0, max_tokens=8).
        Finished sequences go to the cache at once, so a killed call loses nothing.
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        if not all(isinstance(p, str) for p in prompts):
            raise TypeError("generate() takes a prompt string or a list of strings; "
                            "for chat messages use model.chat()")
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1; got {n!r}")
        sampling = sampling or Sampling()
        if overrides:
            sampling = sampling.replace(**overrides)
        store = resolve_cache(cache)
        params = sampling.as_dict()
        base = {"model": self.name, "backend": self.backend, "params": params, "seed": sampling.seed}

        slots = _number_samples(prompts, n)
        keys = [make_key(self.fingerprint, p, params, sampling.seed, i) for p, i in slots]
        found = store.get_many(list(dict.fromkeys(keys))) if store is not None else {}
        out: list[Generation | None] = [None] * len(slots)
        requests = []
        for slot, ((prompt, i), key) in enumerate(zip(slots, keys)):
            if key in found:
                out[slot] = Generation(**{**found[key], "cached": True})
            else:
                requests.append(Request(slot, prompt, [], sequence_seed(sampling.seed, prompt, i), i))
        self._check_lengths(requests)

        stats = GenerationStats(sequences=len(slots), from_cache=len(slots) - len(requests))
        t0 = time.perf_counter()
        bar = _progress(len(requests), desc or f"generating ({self.backend})", progress)
        try:
            for req, gen in self._stream(requests, sampling):
                gen.prompt, gen.index = req.prompt, req.index
                gen.text = cut_at_stop(gen.text, sampling.stop)
                for k, v in base.items():
                    setattr(gen, k, v)
                out[req.slot] = gen
                if store is not None:
                    store.put(keys[req.slot], gen.to_dict() | {"cached": False})
                stats.prompt_tokens += gen.prompt_tokens
                stats.completion_tokens += gen.completion_tokens
                stats.seconds = time.perf_counter() - t0
                if bar is not None:
                    bar.set_postfix_str(self._live_rate(stats), refresh=False)
                    bar.update(1)
        finally:
            stats.seconds = time.perf_counter() - t0
            if bar is not None:
                bar.set_postfix_str(_rate(stats.completion_tokens, stats.seconds), refresh=False)
                bar.close()
        if any(g.finish_reason == "context" for g in out if g):
            warnings.warn(f"some sequences ran out of context (the model's {self.n_ctx}-token window) "
                          f"before max_tokens; ask for a smaller max_tokens or shorter prompts (the llama.cpp "
                          f"backend also takes load_model(n_ctx=...))", stacklevel=2)
        result = Generations(out)
        result.stats = self.last_stats = stats
        return result

    def _live_rate(self, stats: GenerationStats) -> str:
        """Tokens so far and tok/s for the progress bar. A batch finishes its sequences late
        and together, so finished sequences alone undercount; a backend that knows the
        tokens of running sequences too keeps `tokens_in_flight` (tokens sampled by this
        call, finished or not)."""
        tokens = max(stats.completion_tokens, getattr(self, "tokens_in_flight", 0))
        return _rate(tokens, stats.seconds)

    def _check_lengths(self, requests: list[Request]) -> None:
        for req in requests:
            req.prompt_ids = self.prompt_ids(req.prompt)
            if len(req.prompt_ids) >= self.n_ctx:
                raise PromptTooLongError(
                    f"a prompt of {len(req.prompt_ids)} tokens does not fit the context of "
                    f"{self.n_ctx} tokens (prompt starts {req.prompt[:60]!r}); shorten it or "
                    f"load the model with a larger n_ctx=")
            if not req.prompt_ids:
                raise ValueError("an empty prompt has nothing to continue; give at least one token")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} on {self.device}>"


def _number_samples(prompts: list[str], n: int) -> list[tuple[str, int]]:
    """(prompt, sample index) for every sequence to make. A prompt that appears k times
    gets indices 0..k*n-1, so generate([p]*32) and generate(p, n=32) are the same 32 samples."""
    seen: dict[str, int] = {}
    slots = []
    for p in prompts:
        for _ in range(n):
            slots.append((p, seen.get(p, 0)))
            seen[p] = slots[-1][1] + 1
    return slots


def cut_at_stop(text: str, stops) -> str:
    """Text up to (not including) the earliest stop string."""
    cuts = [text.find(s) for s in stops if s in text]
    return text[:min(cuts)] if cuts else text


def _progress(total: int, desc: str, enabled: bool):
    """A bar over the sequences to generate; its postfix carries the tokens and tok/s.

    Batched sequences finish in bursts (often all at the end), so tqdm's default rate, a
    moving average over the last few updates, is meaningless here (it showed 2.55 s/seq
    for 10 sequences done in 2.66 s): smoothing=0 makes it sequences over elapsed time.
    The bar is the only report: the final line already says everything `stats` does.
    """
    if not enabled or total == 0:
        return None
    return bar(total=total, desc=desc, unit="seq", smoothing=0)


def _rate(tokens: int, seconds: float) -> str:
    return f"{tokens} new tokens, {tokens / seconds if seconds > 0 else 0:.0f} tok/s"


def file_fingerprint(path: str) -> str:
    """Size plus hashes of the first and last MiB: quick, and changes when the weights do."""
    p = str(path)
    if os.path.isdir(p):
        parts = []
        for root, _, files in sorted(os.walk(p)):
            for f in sorted(files):
                if f.endswith((".safetensors", ".bin", ".gguf", ".json", ".model", ".txt", ".jinja")):
                    parts.append(file_fingerprint(os.path.join(root, f)))
        return hashlib.sha256("".join(parts).encode()).hexdigest()[:16]
    h = hashlib.sha256()
    size = os.path.getsize(p)
    h.update(str(size).encode())
    with open(p, "rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read())
    return h.hexdigest()[:16]
