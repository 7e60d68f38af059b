"""`python -m benchmarks`: the whole suite, side by side with PyTorch eager.

    python -m benchmarks [--device cpu|cuda] [--workloads a,b] [--repeat 7]
                         [--json PATH] [--plot PATH]
"""

from __future__ import annotations

import argparse

from benchmarks.common import environment, report
from benchmarks.suite import all_workloads, run

COLUMNS = [("name", "workload"), ("gpugrad_ms", "gpugrad ms"), ("spread_ms", "spread ms"),
           ("torch_ms", "PyTorch ms"), ("torch_spread_ms", "spread ms"),
           ("numpy_ms", "NumPy, no AD, ms"),
           ("ratio_to_torch", "gpugrad / PyTorch"), ("gflops", "GFLOP/s"), ("gbps", "GB/s"),
           ("fraction_of_peak", "of peak"), ("gpugrad_peak_mem_mb", "peak MB"),
           ("torch_peak_mem_mb", "PyTorch peak MB")]


def plot(rows: list[dict], env: dict, path: str) -> None:
    """A bar chart of gpugrad's time relative to PyTorch per workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.get("ratio_to_torch")]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.5))
    ratios = [r["ratio_to_torch"] for r in rows]
    ax.barh([r["name"] for r in rows], ratios,
            color=["tab:green" if v <= 1 else "tab:orange" for v in ratios])
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xlabel("gpugrad time / PyTorch eager time (lower is better)")
    ax.set_title(f"gpugrad vs PyTorch — {env['device']}, {env['date']}, {env['commit']}")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--workloads", default=None,
                   help=f"comma-separated subset of: {', '.join(all_workloads())}")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--json", default=None, help="write results here")
    p.add_argument("--plot", default=None, help="write a PNG bar chart here (needs matplotlib)")
    args = p.parse_args(argv)
    keys = args.workloads.split(",") if args.workloads else None
    rows, peaks = run(args.device, keys, args.repeat)
    env = environment(args.device)
    env["measured_peak_gflops"] = peaks["gflops"]
    env["measured_peak_gbps"] = peaks["gbps"]
    report("gpugrad benchmarks", rows, COLUMNS, env, args.json)
    if args.plot:
        try:
            plot(rows, env, args.plot)
        except ImportError:
            print("matplotlib is not installed: no plot written")


if __name__ == "__main__":
    main()
