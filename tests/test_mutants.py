"""Every one-slip mutant of every exercise's reference solution fails its check
(`python -m synthkit.grading.mutants` prints the same table). A mutant that cannot change
behaviour is listed in its lab module's EQUIVALENT_MUTANTS with the reason."""
from __future__ import annotations

import pytest

from synthkit.grading.mutants import check_lab
from synthkit.grading.registry import available_labs

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("lab", available_labs())
def test_every_mutant_of_the_reference_fails_its_check(lab):
    reports = check_lab(lab)
    problems = [f"{r.exercise}: survives: {key}" for r in reports for key in r.survivors]
    problems += [f"{r.exercise}: listed as equivalent but no such mutant: {key}" for r in reports for key in r.stale]
    assert not problems, f"lab {lab}:\n" + "\n".join(problems)
    for r in reports:
        assert all(reason.strip() for reason in r.equivalent.values()), "say why a mutant is equivalent"
