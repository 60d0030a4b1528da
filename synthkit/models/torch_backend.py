"""PyTorch / transformers backend: the same interface as llama.cpp, on CUDA when present.

The model runs as an ordinary transformers causal LM, but generation is our own loop,
not `model.generate`: every sequence's tokens must depend only on its own seed, prompt
and sample index, never on which other prompts shared its batch. That is what lets
cached and fresh generations mix and a killed run resume.

How sequences are generated (Llama-family models: `static_decode`; others: chunks):

1. Prompts are prefilled by the transformers model, LEFT-padded together so that the
   last prompt token of every row sits in the last column; an attention mask hides the
   padding and position ids count only real tokens, so padding changes nothing a row
   computes. A prompt asked for n times is prefilled once.
2. Continuous batching: the prefilled keys and values are copied into a static KV cache
   (slots x max length); a decode step feeds one token per live row, each at its own
   position. A row that finishes (end-of-turn token, stop string, max_tokens) is yielded
   at once and its slot taken by the next waiting prompt. On CUDA the step has fixed
   shapes and is captured as a CUDA graph.
3. Other architectures decode fixed chunks on transformers' own cache (finished rows
   are dropped from the chunk).

Sampling follows llama.cpp's chain exactly: top-k, then top-p, then min-p, then
temperature, then a draw from what is left (Gumbel-max with counter-based noise from
the sequence's seed, position and token id: all rows in one go); temperature 0 is
greedy argmax.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..cache import model_copy_dir
from ..errors import DeviceUnavailableError, ModelLoadError, PromptTooLongError
from .base import Generation, Model, Request, file_fingerprint
from .cores import CoreShare
from .sampling import Sampling
from .static_decode import (SAMPLER_TAG, CUDAGraphStep, StaticKV, decode_step, gumbel_pick,
                            supports)

# Tokens that end an assistant turn in common chat templates. A chat model emits one of
# them, not necessarily the tokenizer's `eos_token`, when it is done answering.
_END_OF_TURN_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")


# --- loading ---------------------------------------------------------------------------

def _pick_device(device: str | None) -> str:
    """None means the best device present; asking for CUDA without one is an error."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailableError("CUDA was asked for but torch sees no CUDA device here; "
                                     "use device='cpu' (or leave device unset)")
    return device


def _pick_dtype(dtype, device: str):
    """bfloat16 on CUDA (half the memory, tensor cores), float32 on CPU (where bf16 is slow)."""
    if dtype is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype.removeprefix("torch."), None)
        if not isinstance(resolved, torch.dtype):
            raise ModelLoadError(f"dtype={dtype!r} is not a torch dtype; use 'float32', "
                                 f"'bfloat16' or 'float16'")
        return resolved
    return dtype


@contextlib.contextmanager
def quiet_transformers():
    """transformers draws progress bars while it dequantizes a GGUF and while it saves a
    model; students do not need them. Set SYNTHKIT_TORCH_VERBOSE=1 to see them."""
    if os.environ.get("SYNTHKIT_TORCH_VERBOSE"):
        yield
        return
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # the GGUF bar ignores the switch above
            yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def save_hf(folder, model, tokenizer=None) -> None:
    """The model (and its tokenizer) as an HF checkpoint in `folder`, without transformers'
    progress bars: every checkpoint synthkit writes goes through here."""
    with quiet_transformers():
        model.save_pretrained(folder)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder)


