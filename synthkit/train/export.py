"""From a model trained in memory to a llama.cpp model that samples it fast.

The GGUF writing itself (`export_gguf`) lives in `synthkit.models.gguf_export`, because
`load_model` also uses it for checkpoint folders; this adds the last step of training.
"""
from __future__ import annotations

from ..cache import cache_dir
from ..models import load_model
from ..models.gguf_export import DTYPES, _safe, export_gguf  # noqa: F401  (DTYPES re-exported)


def to_llamacpp(student, dtype: str = "auto", **load_kwargs):
    """The student's current weights on the llama.cpp backend, for fast batched sampling.

    The GGUF goes to the synthkit cache, named by a digest of the weights, so exporting
    the same weights twice costs nothing and different weights never share a file (nor
    cached generations)."""
    digest = student.weights_digest()
    path = cache_dir() / "models" / f"{_safe(student.name)}-{digest}-{dtype}.gguf"
    if not path.exists():
        export_gguf(student.model, student.tokenizer, path, dtype=dtype, name=student.name)
    fast = load_model(path, backend="llama.cpp", **load_kwargs)
    fast.name, fast.license = f"{student.name}@{digest[:8]}", student.license
    return fast
