"""Timing and reporting shared by the benchmarks: median of repeats, rich table, JSON."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Workload:
    """One benchmark: a name, its implementations, and its work per step."""

    key: str
    name: str
    implementations: dict
    flops: float | None = None  # floating point operations per step
    bytes: float | None = None  # minimum bytes moved per step (memory-bound workloads)
    rtol: float = 1e-3
    atol: float = 1e-5
    extra: dict = field(default_factory=dict)


def time_it(fn, repeat: int = 7, number: int = 1, warmup: int = 2,
            warmup_seconds: float = 1.0, max_warmup: int = 50) -> dict:
    """Median and spread (min, max) of `repeat` timings of `number` calls, in seconds/call.

    Warm-up runs at least `warmup` calls and about `warmup_seconds` (at most `max_warmup`
    calls): allocators, caches and thread pools of every framework reach their steady state
    only after several steps."""
    start = time.perf_counter()
    for k in range(max_warmup):
        if k >= warmup and time.perf_counter() - start >= warmup_seconds:
            break
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def time_isolated(module: str, function: str, *args) -> dict:
    """Call `module.function(*args)` (which returns a timing dict) in a fresh interpreter.

    Each framework is timed in its own process: NumPy's OpenBLAS threads and PyTorch's
    OpenMP threads both spin after work, so timing one right after the other in one process
    measures the contention, not the framework.
    """
    code = (f"import json, {module} as m; "
            f"print(json.dumps(m.{function}(*{args!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    """The CPU's model name (as `lscpu` shows it), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_caption(env: dict) -> str:
    """The line naming the machine under a result table: CPU model, core count, BLAS
    kernel (OpenBLAS's architecture) and a forced OPENBLAS_CORETYPE, if any."""
    parts = [f"CPU: {env.get('cpu_model') or env.get('machine')}"
             + (f" x{env['cpu_count']}" if env.get("cpu_count") else "")]
    if env.get("blas"):
        parts.append("BLAS: " + "; ".join(env["blas"]))
    if env.get("openblas_coretype"):
        parts.append(f"OPENBLAS_CORETYPE={env['openblas_coretype']}")
    return " · ".join(parts)


def environment(device: str) -> dict:
    """Versions, device, date and commit to store beside every result."""
    import numpy

    import gpugrad

    info = {"date": datetime.date.today().isoformat(), "device": device,
            "machine": platform.processor() or platform.machine(),
            "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
            "python": platform.python_version(), "numpy": numpy.__version__,
            "gpugrad": gpugrad.__version__}
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [f"{i.get('internal_api')} {i.get('version')} "
                        f"{i.get('architecture')} x{i.get('num_threads')}"
                        for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        pass
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True,
                                        check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        info["commit"] = None
    return info


def report(title: str, rows: list[dict], columns: list[tuple[str, str]], env: dict,
           json_path: str | None) -> None:
    """Print a rich table of `rows` and optionally write them with `env` as JSON."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{title} — {env['device']}, {env['date']}, commit {env['commit']}",
                  caption=hardware_caption(env))
    for key, header in columns:
        table.add_column(header, justify="right" if key != "name" else "left")
    for row in rows:
        table.add_row(*[_fmt(row.get(key)) for key, _ in columns])
    Console(width=200 if not Console().is_terminal else None).print(table)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps({"environment": env, "results": rows}, indent=2)
                                   + "\n")


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)
