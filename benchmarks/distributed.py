"""Data-parallel benchmarks: all-reduce bandwidth over message sizes, and the DDP step time
of an MLP against a single process. Run it on N ranks with the launcher:

    gpugrad run -n 2 -m benchmarks.distributed --out benchmarks/results/distributed-cpu-DATE

(`--out PREFIX` writes PREFIX.json and PREFIX.txt; `--device cuda` on GPUs, one per rank;
`--quick` for a smoke test. Needs `pip install -e ".[bench,distributed]"`.)

All-reduce bandwidth follows nccl-tests: for a message of S bytes reduced in time t,
the algorithm bandwidth is algbw = S / t and the bus bandwidth, which compares with the
hardware's link speed whatever the rank count, is busbw = algbw * 2(n-1)/n (a ring
all-reduce moves 2(n-1)/n * S through every rank's link). Each size is timed with
gpugrad's `all_reduce` (non-blocking request polled against the timeout) and with a
blocking mpi4py `Allreduce` on the same buffer, the floor our polling adds to. A time is
the slowest rank's median over five timed batches of the mean time per call.

The DDP rows time a whole SGD step (forward, backward, gradient all-reduce, update) of
the 784-1024-1024-10 MLP with a per-rank batch B: on every rank at once under DDP, and
in one process (rank 0 alone, the others idle in a barrier) at batch B and at the global
batch nB that the data-parallel step replaces. Every process gets the launcher's share of
the cores (`gpugrad run` sets the thread pools to cores / n).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

import gpugrad as gg
import gpugrad.distributed as dist
import gpugrad.nn as nn
import gpugrad.nn.functional as F

SIZES = ((784, 1024, 1024, 10),)
MESSAGE_BYTES = [2 ** k for k in range(3, 27, 2)]  # 8 B .. 64 MiB


def bus_bandwidth(algbw: float, ranks: int) -> float:
    """nccl-tests' bus bandwidth of an all-reduce: algbw * 2(n-1)/n."""
    return algbw * 2 * (ranks - 1) / ranks


def _slowest(seconds: float) -> float:
    """The largest of every rank's `seconds` (all ranks must call it)."""
    t = gg.tensor(seconds, dtype=gg.float64)
    dist.all_reduce(t, "max")
    return t.item()


