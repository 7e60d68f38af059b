"""`benchmarks/distributed.py` runs under the launcher and reports nccl-tests' bandwidths."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bus_bandwidth_is_nccl_tests_formula():
    from benchmarks.distributed import bus_bandwidth

    assert bus_bandwidth(4.0, 2) == 4.0
    assert bus_bandwidth(4.0, 4) == pytest.approx(6.0)
    assert bus_bandwidth(4.0, 1) == 0.0


def test_quick_run_writes_json_and_table(mpirun, tmp_path):
    # mpirun only provides the skip; this is the documented command line.
    out = tmp_path / "distributed-cpu"
    done = subprocess.run([sys.executable, "-m", "gpugrad", "run", "-n", "2", "-m",
                           "benchmarks.distributed", "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["environment"]["ranks"] == 2 and len(data["environment"]["commit"]) == 40
    for row in data["all_reduce"]:
        assert row["gpugrad_s"] > 0 and row["mpi4py_s"] > 0
        assert row["gpugrad_algbw_gbps"] == pytest.approx(row["bytes"] / row["gpugrad_s"] / 1e9)
        assert row["gpugrad_busbw_gbps"] == pytest.approx(row["gpugrad_algbw_gbps"])  # n=2
    setups = [row["setup"] for row in data["ddp_step"]]
    assert setups == ["1 process, batch 128", "1 process, batch 256",
                      "DDP, 2 ranks x batch 128"]
    assert all(row["step_s"] > 0 for row in data["ddp_step"])
    assert "busbw GB/s" in out.with_suffix(".txt").read_text()
