"""Learning a complex FIR filter by gradient descent on complex parameters.

A complex baseband signal x (QPSK symbols plus a little noise) passes through an unknown
complex FIR channel h* of K taps, giving the target t[n] = Σ_k h*[k]·x[n−k] + noise (of
power 10⁻⁴, which is where the loss levels off). Starting
from h = 0, we learn the taps by minimising the real loss

    L(h) = mean_n |y[n] − t[n]|²,   y[n] = Σ_k h[k]·x[n−k]   (y = X h, X the delay matrix)

with plain gradient descent h ← h − lr·h.grad. gpugrad stores, as PyTorch does, the
conjugate Wirtinger gradient (∂L/∂Re h + i·∂L/∂Im h = Xᴴ(Xh − t)·2/N here), which is the
direction of steepest ascent of L in the complex plane, so the update descends.
Before training, the autograd gradient is compared with that closed form.

    python -m gpugrad.examples.complex_filter [--steps 300] [--taps 8] [--quick]
"""

from __future__ import annotations

import time

import numpy as np

import gpugrad as gg
from gpugrad.examples._common import parser, progress, report


def make_problem(n: int, taps: int, seed: int, device: str, noise: float = 0.01,
                 dtype=gg.complex64):
    """(X, t, h_true): the N×K delay matrix of a random QPSK signal, the channel's output
    plus complex measurement noise of power `noise`², and the channel taps (decaying)."""
    rng = np.random.default_rng(seed)
    symbols = (rng.choice([-1.0, 1.0], n) + 1j * rng.choice([-1.0, 1.0], n)) / np.sqrt(2)
    x = symbols + 0.05 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    # Column k holds x delayed by k samples (zeros before the signal starts).
    frames = np.zeros((n, taps), dtype=np.complex128)
    for k in range(taps):
        frames[k:, k] = x[:n - k]
    decay = np.exp(-0.4 * np.arange(taps))
    h_true = decay * (rng.standard_normal(taps) + 1j * rng.standard_normal(taps)) / np.sqrt(2)
    X = gg.tensor(frames, dtype=dtype, device=device)
    n_t = noise * (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)
    t = X @ gg.tensor(h_true, dtype=dtype, device=device) + gg.tensor(n_t, dtype=dtype,
                                                                      device=device)
    return X, t, h_true


def loss_fn(h: gg.Tensor, X: gg.Tensor, t: gg.Tensor) -> gg.Tensor:
    """mean |X h − t|², a real scalar."""
    return ((X @ h - t).abs() ** 2).mean()


def main(argv: list[str] | None = None) -> dict:
    """Fit the filter taps; returns the metrics (first and last loss, tap error, ...)."""
    p = parser("Learn a complex FIR filter by gradient descent on complex taps.")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--taps", type=int, default=8)
    p.add_argument("--samples", type=int, default=2048)
    p.add_argument("--lr", type=float, default=0.4)
    p.add_argument("--noise", type=float, default=0.01, help="target noise amplitude")
    args = p.parse_args(argv)
    steps = min(args.steps, 120) if args.quick else args.steps
    samples = min(args.samples, 512) if args.quick else args.samples
    device = str(gg.device(args.device)) if args.device else str(gg.default_device())

    X, t, h_true = make_problem(samples, args.taps, args.seed, device, args.noise)
    h = gg.zeros(args.taps, dtype=gg.complex64, device=device, requires_grad=True)

    # The autograd gradient against the closed form 2/N · Xᴴ(Xh − t) at a random point.
    probe = gg.tensor(np.random.default_rng(args.seed + 1).standard_normal(args.taps) * (1 + 1j),
                      dtype=gg.complex64, device=device, requires_grad=True)
    loss_fn(probe, X, t).backward()
    with gg.no_grad():
        closed = (X.conj().T @ (X @ probe - t)) * (2.0 / samples)
    grad_err = float((probe.grad - closed).abs().max().item())
    print(f"autograd gradient vs 2/N·Xᴴ(Xh − t): max |diff| = {grad_err:.2e}")

    losses = []
    start = time.perf_counter()
    with progress(steps, "complex FIR filter") as update:
        for _ in range(steps):
            h.grad = None
            loss = loss_fn(h, X, t)
            loss.backward()
            with gg.no_grad():
                h -= args.lr * h.grad  # conjugate Wirtinger gradient: this descends
            losses.append(loss.item())
            update(f"loss {losses[-1]:.3e}")
    seconds = time.perf_counter() - start
    print(f"first loss {losses[0]:.4e}, last loss {losses[-1]:.4e}")
    tap_err = float(np.abs(h.detach().cpu().numpy() - h_true).max())
    metrics = {
        "steps": steps,
        "samples": samples,
        "taps": args.taps,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "loss_ratio": losses[-1] / losses[0],
        "max_tap_error": tap_err,
        "grad_vs_closed_form": grad_err,
        "seconds": seconds,
        "device": device,
    }
    report("complex_filter", metrics)
    return metrics


if __name__ == "__main__":
    main()
