"""Read a submission's code for signs that it patches what it did not write.

The grader's verdict does not depend on this (see ``sandbox``: nothing a notebook patches
reaches the checks), but an instructor wants to know when a student *tried*: replacing
``json.dumps``, wrapping ``importlib.import_module``, rebinding ``sys.stdout``, editing the
exercises module, switching the trace hooks off. ``patches(nb)`` lists such lines, read
statically from the code cells (IPython magics are translated first), as short notes
that ``synthkit grade`` puts in the CSV's ``flags`` column.

What counts: assigning to, or deleting, an attribute or item of anything the code
imported (``json.dumps = ...``, ``sys.modules[...] = ...``, ``Result.__eq__ = ...``) or of
``builtins``/``__builtins__``; ``setattr``/``delattr`` on those; rebinding ``__import__``
or ``__builtins__``; calls that install trace or import hooks (``sys.settrace``,
``sys.setprofile``, ``threading.settrace``, ``sys.meta_path.insert``, ...);
``unittest.mock.patch``; ``ctypes``. Plain configuration writes (``plt.rcParams[...]``,
``pd.options...``) are not flagged. A cell that cannot be parsed is flagged as such.
"""
from __future__ import annotations

import ast

_ALWAYS = {"__builtins__", "builtins"}
_CONFIG = {"rcParams", "options", "environ"}  # writes that configure, not patch
_HOOKS = {("sys", "settrace"), ("sys", "setprofile"), ("threading", "settrace"), ("threading", "setprofile"),
          ("sys", "addaudithook"), ("sys", "setrecursionlimit")}
_HOOK_LISTS = {"meta_path", "path_hooks", "modules", "path_importer_cache"}
_LIST_CHANGES = {"insert", "append", "extend", "update", "pop", "clear", "setdefault", "remove", "__setitem__"}


def _root(node) -> tuple[str | None, list[str]]:
    """('json', ['dumps']) for json.dumps; the root name and the attribute path."""
    path = []
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Attribute):
            path.append(node.attr)
        node = node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("vars", "globals"):
        return (node.func.id + "()", list(reversed(path)))
    return (node.id if isinstance(node, ast.Name) else None, list(reversed(path)))


def _dotted(node) -> str:
    try:
        return ast.unparse(node)[:60]
    except Exception:  # noqa: BLE001
        return "?"


class _Scanner(ast.NodeVisitor):
    def __init__(self, imported: set[str]):
        self.imported = imported
        self.found: list[tuple[int, str]] = []

    def _sensitive(self, root: str | None, path: list[str]) -> bool:
        if root in _ALWAYS:
            return True
        if root == "vars()":
            return True
        return root in self.imported and not (set(path) & _CONFIG)

    def _target(self, target, verb: str) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self._target(t, verb)
            return
        if isinstance(target, ast.Name) and target.id in ("__import__", "__builtins__"):
            self.found.append((target.lineno, f"{verb} `{target.id}`"))
            return
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            root, path = _root(target)
            if root == "globals()" and isinstance(target, ast.Subscript):
                key = target.slice
                if isinstance(key, ast.Constant) and key.value in ("__builtins__", "__import__"):
                    self.found.append((target.lineno, f"{verb} `{_dotted(target)}`"))
                return
            if self._sensitive(root, path):
                self.found.append((target.lineno, f"{verb} `{_dotted(target)}`, which belongs to imported code"))

    def visit_Assign(self, node):
        for t in node.targets:
            self._target(t, "assigns to")
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._target(node.target, "changes")
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        self._target(node.target, "assigns to")
        self.generic_visit(node)

    def visit_Delete(self, node):
        for t in node.targets:
            self._target(t, "deletes")
        self.generic_visit(node)

    def visit_Call(self, node):
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("setattr", "delattr") and node.args:
            root, path = _root(node.args[0])
            if self._sensitive(root, path) or (isinstance(node.args[0], ast.Name) and node.args[0].id in self.imported):
                self.found.append((node.lineno, f"calls {func.id} on `{_dotted(node.args[0])}`, imported code"))
        if isinstance(func, ast.Attribute):
            root, path = _root(func)
            full = [root] + path if root else path
            if len(full) >= 2 and (full[-2], full[-1]) in _HOOKS:
                self.found.append((node.lineno, f"calls `{_dotted(func)}` (a tracing or interpreter hook)"))
            elif len(full) >= 3 and full[-3] == "sys" and full[-2] in _HOOK_LISTS and full[-1] in _LIST_CHANGES:
                self.found.append((node.lineno, f"calls `{_dotted(func)}` (changes the import system)"))
            elif "patch" in path and (root in ("mock", "unittest", "patch") or "mock" in path):
                self.found.append((node.lineno, f"uses `{_dotted(func)}` (monkeypatching)"))
        elif isinstance(func, ast.Name) and func.id == "patch" and "patch" in self.imported:
            self.found.append((node.lineno, "uses `patch` (monkeypatching)"))
        self.generic_visit(node)

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name.split(".")[0] == "ctypes":
                self.found.append((node.lineno, "imports ctypes"))

    def visit_ImportFrom(self, node):
        if (node.module or "").split(".")[0] == "ctypes":
            self.found.append((node.lineno, "imports ctypes"))


def _imported_names(trees) -> set[str]:
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update((a.asname or a.name.split(".")[0]) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                names.update((a.asname or a.name) for a in node.names if a.name != "*")
    return names


def _python(source: str) -> str:
    """The cell as plain Python (IPython's magics and shell escapes translated)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - no IPython: parse the text as it is
        return source


def patches(nb) -> list[str]:
    """Notes on every line of `nb`'s code cells that patches imported code or hooks."""
    cells = [(i + 1, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    trees, notes = [], []
    for number, source in cells:
        try:
            trees.append((number, ast.parse(_python(source))))
        except SyntaxError as e:
            notes.append(f"cell {number}: cannot be read as Python (line {e.lineno}), so it was not scanned")
    imported = _imported_names(t for _, t in trees)
    for number, tree in trees:
        scanner = _Scanner(imported)
        scanner.visit(tree)
        notes += [f"cell {number}, line {line}: {what}" for line, what in sorted(set(scanner.found))]
    return notes
