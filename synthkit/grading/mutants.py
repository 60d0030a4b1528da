"""Small mutants of each exercise's reference solution, and whether its check kills them.

A check that passes the reference solution on fresh inputs can still pass a student's slip:
`>` where the rule says `>=`, a default of 4 where the chapter says 5. A *mutant* is the
reference with exactly one such slip. If the check passes a mutant, a student who made that
slip is told "correct". So this module makes every small mutant of every coding exercise's
reference (`exN.solution_code`), grades each a few times on fresh draws, and lists the ones
that pass. This is mutation testing (as in mutmut or cosmic-ray) aimed at the checks, not at
the library: the reference is the program, the check is the test suite.

The slips, one per mutant:
- a comparison loosened or tightened (`<` <-> `<=`, `>` <-> `>=`) or flipped (`<` -> `>`),
  `==` <-> `!=`, `in` <-> `not in`, `is` <-> `is not`;
- a number +1 or -1 (a threshold, a default, an n-gram size, an index, a float's offset);
- arithmetic swapped (`+` <-> `-`, `*` <-> `/`, `//` -> `/`) or a minus sign dropped;
- a slice's ends swapped (`x[:i]` <-> `x[i:]`);
- `and` <-> `or`; a `not` dropped; `min` <-> `max`.

Some mutants cannot change what the function returns (`x >= 0` on a count that is never
negative...). A lab lists those in its module, with the reason, as
``EQUIVALENT_MUTANTS = {"ex1": {"<key>": "why it cannot change behaviour"}}``; the key is the
one this tool prints. A listed key that no longer names a mutant is reported too, so the list
cannot go stale silently.

    python -m synthkit.grading.mutants            # every lab
    python -m synthkit.grading.mutants 05 --draws 5
"""
from __future__ import annotations

import argparse
import ast
import copy
import sys
import textwrap
import warnings
from dataclasses import dataclass, field

from .exercises import PASS, SLOW, CodingExercise
from .registry import available_labs, lab_exercises, lab_module

DRAWS = 3   # gradings per mutant: a mutant is killed only if every draw fails it

# --- the slips ---------------------------------------------------------------------------
_COMPARE_SWAPS = {
    ast.Lt: (ast.LtE, ast.Gt), ast.LtE: (ast.Lt, ast.GtE),
    ast.Gt: (ast.GtE, ast.Lt), ast.GtE: (ast.Gt, ast.LtE),
    ast.Eq: (ast.NotEq,), ast.NotEq: (ast.Eq,),
    ast.In: (ast.NotIn,), ast.NotIn: (ast.In,),
    ast.Is: (ast.IsNot,), ast.IsNot: (ast.Is,),
}
_SYMBOL = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
           ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}
_SWAP_CALL = {"min": "max", "max": "min"}
_ARITH_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
                ast.FloorDiv: ast.Div}
_ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//"}


@dataclass(frozen=True)
class Mutant:
    """One slip in one exercise's reference: `key` names it (source line :: change)."""
    exercise: str
    key: str
    code: str


@dataclass
class Report:
    """How one exercise's check fared against the mutants of its reference."""
    lab: str
    exercise: str
    killed: int = 0
    survivors: list[str] = field(default_factory=list)          # keys that passed a draw
    equivalent: dict[str, str] = field(default_factory=dict)    # listed and found
    stale: list[str] = field(default_factory=list)              # listed but no such mutant
    broken: str = ""            # the unchanged reference does not pass: no count can be trusted

    @property
    def total(self) -> int:
        return self.killed + len(self.survivors)

    def line(self) -> str:
        eq = f", {len(self.equivalent)} equivalent" if self.equivalent else ""
        return f"lab {self.lab} {self.exercise}: {self.killed}/{self.total} killed{eq}"


def _sites(tree: ast.AST):
    """(index of the node in ast.walk order, change, description) for every slip in `tree`."""
    for i, node in enumerate(ast.walk(tree)):
        if isinstance(node, ast.Compare):
            for j, op in enumerate(node.ops):
                for new in _COMPARE_SWAPS.get(type(op), ()):
                    yield i, ("compare", j, new), f"`{_SYMBOL[type(op)]}` -> `{_SYMBOL[new]}`"
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            for step in (1, -1):
                yield i, ("const", step), f"{node.value} -> {node.value + step}"
        elif isinstance(node, ast.BinOp) and type(node.op) in _ARITH_SWAPS:
            new = _ARITH_SWAPS[type(node.op)]
            yield i, ("arith", new), f"`{_ARITH[type(node.op)]}` -> `{_ARITH[new]}`"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            yield i, ("unwrap",), "`-` dropped"
        elif isinstance(node, ast.Slice) and (node.lower is None) != (node.upper is None) and node.step is None:
            yield i, ("slice",), "`[:i]` <-> `[i:]`"
        elif isinstance(node, ast.BoolOp):
            new = "or" if isinstance(node.op, ast.And) else "and"
            yield i, ("boolop",), f"`{'and' if new == 'or' else 'or'}` -> `{new}`"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield i, ("not",), "`not` dropped"
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in _SWAP_CALL):
            yield i, ("call",), f"`{node.func.id}` -> `{_SWAP_CALL[node.func.id]}`"


