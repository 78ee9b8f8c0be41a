"""srr.data has no import cycle: no module of the package imports one that imports it back, at any level (module
or function body), and none imports the top-level package ``srr`` itself."""
import ast

from paths import SRC

PACKAGE = "srr.data"
FOLDER = SRC / "srr" / "data"


def _module(path) -> str:
    return PACKAGE if path.name == "__init__.py" else f"{PACKAGE}.{path.stem}"


def imports_of(path) -> set[str]:
    """Every module ``path`` imports (``import``/``from … import`` anywhere in its AST, relative ones resolved);
    ``from . import name`` counts as importing the package itself (it runs ``__init__``) and ``name``."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            found.add(target)
            if not node.module or node.level == 0:
                found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in sorted(FOLDER.glob("*.py"))}
    return {m: {t for t in imports_of(p) if t in modules} for m, p in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The cycles found by a depth-first search (each reported once, from where it was entered)."""
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_the_walker_sees_function_level_and_relative_imports(tmp_path):
    (tmp_path / "a.py").write_text("from .b import x\ndef f():\n    from . import c\n    import srr\n")
    names = imports_of(tmp_path / "a.py")
    assert {"srr.data.b", "srr.data", "srr.data.c", "srr"} <= names
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_srr_data_has_no_import_cycle():
    edges = graph()
    assert len(edges) >= 15 and "srr.data.image_data" in edges and "srr.data.dataset" not in edges
    assert cycles({m: e - ({PACKAGE} if m == PACKAGE else set()) for m, e in edges.items()}) == []


def test_no_module_of_srr_data_imports_the_top_level_package():
    for path in sorted(FOLDER.glob("*.py")):
        names = imports_of(path)
        assert "srr" not in names, f"{path.name} imports srr itself"
        submodules = {n for n in names if n.startswith(f"{PACKAGE}.")}
        if path.name != "__init__.py":
            assert PACKAGE not in names, f"{path.name} imports its own package (from . import …)"
        assert all(n.count(".") == 2 for n in submodules), submodules
