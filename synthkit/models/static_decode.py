"""Continuous batching on a static KV cache, and seeded sampling for every row at once.

The torch backend's first loop decoded fixed chunks: a chunk waited for its longest row,
its KV cache and attention mask were re-concatenated every step, and each row drew its
token with its own `torch.Generator` in a Python loop. This module is what replaced it
(for the Llama family, which the course's teacher belongs to; other architectures keep
the chunk loop):

- **A static KV cache**: keys and values live in tensors preallocated as
  (layers, slots, kv_heads, max_len, head_dim), bf16 on CUDA. A decode step writes each
  row's new key and value at that row's own position and attends over the buffer with a
  mask built from the rows' lengths, so rows at different positions share one step.
- **Continuous batching**: a finished row's slot takes the next waiting prompt (its
  prefill copied into the slot), so no row waits for the longest one. The live rows are
  kept in slots 0..n-1 (a finished row's hole is filled by the last row), so on CPU a step
  computes only the live rows, and only up to the longest live length.
- **One step whose shapes never change** on CUDA (all slots, the full length): that is
  what lets `CUDAGraphStep` capture it once and replay it for every token.
- **Counter-based sampling** (`gumbel_pick`): a token is drawn by Gumbel-max, with the
  noise for (sequence seed, position, token id) computed by an integer hash on the
  device instead of read from a per-row generator. The draw for a row depends only on its
  seed, its position and its logits, never on its batch mates, and all rows draw in one
  kernel with one transfer to the host per step.

The layer maths reuse the model's own modules (projections, norms, MLP, rotary
embedding); only the attention over the static buffer is written here.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SAMPLER_TAG = "gumbel32"  # in the fingerprint: samples drawn before this sampler differ


# --- which models this runs ----------------------------------------------------------

def supports(model) -> bool:
    """True for a Llama-style decoder (SmolLM2, Llama, and Mistral/Qwen2 without sliding
    windows or per-head norms); anything else keeps the chunk loop."""
    cfg = getattr(model, "config", None)
    inner = getattr(model, "model", None)
    if cfg is None or inner is None or getattr(cfg, "model_type", "") not in ("llama", "mistral", "qwen2"):
        return False
    if getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True):
        return False
    needed = ("embed_tokens", "layers", "norm", "rotary_emb")
    if not all(hasattr(inner, n) for n in needed) or not hasattr(model, "lm_head"):
        return False
    attn = inner.layers[0].self_attn
    return (all(hasattr(attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj", "scaling", "head_dim"))
            and not hasattr(attn, "q_norm"))


# --- the cache ------------------------------------------------------------------------

class StaticKV:
    """Preallocated keys and values for `slots` sequences of up to `max_len` tokens.

    `capacity` below max_len allocates less and grows (doubling) as rows get longer: on a
    CPU, where shapes may change, a laptop then does not hold the cache for max_tokens it
    may never reach. A CUDA graph needs the full length from the start."""

    def __init__(self, model, slots: int, max_len: int, dtype, device, capacity: int | None = None):
        cfg = model.config
        attn = model.model.layers[0].self_attn
        kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        self.slots, self.max_len = slots, max_len
        self._shape = (len(model.model.layers), slots, kv_heads, None, attn.head_dim)
        size = max_len if capacity is None else max(1, min(max_len, capacity))
        self.k = torch.zeros(self._with(size), dtype=dtype, device=device)
        self.v = torch.zeros(self._with(size), dtype=dtype, device=device)

    def _with(self, length: int) -> tuple:
        return self._shape[:3] + (length,) + self._shape[4:]

    def ensure(self, length: int) -> None:
        """Room for `length` positions per slot (grows to at most max_len)."""
        have = self.k.shape[3]
        if length <= have:
            return
        size = min(self.max_len, max(length, 2 * have))
        for name in ("k", "v"):
            old = getattr(self, name)
            new = torch.zeros(self._with(size), dtype=old.dtype, device=old.device)
            new[:, :, :, :have] = old
            setattr(self, name, new)

    def load(self, slot: int, keys, values, length: int) -> None:
        """Copy one prefilled prompt in: keys/values (layers, kv_heads, >= length, head_dim),
        its tokens in the last `length` columns (left padding)."""
        self.ensure(length)
        self.k[:, slot, :, :length] = keys[:, :, keys.shape[2] - length:]
        self.v[:, slot, :, :length] = values[:, :, values.shape[2] - length:]

    def move(self, src: list[int], dst: list[int], width: int) -> None:
        """Copy slots `src` into slots `dst` (the first `width` positions)."""
        s = torch.tensor(src, device=self.k.device)
        d = torch.tensor(dst, device=self.k.device)
        self.k[:, d, :, :width] = self.k[:, s, :, :width]
        self.v[:, d, :, :width] = self.v[:, s, :, :width]


def decode_step(model, kv: StaticKV, tokens, positions, n: int, width: int):
    """One token for slots 0..n-1: tokens and positions (n,) on the device; each row's new
    key and value go to its own position; attention sees positions < width that are at
    most the row's own. Returns next-token logits (n, vocab), float32."""
    inner = model.model
    h = inner.embed_tokens(tokens[:, None])  # (n, 1, hidden)
    cos, sin = inner.rotary_emb(h, positions[:, None])
    cos, sin = cos[:, None], sin[:, None]  # (n, 1, 1, head_dim): broadcast over heads
    rows = torch.arange(n, device=tokens.device)
    mask = (torch.arange(width, device=tokens.device)[None, :] <= positions[:, None])[:, None, None, :]
    for i, layer in enumerate(inner.layers):
        attn = layer.self_attn
        x = layer.input_layernorm(h)
        q = attn.q_proj(x).view(n, 1, -1, attn.head_dim).transpose(1, 2)
        k = attn.k_proj(x).view(n, 1, -1, attn.head_dim).transpose(1, 2)
        v = attn.v_proj(x).view(n, 1, -1, attn.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        ki, vi = kv.k[i], kv.v[i]
        ki[rows, :, positions] = k[:, :, 0].to(ki.dtype)
        vi[rows, :, positions] = v[:, :, 0].to(vi.dtype)
        keys, values = ki[:n, :, :width], vi[:n, :, :width]
        o = F.scaled_dot_product_attention(q, keys.to(q.dtype), values.to(q.dtype), attn_mask=mask,
                                           scale=attn.scaling, enable_gqa=True)
        h = h + attn.o_proj(o.transpose(1, 2).reshape(n, 1, -1))
        h = h + layer.mlp(layer.post_attention_layernorm(h))
    return model.lm_head(inner.norm(h)[:, -1]).float()


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class CUDAGraphStep:
    """`decode_step` over all slots and the full length, captured once as a CUDA graph.

    Its inputs live in fixed tensors; a call copies the live rows' tokens and positions
    in (the other slots decode a dummy token at position 0, ignored: those slots are free,
    and a prompt loaded into one overwrites it) and replays. Make it before any prompt is
    loaded: the warm-up steps write into every slot. capture=False runs the same
    fixed-shape step eagerly (how the CPU tests exercise this path)."""

    def __init__(self, model, kv: StaticKV, autocast, capture: bool = True):
        self.model, self.kv, self.autocast, dev = model, kv, autocast, kv.k.device
        self.tokens = torch.zeros(kv.slots, dtype=torch.long, device=dev)
        self.positions = torch.zeros(kv.slots, dtype=torch.long, device=dev)
        self.graph = None
        if not capture:
            return
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), autocast():
            for _ in range(3):  # warm-up: kernels chosen, workspaces allocated
                decode_step(model, kv, self.tokens, self.positions, kv.slots, kv.max_len)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), autocast():
            self.logits = decode_step(model, kv, self.tokens, self.positions, kv.slots, kv.max_len)

    def __call__(self, tokens, positions, n: int):
        self.tokens.zero_()
        self.positions.zero_()
        self.tokens[:n] = tokens
        self.positions[:n] = positions
        if self.graph is None:
            with self.autocast():
                self.logits = decode_step(self.model, self.kv, self.tokens, self.positions,
                                          self.kv.slots, self.kv.max_len)
        else:
            self.graph.replay()
        return self.logits[:n]


