"""The package's layers: every import inside cs336lm (module-level or inside a function) points down or sideways
within its own subpackage, never up, so the tree reads as the architecture: reporting → experiments, problems →
training → lm, tokenization, corpora → config, atomic, layout."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cs336lm"
LAYER = {"config": 0, "atomic": 0, "layout": 0, "lm": 1, "tokenization": 1, "corpora": 1, "training": 2,
         "experiments": 3, "problems": 3, "reporting": 4}


def part(module: str) -> str:
    """The top-level part of cs336lm a dotted module name belongs to."""
    return module.split(".")[1]


def imports(path: Path) -> list[str]:
    """Every cs336lm module `path` imports, as dotted names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cs336lm"):
            found += [node.module if "." in node.module else f"cs336lm.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("cs336lm.")]
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_part_has_a_layer():
    parts = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in MODULES}
    assert parts == set(LAYER), "a new top-level part of cs336lm needs its layer here"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_down(path):
    here = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    for module in imports(path):
        there = part(module)
        if there != here:
            assert LAYER[there] < LAYER[here], f"{path.relative_to(PACKAGE)} imports {module}: {here} may not " \
                f"import {there} (layer {LAYER[there]} is not below {LAYER[here]})"


def test_the_check_sees_a_planted_upward_import(tmp_path):
    planted = tmp_path / "model.py"
    planted.write_text("def f():\n    from cs336lm.training.implementation import resolve\n")
    assert imports(planted) == ["cs336lm.training.implementation"]
