"""The layout of ARCHITECTURE.md, held by reading the sources (no imports run).

- no import cycle among the project's modules, function-level imports included;
- the packages import in one direction: autodiff and kernels know nothing of the packages above
  them, nn knows nothing of the command line, and nn uses only kernels' public names;
- inside autodiff, the core is a ladder: tensor <- primitives <- ops, sweep <- operators;
- no module is over 450 lines (tutorials aside: a lesson reads top to bottom).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [p for p in ("autodiff", "kernels", "nn", "chainrule") if (ROOT / p / "__init__.py").exists()]
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _imports(name: str, path: Path):
    """(imported project module, line, at module level?) for every import statement in the file that
    runs: an import under ``if TYPE_CHECKING:`` is read by static tools only (Tensor's base for an IDE)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if _is_package(name) else name.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    static_only = {id(sub) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                   for stmt in node.body for sub in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in static_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module
            # `from pkg import sub` imports the submodule when there is one, else a name of pkg
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            if target in MODULES and target != name:
                yield target, node.lineno, id(node) in top_level


GRAPH = {name: sorted({t for t, _, _ in _imports(name, path)}) for name, path in MODULES.items()}


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_walk_sees_the_packages():
    assert {"autodiff", "kernels", "nn"} <= set(PACKAGES)
    assert "autodiff.operators" in GRAPH["autodiff"] or "autodiff.operators" in MODULES
    assert "autodiff.tensor" in GRAPH["autodiff.primitives"]


def test_the_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert _cycles({"a": ["b"], "b": [], "c": ["a", "b"]}) == []


def test_no_import_cycles_function_level_imports_included():
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("package, forbidden", [
    ("autodiff", ("kernels", "nn", "chainrule")),
    ("kernels", ("autodiff", "nn", "chainrule")),
    ("nn", ("chainrule",)),
])
def test_packages_import_in_one_direction(package, forbidden):
    wrong = [f"{name} imports {target}" for name, targets in GRAPH.items() if name.split(".")[0] == package
             for target in targets if target.split(".")[0] in forbidden]
    assert not wrong, wrong


def test_nn_uses_only_the_public_names_of_kernels():
    wrong = []
    for name, path in MODULES.items():
        if name.split(".")[0] != "nn":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kernels"):
                names = [node.module] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("kernels")]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "kernels":
                names = [node.attr]
            else:
                continue
            wrong += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names
                      if any(part.startswith("_") for part in n.split("."))]
    assert not wrong, wrong


LADDER = {  # each rung of autodiff's core, and the project modules it may import
    "autodiff.buffers": set(),      # the pool of large arrays that ops and sweeps write into
    "autodiff.tensor": set(),
    "autodiff.samples": set(),
    "autodiff.primitives": {"autodiff.tensor", "autodiff.samples", "autodiff.buffers"},
    "autodiff.sweep": {"autodiff.tensor", "autodiff.primitives", "autodiff.buffers"},   # the sweeps read the rule tables
}


@pytest.mark.parametrize("rung", sorted(LADDER))
def test_the_autodiff_core_is_a_ladder(rung):
    assert set(GRAPH[rung]) <= LADDER[rung], f"{rung} imports {sorted(set(GRAPH[rung]) - LADDER[rung])}"


def test_ops_import_only_the_rungs_below():
    below = {"autodiff.tensor", "autodiff.samples", "autodiff.primitives", "autodiff.buffers"}
    for name, targets in GRAPH.items():
        if name == "autodiff.ops" or name.startswith("autodiff.ops."):
            outside = {t for t in targets if not t.startswith("autodiff.ops")} - below
            assert not outside, f"{name} imports {sorted(outside)}"


def test_no_function_level_import_inside_a_package():
    """Lazy imports of the project's own modules dodge cycles; the layout needs none. The one kind
    allowed: a package loading one of its own submodules at first use (kernels' compiled backends,
    which cost ~0.4 s (cpu) and ~0.9 s (cuda) to import), which cannot close a cycle unless the
    submodule imports the package back (and the cycle test above would say so)."""
    lazy = [f"{name}:{line} imports {target}" for name, path in MODULES.items()
            for target, line, top in _imports(name, path)
            if not top and target.split(".")[0] == name.split(".")[0]
            and not (_is_package(name) and target.startswith(name + "."))]
    assert not lazy, lazy


def _long_modules():
    folders = [ROOT / p for p in PACKAGES] + [ROOT / "tests", ROOT / "benchmarks"]
    return [(str(p.relative_to(ROOT)), n) for folder in folders for p in sorted(folder.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES]


def test_no_module_is_over_450_lines():
    assert not _long_modules(), _long_modules()