# --- counter-based sampling ------------------------------------------------------------
_M32 = 0xFFFFFFFF


def _mix32(x):
    """A 32-bit integer hash (xorshift-multiply rounds) on int64 tensors holding values
    below 2**32; multipliers below 2**31 keep every product inside int64."""
    x = x & _M32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x5BD1E995) & _M32
    x = x ^ (x >> 13)
    x = (x * 0x2C1B3C6D) & _M32
    return x ^ (x >> 16)


def uniforms(seeds, positions, token_ids):
    """U(0, 1) noise, float64, one per (row, candidate): a pure function of the row's seed,
    its position (tokens generated so far) and the candidate's token id."""
    row = _mix32(_mix32(seeds.long() ^ 0x5DEECE6) ^ (positions.long() * 0x9E3779B & _M32))
    h = _mix32(row[:, None] ^ _mix32(token_ids.long() + 0x27D4EB2F))
    return (h.double() + 0.5) / 4294967296.0


def gumbel_pick(probs, ids, seeds, positions):
    """One token per row from `probs` over candidate `ids` (rows, k): the candidate that
    maximizes log p + Gumbel noise, which is a draw from p. Returns token ids (rows,)."""
    g = -torch.log(-torch.log(uniforms(seeds, positions, ids)))
    score = probs.double().log() + g
    return ids.gather(1, score.argmax(-1, keepdim=True)).squeeze(1)
