"""Every hint that shows code shows code that parses, and `hint(n)` past the last says so."""
from __future__ import annotations

import ast
import re

import pytest

from synthkit.grading.registry import available_labs, lab_exercises

CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"```(?:python)?\n(.*?)```", re.S)


def _snippets(hint: str) -> list[str]:
    """Fenced blocks, and inline spans that are calls or statements (`x.f(a)`, `a = b`)."""
    spans = [s for s in CODE_SPAN.findall(FENCE.sub("", hint)) if "(" in s or " = " in s]
    spans = ["x" + s if s.startswith(".") else s for s in spans]     # `.lower()`: a method of anything
    return FENCE.findall(hint) + spans


HINTS = [(lab, ex.name, i, hint) for lab in available_labs() for ex in lab_exercises(lab)
         for i, hint in enumerate(getattr(ex, "hints", []), 1)]


@pytest.mark.parametrize("lab, name, number, hint", HINTS, ids=lambda v: str(v)[:12])
def test_code_in_a_hint_parses(lab, name, number, hint):
    for snippet in _snippets(hint):
        try:
            ast.parse(snippet)
        except SyntaxError as e:
            pytest.fail(f"lab {lab} {name} hint {number}: `{snippet}` is not valid Python ({e.msg})")
