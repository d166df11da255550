"""The layers of shared/DESIGN.md hold, and the check that enforces them can fail."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "openir"
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(src_root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src_root)}
    return subprocess.run([str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          capture_output=True, text=True, env=env, cwd=src_root, timeout=300)


@pytest.fixture(scope="module")
def wrong_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the source where physics imports io, as the old per-package CLI modules did."""
    root = tmp_path_factory.mktemp("wrong")
    shutil.copytree(SRC, root / "openir", ignore=shutil.ignore_patterns("__pycache__", "data", "static"))
    bad = root / "openir" / "physics" / "wrong_import.py"
    bad.write_text("from openir.io import read_labels  # physics may not read files\n")
    return root


def test_import_contract_holds_on_the_source():
    result = _lint(SRC.parent)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_import_contract_fails_on_a_wrong_import(wrong_tree: Path):
    result = _lint(wrong_tree)
    assert result.returncode != 0
    assert "physics imports only core BROKEN" in " ".join(result.stdout.split())
    assert "openir.physics.wrong_import -> openir.io" in result.stdout


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _is_kernel(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any("jit" in ast.unparse(d) or "vectorize" in ast.unparse(d) for d in node.decorator_list)


def _is_command(path: Path) -> bool:
    """A Typer command: each parameter is one documented option of ``openir <stage>``."""
    return path.parent.name == "cli"


def test_no_function_takes_more_than_ten_parameters():
    """Options that travel together are a model (PlanOptions, ...), not a long parameter list."""
    long = []
    for path in sorted(SRC.rglob("*.py")):
        for fn in _functions(ast.parse(path.read_text(encoding="utf-8"))):
            a = fn.args
            names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]
            if len(names) > 10 and not _is_kernel(fn) and not _is_command(path):
                long.append(f"{path.relative_to(SRC)}:{fn.lineno} {fn.name} ({len(names)})")
    assert not long, "functions with more than 10 parameters:\n" + "\n".join(long)