def _dtype_kwarg() -> str:
    """transformers renamed `torch_dtype` to `dtype` in 4.56."""
    import transformers
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _check_gguf(path: Path) -> None:
    """Cheap checks first, so a wrong file gives a one-line error, not a deep traceback."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ModelLoadError(f"cannot read {path} ({e.strerror}); check the path and its "
                             f"permissions") from None
    if magic != b"GGUF":
        raise ModelLoadError(f"{path} is not a GGUF file (it starts {magic!r}, not b'GGUF'); pass "
                             f"a .gguf file or an HF checkpoint directory (with config.json)")
    try:
        import gguf  # noqa: F401  (transformers needs it to read GGUF files)
    except ImportError:
        raise ModelLoadError("loading a GGUF file with backend='torch' needs the `gguf` package; "
                             "run `pip install gguf`") from None


def _load_gguf(path: Path, dtype):
    """Tokenizer and dequantized model from a GGUF file, through a once-made checkpoint copy.

    Reading the GGUF takes about 17 s on two cores (most of it the reader walking the
    tokenizer's 49k-entry metadata in Python); an ordinary fp32 checkpoint of the same
    weights loads in well under a second. So the first load writes that copy beside the
    llama.cpp copies (cache.model_copy_dir), and every load, the first included, reads
    the copy: one path, the same tensors. Where the cache cannot be written, the file is
    read directly each time.
    """
    copy = _checkpoint_copy(path)
    if (copy / "config.json").exists():
        try:
            return _load_checkpoint(copy, dtype)
        except Exception:  # a damaged copy: forget it and make it again
            shutil.rmtree(copy, ignore_errors=True)
    tokenizer, model = _read_gguf(path, torch.float32)
    if _save_copy(tokenizer, model, copy):
        return _load_checkpoint(copy, dtype)
    return tokenizer, model.to(dtype)


def _checkpoint_copy(path: Path) -> Path:
    import transformers
    return model_copy_dir() / f"{path.stem}-{file_fingerprint(str(path))}-hf{transformers.__version__}-fp32"


def _save_copy(tokenizer, model, copy: Path) -> bool:
    """Save the fp32 model and its tokenizer as an HF checkpoint at `copy`; False where the
    cache cannot be written. Written under a temporary name and renamed, so a killed
    conversion never leaves half a copy."""
    tmp = copy.with_name(f"{copy.name}.tmp{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        save_hf(tmp, model, tokenizer)
        os.replace(tmp, copy)
    except OSError:
        return (copy / "config.json").exists()  # another process may have finished first
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def _read_gguf(path: Path, dtype):
    """Tokenizer and dequantized model read from the GGUF file itself.

    `from_pretrained(gguf_file=...)` would do the same, but it needs the `accelerate`
    package and marks the model as "gguf-quantized", which then refuses
    `save_pretrained` — and the training labs save the models they fine-tune. Calling
    the GGUF reader transformers itself uses gives an ordinary model instead. The
    skeleton model is built on the "meta" device (no memory, no random init) only so
    the reader can map GGUF tensor names onto the model's parameter names.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    folder, name = str(path.parent), path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    config = AutoConfig.from_pretrained(folder, gguf_file=name, local_files_only=True)
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    tensors = load_gguf_checkpoint(str(path), return_tensors=True, model_to_load=skeleton)["tensors"]
    model = type(skeleton).from_pretrained(None, config=config, state_dict=tensors,
                                           **{_dtype_kwarg(): dtype})
    return tokenizer, model


def _load_checkpoint(path: Path, dtype):
    """Tokenizer and model from an HF checkpoint directory (config.json + weights)."""
    if not (path / "config.json").exists():
        raise ModelLoadError(f"{path} is a directory without config.json, so not an HF "
                             f"checkpoint; pass the checkpoint folder or a .gguf file")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True,
                                                 **{_dtype_kwarg(): dtype})
    return tokenizer, model


# --- one batch of sequences ------------------------------------------------------------

@dataclass
class _Row:
    """One sequence being generated."""

    req: Request
    generator: torch.Generator | None  # only the legacy sampler draws from one
    out_ids: list[int] = field(default_factory=list)
    logprobs: list[dict] | None = None


