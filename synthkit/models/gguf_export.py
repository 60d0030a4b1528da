"""From a trained torch model to a GGUF file, so llama.cpp's fast batched sampling can
evaluate it.

Training happens in torch; sampling many answers is 5-10x faster on llama.cpp. The
bridge is a GGUF file written with the `gguf` package (the library llama.cpp itself
ships for this): hyperparameters from the transformers config, the tokenizer copied
from a GGUF of the same model family (the embedded teacher's, for models trained from
it), and every weight matrix in f16, or in Q8_0 through llama.cpp's own quantizer.

One detail is easy to miss: transformers and llama.cpp order the rows of the query and
key projections differently (two conventions for rotary embeddings: halves versus
interleaved pairs). `_permute_qk` does what llama.cpp's converter does; without it the
exported model loads fine and talks nonsense.

    load_model("run/out", backend="llama.cpp")   # exports a saved checkpoint on first load
    fast = synthkit.train.to_llamacpp(student)   # a model trained in memory, to llama.cpp

This module lives with the models because `load_model` uses it; `train.export` adds the
step from a trained model in memory to a loaded llama.cpp model.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelLoadError

DTYPES = ("auto", "f32", "f16", "bf16", "q8_0")


def _permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """transformers' rotary layout (halves) -> llama.cpp's (interleaved pairs), per head."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


_NAMES = [  # transformers name (after "model.") -> GGUF name
    (r"embed_tokens\.weight", "token_embd.weight"),
    (r"norm\.weight", "output_norm.weight"),
    (r"layers\.(\d+)\.input_layernorm\.weight", "blk.{}.attn_norm.weight"),
    (r"layers\.(\d+)\.post_attention_layernorm\.weight", "blk.{}.ffn_norm.weight"),
    (r"layers\.(\d+)\.self_attn\.q_proj\.weight", "blk.{}.attn_q.weight"),
    (r"layers\.(\d+)\.self_attn\.k_proj\.weight", "blk.{}.attn_k.weight"),
    (r"layers\.(\d+)\.self_attn\.v_proj\.weight", "blk.{}.attn_v.weight"),
    (r"layers\.(\d+)\.self_attn\.o_proj\.weight", "blk.{}.attn_output.weight"),
    (r"layers\.(\d+)\.mlp\.gate_proj\.weight", "blk.{}.ffn_gate.weight"),
    (r"layers\.(\d+)\.mlp\.up_proj\.weight", "blk.{}.ffn_up.weight"),
    (r"layers\.(\d+)\.mlp\.down_proj\.weight", "blk.{}.ffn_down.weight"),
]


def _gguf_name(name: str) -> str | None:
    if name == "lm_head.weight":
        return "output.weight"
    name = name.removeprefix("model.")
    for pattern, target in _NAMES:
        m = re.fullmatch(pattern, name)
        if m:
            return target.format(*m.groups())
    return None


def _tokens(tokenizer) -> list[str]:
    return tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))


def _tokenizer_template(tokenizer, template: str | os.PathLike | None):
    """A GGUF whose tokenizer is this tokenizer (its metadata is copied over)."""
    if template is None:
        from ..models import embedded_model_path
        template = embedded_model_path()
    stat = os.stat(template)
    reader = _read_template(str(template), stat.st_size, stat.st_mtime_ns)
    field = reader.get_field("tokenizer.ggml.tokens")
    theirs = field.contents() if field is not None else []
    if list(theirs) != _tokens(tokenizer):
        raise ModelLoadError(f"GGUF export copies the tokenizer from a GGUF of the same model family, "
                             f"and {template} has a different vocabulary; pass template= a GGUF "
                             f"file of the model this checkpoint was trained from")
    return reader


@functools.lru_cache(maxsize=1)
def _read_template(path: str, size: int, mtime_ns: int):
    """gguf's reader parses every field up front (4 s for SmolLM2's tokenizer on two cores):
    a lab that exports three students reads the template once. Size and mtime are in the
    key so a changed file is read again."""
    from gguf import GGUFReader
    return GGUFReader(path)


