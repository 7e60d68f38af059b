"""`gpugrad run -n N program ...`: start N ranks with the MPI runtime's `mpiexec`.

A thin wrapper: it finds `mpiexec` (next to the Python interpreter, where the `mpich`
wheel of `gpugrad[distributed]` puts it, else on PATH), runs `program` with this
interpreter when it is a `.py` file or `-m module`, and sets what the ranks need:

- `GPUGRAD_NPROC=N`, so that a program knows it runs under the launcher;
- one share of the CPU cores per rank for the BLAS, OpenMP and gpugrad thread pools,
  unless already set (N ranks that each start a pool per core fight over the cores);
- hydra's `-disable-auto-cleanup`: when a rank dies, the others are not killed silently
  but raise `DistributedTimeoutError` at their next collective, and the first of them
  ends the job with MPI_Abort. A Python exception on any rank also ends the job at once
  (`init_process_group` installs that hook).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "GPUGRAD_CPU_THREADS")


def find_mpiexec() -> str:
    """The path of `mpiexec`: beside `sys.executable` first (a virtual environment's
    `mpich` wheel), then in this interpreter's scripts folder, then on PATH. Raises
    RuntimeError saying how to install it."""
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = folder / "mpiexec"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("mpiexec")
    if found:
        return found
    raise RuntimeError("gpugrad run: no mpiexec found beside the Python interpreter or on "
                       "PATH; install the MPI runtime with: pip install gpugrad[distributed]")


def rank_environment(nproc: int, base: dict | None = None) -> dict:
    """The environment for the ranks: `base` (default: ours) plus GPUGRAD_NPROC and a
    per-rank share of the cores for every thread pool that is not set explicitly."""
    env = dict(os.environ if base is None else base)
    env["GPUGRAD_NPROC"] = str(nproc)
    share = str(max(1, (os.cpu_count() or 1) // nproc))
    for name in THREAD_VARIABLES:
        env.setdefault(name, share)
    return env


def mpiexec_command(nproc: int, program: list[str], mpiexec: str | None = None) -> list[str]:
    """The full command line that starts `program` (argv) on `nproc` ranks."""
    if nproc < 1:
        raise ValueError(f"gpugrad run: -n must be at least 1, got {nproc}")
    if not program:
        raise ValueError("gpugrad run: no program given (e.g. gpugrad run -n 2 train.py)")
    if program[0].endswith(".py") or program[0] == "-m":
        program = [sys.executable, *program]
    mpiexec = mpiexec or find_mpiexec()
    options = ["-disable-auto-cleanup"] if _is_hydra(mpiexec) else []
    return [mpiexec, *options, "-n", str(nproc), *program]


def _is_hydra(mpiexec: str) -> bool:
    """MPICH's process manager (the `mpich` wheel's), which takes -disable-auto-cleanup;
    Open MPI's mpiexec does not, and ends the job on a failure by itself."""
    try:
        version = subprocess.run([mpiexec, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "HYDRA" in version


def run(nproc: int, program: list[str]) -> int:
    """Run `program` on `nproc` ranks and return mpiexec's exit status."""
    return subprocess.call(mpiexec_command(nproc, program), env=rank_environment(nproc))


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """`-n N` then the program and its arguments, which are passed on untouched (even
    when they look like options, such as `-m module`)."""
    parser = argparse.ArgumentParser(
        prog="gpugrad run", description="Start N ranks of a program under mpiexec.",
        usage="gpugrad run -n N (script.py | -m module | executable) [args ...]")
    parser.add_argument("-n", "--nproc", type=int, required=True, help="number of ranks")
    end = 0  # where our options stop and the program starts
    while end < len(argv):
        arg = argv[end]
        if arg in ("-n", "--nproc"):
            end += 2
        elif arg.startswith("--nproc=") or (arg.startswith("-n") and arg[2:].isdigit()) \
                or arg in ("-h", "--help"):
            end += 1
        else:
            break
    args = parser.parse_args(argv[:end])
    args.program = argv[end:]
    if not args.program:
        parser.error("no program given (e.g. gpugrad run -n 2 train.py)")
    return args


def main(argv: list[str]) -> None:
    """`gpugrad run` with its command-line arguments: exits with the job's status."""
    args = parse_arguments(argv)
    try:
        status = run(args.nproc, args.program)
    except (RuntimeError, ValueError) as e:
        raise SystemExit(str(e)) from None
    raise SystemExit(status)
