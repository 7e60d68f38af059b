"""Modules of gpugrad/ops that once needed a late import (or a deferred one inside a
function) to dodge an import cycle now import everything at the top, and `convert` (casts
and device copies, which `_util` needs) imports no ops module that imports it back."""

import ast
from pathlib import Path

import pytest

import gpugrad

OPS = Path(gpugrad.__file__).parent / "ops"
CHECKED = ["_util", "reduce", "convert", "_composite", "activation", "loss", "normalization",
           "recurrent", "broadcast"]


def _imports_not_at_top(path: Path) -> list[int]:
    tree = ast.parse(path.read_text())
    body = tree.body
    first_code = next((k for k, node in enumerate(body)
                       if not isinstance(node, (ast.Import, ast.ImportFrom))
                       and not (k == 0 and isinstance(node, ast.Expr))), len(body))
    top = {id(node) for node in body[:first_code]}
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top]


@pytest.mark.parametrize("name", CHECKED)
def test_imports_are_at_the_top(name):
    assert _imports_not_at_top(OPS / f"{name}.py") == []


def test_the_check_sees_a_late_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('"""doc"""\nimport os\nX = 1\nimport sys\ndef f():\n    import re\n')
    assert _imports_not_at_top(probe) == [4, 6]


def test_convert_imports_only_broadcast_from_ops():
    tree = ast.parse((OPS / "convert.py").read_text())
    ops_modules = {node.module for node in ast.walk(tree)
                   if isinstance(node, ast.ImportFrom) and node.level == 1}
    assert ops_modules == {"broadcast"}
