"""The exercises, essays and concept checks of each lab, one module per lab.

``synthkit.labs.lab00`` belongs to ``00_welcome.ipynb``, ``lab01`` to ``01_...`` and so
on. A lab module defines ``LAB = "NN"``, ``TITLE``, ``NOTEBOOK`` (its file name), its
exercise objects (``ex1``, ``ex2``, ``essay1``, ...) and optionally one ``quiz``; a
notebook imports them (``from synthkit.labs.lab00 import ex1, quiz``).

This package holds lab content only. Finding labs by id is the grading side's job
(``synthkit.grading.registry``), so labs depend on grading and never the other way.
See CONTRIBUTING.md, "Adding a lab".
"""
from pathlib import Path  # noqa: E402

from ..grading.paths import home  # noqa: E402


def work_dir(lab: str) -> Path:
    """The folder where lab `lab` ("05", "lab10", ...) keeps the files it writes, made if
    missing: $SYNTHKIT_HOME/work/labNN (by default ~/.synthkit/work/labNN).

    Not beside the notebook: ``synthkit assign`` regenerates the lab folder, a class folder is
    shared, and data sets and model files do not belong among notebooks that get handed in.
    The folder outlives the kernel, so what a lab wrote can be opened after it finishes."""
    digits = "".join(ch for ch in str(lab) if ch.isdigit())
    if not digits:
        raise ValueError(f"work_dir wants a lab number such as '05' or 'lab10', not {lab!r}")
    folder = home() / "work" / f"lab{int(digits):02d}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
