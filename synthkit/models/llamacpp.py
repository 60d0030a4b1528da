"""llama.cpp backend: true batched decoding on the CPU.

Many sequences live in one llama.cpp context, each under its own sequence id. Every
`llama_decode` call advances all of them by one token (and feeds new prompts into slots
that free up), so the weights are read from memory once per step for the whole batch
instead of once per sequence: that is where the speed-up over a loop of
`create_completion` calls comes from. Each sequence samples with its own llama.cpp
sampler chain (top-k, top-p, min-p, temperature, its own seed), in C.
"""
from __future__ import annotations

import ctypes
import heapq
import os
import struct
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import GenerationError, ModelLoadError, PromptTooLongError
from .base import Generation, Model, Request
from .cores import CoreShare, default_threads, usable_cores
from .sampling import Sampling

_LOG_CALLBACK = None  # keep a reference: llama.cpp calls it from C


def _silence(llama_cpp) -> None:
    """llama.cpp logs every load to stderr; students do not need that wall of text."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is None and not os.environ.get("SYNTHKIT_LLAMA_VERBOSE"):
        _LOG_CALLBACK = llama_cpp.llama_log_callback(lambda level, text, data: None)
        llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))


@dataclass
class _Seq:
    req: Request
    sid: int
    sampler: object
    reserve: int
    feed: list[int]  # tokens still to be decoded (the prompt, then each sampled token)
    pos: int = 0
    out_ids: list[int] = field(default_factory=list)
    out_bytes: bytearray = field(default_factory=bytearray)
    logprobs: list[dict] | None = None
    logit_index: int = -1  # row of this sequence's logits in the last batch
    prefix_only: bool = False  # decoding a prompt prefix that others will copy
    followers: list = field(default_factory=list)


FORMATS = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "bf16": "LLAMA_FTYPE_MOSTLY_BF16",
           "f16": "LLAMA_FTYPE_MOSTLY_F16"}


def best_format(L, measure_with: Path | None = None) -> str:
    """The copy format whose batched kernels are fastest on this CPU: 'bf16' or 'q8_0'.

    Without AVX512-BF16, bf16 is emulated and Q8_0's integer dot products (and half the
    bytes) win: no need to measure. With it, either can win, and only a measurement tells:
    on one 2-core AVX512-BF16 machine (32 Magpie prompts x 64 tokens, batched) bf16 ran
    ~700 tok/s against Q8_0's ~440; on another, whose steps are dominated by per-operation
    overhead rather than arithmetic, Q8_0 ran 183 against bf16's 164
    (benchmarks/weight_formats.py). So the first 'auto' load on such a machine times a
    short batched decode of both copies of `measure_with` (about 10 s, once) and keeps the
    answer in the cache (`format_choice`); until then, or with nothing to measure, bf16.
    """
    if "AVX512_BF16 = 1" not in _system_info(L):
        return "q8_0"
    choice = format_choice(L)
    if choice:
        return choice["format"]
    if measure_with is None:
        return "bf16"
    return _measure_formats(L, Path(measure_with))["format"]


MEASURED = ("bf16", "q8_0")


def _machine_key(L) -> str:
    """What a format measurement depends on: the CPU, the cores, the llama.cpp build."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return f"{model}|{usable_cores()}|{getattr(L, '__version__', '?')}|{_system_info(L).strip()}"


def _choice_file() -> Path:
    from ..cache import model_copy_dir
    return model_copy_dir() / "format-choice.json"


def format_choice(L) -> dict | None:
    """The measured choice for this machine ({'format', 'tok_per_s': {...}}), or None."""
    import json
    try:
        saved = json.loads(_choice_file().read_text())
    except (OSError, ValueError):
        return None
    return saved if saved.get("machine") == _machine_key(L) and saved.get("format") in MEASURED else None


