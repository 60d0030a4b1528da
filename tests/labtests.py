"""What the labs' own tests share: the reference solutions as one namespace, and wrong
answers that must fail with a useful message. What every lab owes alike (references pass on
fresh draws, stubs read "missing") is in test_lab_contract.py."""
from __future__ import annotations

import textwrap
import warnings


def solutions(coding) -> dict:
    """The namespace a student who wrote every reference solution would have."""
    ns: dict = {}
    for ex in coding:
        exec(textwrap.dedent(ex.solution_code), ns)
    return ns


def assert_wrong_answers_fail(ex, wrong, tries: int = 6) -> None:
    """Each (code, expected) wrong answer fails on every fresh draw of the check, and at least one
    failure message contains `expected` (the slip named, or the case that shows it)."""
    for code, expected in wrong:
        ns: dict = {}
        exec(textwrap.dedent(code), ns)
        messages = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an overflow slip overflows, on purpose
            for _ in range(tries):   # a wrong answer fails whatever fresh inputs the check draws
                result = ex.grade(ns)
                assert result.status in ("fail", "error", "slow"), (code, str(result))
                messages.append(result.message)
        assert any(expected in m for m in messages), (code, messages)
