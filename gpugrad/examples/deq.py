"""A deep equilibrium model on the 8x8 digits, trained with the implicit-function-theorem
backward of `gg.nn.DEQFixedPoint`.

The hidden state is the fixed point z* = f(z*, x) of one weight-tied layer

    f(z, x) = tanh(Ŵ z + U x + b),   Ŵ = ρ·W / max(‖W‖_F, ρ),

where ‖Ŵ‖₂ ≤ ‖Ŵ‖_F ≤ ρ < 1 keeps f a contraction in z (tanh is 1-Lipschitz), so the
forward iteration and the backward linear system g = (∂f/∂z)ᵀ g + ȳ both converge. A
linear readout classifies z*. Training never backpropagates through the solver: the
gradient comes from the IFT, with memory of one layer however many iterations run.

Before training, a float64 check compares the IFT gradient with backprop unrolled through
many forward iterations and prints the largest difference (it must be below 1e-4).

    python -m gpugrad.examples.deq [--epochs 15] [--quick]
"""

from __future__ import annotations

import time

import numpy as np

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F
from gpugrad.examples._common import parser, progress, report
from gpugrad.train import evaluate, load_digits, train_epoch


class EquilibriumCell(nn.Module):
    """f(z, x) = tanh(Ŵ z + U x + b) with Ŵ rescaled to Frobenius norm at most `rho`."""

    def __init__(self, hidden: int, in_features: int, rho: float = 0.9, dtype=None) -> None:
        super().__init__()
        self.rho = rho
        self.lin_z = nn.Linear(hidden, hidden, bias=False, dtype=dtype)
        self.lin_x = nn.Linear(in_features, hidden, dtype=dtype)

    def forward(self, z: gg.Tensor, x: gg.Tensor) -> gg.Tensor:
        w = self.lin_z.weight
        w_hat = w * (self.rho / gg.clamp(w.norm(), min=self.rho))
        return gg.tanh(F.linear(z, w_hat) + self.lin_x(x))


class DEQClassifier(nn.Module):
    """DEQ layer (hidden units at equilibrium) followed by a linear readout."""

    def __init__(self, in_features: int = 64, hidden: int = 64, classes: int = 10,
                 solver_iters: int = 30, tol: float = 1e-4) -> None:
        super().__init__()
        self.deq = nn.DEQFixedPoint(EquilibriumCell(hidden, in_features), solver="anderson",
                                    solver_iters=solver_iters, tol=tol,
                                    hidden_features=hidden)
        self.readout = nn.Linear(hidden, classes)

    def forward(self, x: gg.Tensor) -> gg.Tensor:
        return self.readout(self.deq(x))


def gradient_check(seed: int = 0, iters: int = 100) -> float:
    """Largest |IFT gradient − unrolled-backprop gradient| over x and the cell's parameters,
    on a small float64 case (4 samples, 5 inputs, 8 hidden units)."""
    gg.manual_seed(seed)
    cell = EquilibriumCell(8, 5, rho=0.8, dtype=gg.float64)
    x = gg.randn(4, 5, dtype=gg.float64, requires_grad=True)
    target = gg.randn(4, 8, dtype=gg.float64)
    inputs = [x] + list(cell.parameters())

    z = gg.zeros(4, 8, dtype=gg.float64)
    for _ in range(iters):
        z = cell(z, x)
    unrolled = gg.autograd.grad(((z - target) ** 2).sum(), inputs)

    deq = nn.DEQFixedPoint(cell, solver_iters=iters, tol=1e-12, backward_tol=1e-12,
                           hidden_features=8)
    implicit = gg.autograd.grad(((deq(x) - target) ** 2).sum(), inputs)
    return max(float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(unrolled, implicit))


def main(argv: list[str] | None = None) -> dict:
    """Check the IFT gradient, then train the DEQ classifier; returns the metrics."""
    p = parser("A deep equilibrium model on the digits, trained by implicit differentiation.")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--hidden", type=int, default=64)
    args = p.parse_args(argv)
    epochs = min(args.epochs, 3) if args.quick else args.epochs
    device = str(gg.device(args.device)) if args.device else str(gg.default_device())

    diff = gradient_check(args.seed)
    print(f"IFT gradient vs unrolled backprop (float64, 100 iterations): max |diff| = "
          f"{diff:.2e} ({'OK' if diff < 1e-4 else 'FAILED'}, tolerance 1e-4)")

    gg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    xtr, ytr, xte, yte = load_digits(args.seed)
    x_train, y_train = gg.tensor(xtr, device=device), gg.tensor(ytr, device=device)
    x_test, y_test = gg.tensor(xte, device=device), gg.tensor(yte, device=device)
    model = DEQClassifier(hidden=args.hidden).to(device)
    optimizer = gg.optim.Adam(model.parameters(), lr=args.lr)
    fwd_iters, bwd_iters = [], []

    def record_solver_iterations() -> None:
        fwd_iters.append(model.deq.forward_info["iters"])
        bwd_iters.append(model.deq.backward_info["iters"])

    start = time.perf_counter()
    with progress(epochs, "deq") as update:
        for _ in range(epochs):
            loss = train_epoch(model, optimizer, x_train, y_train, args.batch_size, rng,
                               on_step=record_solver_iterations)
            acc = evaluate(model, x_test, y_test)
            update(f"loss {loss:.3f}  test acc {acc:.2%}  "
                   f"solver iters {fwd_iters[-1]}/{bwd_iters[-1]}")
    seconds = time.perf_counter() - start
    metrics = {
        "grad_check_max_abs_diff": diff,
        "epochs": epochs,
        "final_train_loss": loss,
        "test_accuracy": acc,
        "mean_forward_iters": float(np.mean(fwd_iters)),
        "mean_backward_iters": float(np.mean(bwd_iters)),
        "seconds": seconds,
        "device": device,
    }
    report("deq", metrics)
    return metrics


if __name__ == "__main__":
    main()
