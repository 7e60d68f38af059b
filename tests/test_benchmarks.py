"""The benchmark command keeps working, and the Docker image does what the README says."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_suite_runs_and_writes_json_and_plot(tmp_path):
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    subprocess.run([sys.executable, "-m", "benchmarks", "--workloads", "overhead,mlp_small",
                    "--repeat", "1", "--json", str(out), "--plot", str(png)],
                   cwd=ROOT, check=True, capture_output=True, text=True)
    data = json.loads(out.read_text())
    assert {r["key"] for r in data["results"]} == {"overhead", "mlp_small"}
    for row in data["results"]:
        assert row["gpugrad_ms"] > 0 and row["torch_ms"] > 0 and row["ratio_to_torch"] > 0
    assert data["environment"]["device"] == "cpu" and data["environment"]["date"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_disagreeing_implementations_are_caught():
    from benchmarks.common import Workload
    from benchmarks.suite import check_agreement

    def impl(value):
        return lambda device: ((lambda: None), (lambda: [value]), None)

    w = Workload("x", "x", {"gpugrad": impl(1.0), "torch": impl(2.0)})
    with pytest.raises(AssertionError, match="disagree"):
        check_agreement(w, "cpu", ["gpugrad", "torch"])


_WORKER = """
import time
from benchmarks.common import serve


def serve_impl(impl, log):
    if impl == "broken":
        raise ValueError("this workload cannot start")

    def step():
        with open(log, "a") as f:
            f.write(impl + "\\n")

    serve(step, lambda: 1.5)
"""


def test_interleaved_timing_takes_turns_in_separate_processes(tmp_path, monkeypatch):
    from benchmarks.common import time_interleaved

    (tmp_path / "bench_worker.py").write_text(_WORKER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), str(ROOT)]))
    log = tmp_path / "calls.log"
    stats = time_interleaved("bench_worker", "serve_impl", ["a", "b"], (str(log),), repeat=3,
                             chunk_seconds=0.0)
    calls = log.read_text().split()
    warmup = calls[:calls.index("b")]  # a warms up first, then b, then the rounds
    assert set(warmup) == {"a"}
    rounds = calls[len(warmup):]
    rounds = rounds[[i for i, c in enumerate(rounds) if c == "a"][0]:]
    # one untimed and one timed step per chunk, in alternating order
    assert rounds == ["a", "a", "b", "b", "b", "b", "a", "a", "a", "a", "b", "b"]
    for impl in ("a", "b"):
        assert stats[impl]["min"] <= stats[impl]["median"] <= stats[impl]["max"]
        assert stats[impl]["peak_mem_mb"] == 1.5
    assert stats["ratios"]["a"] == 1.0 and stats["ratios"]["b"] > 0
    with pytest.raises(RuntimeError, match="exited with code 1"):
        time_interleaved("bench_worker", "serve_impl", ["a", "broken"], (str(log),),
                         repeat=1, chunk_seconds=0.0)


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_install_steps_are_the_readmes():
    readme = (ROOT / "README.md").read_text()
    runs = re.findall(r"^RUN (python3 -m venv .*)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert len(runs) == 2
    assert runs[0] in readme
    assert runs[1] == runs[0].replace('".[bench]"', '".[bench,cuda12]"')
    for cmd in ("docker build -t gpugrad-bench .", "docker run --rm --gpus all",
                "docker build --target cpu"):
        assert cmd in readme


def test_gpu_session_script_parses_and_refuses_an_unknown_stage(tmp_path):
    script = ROOT / "benchmarks" / "gpu_session.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    env = {**os.environ, "PYTHON": sys.executable}
    res = subprocess.run(["bash", str(script), "nonsense", str(tmp_path)], env=env,
                         capture_output=True, text=True)
    assert res.returncode == 2 and "unknown stage nonsense" in res.stderr


def test_environment_names_cpu_model_and_blas_kernel(tmp_path, capsys):
    from benchmarks.common import environment, hardware_caption, report

    env = environment("cpu")
    assert env["cpu_model"] and env["cpu_count"] >= 1
    lscpu = shutil.which("lscpu")
    if lscpu:
        shown = subprocess.run([lscpu], capture_output=True, text=True).stdout
        names = re.findall(r"Model name:\s*(.+)", shown)
        if names:
            assert env["cpu_model"] == names[0].strip()
    caption = hardware_caption(env)
    assert env["cpu_model"] in caption
    for blas in env.get("blas", []):
        assert blas in caption
    out = tmp_path / "r.json"
    report("t", [{"name": "w", "gpugrad_ms": 1.0}], [("name", "workload"),
                                                    ("gpugrad_ms", "ms")], env, str(out))
    assert env["cpu_model"] in capsys.readouterr().out
    assert json.loads(out.read_text())["environment"]["cpu_model"] == env["cpu_model"]
