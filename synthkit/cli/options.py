"""Options that several commands share, each declared once.

A command asks for the ones it takes (`generation(p)` for anything that samples from a
model, `training(p)` for anything that trains one); the names, defaults and help texts are
then the same everywhere, so `--no-cache` means one thing in `magpie` and in `cai`.
"""
from __future__ import annotations

BACKENDS = ("llama.cpp", "torch")
MODEL_HELP = "a GGUF file or HF checkpoint directory (default: the embedded teacher)"


def out(p, help: str, required: bool = True) -> None:
    p.add_argument("--out", required=required, help=help)


def seed(p, default: int = 0) -> None:
    p.add_argument("--seed", type=int, default=default, help=f"run seed (default {default})")


def generation(p, *, temperature: float | None = None, max_tokens: int | None = None,
               max_tokens_help: str | None = None, backend_help: str | None = None) -> None:
    """--model, --backend, --seed and --no-cache; --temperature and --max-tokens when the
    command gives their defaults."""
    if temperature is not None:
        p.add_argument("--temperature", type=float, default=temperature,
                       help=f"sampling temperature (default {temperature})")
    if max_tokens is not None:
        p.add_argument("--max-tokens", type=int, default=max_tokens,
                       help=max_tokens_help or f"most new tokens per reply (default {max_tokens})")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--backend", default="llama.cpp", choices=BACKENDS,
                   help=backend_help or "which backend generates (default llama.cpp)")
    seed(p)
    p.add_argument("--no-cache", action="store_true", help="do not read or write the generation cache")


def training(p, *, model: bool = True) -> None:
    """--model (the starting weights), --device and --seed for a command that trains."""
    if model:
        p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: CUDA when present")
    seed(p)
