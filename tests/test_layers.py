"""The package's layers point down: gpugrad/backend imports no tensor, autograd, ops or nn;
gpugrad/autograd imports no ops or nn; gpugrad/ops imports no nn. Every import in a file
counts, deferred ones inside functions included (an AST walk, not an import trace)."""

import ast
from pathlib import Path

import pytest

import gpugrad

ROOT = Path(gpugrad.__file__).parent

RULES = {
    "backend": ("gpugrad.tensor", "gpugrad.autograd", "gpugrad.ops", "gpugrad.nn"),
    "autograd": ("gpugrad.ops", "gpugrad.nn"),
    "ops": ("gpugrad.nn",),
}


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file; `from P import name`
    yields both P and P.name (the name may be a submodule)."""
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append((node.lineno, mod))
            found += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return found


def violations(layer: str, root: Path = ROOT) -> list[str]:
    bad = []
    for path in sorted((root / layer).rglob("*.py")):
        for line, mod in imported_modules(path, root):
            for banned in RULES[layer]:
                if mod == banned or mod.startswith(banned + "."):
                    bad.append(f"{path.relative_to(root.parent)}:{line} imports {mod}")
    return bad


@pytest.mark.parametrize("layer", sorted(RULES))
def test_layers_point_down(layer):
    assert not violations(layer), "\n".join(violations(layer))


def test_the_walk_sees_relative_and_deferred_imports(tmp_path):
    """The checker itself: a deferred relative import of ops inside a function is found."""
    (tmp_path / "gpugrad" / "autograd").mkdir(parents=True)
    fake = tmp_path / "gpugrad" / "autograd" / "_layer_probe.py"
    fake.write_text("def f():\n    from ..ops import shape\n    from .. import nn\n")
    found = violations("autograd", tmp_path / "gpugrad")
    assert any("_layer_probe.py:2 imports gpugrad.ops" in v for v in found)
    assert any("_layer_probe.py:3 imports gpugrad.nn" in v for v in found)


# Capability switches of the backend's kernel families: only the backend reads them. Ops
# and nn ask a backend method instead (fuses_rows, value_range, dropout_philox_state,
# is_capturing), so a new backend changes its behaviour in one place.
BACKEND_SWITCHES = frozenset(("fused_kernels", "fused_rows", "regenerates_dropout_mask"))


def capability_reads(root: Path = ROOT) -> list[str]:
    """Reads of a backend switch, or of a backend's `name`, outside gpugrad/backend."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        if (root / "backend") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value
            owner_name = (owner.attr if isinstance(owner, ast.Attribute)
                          else owner.id if isinstance(owner, ast.Name) else "")
            if node.attr in BACKEND_SWITCHES or (node.attr == "name"
                                                 and owner_name.endswith("backend")):
                bad.append(f"{path.relative_to(root.parent)}:{node.lineno} reads "
                           f"{owner_name}.{node.attr}")
    return bad


def test_ops_ask_the_backend_instead_of_reading_its_switches():
    assert not capability_reads(), "\n".join(capability_reads())


def test_the_switch_walk_sees_flag_and_name_reads(tmp_path):
    (tmp_path / "gpugrad" / "ops").mkdir(parents=True)
    (tmp_path / "gpugrad" / "backend").mkdir()
    (tmp_path / "gpugrad" / "ops" / "_probe.py").write_text(
        "def f(x, ctx):\n    if x._backend.name == 'cpu':\n        pass\n"
        "    return ctx.backend.fused_kernels\n")
    (tmp_path / "gpugrad" / "backend" / "_probe.py").write_text(
        "def f(self):\n    return self.fused_rows\n")
    found = sorted(capability_reads(tmp_path / "gpugrad"))
    assert found == ["gpugrad/ops/_probe.py:2 reads _backend.name",
                     "gpugrad/ops/_probe.py:4 reads backend.fused_kernels"]


def test_the_profiler_core_imports_only_the_standard_library():
    """gpugrad/backend/trace.py is called from every layer (autograd, ops, the backends):
    it imports nothing of gpugrad nor any third-party package."""
    import sys

    path = ROOT / "backend" / "trace.py"
    bad = [f"line {line}: {mod}" for line, mod in imported_modules(path)
           if mod.split(".")[0] not in sys.stdlib_module_names and mod != "__future__"
           and not mod.startswith("__future__.")]
    assert not bad, "\n".join(bad)
