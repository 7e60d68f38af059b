"""The benchmark suite: every workload in gpugrad, PyTorch eager and plain NumPy.

Each workload module exposes `WORKLOADS`, a list of `Workload`s whose implementations
are `fn(device) -> (step, result, sync)`: `step()` runs one forward+backward(+update),
`result()` returns NumPy arrays to compare, `sync` waits for the device (None on CPU).
Before timing, all implementations run one step and must agree numerically; then each is
timed in a fresh process (so thread pools of different frameworks never compete).
"""

from __future__ import annotations

import importlib
import resource
import time

import numpy as np

from benchmarks.common import Workload, serve, time_interleaved, time_it

MODULES = ["benchmarks.overhead", "benchmarks.activation_chain", "benchmarks.mlp_step",
           "benchmarks.conv_step", "benchmarks.lstm_step", "benchmarks.transformer_step"]


def all_workloads() -> dict[str, Workload]:
    """Every workload whose module imports (modules of unfinished layers are skipped)."""
    found = {}
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for w in getattr(module, "WORKLOADS", []):
            found[w.key] = w
    return found


def check_agreement(w: Workload, device: str, impls: list[str]) -> None:
    """Run one step of each implementation; all results must match gpugrad's."""
    results = {}
    for impl in impls:
        step, result, sync = w.implementations[impl](device)
        step()
        if sync:
            sync()
        results[impl] = [np.asarray(r) for r in _as_list(result())]
    for impl, res in results.items():
        for a, b in zip(results["gpugrad"], res):
            np.testing.assert_allclose(a, b, rtol=w.rtol, atol=w.atol,
                                       err_msg=f"{w.key}: gpugrad and {impl} disagree")


def _as_list(r):
    return list(r) if isinstance(r, (list, tuple)) else [r]


def serve_one(impl: str, key: str, device: str) -> None:
    """Serve one implementation of one workload to `time_interleaved` (in a fresh process)."""
    w = all_workloads()[key]
    step, _, sync = w.implementations[impl](device)

    def run():
        step()
        if sync:
            sync()

    serve(run, lambda: _peak_memory_mb(impl, device))


def _peak_memory_mb(impl: str, device: str) -> float:
    if device == "cpu":
        # VmHWM, not ru_maxrss: the latter carries the parent's peak across fork+exec.
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if impl == "torch":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    import cupy

    return cupy.get_default_memory_pool().total_bytes() / 2**20


def measure_peaks(device: str) -> dict:
    """The device's achievable peaks, measured: float32 GEMM GFLOP/s and copy GB/s."""
    if device == "cpu":
        xp, sync = np, None
    else:
        import cupy as xp

        sync = xp.cuda.Device().synchronize
    a = xp.ones((2048, 2048), dtype=np.float32)
    big = xp.ones(64 * 2**20 // 4, dtype=np.float32)
    out = xp.empty_like(big)

    def gemm():
        a @ a
        if sync:
            sync()

    def copy():
        xp.copyto(out, big)
        if sync:
            sync()

    t_gemm = time_it(gemm, repeat=5)["min"]
    t_copy = time_it(copy, repeat=5)["min"]
    return {"gflops": 2 * 2048**3 / t_gemm / 1e9, "gbps": 2 * big.nbytes / t_copy / 1e9}


def run(device: str = "cpu", workloads: list[str] | None = None, repeat: int = 7) -> tuple:
    """Check and time the chosen workloads; returns (rows, peaks)."""
    available = all_workloads()
    keys = workloads or list(available)
    unknown = [k for k in keys if k not in available]
    if unknown:
        raise SystemExit(f"unknown workloads {unknown}; available: {sorted(available)}")
    try:
        import torch  # noqa: F401

        has_torch = True
    except ImportError:
        has_torch = False
    peaks = measure_peaks(device)
    rows = []
    for key in keys:
        w = available[key]
        impls = [i for i in ("gpugrad", "torch", "numpy") if i in w.implementations
                 and (i != "torch" or has_torch) and (i != "numpy" or device == "cpu")]
        t0 = time.perf_counter()
        check_agreement(w, device, impls)
        times = time_interleaved("benchmarks.suite", "serve_one", impls, (key, device), repeat)
        g = times["gpugrad"]
        row = {"key": key, "name": w.name, "gpugrad_ms": g["median"] * 1e3,
               "spread_ms": (g["max"] - g["min"]) * 1e3,
               "torch_ms": times["torch"]["median"] * 1e3 if "torch" in times else None,
               "torch_spread_ms": ((times["torch"]["max"] - times["torch"]["min"]) * 1e3
                                   if "torch" in times else None),
               "numpy_ms": times["numpy"]["median"] * 1e3 if "numpy" in times else None,
               "gpugrad_peak_mem_mb": g["peak_mem_mb"],
               "torch_peak_mem_mb": times["torch"]["peak_mem_mb"] if "torch" in times else None,
               "seconds": time.perf_counter() - t0}
        # the median of the rounds' ratios: both ran under the same load in each round
        row["ratio_to_torch"] = times["ratios"].get("torch")
        if w.flops:
            row["gflops"] = w.flops / g["median"] / 1e9
            row["fraction_of_peak"] = row["gflops"] / peaks["gflops"]
        elif w.bytes:
            row["gbps"] = w.bytes / g["median"] / 1e9
            row["fraction_of_peak"] = row["gbps"] / peaks["gbps"]
        rows.append(row)
    return rows, peaks
