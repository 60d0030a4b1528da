"""Size profiles: how big a notebook's run is.

Every lab runs at one of three sizes:

- ``ci``     tiny: what the tests run, seconds per lab;
- ``laptop`` the default: 2 CPU cores, no GPU, each lab well under ten minutes;
- ``gpu``    CUDA is present: more samples, longer generations, bigger models.

The profile comes from, in order: a name given to ``profile("ci")`` (a notebook's
parameters cell may pin one), the ``SYNTHKIT_PROFILE`` environment variable, and
finally the machine (``gpu`` when torch sees CUDA, else ``laptop``). A notebook asks
for its sizes with ``pick``::

    PROFILE = profiles.profile()
    N = profiles.pick(ci=4, laptop=16, gpu=128)
"""
from __future__ import annotations

import os
from pathlib import Path

PROFILES = ("ci", "laptop", "gpu")
ENV = "SYNTHKIT_PROFILE"

_pinned: str | None = None
_detected: str | None = None


def _validate(name: str, where: str) -> str:
    value = str(name).strip().lower()
    if value not in PROFILES:
        raise ValueError(f"unknown size profile {name!r} ({where}); choose one of {', '.join(PROFILES)}")
    return value


def _detect() -> str:
    """'gpu' when torch sees a CUDA device, else 'laptop'. Torch is only imported when
    an NVIDIA driver is visible, so a laptop does not pay for the import."""
    global _detected
    if _detected is None:
        _detected = "laptop"
        if Path("/proc/driver/nvidia").exists() or os.environ.get("CUDA_VISIBLE_DEVICES", "").strip():
            try:
                import torch
                if torch.cuda.is_available():
                    _detected = "gpu"
            except Exception:  # a broken torch install is not a GPU
                pass
    return _detected


def profile(name: str | None = None) -> str:
    """The current size profile. ``profile("ci")`` pins one for this process."""
    global _pinned
    if name is not None:
        _pinned = _validate(name, "passed to profile()")
        return _pinned
    if _pinned is not None:
        return _pinned
    env = os.environ.get(ENV, "").strip()
    if env:
        return _validate(env, f"from ${ENV}")
    return _detect()


def reset() -> None:
    """Forget a pinned profile (the environment and the machine decide again)."""
    global _pinned
    _pinned = None


def pick(ci=None, laptop=None, gpu=None, *, profile_name: str | None = None):
    """The value for the current profile: ``pick(ci=4, laptop=16, gpu=128)``.

    A value left out falls back to the next smaller profile (gpu -> laptop -> ci), so
    ``pick(ci=2, laptop=8)`` gives 8 on a GPU machine too.
    """
    values = {"ci": ci, "laptop": laptop, "gpu": gpu}
    if all(v is None for v in values.values()):
        raise ValueError("pick() needs a value for at least one profile: pick(ci=..., laptop=..., gpu=...)")
    name = _validate(profile_name, "passed to pick()") if profile_name else profile()
    order = PROFILES[: PROFILES.index(name) + 1][::-1]  # e.g. gpu, laptop, ci
    for candidate in order:
        if values[candidate] is not None:
            return values[candidate]
    # only bigger profiles have values: take the smallest of those
    for candidate in PROFILES:
        if values[candidate] is not None:
            return values[candidate]
