"""The exercises, essays and concept checks of each lab, one module per lab.

``synthkit.labs.lab00`` belongs to ``00_welcome.ipynb``, ``lab01`` to ``01_...`` and so
on. A lab module defines ``LAB = "NN"``, ``TITLE``, ``NOTEBOOK`` (its file name), its
exercise objects (``ex1``, ``ex2``, ``essay1``, ...) and optionally one ``quiz``; a
notebook imports them (``from synthkit.labs.lab00 import ex1, quiz``).

This package holds lab content only. Finding labs by id is the grading side's job
(``synthkit.grading.registry``), so labs depend on grading and never the other way.
See CONTRIBUTING.md, "Adding a lab".
"""
