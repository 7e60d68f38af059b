"""What every example shares: a rich progress bar and the final summary line."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def progress(total: int, description: str, quiet: bool = False) -> Iterator:
    """A progress bar; call `update(metric_text)` once per step/epoch.

    Refreshes only on update: rich's refresh thread makes OpenBLAS's worker threads spin
    and slows small matmuls tenfold on a CPU.
    """
    console = Console(quiet=quiet)
    bar = Progress(TextColumn(f"[bold]{description}"), BarColumn(),
                   TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[info]}"),
                   TimeElapsedColumn(), console=console, auto_refresh=False)
    with bar:
        task = bar.add_task(description, total=total, info="")

        def update(info: str = "", advance: int = 1) -> None:
            bar.update(task, advance=advance, info=info)
            bar.refresh()

        yield update


def report(name: str, metrics: dict, quiet: bool = False) -> None:
    """Print the example's final metrics as one table."""
    from rich.table import Table

    table = Table(title=f"gpugrad example: {name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console(quiet=quiet).print(table)


def parser(description: str) -> argparse.ArgumentParser:
    """Common options: --device, --seed, --quick (a shortened run, used by the tests)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a shortened run (used by the tests)")
    return p
