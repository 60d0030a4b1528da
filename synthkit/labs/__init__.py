"""The exercises, essays and concept checks of each lab, one module per lab.

``synthkit.labs.lab00`` belongs to ``00_welcome.ipynb``, ``lab01`` to ``01_...`` and so
on. A lab module defines its exercise objects (``ex1``, ``ex2``, ``essay1``, ...) and one
``quiz``; a notebook imports them (``from synthkit.labs.lab00 import ex1, quiz``) and the
grader finds them here from a notebook's file name.

A new lab module needs: ``LAB = "NN"``, ``TITLE``, ``NOTEBOOK`` (its file name), its
exercise objects, and optionally ``quiz``.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

_LAB_IN_NAME = re.compile(r"(?:^|[^0-9])(\d{2})_[A-Za-z]")


def lab_id_from_name(name: str) -> str | None:
    """'00_welcome.ipynb' -> '00'; 'alice-03_magpie.ipynb' -> '03'; else None."""
    m = _LAB_IN_NAME.search(Path(name).name)
    return m.group(1) if m else None


def available_labs() -> list[str]:
    return sorted(m.name[3:] for m in pkgutil.iter_modules(__path__)
                  if re.fullmatch(r"lab\d{2}", m.name))


def lab_module(lab: str):
    lab = str(lab).zfill(2)
    if lab not in available_labs():
        raise ImportError(f"synthkit has no lab {lab!r} (it knows {', '.join(available_labs()) or 'none'})")
    return importlib.import_module(f"{__name__}.lab{lab}")


def lab_exercises(lab: str) -> list:
    """The lab's exercises and essays, in the order the module defines them."""
    from ..grading.exercises import Exercise

    mod = lab_module(lab)
    return [v for v in vars(mod).values() if isinstance(v, Exercise)]


def lab_quiz(lab: str):
    from ..grading.quiz import Quiz

    q = getattr(lab_module(lab), "quiz", None)
    return q if isinstance(q, Quiz) else None


def lab_title(lab: str) -> str:
    try:
        return getattr(lab_module(lab), "TITLE", "")
    except ImportError:
        return ""
