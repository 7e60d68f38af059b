"""`gpugrad` command line: `gpugrad train [...]` (also `python -m gpugrad`)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the chosen subcommand (train by default)."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="gpugrad", description="gpugrad command line")
    sub = parser.add_subparsers(dest="command")
    from . import train

    train.add_arguments(sub.add_parser("train", help="train the digits demo classifier"))
    if not argv or argv[0].startswith("-"):
        argv = ["train", *argv]
    args = parser.parse_args(argv)
    train.run(args)


if __name__ == "__main__":
    main()
