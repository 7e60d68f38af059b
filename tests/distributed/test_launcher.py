"""`gpugrad run -n N ...` and `gpugrad train --nproc N`."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gpugrad as gg
from gpugrad.distributed import launch
from gpugrad.train import build_model

ROOT = Path(__file__).resolve().parents[2]


def test_python_programs_run_with_this_interpreter():
    command = launch.mpiexec_command(3, ["train.py", "--lr", "1"], mpiexec="/x/mpiexec")
    assert command[0] == "/x/mpiexec"
    assert command[-8:] == ["-n", "3", sys.executable, "-m", "gpugrad.distributed._rank",
                            "train.py", "--lr", "1"]
    command = launch.mpiexec_command(2, ["-m", "benchmarks.distributed"], "/x/mpiexec")
    assert command[-5:] == [sys.executable, "-m", "gpugrad.distributed._rank", "-m",
                            "benchmarks.distributed"]
    command = launch.mpiexec_command(2, ["/bin/echo", "hi"], "/x/mpiexec")
    assert command[-2:] == ["/bin/echo", "hi"]


def test_program_options_pass_through_untouched():
    args = launch.parse_arguments(["-n", "2", "-m", "mod", "-n", "5", "--help"])
    assert args.nproc == 2 and args.program == ["-m", "mod", "-n", "5", "--help"]
    assert launch.parse_arguments(["--nproc=4", "x.py"]).nproc == 4


def test_bad_launches_are_errors(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="-n must be at least 1, got 0"):
        launch.mpiexec_command(0, ["x.py"], "/x/mpiexec")
    with pytest.raises(ValueError, match="no program given"):
        launch.mpiexec_command(2, [], "/x/mpiexec")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(launch.sysconfig, "get_path", lambda name: str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"no mpiexec found .* pip install "
                                           r"gpugrad\[distributed\]"):
        launch.find_mpiexec()


def test_ranks_get_a_share_of_the_cores_unless_set():
    env = launch.rank_environment(2, {"MKL_NUM_THREADS": "7"})
    assert env["GPUGRAD_NPROC"] == "2"
    assert env["MKL_NUM_THREADS"] == "7"
    assert env["OMP_NUM_THREADS"] == str(max(1, (os.cpu_count() or 1) // 2))


def test_gpugrad_run_starts_the_ranks(mpirun):
    done = mpirun(2, "hello.py", "-n", "9", "--flag")
    # The ranks' lines may interleave in the forwarded output: find each one.
    lines = sorted(re.findall(r"rank \d of \d+ nproc=\d+ threads=\d+ args=\[[^]]*\]",
                              done.stdout))
    share = os.environ.get("OMP_NUM_THREADS", max(1, (os.cpu_count() or 1) // 2))
    assert lines == [f"rank {r} of 2 nproc=2 threads={share} args=['-n', '9', '--flag']"
                     for r in range(2)]


def test_train_with_nproc_trains_data_parallel(mpirun, tmp_path):
    # mpirun only provides the skip; the command relaunches itself under mpiexec.
    done = subprocess.run([sys.executable, "-m", "gpugrad", "train", "--nproc", "2",
                           "--epochs", "2", "--device", "cpu", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("gpugrad digits demo") == 1  # rank 0 alone prints
    assert "cpu, 2 processes (DDP)" in done.stdout
    checkpoint = gg.load(tmp_path / "checkpoint.safetensors")
    build_model("mlp").load_state_dict(checkpoint["model"])
    assert checkpoint["epoch"] == 2
