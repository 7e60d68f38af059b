"""An LSTM learns the adding problem (Hochreiter & Schmidhuber, 1997).

Each input is a sequence of T pairs (value, marker): values are U(0, 1), and exactly two
markers are 1, one in each half of the sequence. The target is the sum of the two marked
values. The information to combine lies T/2 steps apart on average, so the network must
carry it in its cell state: c_t = f·c_{t−1} + i·g, whose gradient flows back through
time multiplied by the forget gate rather than by a weight matrix. Knowing nothing, the
best constant guess is the mean target 1.0, with a mean squared error of 1/6; the table
reports how many times lower the LSTM's test error is.

    python -m gpugrad.examples.lstm [--steps 800] [--seq-len 30] [--quick]
"""

from __future__ import annotations

import time

import numpy as np

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F
from gpugrad.examples._common import parser, progress, report


def adding_problem(n: int, seq_len: int, rng: np.random.Generator) -> tuple:
    """(inputs (n, T, 2), targets (n, 1)) as float32 NumPy arrays."""
    values = rng.uniform(0.0, 1.0, (n, seq_len))
    markers = np.zeros((n, seq_len))
    rows = np.arange(n)
    markers[rows, rng.integers(0, seq_len // 2, n)] = 1.0
    markers[rows, rng.integers(seq_len // 2, seq_len, n)] = 1.0
    x = np.stack([values, markers], -1).astype(np.float32)
    y = (values * markers).sum(1, keepdims=True).astype(np.float32)
    return x, y


class AddingModel(nn.Module):
    """LSTM over the sequence, then a linear read-out of the last hidden state."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.lstm = nn.LSTM(2, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: gg.Tensor) -> gg.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def main(argv: list[str] | None = None) -> dict:
    """Train the LSTM on the adding problem; returns the metrics (also printed)."""
    p = parser("An LSTM on the adding problem.")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--seq-len", type=int, default=30)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-2)
    args = p.parse_args(argv)
    steps = min(args.steps, 600) if args.quick else args.steps
    seq_len = min(args.seq_len, 20) if args.quick else args.seq_len
    device = str(gg.device(args.device)) if args.device else str(gg.default_device())
    gg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    model = AddingModel(args.hidden).to(device)
    params = list(model.parameters())
    optimizer = gg.optim.Adam(params, lr=args.lr)
    x_np, y_np = adding_problem(2000, seq_len, np.random.default_rng(args.seed + 10_000))
    x_test, y_test = gg.tensor(x_np, device=device), gg.tensor(y_np, device=device)
    baseline = float(np.mean((y_np - 1.0) ** 2))  # the mean target 1.0, always

    def test_mse() -> float:
        with gg.no_grad():
            return F.mse_loss(model(x_test), y_test).item()

    start = time.perf_counter()
    every, shown = max(steps // 20, 1), 0
    with progress(steps, "lstm adding") as update:
        for step in range(steps):
            xb, yb = adding_problem(args.batch_size, seq_len, rng)
            loss = F.mse_loss(model(gg.tensor(xb, device=device)), gg.tensor(yb, device=device))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            if step % every == every - 1 or step == steps - 1:
                update(f"train mse {loss.item():.4f}", advance=step + 1 - shown)
                shown = step + 1
    seconds = time.perf_counter() - start
    mse = test_mse()
    metrics = {"device": device, "steps": steps, "seq_len": seq_len,
               "test_mse": mse, "baseline": "always predict 1.0 (the mean target)",
               "baseline_mse": baseline, "improvement_over_baseline": baseline / mse,
               "seconds": seconds}
    report("LSTM on the adding problem", metrics)
    return metrics


if __name__ == "__main__":
    main()
