"""`gpugrad run -n N program ...`: start N ranks with the MPI runtime's `mpiexec`.

A thin wrapper: it finds `mpiexec` (next to the Python interpreter, where the `mpich`
wheel of `gpugrad[distributed]` puts it, else on PATH), runs `program` with this
interpreter when it is a `.py` file or `-m module`, and sets what the ranks need:

- `GPUGRAD_NPROC=N`, so that a program knows it runs under the launcher;
- one share of the CPU cores per rank for the BLAS, OpenMP and gpugrad thread pools,
  unless already set (N ranks that each start a pool per core fight over the cores);
- hydra's `-disable-auto-cleanup` (so that hydra does not kill the job silently: the
  launcher does, saying why);
- `GPUGRAD_RUN_DIR`, a folder through which the ranks report (see `_monitor`): Python
  programs run through `gpugrad.distributed._rank`, which registers each rank and
  records how it ended.

The launcher watches the ranks as torchrun does: when one exits with a non-zero status
(an exception, `sys.exit(1)`) or vanishes (a kill, `os._exit`), it prints which rank and
its error, stops the others (SIGTERM, then SIGKILL) and exits non-zero, within about a
second. A rank that exits normally while the others wait for it in a collective makes
them raise `DistributedPeerExitedError` at once, which ends the job the same way.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from . import _monitor

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
        program = [sys.executable, "-m", "gpugrad.distributed._rank", *program]
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


_POLL_SECONDS = 0.1
_GRACE_SECONDS = 3.0  # between SIGTERM and SIGKILL when stopping the job


def run(nproc: int, program: list[str]) -> int:
    """Run `program` on `nproc` ranks and return the job's exit status: mpiexec's, or
    non-zero as soon as a rank fails (after stopping the others and naming the rank on
    stderr)."""
    command = mpiexec_command(nproc, program)
    with tempfile.TemporaryDirectory(prefix="gpugrad-run-") as folder:
        env = rank_environment(nproc)
        env[_monitor.RUN_DIR_VARIABLE] = folder
        job = subprocess.Popen(command, env=env, start_new_session=True)
        try:
            return _supervise(job, folder, nproc)
        except BaseException:  # Ctrl-C included: never leave ranks behind
            _stop(job, folder)
            raise


def _supervise(job: subprocess.Popen, folder: str, nproc: int) -> int:
    watcher = _RankWatcher(folder, nproc)
    try:
        return _watch(job, folder, watcher)
    finally:
        for rank in list(watcher.watched):
            if rank not in watcher.ended:
                watcher._forget(rank)


def _watch(job: subprocess.Popen, folder: str, watcher: _RankWatcher) -> int:
    while True:
        status = job.poll()
        failure = watcher.failure(_POLL_SECONDS if status is None else 0.0)
        if failure is not None:
            message, code = failure
            _say(message)
            if job.poll() is None:
                running = watcher.running()
                _say(f"stopping the job (rank{'s' if len(running) != 1 else ''} "
                     f"{', '.join(map(str, running)) or 'none'} still running)")
                _stop(job, folder)
            return code
        if status is not None:
            return status


class _RankWatcher:
    """Finds the first rank that failed (a non-zero exit record) or vanished (its
    process ended without a record). Where the OS has pidfds (Linux), it sleeps on the
    ranks' pidfds, so it wakes the moment a rank ends: when one rank's death brings
    down others (MPI tears down the job), the first is the one named."""

    def __init__(self, folder: str, nproc: int) -> None:
        self.folder, self.nproc = folder, nproc
        self.watched: dict[int, tuple[int, int | None]] = {}  # rank -> (pid, pidfd)
        self.ended: set[int] = set()

    def running(self) -> list[int]:
        """Ranks whose processes are still alive."""
        return sorted(r for r, (pid, _) in self.watched.items()
                      if r not in self.ended and _monitor.process_alive(pid))

    def failure(self, timeout: float) -> tuple[str, int] | None:
        """(message, exit status) for the first failed rank, waiting up to `timeout` s."""
        self._watch_new_ranks()
        fds = {fd: r for r, (_, fd) in self.watched.items()
               if fd is not None and r not in self.ended}
        readable: list = []
        if fds:
            readable, _, _ = select.select(list(fds), [], [], timeout)
        elif timeout:
            time.sleep(timeout)
        records = _monitor.exits(self.folder)
        for rank in sorted(records):
            record = records[rank]
            if record["status"] != 0:
                error = f": {record['error']}" if record.get("error") else ""
                return (f"rank {rank} of {self.nproc} failed with exit status "
                        f"{record['status']}{error}",
                        record["status"] if 0 < record["status"] < 256 else 1)
        gone = sorted({fds[fd] for fd in readable} | {
            r for r, (pid, fd) in self.watched.items()
            if fd is None and r not in self.ended and not _monitor.process_alive(pid)})
        records = _monitor.exits(self.folder)  # a record is written before the exit
        vanished = [r for r in gone if r not in records]
        for rank in gone:
            self._forget(rank)
        if vanished:
            names = " and ".join(f"rank {r} of {self.nproc} (pid {self.watched[r][0]})"
                                 for r in vanished)
            return (f"{names} died without reporting an exit status (killed by a signal, or "
                    "ended by os._exit)", 1)
        return None

    def _watch_new_ranks(self) -> None:
        for rank, pid in _monitor.started(self.folder).items():
            if rank in self.watched:
                continue
            fd = None
            if hasattr(os, "pidfd_open"):
                try:
                    fd = os.pidfd_open(pid)
                except ProcessLookupError:  # already gone: the liveness check sees it
                    pass
                except OSError:  # no pidfds here (old kernel): poll liveness instead
                    pass
            self.watched[rank] = (pid, fd)

    def _forget(self, rank: int) -> None:
        self.ended.add(rank)
        fd = self.watched[rank][1]
        if fd is not None:
            os.close(fd)


def _say(message: str) -> None:
    print(f"gpugrad run: {message}", file=sys.stderr, flush=True)


def _stop(job: subprocess.Popen, folder: str) -> None:
    """SIGTERM every registered rank and mpiexec's process group, SIGKILL what is left
    after a grace period, and reap mpiexec."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _monitor.started(folder).values():
            _signal(os.kill, pid, sig)
        if job.poll() is None:
            _signal(os.killpg, job.pid, sig)
        try:
            job.wait(_GRACE_SECONDS)
            if not any(_monitor.process_alive(p) for p in _monitor.started(folder).values()):
                return
        except subprocess.TimeoutExpired:
            pass
    job.wait()


def _signal(send, target: int, sig: int) -> None:
    try:
        send(target, sig)
    except (ProcessLookupError, PermissionError):
        pass


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
