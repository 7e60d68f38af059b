"""Peak memory of `gg.save` / `gg.load` against the file size (Linux: VmHWM, the peak
resident set of a fresh process, so the numbers are not the parent's).

Each measurement runs in its own interpreter: import gpugrad, note the peak RSS, save or
load a file of float32 tensors, report how much the peak grew, as a multiple of the file.

    python -m benchmarks.io_memory [--mb 200] [--tensors 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

_CHILD = """
import sys
import gpugrad as gg

def peak():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) * 1024

mode, path, n, per = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if mode == "save":
    state = {f"w{i}": gg.ones(per) for i in range(n)}
    before = peak()
    gg.save(state, path)
else:
    before = peak()
    state = gg.load(path)
print(peak() - before)
"""


def measure(mode: str, path: str, tensors: int, per: int) -> int:
    """Peak-RSS growth in bytes of one save or load in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", _CHILD, mode, path, str(tensors), str(per)],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


def main() -> None:
    """Print save and load peak memory for a file of about --mb megabytes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="file size in MB")
    parser.add_argument("--tensors", type=int, default=8, help="number of tensors")
    args = parser.parse_args()
    per = args.mb * 1_000_000 // 4 // args.tensors
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "state.safetensors")
        grown_save = measure("save", path, args.tensors, per)
        size = os.path.getsize(path)
        grown_load = measure("load", path, args.tensors, per)
    print(f"file {size / 1e6:.1f} MB ({args.tensors} float32 tensors)")
    print(f"gg.save peak growth beyond the tensors: {grown_save / 1e6:.1f} MB "
          f"({grown_save / size:.2f}x the file)")
    print(f"gg.load peak growth: {grown_load / 1e6:.1f} MB ({grown_load / size:.2f}x the "
          "file; the loaded tensors themselves are 1.00x)")


if __name__ == "__main__":
    main()
