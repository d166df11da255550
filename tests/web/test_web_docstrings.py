"""Docstring coverage of the web package: every public function, route, method and class says why
it exists (a reviewer reads the route table, not the code). Bar: at least 90 %."""

from __future__ import annotations

import ast
from pathlib import Path

import openir.web

WEB = Path(openir.web.__file__).parent


def _public_defs(tree: ast.Module):
    """(name, has docstring) of public module-level functions and classes and their public methods."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            yield node.name, ast.get_docstring(node) is not None
            if isinstance(node, ast.ClassDef):
                for sub in node.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and not sub.name.startswith("_"):
                        yield f"{node.name}.{sub.name}", ast.get_docstring(sub) is not None


def test_web_docstring_coverage_at_least_90_percent():
    found = {f"{py.stem}.{name}": ok for py in sorted(WEB.glob("*.py"))
             for name, ok in _public_defs(ast.parse(py.read_text(encoding="utf-8")))}
    assert len(found) > 100, "the walk must see the web package's routes and helpers"
    missing = sorted(k for k, ok in found.items() if not ok)
    coverage = 1 - len(missing) / len(found)
    assert coverage >= 0.90, f"web docstring coverage {coverage:.0%}; missing: {', '.join(missing)}"


def test_coverage_walk_counts_a_missing_docstring():
    tree = ast.parse('def f():\n    pass\n\ndef g():\n    """Why."""\n\nclass C:\n    def m(self):\n        pass\n')
    assert dict(_public_defs(tree)) == {"f": False, "g": True, "C": False, "C.m": False}
