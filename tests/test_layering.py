"""The package's layering: no import cycle, and every module imports only its own layer or the
layers below it (:data:`LAYERS`, the table the README's module map shows).

The graph is read from the source with ``ast`` (imports inside functions count too, since they
run; imports under ``if TYPE_CHECKING:`` do not, since they never run), so these tests need
neither torch nor a display.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("recognizer", "train", "tools")

LAYERS: tuple[tuple[str, ...], ...] = (
    ("recognizer", "recognizer._compat", "recognizer.types", "recognizer.errors"),
    ("recognizer.io", "recognizer.models", "recognizer.tracking"),
    ("recognizer.output", "recognizer.synth"),
    ("recognizer.live",),
    ("recognizer.batch", "recognizer.apps"),
    ("recognizer.cli",),
    ("recognizer.__main__",),
)
"""The package's layers, bottom first. A module may import its own package, any package of a
lower layer, and nothing else: not a sibling package of its own layer, nothing above."""


def layer_of(module: str) -> tuple[int, str]:
    """``(layer, package)`` of a module of ``recognizer``: the longest entry of :data:`LAYERS`
    that is the module or a package holding it."""
    best: tuple[int, str] | None = None
    for rank, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best[1])):
                best = (rank, name)
    if best is None:
        raise KeyError(f"{module} is in no layer of LAYERS")
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports (``from a.b import c`` counts as a.b.c when that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in _running_nodes(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_package else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def _running_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` blocks."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan).

    A package's ``__init__`` re-exporting its own submodules is not a cycle: edges from a
    package to the modules inside it are left out.
    """
    edges = {a: {b for b in bs if not b.startswith(a + ".")} for a, bs in g.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_graph_sees_function_level_imports_and_skips_type_checking_ones(tmp_path: Path) -> None:
    g = graph()
    # recognizer.cli.run imports the run entry inside its handler only.
    assert "recognizer.live.run" in g["recognizer.cli.run"]
    mod = tmp_path / "m.py"
    mod.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import recognizer.cli\n"
                   "def f():\n    import recognizer.types\n")
    assert imports_of("m", mod, {"recognizer.cli", "recognizer.types"}) == {"recognizer.types"}


def test_cycle_finder_finds_a_planted_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"p": {"p.x"}, "p.x": {"p"}}) == []  # a package re-exporting its module


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_every_module_of_the_package_is_in_a_layer() -> None:
    for name in modules():
        if name.startswith("recognizer"):
            layer_of(name)  # raises for a module outside the table
    assert layer_of("recognizer.live.pipeline") == (3, "recognizer.live")
    assert layer_of("recognizer.types") == (0, "recognizer.types")


def test_modules_import_only_their_own_layer_and_the_ones_below() -> None:
    offenders = []
    for name, targets in graph().items():
        if not name.startswith("recognizer"):
            continue
        rank, package = layer_of(name)
        for target in sorted(t for t in targets if t.startswith("recognizer")):
            t_rank, t_package = layer_of(target)
            if t_package == package or t_rank < rank:
                continue
            offenders.append(f"{name} (layer {rank}) imports {target} (layer {t_rank})")
    assert offenders == []


def test_a_planted_upward_import_is_caught() -> None:
    assert layer_of("recognizer.output.render")[0] < layer_of("recognizer.live.session")[0]
    assert layer_of("recognizer.io.sources")[0] == layer_of("recognizer.models.engine")[0]  # siblings: not allowed


def test_train_and_tools_depend_on_the_library_not_the_command_line() -> None:
    offenders = {name: sorted(t for t in targets if t == "recognizer.cli" or t.startswith("recognizer.cli."))
                 for name, targets in graph().items() if name.startswith(("train", "tools"))}
    assert {k: v for k, v in offenders.items() if v} == {}