class _Batch:
    """Left-padded rows sharing one KV cache; rows can be dropped as they finish."""

    def __init__(self, model: "TorchModel", prompts: list[list[int]]):
        self.m = model
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), model.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[i, width - len(p):] = 1
        self.mask = mask.to(model.device)
        # positions count real tokens only: a row's first real token is at position 0
        self.pos = (self.mask.cumsum(-1) - 1).clamp(min=0)
        self.cache = None
        self.logits = self._forward(ids.to(model.device), self.pos)

    def _forward(self, ids, pos):
        """Run the model on new tokens; keep the cache; return next-token logits (rows, vocab)."""
        with self.m.generation_autocast():
            out = self.m.model(input_ids=ids, attention_mask=self.mask, position_ids=pos,
                               use_cache=True, **self.m.forward_kwargs, **{self.m.cache_kwarg: self.cache})
        cache = getattr(out, "cache", None)
        self.cache = cache if cache is not None else out.past_key_values
        return out.logits[:, -1].float()

    def step(self, tokens: list[int]) -> None:
        """Feed one new token per row (one new column) and compute the next logits."""
        new = torch.tensor(tokens, dtype=torch.long, device=self.mask.device).unsqueeze(1)
        self.mask = torch.cat([self.mask, torch.ones_like(new)], dim=1)
        self.pos = self.pos[:, -1:] + 1
        self.logits = self._forward(new, self.pos)

    def keep(self, rows: list[int]) -> None:
        """Drop every row not listed: finished sequences stop costing compute."""
        index = torch.tensor(rows, dtype=torch.long, device=self.mask.device)
        self.mask, self.pos, self.logits = self.mask[index], self.pos[index], self.logits[index]
        self.cache.batch_select_indices(index)


# --- sampling ----------------------------------------------------------------------------

def filtered_probs(logits, s: Sampling):
    """llama.cpp's sampler chain on a batch of logits (rows, vocab).

    Returns (probs, ids), both (rows, k): the distribution to draw from over candidate
    token ids, sorted by logit. Each filter sees what the previous one left, as in
    llama.cpp: top-k keeps the k best; top-p keeps the smallest head whose probability
    (renormalized over the candidates) reaches top_p, always at least one token; min-p
    drops tokens less likely than min_p times the best one; temperature rescales last,
    so it changes how likely the survivors are, not which tokens survive.
    """
    k = s.top_k if 0 < s.top_k < logits.shape[-1] else logits.shape[-1]
    vals, ids = logits.topk(k, dim=-1)  # sorted, best first
    if s.top_p < 1.0:
        p = vals.softmax(-1)
        mass_before = p.cumsum(-1) - p  # probability of the better tokens
        vals = vals.masked_fill(mass_before >= s.top_p, -math.inf)
    if s.min_p > 0:
        vals = vals.masked_fill(vals < vals[:, :1] + math.log(s.min_p), -math.inf)
    return torch.softmax(vals / s.temperature, dim=-1), ids


def sample_per_row(logits, rows: list[_Row], s: Sampling) -> list[int]:
    """The first sampler, kept for benchmarks (`decoder="chunks-legacy"`): each row draws
    with its own generator, one `torch.multinomial` per row, then a host sync."""
    if s.greedy:
        return logits.argmax(-1).tolist()
    probs, ids = filtered_probs(logits, s)
    picks = [torch.multinomial(probs[i], 1, generator=r.generator) for i, r in enumerate(rows)]
    return ids.gather(1, torch.stack(picks)).squeeze(1).tolist()


def draw(logits, seeds, positions, s: Sampling):
    """One token per row, all rows at once, on the device: argmax when greedy, else a
    Gumbel-max draw from llama.cpp's filtered distribution with counter-based noise from
    (sequence seed, position, token id), so a row's draw never depends on its batch."""
    if s.greedy:
        return logits.argmax(-1)
    probs, ids = filtered_probs(logits, s)
    return gumbel_pick(probs, ids, seeds, positions)


