"""`gpugrad` command line: `gpugrad train [...]` (also `python -m gpugrad`) and
`gpugrad run -n N program [...]` (N ranks under MPI, see `gpugrad.distributed.launch`)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the chosen subcommand (train by default)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "run":
        from .distributed import launch

        # Parsed by the launcher: the program's own arguments must pass through untouched.
        launch.main(argv[1:])
        return
    parser = argparse.ArgumentParser(prog="gpugrad", description="gpugrad command line")
    sub = parser.add_subparsers(dest="command")
    from . import train

    train_parser = sub.add_parser("train", help="train the digits demo classifier")
    train.add_arguments(train_parser)
    sub.add_parser("run", help="run a program on N ranks under MPI: gpugrad run -n N "
                               "(script.py | -m module | executable) [args ...]",
                   add_help=False)
    if not argv or argv[0].startswith("-"):
        argv = ["train", *argv]
    args = parser.parse_args(argv)
    train.check_arguments(train_parser, args)
    train.run(args)


if __name__ == "__main__":
    main()