def _repetitions(nbytes: int) -> int:
    """Calls per timed batch: more for small messages, 2 for the largest."""
    return int(min(50, max(2, 2e7 // max(nbytes, 1) // 20)))


def _seconds_per_call(fn, repeat: int, trials: int = 5) -> float:
    """The slowest rank's median, over `trials` timed batches of `repeat` calls, of the
    mean seconds per call (a median resists the other processes of a shared machine)."""
    fn()  # warm-up: connection set-up and allocations
    times = []
    for _ in range(trials):
        dist.barrier()
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        times.append((time.perf_counter() - start) / repeat)
    return _slowest(statistics.median(times))


def time_all_reduce(nbytes: int, device: str) -> dict:
    """Seconds per all-reduce of `nbytes` (float32), gpugrad's and blocking mpi4py's."""
    from mpi4py import MPI

    count = max(1, nbytes // 4)
    tensor = gg.ones(count, device=device)
    repeat = _repetitions(nbytes)
    row = {"bytes": count * 4, "repetitions": repeat}

    def gpugrad_all_reduce():
        dist.all_reduce(tensor)
        if device != "cpu":
            gg.cuda.synchronize()

    row["gpugrad_s"] = _seconds_per_call(gpugrad_all_reduce, repeat)
    if device == "cpu":
        buffer = tensor.numpy()
        row["mpi4py_s"] = _seconds_per_call(
            lambda: MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, buffer), repeat)
    ranks = dist.get_world_size()
    for key in ("gpugrad", "mpi4py"):
        if f"{key}_s" in row:
            algbw = row["bytes"] / row[f"{key}_s"] / 1e9
            row[f"{key}_algbw_gbps"] = algbw
            row[f"{key}_busbw_gbps"] = bus_bandwidth(algbw, ranks)
    return row


def _mlp(sizes, device: str) -> nn.Module:
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).to(device)


def _step_seconds(model, x, y, repeat: int, device: str, warmup: int = 10) -> float:
    """Median seconds of one SGD step on (x, y) after `warmup` steps (a count, not a
    duration: under DDP every rank must run the same number of steps)."""
    optimizer = gg.optim.SGD(model.parameters(), lr=0.01)

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        if device != "cpu":
            gg.cuda.synchronize()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_ddp(sizes, batch: int, repeat: int, device: str, warmup: int = 10) -> list[dict]:
    """Step times: one process at batch B and nB (rank 0 alone), DDP with B per rank."""
    rank, ranks = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(0)
    x = gg.tensor(rng.standard_normal((ranks * batch, sizes[0])).astype(np.float32),
                  device=device)
    y = gg.tensor(rng.integers(0, sizes[-1], ranks * batch), device=device)
    parameters = sum(p.numel() for p in _mlp(sizes, device).parameters())
    rows = []
    for label, per_process in (("1 process", batch), ("1 process", ranks * batch)):
        seconds = float("nan")
        if rank == 0:
            seconds = _step_seconds(_mlp(sizes, device), x[:per_process], y[:per_process],
                                    repeat, device, warmup)
        dist.barrier()  # the other ranks sleep in the poll while rank 0 works
        rows.append({"setup": f"{label}, batch {per_process}", "processes": 1,
                     "batch_per_process": per_process, "global_batch": per_process,
                     "step_s": seconds})
    ddp = nn.parallel.DistributedDataParallel(_mlp(sizes, device))
    mine = slice(rank * batch, (rank + 1) * batch)
    seconds = _slowest(_step_seconds(ddp, x[mine], y[mine], repeat, device, warmup))
    rows.append({"setup": f"DDP, {ranks} ranks x batch {batch}", "processes": ranks,
                 "batch_per_process": batch, "global_batch": ranks * batch,
                 "step_s": seconds, "buckets": len(ddp._buckets)})
    if rank == 0:
        for row in rows:
            row["samples_per_s"] = row["global_batch"] / row["step_s"]
            row["parameters"] = parameters
            row["gradient_mb"] = parameters * 4 / 2 ** 20
    return rows


def environment(device: str) -> dict:
    """Device, CPU, versions, date and commit, stored beside the results."""
    import mpi4py
    from mpi4py import MPI

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    import os

    return {"date": datetime.date.today().isoformat(), "device": device, "cpu": cpu,
            "cores": os.cpu_count(), "ranks": dist.get_world_size(),
            "threads_per_rank": os.environ.get("OMP_NUM_THREADS"),
            "backend": dist.get_backend(), "python": platform.python_version(),
            "numpy": np.__version__, "gpugrad": gg.__version__,
            "mpi4py": mpi4py.__version__,
            "mpi": MPI.Get_library_version().splitlines()[0].strip(), "commit": commit,
            # Other processes on a shared machine take cores from the ranks: say how busy.
            "load_average_1min": os.getloadavg()[0]}


def report(env: dict, reduce_rows: list[dict], ddp_rows: list[dict], out: str | None) -> None:
    """Print both tables (rank 0) and write PREFIX.json and PREFIX.txt with `out`."""
    from rich.console import Console
    from rich.table import Table

    console = Console(record=True, width=120)
    title = (f"all_reduce, {env['ranks']} ranks, {env['backend']} — {env['device']}, "
             f"{env['date']}, commit {str(env['commit'])[:10]}")
    table = Table(title=title)
    for header in ("size", "gpugrad µs", "algbw GB/s", "busbw GB/s", "mpi4py µs",
                   "mpi4py busbw GB/s"):
        table.add_column(header, justify="right")
    for row in reduce_rows:
        table.add_row(_bytes(row["bytes"]), f"{row['gpugrad_s'] * 1e6:.1f}",
                      f"{row['gpugrad_algbw_gbps']:.3g}", f"{row['gpugrad_busbw_gbps']:.3g}",
                      f"{row['mpi4py_s'] * 1e6:.1f}" if "mpi4py_s" in row else "—",
                      f"{row['mpi4py_busbw_gbps']:.3g}" if "mpi4py_s" in row else "—")
    console.print(table)
    table = Table(title=f"MLP {'-'.join(map(str, SIZES[0]))} SGD step "
                        f"({ddp_rows[0]['gradient_mb']:.1f} MB of gradients)")
    for header in ("setup", "step ms", "samples/s", "buckets"):
        table.add_column(header, justify="right" if header != "setup" else "left")
    for row in ddp_rows:
        table.add_row(row["setup"], f"{row['step_s'] * 1e3:.2f}",
                      f"{row['samples_per_s']:,.0f}", str(row.get("buckets", "—")))
    console.print(table)
    console.print(f"{env['cpu']}, {env['cores']} cores, {env['threads_per_rank']} thread(s) "
                  f"per rank, load average {env['load_average_1min']:.2f}; {env['mpi']}; "
                  f"mpi4py {env['mpi4py']}, NumPy {env['numpy']}, Python {env['python']}")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(f"{out}.json").write_text(json.dumps(
            {"environment": env, "all_reduce": reduce_rows, "ddp_step": ddp_rows},
            indent=2) + "\n")
        Path(f"{out}.txt").write_text(console.export_text())


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:g} {unit}"
        n /= 1024
    return f"{n:g} TiB"


def main(argv: list[str] | None = None) -> None:
    """Parse options, run both benchmarks on every rank, report from rank 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (one GPU per rank)")
    parser.add_argument("--batch", type=int, default=128, help="per-rank batch of the MLP")
    parser.add_argument("--repeat", type=int, default=15, help="timed steps per DDP row")
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.txt")
    parser.add_argument("--quick", action="store_true",
                        help="three message sizes and a few steps (a smoke test)")
    args = parser.parse_args(argv)
    sizes = MESSAGE_BYTES[::5] if args.quick else MESSAGE_BYTES
    repeat, warmup = (2, 1) if args.quick else (args.repeat, 10)
    dist.init_process_group(backend="nccl" if args.device.startswith("cuda") else "mpi",
                            timeout=600)
    device = str(gg.default_device()) if args.device.startswith("cuda") else "cpu"
    reduce_rows = [time_all_reduce(n, device) for n in sizes]
    ddp_rows = time_ddp(SIZES[0], args.batch, repeat, device, warmup)
    if dist.get_rank() == 0:
        report(environment(args.device), reduce_rows, ddp_rows, args.out)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
