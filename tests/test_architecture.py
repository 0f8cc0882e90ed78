"""The package's shape (docs/architecture.md): layers that import only downwards, no import
circle, one registry for every model kind, short functions, and an import with no side
effects."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sentiment"
# bottom to top: a module may import its own layer's modules and those of the layers below
LAYERS = ["config jsonio runtime", "text", "data", "nn", "kinds", "inference", "report", "train",
          "serve", "cli"]
ENTRY = {"sentiment", "sentiment.__main__", "sentiment.scoring"}  # above every layer
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    if module in ENTRY:
        return len(LAYERS)
    top = module.split(".")[1]
    return next(i for i, names in enumerate(LAYERS) if top in names.split())


def imports(path: Path) -> set[str]:
    """Every module of the package ``path`` imports, at the top or inside a function (not in an
    ``if TYPE_CHECKING:`` block, which never runs)."""
    tree, here = ast.parse(path.read_text()), module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and getattr(block.test, "id", "") == "TYPE_CHECKING"
               for node in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
                "sentiment")):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            target = ".".join(filter(None, [base, node.module or ""]))
            names = [f"{target}.{alias.name}" for alias in node.names]
            found |= {name for name in names if (PACKAGE.parent / (name.replace(".", "/") + ".py")
                                                 ).is_file()} or {target}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("sentiment.")}
    return {name for name in found if name != here and name.startswith("sentiment")}


def graph() -> dict[str, set[str]]:
    """Every module's imports, with the registry's imports of the kinds by name (importlib)."""
    from sentiment.kinds.registry import KINDS

    edges = {module_name(path): imports(path) for path in PACKAGE.rglob("*.py")}
    edges["sentiment.kinds.registry"] |= set(KINDS.values())
    return edges


def test_every_import_runs_down_the_layers():
    upward = [f"{module} -> {target}" for module, targets in graph().items()
              for target in targets if target != "sentiment" and layer(target) > layer(module)]
    assert not upward, "imports up the layers (docs/architecture.md):\n" + "\n".join(upward)


def test_no_import_circle():
    edges = graph()
    visiting, done, cycles = [], set(), []

    def visit(module):
        if module in visiting:
            cycles.append(visiting[visiting.index(module):] + [module])
            return
        if module in done:
            return
        visiting.append(module)
        for target in sorted(edges.get(module, ())):
            visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(edges):
        visit(module)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The graph sees a function-level import up the layers and a circle."""
    fake = PACKAGE / "text" / "_probe_upward.py"
    try:
        fake.write_text("def f():\n    from ..cli import main\n    from . import _probe_upward\n")
        found = imports(fake)
        assert "sentiment.cli.main" in found and layer("sentiment.cli.main") > layer(
            "sentiment.text._probe_upward")
    finally:
        fake.unlink()


def test_every_kind_loads_through_the_registry():
    from sentiment.kinds.protocol import CAPABILITIES
    from sentiment.kinds.registry import KINDS

    for kind, module_path in KINDS.items():
        model_class = importlib.import_module(module_path).MODEL
        assert callable(model_class.load), kind
        assert set(model_class.capabilities) <= set(CAPABILITIES), kind
        assert set(getattr(model_class, "refusals", {})) <= set(CAPABILITIES), kind


def test_no_function_is_longer_than_a_screen():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} "
                                f"{node.name} ({lines} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


@pytest.mark.parametrize("statement", ["import sentiment", "from sentiment import predict"])
def test_importing_changes_nothing_global(statement):
    code = ("import os, sys; before = dict(os.environ); " + statement + "; "
            "assert dict(os.environ) == before, set(os.environ) ^ set(before); "
            "print(sorted(m for m in sys.modules if m in ('torch', 'spacy', 'datasets')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    if statement == "import sentiment":
        assert out.strip() == "[]"  # nothing heavy until a model is asked for