def _measure_formats(L, path: Path, rounds: int = 2) -> dict:
    """Time 32 sequences x 12 greedy tokens on each candidate copy, interleaved, best of
    `rounds`; save and return the choice."""
    import json

    copies = {fmt: fast_cpu_copy(L, path, fmt) for fmt in MEASURED}
    if any(c == path for c in copies.values()):  # a copy could not be made: nothing to compare
        return {"format": "bf16", "tok_per_s": {}}
    models = {fmt: LlamaCppModel(c, requantize=None, n_ctx=64, n_parallel=32)
              for fmt, c in copies.items()}
    greedy = Sampling(max_tokens=12, temperature=0.0)
    best = dict.fromkeys(MEASURED, 0.0)
    for _ in range(rounds):
        for fmt, m in models.items():
            out = m.generate("The", n=32, sampling=greedy, cache=False, progress=False)
            best[fmt] = max(best[fmt], out.stats.completion_tokens / max(out.stats.seconds, 1e-9))
    choice = {"format": max(best, key=best.get), "tok_per_s": {k: round(v, 1) for k, v in best.items()},
              "machine": _machine_key(L)}
    target = _choice_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(choice, indent=1))
    os.replace(tmp, target)
    return choice


def pinned_format() -> str | None:
    """$SYNTHKIT_WEIGHT_FORMAT ('q8_0', 'bf16', 'f16', 'none') or 'auto' when unset.

    Why pin it: Q8_0's integer dot products give every row the same result in any batch,
    so a sequence's text depends only on its prompt, seed and index; bf16 sums floats in
    an order that depends on how many rows the batch has, so a sampled sequence can come
    out differently beside other sequences (measured on an AVX512-BF16 EPYC: 17 of 24
    sampled texts changed between n_parallel=1 and 32, 1 of 21 between 3 and 32; with
    Q8_0, none). Runs that must match token for token across
    batch sizes, processes or machines (`synthkit.scale` on a cluster) pin q8_0."""
    value = os.environ.get("SYNTHKIT_WEIGHT_FORMAT", "").strip().lower()
    if not value or value == "auto":
        return "auto"
    if value == "none":
        return None
    if value not in FORMATS:
        raise ModelLoadError(f"SYNTHKIT_WEIGHT_FORMAT={value!r} is not a format; use auto, "
                             f"{', '.join(FORMATS)} or none (the file as shipped)")
    return value


def amx_kernels(L) -> bool:
    """True when llama.cpp was built with its AMX kernels, which must then be kept off.

    Those kernels (quantized weights only: Q4_1, Q8_0, ...) die with SIGILL in llama.cpp's
    worker threads (ggml-org/llama.cpp PR #26954, still open; here every batched Q8_0 or
    Q4_1 decode did). Loading with use_extra_bufts=False routes those weights to the
    AVX-512 kernels instead; bf16 weights never go through AMX.
    """
    return "AMX_INT8 = 1" in _system_info(L)


def _system_info(L) -> str:
    """llama.cpp's list of the CPU kernels it was built with, e.g. '... AVX512_BF16 = 1 | ...'."""
    return L.llama_print_system_info().decode(errors="replace")


