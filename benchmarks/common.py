"""Timing and reporting shared by the benchmarks: implementations timed in turns, each in
its own process; rich table; JSON."""

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


def time_it(fn, repeat: int = 7, number: int = 1, warmup: int = 2) -> dict:
    """Median and spread (min, max) of `repeat` timings of `number` calls, in seconds/call,
    after `warm_up`."""
    warm_up(fn, warmup)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def time_interleaved(module: str, function: str, impls: list[str], args: tuple,
                     repeat: int = 7, chunk_seconds: float = 0.2) -> dict:
    """Time implementations of one workload in rounds, each in a process of its own:
    `module.function(impl, *args)` serves one implementation (see `serve`).

    Each framework runs in its own process: NumPy's OpenBLAS threads and PyTorch's OpenMP
    threads both spin after work, so timing one right after the other in one process
    measures the contention, not the framework. The processes take turns (a chunk of about
    `chunk_seconds` of steps each, in alternating order) so that a change of load on a
    shared machine hits every implementation alike. Each chunk starts with one untimed step:
    thread pools that slept while another process ran wake up in it (on a VM, waking an
    idle virtual CPU costs milliseconds that a training loop never pays). Returns per
    implementation the median and spread (min, max) of its chunks in seconds per step and
    its peak memory, and under "ratios" the median over the rounds of each implementation's
    time over the first one's."""
    workers: dict = {}
    try:
        number = {}
        for i in impls:  # one warms up at a time, alone on the machine
            workers[i] = _Worker(module, function, (i, *args))
            number[i] = max(1, round(chunk_seconds / workers[i].ready()))
        times: dict = {i: [] for i in impls}
        for r in range(repeat):
            for i in (impls if r % 2 == 0 else impls[::-1]):
                times[i].append(workers[i].ask({"run": number[i]})["seconds"])
        stats = {i: {"median": statistics.median(t), "min": min(t), "max": max(t),
                     "peak_mem_mb": workers[i].ask({"peak": True})["peak_mem_mb"]}
                 for i, t in times.items()}
    finally:
        for w in workers.values():
            w.close()
    first = times[impls[0]]
    stats["ratios"] = {i: statistics.median(a / b for a, b in zip(first, t))
                       for i, t in times.items()}
    return stats


class _Worker:
    """One implementation served by `serve` in a fresh interpreter, over JSON lines."""

    def __init__(self, module: str, function: str, args: tuple) -> None:
        code = f"import {module} as m; m.{function}(*{args!r})"
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker {self.proc.args[-1]!r} exited with code "
                               f"{self.proc.wait()} (its error is printed above)")
        return json.loads(line)

    def ready(self) -> float:
        """Wait for the warm-up; returns the seconds of one step."""
        return self._read()["seconds"]

    def ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()


def serve(run, peak_memory) -> None:
    """The worker's side of `time_interleaved`: warm `run` (one step) up, then answer
    requests on stdin ({"run": n}: the seconds per step of n steps after an untimed one;
    {"peak": ...}: the
    peak memory from `peak_memory()`) until stdin closes. Anything the workload prints
    goes to stderr: stdout carries the answers only."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def answer(d: dict) -> None:
        out.write(json.dumps(d) + "\n")
        out.flush()

    answer({"seconds": warm_up(run)})
    for line in sys.stdin:
        request = json.loads(line)
        if "run" in request:
            run()
            t0 = time.perf_counter()
            for _ in range(request["run"]):
                run()
            answer({"seconds": (time.perf_counter() - t0) / request["run"]})
        else:
            answer({"peak_mem_mb": peak_memory()})


def warm_up(fn, warmup: int = 2, warmup_seconds: float = 1.0, max_warmup: int = 50) -> float:
    """Run `fn` at least `warmup` times and about `warmup_seconds` (at most `max_warmup`
    calls): allocators, caches and thread pools of every framework reach their steady state
    only after several steps. Returns the time of the last call in seconds."""
    start = time.perf_counter()
    last = 0.0
    for k in range(max_warmup):
        if k >= warmup and time.perf_counter() - start >= warmup_seconds:
            break
        t0 = time.perf_counter()
        fn()
        last = time.perf_counter() - t0
    return last


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
