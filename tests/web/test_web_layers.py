"""The web reaches the registry, dose and report packages only through their public API: no
table classes, no submodules, no private names (a schema change then stays inside its package)."""

from __future__ import annotations

import ast
from pathlib import Path

import openir.web

WEB = Path(openir.web.__file__).parent
GUARDED = ("openir.registry", "openir.dose", "openir.report")


def _violations(source: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [a.name for a in node.names]
            if any(node.module.startswith(g + ".") for g in GUARDED):
                out.append(f"from {node.module} import {', '.join(names)}")
            elif node.module in GUARDED and any(n.startswith("_") for n in names):
                out.append(f"private name from {node.module}: {', '.join(names)}")
        elif isinstance(node, ast.Import):
            out += [f"import {a.name}" for a in node.names if any(a.name.startswith(g + ".") for g in GUARDED)]
    return out


def test_web_uses_only_public_domain_apis():
    bad = {py.name: v for py in sorted(WEB.glob("*.py")) if (v := _violations(py.read_text(encoding="utf-8")))}
    assert not bad, bad


def test_the_check_catches_table_and_private_imports():
    src = ("from openir.registry.models import Hospital\nfrom openir.dose import _now\nimport openir.dose.store\n"
           "from openir.registry import list_hospitals\n")
    assert len(_violations(src)) == 3