def fast_cpu_copy(L, path: Path, requantize: str) -> Path:
    """The GGUF to load: `path` itself, or a once-made copy of a Q4_1 file in a faster format.

    Q4_1 has no repacked/tinyBLAS kernel in llama.cpp's CPU backend, so batched matrix
    products on it run on the slow generic path. 'auto' copies a Q4_1 file to
    `best_format` (bf16 or Q8_0, measured once where both are fast); 'q8_0', 'bf16' and
    'f16' copy any file to that format.
    bf16 keeps each dequantized Q4_1 weight to within 0.4% of itself, f16 to 0.05%, Q8_0
    to within 1/254 of its block's largest value (Q4_1's own step is 1/15 of the block's
    range): the same model, faster kernels.
    """
    from ..cache import model_copy_dir
    from .base import file_fingerprint

    if requantize not in ("auto", *FORMATS):
        raise ModelLoadError(f"requantize={requantize!r} is not supported; use 'auto', "
                             f"{', '.join(map(repr, FORMATS))} or None (the file as shipped)")
    if requantize == "auto":
        choice = format_choice(L) if "AVX512_BF16 = 1" in _system_info(L) else {"format": "q8_0"}
        if choice:  # decided before: no need to read the GGUF header again
            fmt = choice["format"]
        elif not _is_q4_1(L, path):
            return path
        else:
            fmt = best_format(L, measure_with=path)
    else:
        fmt = requantize
    out = model_copy_dir() / f"{Path(path).stem}-{file_fingerprint(str(path))}-{fmt}.gguf"
    if out.exists():
        return out
    if requantize == "auto" and not _is_q4_1(L, path):
        return path
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    params = L.llama_model_quantize_default_params()
    params.ftype = getattr(L, FORMATS[fmt])
    params.allow_requantize = True
    params.nthread = os.cpu_count() or 1
    if L.llama_model_quantize(str(path).encode(), str(tmp).encode(), params) != 0:
        tmp.unlink(missing_ok=True)
        return path
    os.replace(tmp, out)  # atomic: a killed conversion never leaves a half file behind
    return out


def _is_q4_1(L, path: Path) -> bool:
    try:
        return gguf_file_type(path) == L.LLAMA_FTYPE_MOSTLY_Q4_1
    except (OSError, ValueError, struct.error):  # unreadable metadata: load the file as it is
        return False


# GGUF metadata value types: fixed-size ones by struct format; 8 is a string, 9 an array
_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def gguf_file_type(path) -> int | None:
    """The `general.file_type` of a GGUF file (llama.cpp's LLAMA_FTYPE_*), or None.

    Reads the header's key-value pairs only up to that key. gguf's GGUFReader would parse
    every field first, the tokenizer's 49k-entry arrays included: 4 s on two cores, paid
    each time a freshly exported student is loaded."""
    size_of_file = os.path.getsize(path)
    with open(path, "rb") as f:
        def read(fmt):
            size = struct.calcsize("<" + fmt)
            data = f.read(size)
            if len(data) != size:
                raise ValueError(f"{path}: the GGUF header ends early")
            return struct.unpack("<" + fmt, data)[0]

        def length():
            n = read("Q")
            if n > size_of_file:
                raise ValueError(f"{path}: a GGUF length runs past the end of the file")
            return n

        def text():
            return f.read(length()).decode("utf-8", "replace")

        def skip(kind):
            if kind in _GGUF_SCALARS:
                f.seek(struct.calcsize("<" + _GGUF_SCALARS[kind]), 1)
            elif kind == 8:
                f.seek(length(), 1)
            elif kind == 9:
                item, n = read("I"), length()
                if item in _GGUF_SCALARS:
                    f.seek(n * struct.calcsize("<" + _GGUF_SCALARS[item]), 1)
                else:
                    for _ in range(n):
                        skip(item)
            else:
                raise ValueError(f"{path}: unknown GGUF value type {kind}")

        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        read("I"), read("Q")  # version, tensor count
        for _ in range(read("Q")):
            key, kind = text(), read("I")
            if key == "general.file_type" and kind in _GGUF_SCALARS:
                return int(read(_GGUF_SCALARS[kind]))
            skip(kind)
    return None


