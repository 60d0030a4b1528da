"""synthkit: synthetic data and self-improvement loops for LLMs, offline on a laptop.

The library mirrors the course: one module per technique (magpie, self_instruct,
rejection, ...), all built on one generation interface (`synthkit.models`).
"""
__version__ = "0.1.0"

from .models import Generation, Sampling, embedded_model_path, load_model  # noqa: E402

__all__ = ["load_model", "Sampling", "Generation", "embedded_model_path", "__version__"]
