"""Per-op overhead: a chain of elementwise ops on tiny (32x32) tensors, forward + backward.

Tiny tensors make the arithmetic negligible, so the time per op is the framework's
bookkeeping: graph recording, dispatch, and the backward walk. Compared with PyTorch eager
(CPU) and plain NumPy without autodiff (the floor) in the same run.

    python benchmarks/overhead.py [--ops 200] [--repeat 7] [--json PATH]
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import environment, report, time_it

SIZE = 32


def chain_gpugrad(gg, x, n_ops: int):
    def step():
        x.grad = None
        y = x
        for _ in range(n_ops // 4):
            y = y * 1.0001
            y = y + x
            y = y.tanh()
            y = y - 0.5
        y.sum().backward()
    return step


def chain_torch(torch, x, n_ops: int):
    def step():
        x.grad = None
        y = x
        for _ in range(n_ops // 4):
            y = y * 1.0001
            y = y + x
            y = y.tanh()
            y = y - 0.5
        y.sum().backward()
    return step


def chain_numpy(a: np.ndarray, n_ops: int):
    """The same computation with a hand-written backward: no autodiff at all."""
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
        ga += g
        return ga
    return step


def run(n_ops: int = 200, repeat: int = 7, json_path: str | None = None) -> list[dict]:
    import gpugrad as gg

    a = np.random.default_rng(0).standard_normal((SIZE, SIZE)).astype(np.float32) * 0.1
    rows = []
    x = gg.tensor(a, device="cpu", requires_grad=True)
    g_time = time_it(chain_gpugrad(gg, x, n_ops), repeat=repeat)["median"]
    n_time = time_it(chain_numpy(a, n_ops), repeat=repeat)["median"]
    try:
        import torch

        torch.set_num_threads(1)
        xt = torch.tensor(a, requires_grad=True)
        chain_torch(torch, xt, n_ops)()
        chain_gpugrad(gg, x, n_ops)()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
        t_time = time_it(chain_torch(torch, xt, n_ops), repeat=repeat)["median"]
    except ImportError:
        t_time = None
    per = 1e6 / n_ops
    rows.append({
        "name": f"{n_ops} elementwise ops, {SIZE}x{SIZE}, fwd+bwd",
        "gpugrad_us_per_op": g_time * per,
        "torch_us_per_op": t_time * per if t_time else None,
        "numpy_us_per_op": n_time * per,
        "ratio_to_torch": g_time / t_time if t_time else None,
    })
    report("Per-op overhead (CPU)", rows,
           [("name", "workload"), ("gpugrad_us_per_op", "gpugrad µs/op"),
            ("torch_us_per_op", "PyTorch µs/op"), ("numpy_us_per_op", "NumPy (no AD) µs/op"),
            ("ratio_to_torch", "gpugrad / PyTorch")],
           environment("cpu"), json_path)
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ops", type=int, default=200)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    run(args.ops, args.repeat, args.json)


if __name__ == "__main__":
    main()