class LlamaCppModel(Model):
    """A GGUF model in llama.cpp, decoding many sequences per step.

    requantize: 'auto' (default) loads a once-made copy of a Q4_1 file in the format
    fastest on this CPU (`best_format`); 'bf16', 'f16' or 'q8_0' force that copy; None
    loads the file as shipped. n_threads: pin the thread count (default: share the
    cores with whatever else runs, see cores.py).
    """

    backend = "llama.cpp"

    def __init__(self, path: Path, *, n_ctx: int = 1024, n_parallel: int = 32,
                 n_batch: int = 512, n_threads: int | None = None, n_gpu_layers: int = 0,
                 chat_template: str | None = None, kv_unified: bool = False,
                 flash_attn: int = -1, requantize: str | None = "auto"):
        import llama_cpp as L

        self.L = L
        _silence(L)
        path = Path(path)
        if path.is_dir():
            raise ModelLoadError(f"{path} is a directory; the llama.cpp backend needs a .gguf "
                                 f"file (load an HF checkpoint directory with backend='torch')")
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic != b"GGUF":
            raise ModelLoadError(f"{path} is not a GGUF file (it starts {magic!r}, not b'GGUF'); "
                                 f"convert it with llama.cpp's convert_hf_to_gguf.py, or load "
                                 f"an HF checkpoint with backend='torch'")
        self.path = str(path)
        self.device = "cuda" if n_gpu_layers else "cpu"
        L.llama_backend_init()
        self.source_path = self.path
        if requantize == "auto":  # a format pinned for every load (reproducible across machines)
            requantize = pinned_format()
        if requantize and not n_gpu_layers:
            self.path = str(fast_cpu_copy(L, path, requantize))
        # the copy's format ('q8_0', 'bf16', 'f16') or None for the file as shipped: what
        # another process must ask for to load the very same weights (synthkit.scale's actors)
        self.requantized = next((f for f in FORMATS if self.path.endswith(f"-{f}.gguf")),
                                None) if self.path != self.source_path else None
        mparams = L.llama_model_default_params()
        mparams.n_gpu_layers = n_gpu_layers
        if not n_gpu_layers and amx_kernels(L):
            mparams.use_extra_bufts = False
        self._model = L.llama_model_load_from_file(self.path.encode(), mparams)
        if not self._model:
            raise ModelLoadError(f"llama.cpp could not load {path}: the file is truncated, "
                                 f"corrupt or of an unsupported architecture; re-download or "
                                 f"reinstall it")
        self._vocab = L.llama_model_get_vocab(self._model)
        self.n_vocab = L.llama_vocab_n_tokens(self._vocab)
        self.n_ctx_train = L.llama_model_n_ctx_train(self._model)
        self.n_ctx = min(n_ctx, self.n_ctx_train) if self.n_ctx_train > 0 else n_ctx
        self.n_parallel = max(1, int(n_parallel))
        self.kv_unified = kv_unified
        self.n_batch = max(n_batch, self.n_parallel)
        cparams = L.llama_context_default_params()
        # one KV stream per sequence: attention then scans only a sequence's own cells
        cparams.n_ctx = self.n_ctx if kv_unified else self.n_ctx * self.n_parallel
        cparams.n_batch = self.n_batch
        cparams.n_ubatch = self.n_batch
        cparams.n_seq_max = self.n_parallel
        cparams.kv_unified = kv_unified
        cparams.flash_attn_type = flash_attn
        # n_threads pins the count; otherwise up to default_threads(), fewer while other
        # processes keep cores busy (see cores.py: spinning threads on a shared core stall)
        self._share = CoreShare(n_threads or default_threads(), adaptive=not n_threads)
        self._threads = self._share.threads()
        cparams.n_threads = self._threads
        cparams.n_threads_batch = self._threads
        cparams.no_perf = True
        self._ctx = L.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            raise ModelLoadError(f"llama.cpp could not create a context of {self.n_ctx} tokens "
                                 f"for {self.n_parallel} sequences; lower n_ctx= or n_parallel=")
        self._mem = L.llama_get_memory(self._ctx)
        self._batch = L.llama_batch_init(self.n_batch, 0, 1)
        self.bos_id = L.llama_vocab_bos(self._vocab)
        self.eos_id = L.llama_vocab_eos(self._vocab)
        self.bos_token = self._token_text(self.bos_id)
        self.eos_token = self._token_text(self.eos_id)
        self.add_bos = bool(self._meta("tokenizer.ggml.add_bos_token") == "true")
        self.chat_template = chat_template or self._meta("tokenizer.chat_template")
        self.n_params = L.llama_model_n_params(self._model)
        self.weights = self._describe_weights()

    def _describe_weights(self) -> str:
        """What was loaded, e.g. 'BF16 copy of SmolLM2-135M-Instruct.Q4_1.gguf'."""
        buf = ctypes.create_string_buffer(256)
        self.L.llama_model_desc(self._model, buf, len(buf))
        kind = buf.value.decode(errors="replace").split()[-1]  # "llama ?B BF16" -> "BF16"
        name = Path(self.source_path).name
        return kind if self.path == self.source_path else f"{kind} copy of {name}"

    # --- metadata and tokens -----------------------------------------------------
    def _meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = self.L.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        if n < 0:
            return None
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            self.L.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace")

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        t = self.L.llama_vocab_get_text(self._vocab, token)
        return t.decode("utf-8", errors="replace") if t else ""

    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        arr = (self.L.llama_token * cap)()
        n = self.L.llama_tokenize(self._vocab, data, len(data), arr, cap, add_special, True)
        if n < 0:
            cap = -n
            arr = (self.L.llama_token * cap)()
            n = self.L.llama_tokenize(self._vocab, data, len(data), arr, cap, add_special, True)
        return list(arr[:n])

    def _piece(self, token: int, special: bool = False) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self.L.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self.L.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        return buf.raw[:n]

    def detokenize(self, ids) -> str:
        return b"".join(self._piece(int(t)) for t in ids).decode("utf-8", errors="replace")

    def is_end_of_turn(self, token: int) -> bool:
        return bool(self.L.llama_vocab_is_eog(self._vocab, token))

    # --- sampling ----------------------------------------------------------------
    def _make_sampler(self, s: Sampling, seed: int):
        L = self.L
        chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        if s.greedy:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_greedy())
            return chain
        if s.top_k > 0:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_k(s.top_k))
        if s.top_p < 1.0:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_p(s.top_p, 1))
        if s.min_p > 0:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_min_p(s.min_p, 1))
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_temp(s.temperature))
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_dist(seed))
        return chain

    def logits(self, prompts: list[str]) -> np.ndarray:
        """Next-token logits after each prompt, shape (len(prompts), n_vocab)."""
        rows = []
        for p in prompts:
            ids = self.prompt_ids(p)
            self._decode_one(ids)
            rows.append(self._logits_row(len(ids) - 1).copy())
            self.L.llama_memory_seq_rm(self._mem, 0, -1, -1)
        return np.stack(rows)

    def _decode_one(self, ids: list[int]) -> None:
        if len(ids) >= self.n_ctx:
            raise PromptTooLongError(f"a prompt of {len(ids)} tokens does not fit n_ctx={self.n_ctx}")
        self.L.llama_memory_seq_rm(self._mem, -1, -1, -1)
        for start in range(0, len(ids), self.n_batch):
            chunk = ids[start:start + self.n_batch]
            b = self._batch
            for j, t in enumerate(chunk):
                self._put(j, t, start + j, 0, start + j == len(ids) - 1)
            b.n_tokens = len(chunk)
            self._set_threads()
            self._check_decode(self.L.llama_decode(self._ctx, b))

    def _logits_row(self, i: int) -> np.ndarray:
        ptr = self.L.llama_get_logits_ith(self._ctx, i)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _top_logprobs(self, i: int, token: int, k: int) -> dict:
        row = self._logits_row(i).astype(np.float64)
        m = row.max()
        logz = m + np.log(np.exp(row - m).sum())
        top = np.argpartition(-row, k)[:k] if k < len(row) else np.arange(len(row))
        top = top[np.argsort(-row[top])]
        return {"token": self._piece(token, True).decode("utf-8", "replace"),
                "logprob": float(row[token] - logz),
                "top": [[self._piece(int(t), True).decode("utf-8", "replace"), float(row[t] - logz)]
                        for t in top]}

    # --- the batched loop --------------------------------------------------------
    def _put(self, j: int, token: int, pos: int, sid: int, want_logits: bool) -> None:
        b = self._batch
        b.token[j] = token
        b.pos[j] = pos
        b.n_seq_id[j] = 1
        b.seq_id[j][0] = sid
        b.logits[j] = 1 if want_logits else 0

    def _check_decode(self, rc: int) -> None:
        if rc == 1:
            raise GenerationError("llama.cpp found no free KV-cache slot for this batch; load "
                                  "the model with a larger n_ctx= or a smaller n_parallel=")
        if rc != 0:
            raise GenerationError(f"llama_decode failed with code {rc}; if it persists, reload "
                                  f"the model (load_model) and lower n_parallel=")

    def _stream(self, requests: list[Request], sampling: Sampling):
        L = self.L
        queue = deque(requests)
        active: dict[int, _Seq] = {}
        free = list(range(self.n_parallel))  # a heap: new sequences take the lowest id
        self.tokens_in_flight = 0  # for the progress bar: tokens sampled so far by this call
        L.llama_memory_clear(self._mem, True)
        try:
            while queue or active:
                self._admit(queue, active, free, sampling)
                self._decode_step(active)
                for s in list(active.values()):
                    if s.prefix_only and not s.feed:  # shared prompt prefix is in: copy it
                        self._share_prefix(s)
                    if s.logit_index < 0:
                        continue
                    token = L.llama_sampler_sample(s.sampler, self._ctx, s.logit_index)
                    reason = self._advance(s, token, sampling)
                    if reason:
                        yield s.req, self._finish(s, reason)
                        del active[s.sid]
                        heapq.heappush(free, s.sid)
                        if not queue and not self.kv_unified:
                            self._compact(active, free)
        finally:
            for s in active.values():
                L.llama_sampler_free(s.sampler)
            L.llama_memory_clear(self._mem, True)

    def _admit(self, queue: deque, active: dict[int, _Seq], free: list[int], sampling: Sampling):
        """Start waiting requests in free slots (continuous batching).

        Requests admitted together with the same prompt share its prefill: the first
        (the leader) decodes all but the last prompt token once, its KV cells are
        copied to the others, then each decodes the last token itself. Magpie and
        best-of-K ask for many samples of one prompt, so this saves most prefill.

        A request admitted later, into a slot that just freed up, takes the prompt from a
        running sequence that already holds it (a donor): without that, every late sample
        of a long prompt prefilled it again, which cost most of lab 04's sampling time.
        """
        leaders: dict[tuple, _Seq] = {}
        donors = {tuple(s.req.prompt_ids): s for s in active.values()
                  if not s.prefix_only and s.pos >= len(s.req.prompt_ids) - 1}
        reserved = sum(s.reserve for s in active.values())
        while queue and free:
            need = min(len(queue[0].prompt_ids) + sampling.max_tokens, self.n_ctx)
            if self.kv_unified and active and reserved + need > self.n_ctx:
                break  # one shared KV pool: wait until running sequences free room
            req = queue.popleft()
            s = _Seq(req, heapq.heappop(free), self._make_sampler(sampling, req.seed), need,
                     list(req.prompt_ids), logprobs=[] if sampling.logprobs else None)
            key = tuple(req.prompt_ids)
            leader = leaders.get(key)
            donor = donors.get(key) if leader is None and len(key) > 1 else None
            if leader is not None:
                s.feed = []  # waits for the leader's prefix
                leader.followers.append(s)
            elif donor is not None:
                self._copy_prompt(donor, s)
            elif len(key) > 1:
                s.feed = list(key[:-1])
                s.prefix_only = True
                leaders[key] = s
            active[s.sid] = s
            reserved += need

    def _decode_step(self, active: dict[int, _Seq]) -> None:
        """One llama_decode over every running sequence: one token each for sequences
        that are generating, then prompt tokens, up to the batch size."""
        n = 0
        for s in sorted(active.values(), key=lambda s: (len(s.feed) > 1, s.sid)):
            take = min(len(s.feed), self.n_batch - n)
            s.logit_index = -1
            if take <= 0:
                continue
            done = take == len(s.feed)
            for j in range(take):
                self._put(n, s.feed[j], s.pos + j, s.sid, done and j == take - 1 and not s.prefix_only)
                n += 1
            s.pos += take
            s.feed = s.feed[take:]
            if done and not s.prefix_only:
                s.logit_index = n - 1
        self._batch.n_tokens = n
        self._set_threads()
        self._check_decode(self.L.llama_decode(self._ctx, self._batch))

    def _set_threads(self) -> None:
        n = self._share.threads()
        if n != self._threads:
            self.L.llama_set_n_threads(self._ctx, n, n)
            self._threads = n

    def _copy_prompt(self, donor: _Seq, s: _Seq) -> None:
        """Give `s` the donor's prompt cells (all but the last prompt token); `s` then
        decodes that last token itself. llama.cpp copies between KV streams only whole,
        so the donor's generated cells come along and are dropped again."""
        keep = len(s.req.prompt_ids) - 1
        self.L.llama_memory_seq_cp(self._mem, donor.sid, s.sid, -1, -1)
        self.L.llama_memory_seq_rm(self._mem, s.sid, keep, -1)
        s.pos, s.feed = keep, [s.req.prompt_ids[-1]]

    def _share_prefix(self, leader: _Seq) -> None:
        last = leader.req.prompt_ids[-1]
        for f in leader.followers:
            self.L.llama_memory_seq_cp(self._mem, leader.sid, f.sid, -1, -1)
            f.pos, f.feed = leader.pos, [last]
        leader.followers, leader.prefix_only, leader.feed = [], False, [last]

    def _compact(self, active: dict[int, _Seq], free: list[int]) -> None:
        """Keep running sequences on the lowest stream ids, with no gaps.

        With one KV stream per sequence, llama.cpp decodes a batch whose streams form a
        contiguous range much faster than one with holes (measured here: 31 of 32
        streams with a hole in the middle cost 37% more per step than without). So when
        a sequence ends and nothing waits to take its stream, the highest one moves down.
        """
        while free and active and free[0] < max(active):
            src, dst = max(active), heapq.heappop(free)
            self.L.llama_memory_seq_cp(self._mem, src, dst, -1, -1)
            self.L.llama_memory_seq_rm(self._mem, src, -1, -1)
            s = active.pop(src)
            s.sid = dst
            active[dst] = s
            heapq.heappush(free, src)

    def _advance(self, s: _Seq, token: int, sampling: Sampling) -> str | None:
        """Record one sampled token; return a finish reason or None to go on."""
        if self.is_end_of_turn(token):
            return "stop"
        if s.logprobs is not None:
            s.logprobs.append(self._top_logprobs(s.logit_index, token, sampling.logprobs))
        s.out_ids.append(token)
        self.tokens_in_flight += 1
        s.out_bytes += self._piece(token)
        if sampling.stop:
            text = s.out_bytes.decode("utf-8", errors="ignore")
            if any(stop in text for stop in sampling.stop):
                return "stop"
        if len(s.out_ids) >= sampling.max_tokens:
            return "length"
        if s.pos + 1 >= s.reserve:
            return "context"
        s.feed = [token]
        return None

    def _finish(self, s: _Seq, reason: str) -> Generation:
        self.L.llama_memory_seq_rm(self._mem, s.sid, -1, -1)
        self.L.llama_sampler_free(s.sampler)
        text = s.out_bytes.decode("utf-8", errors="replace")
        return Generation(prompt=s.req.prompt, text=text, finish_reason=reason,
                          prompt_tokens=len(s.req.prompt_ids), completion_tokens=len(s.out_ids),
                          token_ids=list(s.out_ids), logprobs=s.logprobs)

    def __del__(self):
        try:
            L = self.L
            if getattr(self, "_batch", None) is not None:
                L.llama_batch_free(self._batch)
            if getattr(self, "_ctx", None):
                L.llama_free(self._ctx)
            if getattr(self, "_model", None):
                L.llama_model_free(self._model)
        except Exception:
            pass