def host_step(logits, tokens, k: int) -> list[list]:
    """What the host needs from a step, in one transfer: per row the token and, when
    `k` > 0, its log-probability and the top-k (log-probability, id) of the raw model
    distribution (no temperature, no filters)."""
    if not k:
        return [[t] for t in tokens.tolist()]
    logp = logits.double().log_softmax(-1)
    top_lp, top_ids = logp.topk(min(k, logp.shape[-1]))
    packed = torch.cat([tokens[:, None].double(), logp.gather(1, tokens[:, None]), top_lp,
                        top_ids.double()], dim=1)
    return packed.tolist()


# --- the model -----------------------------------------------------------------------------

class TorchModel(Model):
    """A transformers causal LM behind synthkit's generation interface.

    path: a .gguf file (dequantized on load) or an HF checkpoint directory.
    device: "cpu", "cuda" or None (CUDA when present). dtype: None picks bfloat16 on
    CUDA and float32 on CPU. batch_size: sequences decoded together; more is faster per
    token until the device is saturated, and costs KV-cache memory.
    """

    backend = "torch"

    def __init__(self, path, *, device: str | None = None, dtype=None, batch_size: int = 16,
                 chat_template: str | None = None):
        path = Path(path).expanduser()
        if not path.exists():
            raise ModelLoadError(f"no model at {path}; pass a .gguf file or an HF checkpoint "
                                 f"directory")
        if path.is_file():
            _check_gguf(path)
        try:
            import transformers
        except ImportError as e:
            raise ModelLoadError(f"backend='torch' needs transformers ({e}); run "
                                 f"`pip install transformers`, or use backend='llama.cpp'") from None
        self.path = str(path)
        self.device = _pick_device(device)
        self.dtype = _pick_dtype(dtype, self.device)
        self.batch_size = max(1, int(batch_size))
        try:
            with quiet_transformers():
                loader = _load_gguf if path.is_file() else _load_checkpoint
                self.tokenizer, model = loader(path, self.dtype)
        except ModelLoadError:
            raise
        except Exception as e:  # transformers fails in many ways; say what and what to do
            raise ModelLoadError(
                f"transformers could not load {path} ({type(e).__name__}: {e}); the file may be "
                f"truncated or corrupt, or its architecture unsupported by transformers "
                f"{transformers.__version__}: re-download it, or try backend='llama.cpp'") from None
        self.model = model.to(self.device).eval()
        self._set_vocabulary(chat_template)
        params = inspect.signature(self.model.forward).parameters
        # transformers 5 renamed the KV-cache argument `past_key_values` to `cache`
        self.cache_kwarg = "cache" if "cache" in params else "past_key_values"
        # only the last position's logits are needed: skip the (tokens x vocab) rest
        self.forward_kwargs = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        self.n_ctx = int(getattr(self.model.config, "max_position_embeddings", 0) or 2048)
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self._loaded_state = self._weights_state()  # the file's weights, before any training
        self._token_texts: dict[int, str] = {}

    def _set_vocabulary(self, chat_template: str | None) -> None:
        """Special tokens, BOS policy and the set of end-of-turn ids."""
        tok = self.tokenizer
        out = self.model.get_output_embeddings()
        self.n_vocab = int(out.weight.shape[0]) if out is not None else int(self.model.config.vocab_size)
        self.chat_template = chat_template or getattr(tok, "chat_template", None)
        self.bos_token = tok.bos_token or ""
        self.eos_token = tok.eos_token or ""
        self.bos_id = tok.bos_token_id
        self.eos_id = tok.eos_token_id
        first = tok("a").input_ids
        self.add_bos = self.bos_id is not None and bool(first) and first[0] == self.bos_id
        eos = set()
        if tok.eos_token_id is not None:
            eos.add(int(tok.eos_token_id))
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if gen_eos is not None:
            eos.update(int(i) for i in (gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos]))
        added = tok.get_added_vocab()  # special tokens of chat templates live here
        eos.update(added[t] for t in _END_OF_TURN_TOKENS if t in added)
        self.eos_ids = eos
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else min(eos, default=0)

    # --- tokens ----------------------------------------------------------------------
    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=add_special).input_ids)

    def detokenize(self, ids) -> str:
        return self.tokenizer.decode([int(t) for t in ids], skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)

    def _token_text(self, token: int) -> str:
        """One token as text, special tokens shown (for logprobs); memoized."""
        text = self._token_texts.get(token)
        if text is None:
            text = self.tokenizer.decode([token], skip_special_tokens=False,
                                         clean_up_tokenization_spaces=False)
            self._token_texts[token] = text
        return text

    def is_end_of_turn(self, token: int) -> bool:
        return token in self.eos_ids

    def _fingerprint_extra(self) -> str:
        # bf16 on CUDA and fp32 on CPU give slightly different texts: separate cache keys
        # and the sampler: samples drawn by an earlier one must not be served as this one's
        return f":{SAMPLER_TAG}:{self.model.device.type}:{str(self.dtype).removeprefix('torch.')}"

    # --- generation precision ------------------------------------------------------------
    # Training keeps fp32 weights (the optimizer's small updates need them); generation
    # could still run its matrix products in bf16 under autocast. Measured for batch-32
    # greedy decoding (benchmarks/bench_train.py --generation): on 2 cores of an AMX /
    # AVX512-BF16 Xeon, 248 tok/s fp32, 263 bf16 autocast, 249 bf16 weights (decode steps
    # are too small for bf16's faster products to matter); on an H200, autocast ran at
    # 0.2x fp32 (a weight cast per step), bf16 weights at 0.94x. So generation stays as
    # loaded (fp32 on CPU, bf16 weights on CUDA); 'bf16' autocast is there to try.

    generation_precision = "fp32"

    def set_generation_precision(self, precision: str) -> None:
        """'bf16' (autocast over fp32 weights) or 'fp32'/'auto' (as loaded). Texts differ
        slightly between the two, so each has its own cache keys."""
        if precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision={precision!r}: choose 'auto', 'bf16' or 'fp32'")
        self.generation_precision = "fp32" if precision == "auto" else precision

    def generation_autocast(self):
        if self.generation_precision == "bf16" and self.dtype == torch.float32:
            return torch.autocast(self.model.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # --- the cache follows the weights -------------------------------------------------
    # The file fingerprint says which weights were loaded; training changes them in
    # memory. Every in-place change to a tensor (an optimizer step, load_state_dict)
    # bumps its version counter, so comparing counters says "changed?" for free; only
    # then is the digest of the weights themselves recomputed (~0.3 s for 135M weights).
    # The key is a digest of content, not a counter, so the same training run repeated
    # in a fresh session finds its cached generations again.

    def _weights_state(self) -> tuple:
        return tuple((id(p), p._version, p.data_ptr()) for p in self.model.parameters())

    def _weights_tag(self) -> str:
        tag = ":autocast-bf16" if self.generation_precision == "bf16" and self.dtype == torch.float32 else ""
        if self._weights_state() == self._loaded_state:
            return tag
        return f"{tag}:w{self.weights_digest()}"

    def weights_digest(self) -> str:
        """A content hash of the current weights (names, shapes, dtypes and values)."""
        state = self._weights_state()
        if getattr(self, "_digest_state", None) != state:
            h = hashlib.sha1()
            for name, p in self.model.named_parameters():
                t = p.detach()
                if t.dtype in (torch.bfloat16, torch.float16):
                    t = t.view(torch.int16)
                t = t.to("cpu").contiguous()
                h.update(f"{name}:{tuple(t.shape)}:{p.dtype}".encode())
                h.update(memoryview(t.numpy()).cast("B"))
            self._digest, self._digest_state = h.hexdigest()[:16], state
        return self._digest

    # --- logits --------------------------------------------------------------------------
    def logits(self, prompts: list[str]) -> np.ndarray:
        """Next-token logits after each prompt, shape (len(prompts), n_vocab), float32."""
        ids = [self.prompt_ids(p) for p in prompts]
        for p, i in zip(prompts, ids):
            if len(i) >= self.n_ctx:
                raise PromptTooLongError(f"a prompt of {len(i)} tokens does not fit n_ctx="
                                         f"{self.n_ctx} (prompt starts {p[:60]!r})")
        rows = []
        with torch.inference_mode():
            for start in range(0, len(ids), self.batch_size):
                rows.append(_Batch(self, ids[start:start + self.batch_size]).logits.cpu())
        if not rows:
            return np.zeros((0, self.n_vocab), dtype=np.float32)
        return torch.cat(rows).numpy().astype(np.float32, copy=False)

    # --- generation ----------------------------------------------------------------------
    # decoder: "static" (continuous batching on a static KV cache, see static_decode; the
    # default where the architecture allows), "chunks" (fixed chunks on transformers' own
    # cache, for other architectures), "chunks-legacy" (chunks with the first sampler:
    # kept so benchmarks can compare against it; its samples differ from the other two).
    decoder = "auto"
    # fixed_shapes: every decode step over the full cache length (what a CUDA graph needs);
    # None: on CUDA only. On CPU a step covers the live rows up to their longest length.
    fixed_shapes: bool | None = None
    # off CUDA the static cache starts this many positions past the longest prompt and
    # doubles when a row needs more (see StaticKV)
    kv_margin = 64

    def _decoder(self) -> str:
        if self.decoder == "auto":
            return "static" if supports(self.model) else "chunks"
        return self.decoder

    def _stream(self, requests: list[Request], sampling: Sampling):
        """Yield each sequence as it finishes (see `decoder`). Requests are sorted by
        prompt length first, so prompts prefilled together need little padding; outputs
        do not depend on the grouping."""
        ordered = sorted(requests, key=lambda r: len(r.prompt_ids))
        self.tokens_in_flight = 0  # tokens sampled by this call, finished rows or not (progress bar)
        if not ordered:
            return
        decoder = self._decoder()
        if decoder == "static":
            yield from self._run_static(ordered, sampling)
            return
        for start in range(0, len(ordered), self.batch_size):
            yield from self._run_chunk(ordered[start:start + self.batch_size], sampling,
                                       legacy=decoder == "chunks-legacy")

    def _sample_rows(self, logits, rows: list[_Row], sampling: Sampling) -> list[list]:
        """Draw for every row at once; one transfer to the host (see host_step)."""
        dev = logits.device
        seeds = torch.tensor([r.req.seed for r in rows], dtype=torch.long, device=dev)
        steps = torch.tensor([len(r.out_ids) for r in rows], dtype=torch.long, device=dev)
        return host_step(logits, draw(logits, seeds, steps, sampling), sampling.logprobs)

    def _run_chunk(self, requests: list[Request], sampling: Sampling, legacy: bool = False):
        """Prefill one batch, then sample / yield the finished / drop them / step, until
        every row is done."""
        rows = []
        for req in requests:
            gen = None
            if legacy:
                gen = torch.Generator(device=self.model.device)
                gen.manual_seed(req.seed)
            rows.append(_Row(req, gen, logprobs=[] if sampling.logprobs else None))
        # inference_mode around each step, not around the yields: the caller's code runs
        # between yields and must not find itself in inference mode
        with torch.inference_mode():
            batch = _Batch(self, [r.req.prompt_ids for r in rows])
        while rows:
            with torch.inference_mode():
                if legacy:
                    tokens = sample_per_row(batch.logits, rows, sampling)
                    picks = [[t] + self._legacy_logprobs(batch.logits[i], t, sampling.logprobs)
                             for i, t in enumerate(tokens)]
                else:
                    picks = self._sample_rows(batch.logits, rows, sampling)
                reasons = [self._advance(r, pick, sampling) for r, pick in zip(rows, picks)]
            for r, reason in zip(rows, reasons):
                if reason:
                    yield r.req, self._finish(r, reason)
            alive = [i for i, reason in enumerate(reasons) if reason is None]
            if not alive:
                return
            with torch.inference_mode():
                if len(alive) < len(rows):
                    batch.keep(alive)
                batch.step([int(picks[i][0]) for i in alive])
            rows = [rows[i] for i in alive]

    def _legacy_logprobs(self, logits, token: int, k: int) -> list:
        if not k:
            return []
        return host_step(logits[None], torch.tensor([token], device=logits.device), k)[0][1:]

    # --- continuous batching on a static cache --------------------------------------------
    def _run_static(self, ordered: list[Request], sampling: Sampling):
        """Slots hold live rows 0..n-1; each step: admit waiting prompts into free slots
        (prefilled together, one prefill per distinct prompt), draw a token for every live
        row, yield the finished, fill their holes with the last rows, decode one step."""
        slots = min(self.batch_size, len(ordered))
        longest = max(len(r.prompt_ids) for r in ordered)
        max_len = min(self.n_ctx, longest + sampling.max_tokens)
        fixed = self.fixed_shapes if self.fixed_shapes is not None else self.model.device.type == "cuda"
        autocast_bf16 = self.generation_precision == "bf16" and self.dtype == torch.float32
        kv_dtype = torch.bfloat16 if autocast_bf16 else self.dtype
        with torch.inference_mode():
            kv = StaticKV(self.model, slots, max_len, kv_dtype, self.model.device,
                          capacity=None if fixed else longest + self.kv_margin)
            logits = torch.empty((slots, self.n_vocab), dtype=torch.float32, device=self.model.device)
        graph = None
        if fixed and self._use_cuda_graph():
            # made before any prompt is loaded: its warm-up steps write into every slot;
            # captured on CUDA, run eagerly with the same shapes elsewhere
            with torch.inference_mode():
                graph = CUDAGraphStep(self.model, kv, self.generation_autocast,
                                      capture=self.model.device.type == "cuda")
        waiting = list(reversed(ordered))  # pop() takes the shortest prompt first
        rows: list[_Row] = []
        lengths: list[int] = []  # tokens held in the cache, per live row
        share, threads = self._core_share()
        try:
            while waiting or rows:
                if threads is not None:
                    self._set_threads(share.threads())
                if waiting and len(rows) < slots:
                    group = [waiting.pop() for _ in range(min(slots - len(rows), len(waiting)))]
                    with torch.inference_mode():
                        logits[len(rows):len(rows) + len(group)] = self._prefill(kv, group, len(rows))
                    rows += [_Row(r, None, logprobs=[] if sampling.logprobs else None) for r in group]
                    lengths += [len(r.prompt_ids) for r in group]
                n = len(rows)
                with torch.inference_mode():
                    picks = self._sample_rows(logits[:n], rows, sampling)
                    reasons = [self._advance(r, pick, sampling) for r, pick in zip(rows, picks)]
                for r, reason in zip(rows, reasons):
                    if reason:
                        yield r.req, self._finish(r, reason)
                alive = [i for i, reason in enumerate(reasons) if reason is None]
                if not alive:
                    rows, lengths = [], []
                    continue
                m = len(alive)
                holes = [i for i in range(m) if reasons[i] is not None]
                movers = [i for i in alive if i >= m]
                with torch.inference_mode():
                    if holes:  # live rows back into slots 0..m-1
                        kv.move(movers, holes, max(lengths[i] for i in movers))
                    order = [i for i in range(m)]
                    for h, mv in zip(holes, movers):
                        order[h] = mv
                    rows = [rows[i] for i in order]
                    lengths = [lengths[i] for i in order]
                    dev = self.model.device
                    tokens = torch.tensor([int(picks[i][0]) for i in order], dtype=torch.long, device=dev)
                    positions = torch.tensor(lengths, dtype=torch.long, device=dev)
                    if graph is not None:
                        logits[:m] = graph(tokens, positions, m)
                    else:
                        width = kv.max_len if fixed else max(lengths) + 1
                        kv.ensure(width)
                        with self.generation_autocast():
                            logits[:m] = decode_step(self.model, kv, tokens, positions, m, width)
                lengths = [x + 1 for x in lengths]
        finally:
            if threads is not None:
                self._set_threads(threads)

    def _prefill(self, kv: StaticKV, group: list[Request], first_slot: int):
        """Prefill each distinct prompt of `group` once (left-padded together, as the chunk
        loop does), copy its keys and values into the group's slots; next-token logits."""
        distinct = list(dict.fromkeys(tuple(r.prompt_ids) for r in group))
        where = {p: i for i, p in enumerate(distinct)}
        batch = _Batch(self, [list(p) for p in distinct])
        layers = batch.cache.layers
        keys = torch.stack([layer.keys for layer in layers], dim=1)  # (rows, layers, heads, width, dim)
        values = torch.stack([layer.values for layer in layers], dim=1)
        src = []
        for j, r in enumerate(group):
            i = where[tuple(r.prompt_ids)]
            kv.load(first_slot + j, keys[i], values[i], len(r.prompt_ids))
            src.append(i)
        return batch.logits[torch.tensor(src, device=batch.logits.device)]

    def _use_cuda_graph(self) -> bool:
        return os.environ.get("SYNTHKIT_CUDA_GRAPH", "1") != "0"

    # --- threads: share the cores as llama.cpp does (models/cores.py) ----------------------
    def _core_share(self):
        """(CoreShare, thread count to restore) for a generation on CPU, (None, None) on CUDA.
        $SYNTHKIT_THREADS fixes the count; otherwise the ceiling is torch's thread count
        now (so a caller's torch.set_num_threads is respected) and each step uses the
        cores other processes leave free."""
        if self.model.device.type != "cpu":
            return None, None
        env = os.environ.get("SYNTHKIT_THREADS", "").strip()
        if env.isdigit() and int(env) > 0:
            return CoreShare(int(env), adaptive=False), torch.get_num_threads()
        threads = torch.get_num_threads()
        return CoreShare(threads), threads

    @staticmethod
    def _set_threads(n: int) -> None:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)

    def _advance(self, r: _Row, pick: list, sampling: Sampling) -> str | None:
        """Record one sampled token (pick: [token, logprob, top values..., top ids...]);
        return a finish reason or None to go on. Same order of checks as llama.cpp."""
        token = int(pick[0])
        if token in self.eos_ids:
            return "stop"
        if r.logprobs is not None:
            k = (len(pick) - 2) // 2
            r.logprobs.append({"token": self._token_text(token), "logprob": pick[1],
                               "top": [[self._token_text(int(t)), v]
                                       for v, t in zip(pick[2:2 + k], pick[2 + k:])]})
        r.out_ids.append(token)
        self.tokens_in_flight = getattr(self, "tokens_in_flight", 0) + 1
        if sampling.stop:  # stop strings can span tokens: look at the decoded text
            text = self.detokenize(r.out_ids)
            if any(stop in text for stop in sampling.stop):
                return "stop"
        if len(r.out_ids) >= sampling.max_tokens:
            return "length"
        if len(r.req.prompt_ids) + len(r.out_ids) >= self.n_ctx:
            return "context"
        return None

    def _finish(self, r: _Row, reason: str) -> Generation:
        return Generation(prompt=r.req.prompt, text=self.detokenize(r.out_ids), finish_reason=reason,
                          prompt_tokens=len(r.req.prompt_ids), completion_tokens=len(r.out_ids),
                          token_ids=list(r.out_ids), logprobs=r.logprobs)