def _rope_theta(config) -> float:
    theta = getattr(config, "rope_theta", None)
    if theta is None:  # transformers 5 keeps it in rope_parameters
        theta = (getattr(config, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
    return float(theta)


def export_gguf(model, tokenizer, path, *, dtype: str = "q8_0", template=None, name: str = "synthkit") -> Path:
    """Write a transformers Llama-family causal LM (e.g. SmolLM2) to a GGUF file.

    dtype: "f32" (exact), "f16"/"bf16" (rounded to 16 bits), "q8_0" (8-bit blocks), or
    "auto": the format llama.cpp's CPU kernels run fastest here (bf16 with AVX512-BF16,
    else q8_0). The weights are written in f32, then llama.cpp's own quantizer converts
    them. The file appears whole or not at all."""
    import gguf

    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r}: choose one of {DTYPES}")
    config = model.config
    if getattr(config, "model_type", "") != "llama":
        raise ModelLoadError(f"GGUF export supports Llama-architecture models (SmolLM2, Llama); "
                             f"this one is {getattr(config, 'model_type', '?')!r}")
    reader = _tokenizer_template(tokenizer, template)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    f32 = path.with_name(f".{path.name}.f32.tmp{os.getpid()}")
    n_head, n_kv = config.num_attention_heads, getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_head

    w = gguf.GGUFWriter(str(f32), "llama")
    w.add_name(name)
    w.add_context_length(config.max_position_embeddings)
    w.add_embedding_length(config.hidden_size)
    w.add_block_count(config.num_hidden_layers)
    w.add_feed_forward_length(config.intermediate_size)
    w.add_rope_dimension_count(head_dim)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(config.rms_norm_eps)
    w.add_rope_freq_base(_rope_theta(config))
    w.add_vocab_size(config.vocab_size)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    for field in reader.fields.values():  # the tokenizer, chat template included
        if field.name.startswith("tokenizer."):
            sub = field.types[1] if len(field.types) > 1 else None
            w.add_key_value(field.name, field.contents(), field.types[0], sub_type=sub)
    state = model.state_dict()
    tied = getattr(config, "tie_word_embeddings", False)
    for key, tensor in state.items():
        target = _gguf_name(key)
        if target is None:
            if "rotary_emb" in key:
                continue
            raise ModelLoadError(f"GGUF export does not know the weight {key!r}")
        if target == "output.weight" and tied:
            continue  # llama.cpp reuses the token embedding, as transformers does
        data = tensor.detach().to("cpu", torch.float32).numpy()
        if target.endswith("attn_q.weight"):
            data = _permute_qk(data, n_head)
        elif target.endswith("attn_k.weight"):
            data = _permute_qk(data, n_kv)
        w.add_tensor(target, np.ascontiguousarray(data, dtype=np.float32))
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
    finally:
        w.close()
    if dtype == "f32":
        os.replace(f32, path)
    else:
        _quantize(f32, path, dtype)
    return path


def _quantize(src: Path, dst: Path, dtype: str) -> None:
    """f32 GGUF -> f16 / bf16 / Q8_0 GGUF with llama.cpp's own quantizer."""
    import llama_cpp as L

    from .llamacpp import best_format
    fmt = best_format(L) if dtype == "auto" else dtype
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    params = L.llama_model_quantize_default_params()
    params.ftype = getattr(L, f"LLAMA_FTYPE_MOSTLY_{fmt.upper()}")
    params.nthread = os.cpu_count() or 1
    try:
        if L.llama_model_quantize(str(src).encode(), str(tmp).encode(), params) != 0:
            raise ModelLoadError(f"llama.cpp could not convert {src} to {fmt}; export dtype='f32' instead")
        os.replace(tmp, dst)
    finally:
        src.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def gguf_for_checkpoint(folder, dtype: str = "auto") -> Path:
    """The GGUF of an HF checkpoint folder, exported on first use and kept beside it
    (re-exported if the weights are newer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise ModelLoadError(f"{folder} is a directory without config.json, so not an HF checkpoint; "
                             f"pass a .gguf file or a checkpoint folder")
    path = folder / f"model-{dtype}.gguf"
    weights = [p for p in folder.glob("*.safetensors")] + [p for p in folder.glob("*.bin")]
    if path.exists() and all(p.stat().st_mtime <= path.stat().st_mtime for p in weights):
        return path
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True)
    except Exception as e:
        raise ModelLoadError(f"transformers could not load the checkpoint {folder} ({type(e).__name__}: "
                             f"{str(e)[:160]}); it may be incomplete or corrupt") from None
    return export_gguf(model, tokenizer, path, dtype=dtype, name=folder.name)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60] or "model"