def _apply(tree: ast.AST, index: int, change: tuple) -> ast.AST:
    """A copy of `tree` with the one change made at the index-th node."""
    tree = copy.deepcopy(tree)
    nodes = list(ast.walk(tree))
    node = nodes[index]
    kind = change[0]
    if kind == "compare":
        node.ops[change[1]] = change[2]()
    elif kind == "const":
        node.value += change[1]
    elif kind == "boolop":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "call":
        node.func.id = _SWAP_CALL[node.func.id]
    elif kind == "arith":
        node.op = change[1]()
    elif kind == "slice":
        node.lower, node.upper = node.upper, node.lower
    elif kind in ("not", "unwrap"):
        for parent in nodes:                       # put the operand where `not operand` stood
            for name, value in ast.iter_fields(parent):
                if value is node:
                    setattr(parent, name, node.operand)
                elif isinstance(value, list) and any(v is node for v in value):
                    value[[v is node for v in value].index(True)] = node.operand
    return ast.fix_missing_locations(tree)


def mutants_of(exercise: CodingExercise) -> list[Mutant]:
    """Every one-slip mutant of the exercise's reference solution, with a stable key."""
    code = textwrap.dedent(exercise.solution_code)
    tree = ast.parse(code)
    lines = code.splitlines()
    seen: dict[str, int] = {}
    out = []
    for index, change, description in _sites(tree):
        node = list(ast.walk(tree))[index]
        where = lines[node.lineno - 1].strip() if hasattr(node, "lineno") else "?"
        key = f"{where} :: {description}"
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key = f"{key} #{seen[key]}"
        out.append(Mutant(exercise.name, key, ast.unparse(_apply(tree, index, change))))
    return out


def _survives(exercise: CodingExercise, mutant: Mutant, base: dict, draws: int) -> bool:
    """True when the check passes the mutant on any of `draws` fresh gradings."""
    ns = dict(base)
    try:
        exec(compile(mutant.code, f"<mutant of {exercise.name}>", "exec"), ns)
    except Exception:          # a mutant that cannot even be defined is no risk to anyone
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(draws):
            status = exercise.grade(ns).status
            if status == PASS:
                return True
            if status == SLOW:        # a mutant that loops is caught by the time limit every time
                return False
    return False


def reference_namespace(coding: list[CodingExercise], module=None) -> dict:
    """What a student who wrote every reference solution of the lab would have defined.

    A lab whose solutions use names its notebook defined earlier (lab 02's `BLACKLIST`)
    gives them as ``SOLUTION_GLOBALS``: a function returning a dict."""
    given = getattr(module, "SOLUTION_GLOBALS", None)
    ns: dict = dict(given()) if callable(given) else {}
    for ex in coding:
        exec(textwrap.dedent(ex.solution_code), ns)
    return ns


def check_lab(lab: str, draws: int = DRAWS, only: str | None = None) -> list[Report]:
    """Grade every mutant of every coding exercise of `lab`; one Report per exercise."""
    lab = str(lab).zfill(2)
    coding = [ex for ex in lab_exercises(lab) if isinstance(ex, CodingExercise) and ex.solution_code]
    listed = getattr(lab_module(lab), "EQUIVALENT_MUTANTS", {})
    base = reference_namespace(coding, lab_module(lab))
    reports = []
    for ex in coding:
        if only and ex.name != only:
            continue
        report = Report(lab, ex.name)
        reference = ex.grade(dict(base))
        if reference.status != PASS:     # then every mutant would "fail" for the same reason
            report.broken = f"the reference solution itself does not pass: {reference}"
            reports.append(report)
            continue
        equivalents = dict(listed.get(ex.name, {}))
        for mutant in mutants_of(ex):
            if mutant.key in equivalents:
                report.equivalent[mutant.key] = equivalents.pop(mutant.key)
            elif _survives(ex, mutant, base, draws):
                report.survivors.append(mutant.key)
            else:
                report.killed += 1
        report.stale = sorted(equivalents)
        reports.append(report)
    return reports


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m synthkit.grading.mutants",
                                description="Grade one-slip mutants of each exercise's reference "
                                            "solution; list the ones its check passes.")
    p.add_argument("labs", nargs="*", help="lab ids (default: every lab)")
    p.add_argument("--draws", type=int, default=DRAWS, help=f"gradings per mutant (default {DRAWS})")
    p.add_argument("--exercise", default=None, help="only this exercise (e.g. ex2)")
    args = p.parse_args(argv)
    bad = 0
    for lab in args.labs or available_labs():
        for r in check_lab(lab, args.draws, args.exercise):
            print(r.line() if not r.broken else f"lab {r.lab} {r.exercise}: {r.broken}")
            for key in r.survivors:
                print(f"    survives: {key}")
            for key in r.stale:
                print(f"    listed as equivalent but no such mutant: {key}")
            bad += len(r.survivors) + len(r.stale) + bool(r.broken)
            sys.stdout.flush()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
