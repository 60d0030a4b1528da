"""The library's floors: every import, at the top of a module or inside a function, goes
down a floor or stays on its own, and no chain of imports comes back to where it started.
An import hidden in a function to dodge a circle would show here as the circle it is."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "synthkit"

# Lowest first. A module may import from its own floor or any below it.
FLOORS = [
    ["errors", "bars", "profiles", "cache", "records"],          # plumbing
    ["models"],                                                    # one generation interface
    ["scale"],                                                     # the same interface on a Ray cluster
    ["rouge", "metrics", "filters", "verify", "data"],            # measures, checks and data
    ["train"],                                                     # the training loop and its methods
    ["magpie", "self_instruct", "rejection", "constitutional", "distill", "collapse", "pretrain",
     "audit", "cliff"],                                            # one module per technique
    ["pipeline", "bench", "doctor"],                               # what combines techniques
    ["grading"], ["labs"], ["cli"],                                # the course, then the command
]


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in PACKAGE.rglob("*.py") if "_build" not in p.parts}


def _resolve(name: str) -> str | None:
    """The synthkit module `name` refers to (a name inside a module counts as the module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> set[str]:
    """Every synthkit module that `module` imports, at any depth of its code."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            names = [f"{target}.{a.name}" for a in node.names] + [target]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for n in names:
            hit = _resolve(n)
            if hit and hit != module and not module.startswith(hit + "."):  # its own package: fine
                found.add(hit)
    return found


def floor(module: str) -> int | None:
    rest = module.removeprefix("synthkit.")
    for i, names in enumerate(FLOORS):
        if any(rest == n or rest.startswith(n + ".") for n in names):
            return i
    return None


GRAPH = {m: imports(m) for m in MODULES}


def test_every_module_has_a_floor():
    assert [m for m in MODULES if m != "synthkit" and floor(m) is None] == []


def test_no_import_goes_up_a_floor():
    up = [f"{a} (floor {floor(a)}) imports {b} (floor {floor(b)})"
          for a, targets in GRAPH.items() if a != "synthkit" for b in targets if floor(b) > floor(a)]
    assert up == []


def test_no_import_circle():
    state: dict[str, int] = {}   # 1 = on the current path, 2 = done

    def visit(m, path):
        state[m] = 1
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])


def test_the_checker_sees_a_circle_and_an_upward_import():
    """The test above would catch what it claims: a circle made by hand is found."""
    saved = {m: set(t) for m, t in GRAPH.items()}
    try:
        GRAPH["synthkit.cache"].add("synthkit.grading.paths")
        assert floor("synthkit.grading.paths") > floor("synthkit.cache")
        GRAPH["synthkit.grading.paths"] = GRAPH["synthkit.grading.paths"] | {"synthkit.cache"}
        try:
            test_no_import_circle()
        except AssertionError as e:
            assert "synthkit.cache" in str(e)
        else:
            raise AssertionError("a circle went unnoticed")
    finally:
        GRAPH.clear()
        GRAPH.update(saved)
