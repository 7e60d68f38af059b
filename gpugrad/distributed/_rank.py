"""`python -m gpugrad.distributed._rank (script.py | -m module) [args ...]`: how
`gpugrad run` starts each rank of a Python program.

It registers the rank in the launcher's run folder, runs the program as `python` would
(same `sys.argv`, `__main__`, `sys.path[0]`), and records how it ended (its exit status,
and the error of an uncaught exception or `sys.exit(<non-zero>)`), so that the launcher
can stop the job at once and name the rank (see `gpugrad.distributed._monitor`). The
exception itself propagates as usual: Python prints it, and `init_process_group`'s hook
ends the MPI job.
"""

from __future__ import annotations

import os
import runpy
import sys

from ._monitor import launch_rank, record_exit, record_start


def _status(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1  # sys.exit("message") prints the message and exits with 1


def main(argv: list[str]) -> None:
    """Run the program given by `argv` as this rank, recording its start and end."""
    if not argv or (argv[0] == "-m" and len(argv) < 2):
        raise SystemExit("usage: python -m gpugrad.distributed._rank (script.py | -m module) "
                         "[args ...]")
    rank = launch_rank()
    if rank is not None:
        record_start(rank)
    try:
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            sys.path[0] = os.getcwd()
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as e:
        status = _status(e.code)
        if rank is not None:
            record_exit(rank, status, None if status == 0 else f"SystemExit: {e.code}")
        raise
    except BaseException as e:
        if rank is not None:
            record_exit(rank, 1, f"{type(e).__name__}: {e}".splitlines()[0][:500])
        raise
    if rank is not None:
        record_exit(rank, 0, None)


if __name__ == "__main__":
    main(sys.argv[1:])
