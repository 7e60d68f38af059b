"""Launch worker scripts on N CPU ranks with `gpugrad run` (mpiexec) and collect what the
ranks write. Skips cleanly when mpi4py or mpiexec is not installed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKERS = Path(__file__).resolve().parent / "workers"
sys.path.insert(0, str(WORKERS))  # the tests import the workers' expected-value helpers


def _mpi_missing() -> str | None:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install gpugrad[distributed])"
    from gpugrad.distributed import launch

    try:
        launch.find_mpiexec()
    except RuntimeError as e:
        return str(e)
    return None


@pytest.fixture(scope="session")
def mpirun():
    """`mpirun(n, "worker.py", *args, timeout=60, check=True)`: run a worker on n ranks on
    the CPU and return the CompletedProcess (text stdout/stderr). With `check`, a
    non-zero exit fails the test with the job's output."""
    reason = _mpi_missing()
    if reason:
        pytest.skip(reason)

    def run(n: int, worker: str, *args, timeout: float = 60, check: bool = True,
            env: dict | None = None):
        environment = {**os.environ, "GPUGRAD_DEVICE": "cpu", **(env or {})}
        command = [sys.executable, "-m", "gpugrad", "run", "-n", str(n),
                   str(WORKERS / worker), *map(str, args)]
        done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True,
                              text=True, timeout=timeout)
        if check and done.returncode != 0:
            pytest.fail(f"{worker} on {n} ranks exited with {done.returncode}:\n"
                        f"{done.stdout}\n{done.stderr}")
        return done

    return run
