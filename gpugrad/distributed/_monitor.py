"""What `gpugrad run` and its ranks know about each other, through a run folder.

The launcher makes a folder and names it in `GPUGRAD_RUN_DIR`. Each rank (started through
`gpugrad.distributed._rank`) writes `rank<r>.pid` when it starts and `rank<r>.exit` (JSON:
its exit status and, after an error, the error's one-line summary) when it ends. From
these the launcher sees a rank that failed or vanished (killed, `os._exit`) and stops the
job; a rank waiting in a collective sees a peer that has already exited and raises
instead of waiting for its timeout. Files, not sockets: nothing to set up, and a rank
killed with SIGKILL still leaves its pid behind.
"""

from __future__ import annotations

import json
import os

RUN_DIR_VARIABLE = "GPUGRAD_RUN_DIR"
# The rank a process manager gives each process before MPI starts (MPICH/hydra, Open MPI,
# PMIx), so that a rank can register before it calls init_process_group.
_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")


def run_dir() -> str | None:
    """The launcher's run folder, or None outside `gpugrad run`."""
    return os.environ.get(RUN_DIR_VARIABLE) or None


def launch_rank() -> int | None:
    """This process's rank as its process manager set it, or None."""
    for name in _RANK_VARIABLES:
        value = os.environ.get(name)
        if value is not None and value.isdigit():
            return int(value)
    return None


def _write(folder: str, name: str, text: str) -> None:
    tmp = os.path.join(folder, f".{name}.{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(folder, name))  # readers never see half a record


def record_start(rank: int) -> None:
    """Register this process as `rank` (its pid) in the run folder, if there is one."""
    folder = run_dir()
    if folder is not None:
        _write(folder, f"rank{rank}.pid", str(os.getpid()))


def record_exit(rank: int, status: int, error: str | None) -> None:
    """Record how this rank ended: its exit status and, on failure, a one-line error."""
    folder = run_dir()
    if folder is not None:
        _write(folder, f"rank{rank}.exit", json.dumps({"status": status, "error": error}))


def _ranks_with(folder: str, suffix: str) -> dict[int, str]:
    out = {}
    try:
        names = os.listdir(folder)
    except OSError:
        return out
    for name in names:
        if name.startswith("rank") and name.endswith(suffix) and name[4:-len(suffix)].isdigit():
            try:
                with open(os.path.join(folder, name)) as f:
                    out[int(name[4:-len(suffix)])] = f.read()
            except OSError:
                continue
    return out


def started(folder: str) -> dict[int, int]:
    """rank -> pid of every rank that has registered."""
    return {r: int(text) for r, text in _ranks_with(folder, ".pid").items() if text.isdigit()}


def exits(folder: str) -> dict[int, dict]:
    """rank -> {"status": int, "error": str | None} of every rank that has ended."""
    out = {}
    for rank, text in _ranks_with(folder, ".exit").items():
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("status"), int):
            out[rank] = record
    return out


def exited_peer(rank: int) -> str | None:
    """A sentence about another rank of this job that has already ended (or vanished),
    or None: a collective that waits for it can never finish."""
    folder = run_dir()
    if folder is None:
        return None
    ended = exits(folder)
    for other in sorted(ended):
        if other != rank:
            record = ended[other]
            error = f": {record['error']}" if record.get("error") else ""
            return f"rank {other} has exited (status {record['status']}{error})"
    for other, pid in sorted(started(folder).items()):
        if other != rank and not process_alive(pid) and other not in exits(folder):
            return f"rank {other} (pid {pid}) has died (killed, or ended by os._exit)"
    return None


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (Linux: read from /proc)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")
