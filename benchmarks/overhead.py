"""Per-op overhead: a chain of elementwise ops on tiny (32x32) tensors, forward + backward.

Tiny tensors make the arithmetic negligible, so the time per op is the framework's
bookkeeping: graph recording, dispatch, and the backward walk. Compared with PyTorch eager
(single-threaded, CPU) and plain NumPy without autodiff (the floor).

    python -m benchmarks.overhead [--ops 200] [--repeat 7] [--json PATH]
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import Workload, environment, report, time_interleaved

SIZE = 32
N_OPS = 200  # mul, add, tanh, sub repeated


def _data() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((SIZE, SIZE)).astype(np.float32) * 0.1


def _chain(x, tanh, n_ops: int):
    y = x
    for _ in range(n_ops // 4):
        y = y * 1.0001
        y = y + x
        y = tanh(y)
        y = y - 0.5
    return y


def gpugrad_impl(device: str, n_ops: int = N_OPS):
    import gpugrad as gg

    x = gg.tensor(_data(), device=device, requires_grad=True)

    def step():
        x.grad = None
        _chain(x, gg.tanh, n_ops).sum().backward()

    return step, lambda: x.grad.detach().cpu().numpy(), \
        (gg.cuda.synchronize if device != "cpu" else None)


def torch_impl(device: str, n_ops: int = N_OPS):
    import torch

    torch.set_num_threads(1)
    x = torch.tensor(_data(), device=device, requires_grad=True)

    def step():
        x.grad = None
        _chain(x, torch.tanh, n_ops).sum().backward()

    return step, lambda: x.grad.detach().cpu().numpy(), \
        (torch.cuda.synchronize if device != "cpu" else None)


def numpy_impl(device: str, n_ops: int = N_OPS):
    """The same computation with a hand-written backward: no autodiff at all."""
    a = _data()
    out = {}

    def step():
        ys, y = [], a
        for _ in range(n_ops // 4):
            y = y * 1.0001
            y = y + a
            y = np.tanh(y)
            ys.append(y)
            y = y - 0.5
        g = np.ones_like(y)
        ga = np.zeros_like(a)
        for t in reversed(ys):
            g = g * (1 - t * t)
            ga += g
            g = g * 1.0001
        out["grad"] = ga

    return step, lambda: out["grad"], None


WORKLOADS = [Workload("overhead", f"{N_OPS} tiny ops ({SIZE}x{SIZE}) fwd+bwd",
                      {"gpugrad": gpugrad_impl, "torch": torch_impl, "numpy": numpy_impl},
                      rtol=1e-4, atol=1e-5)]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    from benchmarks.suite import check_agreement

    check_agreement(WORKLOADS[0], "cpu", ["gpugrad", "torch", "numpy"])
    t = time_interleaved("benchmarks.suite", "serve_one", ["gpugrad", "torch", "numpy"],
                         ("overhead", "cpu"), args.repeat)
    per = 1e6 / N_OPS
    row = {"name": WORKLOADS[0].name, "gpugrad_us_per_op": t["gpugrad"]["median"] * per,
           "torch_us_per_op": t["torch"]["median"] * per,
           "numpy_us_per_op": t["numpy"]["median"] * per,
           "ratio_to_torch": t["ratios"]["torch"]}
    report("Per-op overhead (CPU)", [row],
           [("name", "workload"), ("gpugrad_us_per_op", "gpugrad µs/op"),
            ("torch_us_per_op", "PyTorch µs/op"), ("numpy_us_per_op", "NumPy (no AD) µs/op"),
            ("ratio_to_torch", "gpugrad / PyTorch")], environment("cpu"), args.json)


if __name__ == "__main__":
    main()
