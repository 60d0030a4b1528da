"""The labs the course has, found by name: ``synthkit.labs.labNN`` is lab NN.

A lab module defines ``LAB = "NN"``, ``TITLE``, ``NOTEBOOK`` (its notebook's file name:
title and notebook are written there once, see ``course``), its exercise objects
(``ex1``, ``essay1``, ...) and optionally one ``quiz``. Nothing registers a lab: adding
``synthkit/labs/lab04.py`` is enough. Labs import the grading machinery; grading finds
labs only through this module, so the dependency runs one way.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

from .exercises import Exercise
from .quiz import Quiz

LABS_PACKAGE = "synthkit.labs"
_LAB_IN_NAME = re.compile(r"(?:^|[^0-9])(\d{2})_[A-Za-z]")


def lab_id_from_name(name: str) -> str | None:
    """'00_welcome.ipynb' -> '00'; 'alice-03_magpie.ipynb' -> '03'; else None."""
    m = _LAB_IN_NAME.search(Path(name).name)
    return m.group(1) if m else None


def available_labs() -> list[str]:
    """Every lab id with a module in synthkit/labs, sorted."""
    package = importlib.import_module(LABS_PACKAGE)
    return sorted(m.name[3:] for m in pkgutil.iter_modules(package.__path__)
                  if re.fullmatch(r"lab\d{2}", m.name))


def lab_module(lab: str):
    """The module of lab `lab` ('0', '00' or 0); ImportError naming the labs there are."""
    lab = str(lab).zfill(2)
    if lab not in available_labs():
        raise ImportError(f"synthkit has no lab {lab!r} (it knows {', '.join(available_labs()) or 'none'}); "
                          f"a lab is a module synthkit/labs/lab{lab}.py")
    return importlib.import_module(f"{LABS_PACKAGE}.lab{lab}")


def lab_exercises(lab: str) -> list:
    """The lab's exercises and essays, in the order the module defines them."""
    return [v for v in vars(lab_module(lab)).values() if isinstance(v, Exercise)]


def lab_quiz(lab: str):
    """The lab's concept check, or None."""
    q = getattr(lab_module(lab), "quiz", None)
    return q if isinstance(q, Quiz) else None


def lab_title(lab: str) -> str:
    """The lab's TITLE ('' for a lab synthkit does not have)."""
    try:
        return getattr(lab_module(lab), "TITLE", "")
    except ImportError:
        return ""


def lab_notebook(lab: str) -> str:
    """The lab's notebook file name (NOTEBOOK), e.g. '00_welcome.ipynb'."""
    return getattr(lab_module(lab), "NOTEBOOK", "")
