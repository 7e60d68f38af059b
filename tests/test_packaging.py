"""The installed package carries every subpackage and the CUDA sources."""

import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "gpugrad").rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages"


def test_wheel_contains_kernels(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("gpugrad-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for cu in (ROOT / "kernels").glob("*.cu"):
        assert f"gpugrad/kernels/{cu.name}" in names
    assert "gpugrad/backend/kernels.py" in names
