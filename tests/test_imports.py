"""The package's import structure: no import cycle between modules (imports inside functions included), no module
imports the top-level package, and the subpackages form layers (a lower one never imports a higher one)."""
import ast
from pathlib import Path

from paths import SRC

PACKAGE = SRC / "srr"
#: lowest first; a module may import its own subpackage and anything of a lower or equal layer
LAYERS = [
    {"errors", "version", "checks", "settings", "io", "device", "profiling", "runfolder"},
    {"measures"},
    {"operators", "losses"},
    {"models"},
    {"redunet", "data", "interop"},
    {"analysis", "circuits"},
    {"objectives"},
    {"training"},
    {"principles"},
    {"claims"},
    {"cli", "__main__", "__init__"},
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(name: str, path: Path, known: dict) -> set[str]:
    """Every srr module that ``name`` imports, at any depth of the file (module level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "srr")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "srr":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
    return out - {name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {t for t in imports(name, path, known) if t in known or t == "srr"} for name, path in known.items()}


def test_no_module_imports_the_top_level_package():
    offenders = sorted(name for name, targets in graph().items() if "srr" in targets and name != "srr.__main__")
    assert offenders == []


def test_there_is_no_import_cycle():
    g = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in g.get(node, ()):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node)


def layer_of(name: str) -> int:
    top = name.split(".")[1] if name.count(".") else "__init__"
    return next(i for i, layer in enumerate(LAYERS) if top in layer)


def test_subpackages_form_layers():
    g = graph()
    assert all(any(n.split(".")[1] in layer for layer in LAYERS) for n in g if n.count(".")), "a subpackage has no layer"
    upward = sorted(f"{a} -> {b}" for a, targets in g.items() for b in targets
                    if b != "srr" and a.split(".")[1:2] != b.split(".")[1:2] and layer_of(b) > layer_of(a))
    assert upward == []


def test_the_walk_finds_a_cycle_when_there_is_one(tmp_path):
    known = {"srr.a": tmp_path / "a.py", "srr.b": tmp_path / "b.py"}
    known["srr.a"].write_text("def f():\n    from .b import x\n")
    known["srr.b"].write_text("from . import a\n")
    assert imports("srr.a", known["srr.a"], known) == {"srr.b"}
    assert imports("srr.b", known["srr.b"], known) == {"srr.a"}
