"""A hypernetwork: one network writes the weights of another.

The target network is a small MLP y = W₂·tanh(W₁x + b₁) + b₂ on scalars x. It has no
parameters of its own: its weights θ = (W₁, b₁, W₂, b₂) are the output of a hypernetwork
H_φ(c) given a task condition c. Each task is a sine wave y = sin(x + φ_task), and its
condition is c = (sin φ_task, cos φ_task). Training minimises the target's squared error
over many tasks; the chain rule runs through both networks,

    dL/dφ = (dL/dθ)·(dθ/dφ),

first the target's backward gives dL/dθ, then that is the upstream gradient of H's
backward. All tasks of a batch run at once with batched matmuls (one θ per task).

    python -m gpugrad.examples.hypernet [--steps 1500] [--quick]
"""

from __future__ import annotations

import math
import time

import numpy as np

import gpugrad as gg
import gpugrad.nn as nn
from gpugrad.examples._common import parser, progress, report


class HyperNetwork(nn.Module):
    """Condition (cond_dim) -> the flat weight vector of a 1-`hidden`-1 tanh MLP."""

    def __init__(self, cond_dim: int = 2, width: int = 64, hidden: int = 16) -> None:
        super().__init__()
        self.hidden = hidden
        self.n_target = 3 * hidden + 1  # W₁ (h×1), b₁ (h), W₂ (1×h), b₂ (1)
        self.body = nn.Sequential(nn.Linear(cond_dim, width), nn.Tanh(),
                                  nn.Linear(width, width), nn.Tanh())
        self.head = nn.Linear(width, self.n_target)

    def forward(self, cond: gg.Tensor) -> gg.Tensor:
        return self.head(self.body(cond))

    def target(self, theta: gg.Tensor, x: gg.Tensor) -> gg.Tensor:
        """Run the generated MLPs: theta (T, n_target), x (T, N, 1) -> y (T, N, 1)."""
        h = self.hidden
        w1 = theta[:, :h].unsqueeze(1)             # (T, 1, h): x @ w1 is W₁x
        b1 = theta[:, h:2 * h].unsqueeze(1)        # (T, 1, h)
        w2 = theta[:, 2 * h:3 * h].unsqueeze(2)    # (T, h, 1)
        b2 = theta[:, 3 * h:].unsqueeze(1)         # (T, 1, 1)
        return gg.tanh(x @ w1 + b1) @ w2 + b2


def sample_tasks(rng: np.random.Generator, tasks: int, points: int):
    """(condition (T, 2), x (T, N, 1), y (T, N, 1)) for random phases, as NumPy arrays."""
    phase = rng.uniform(0, 2 * math.pi, size=tasks)
    x = rng.uniform(-math.pi, math.pi, size=(tasks, points, 1))
    y = np.sin(x + phase[:, None, None])
    cond = np.stack([np.sin(phase), np.cos(phase)], axis=1)
    return cond.astype(np.float32), x.astype(np.float32), y.astype(np.float32)


def main(argv: list[str] | None = None) -> dict:
    """Train the hypernetwork end to end; returns the metrics (also printed as a table)."""
    p = parser("A hypernetwork generating the weights of an MLP for a family of sine waves.")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--tasks", type=int, default=32, help="tasks per step")
    p.add_argument("--points", type=int, default=32, help="points per task")
    p.add_argument("--lr", type=float, default=3e-3)
    args = p.parse_args(argv)
    steps = min(args.steps, 300) if args.quick else args.steps
    device = str(gg.device(args.device)) if args.device else str(gg.default_device())
    gg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    hyper = HyperNetwork().to(device)
    with gg.no_grad():  # small generated weights at the start: a gentle initial target
        hyper.head.weight.mul_(0.3)
    optimizer = gg.optim.Adam(hyper.parameters(), lr=args.lr)
    scheduler = gg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    test = [gg.tensor(a, device=device) for a in sample_tasks(rng, 64, 100)]

    def test_loss() -> float:
        with gg.no_grad():
            cond, x, y = test
            return ((hyper.target(hyper(cond), x) - y) ** 2).mean().item()

    initial = test_loss()
    start = time.perf_counter()
    shown = 0
    with progress(steps, "hypernet") as update:
        for step in range(steps):
            cond, x, y = (gg.tensor(a, device=device)
                          for a in sample_tasks(rng, args.tasks, args.points))
            theta = hyper(cond)                         # φ -> θ
            loss = ((hyper.target(theta, x) - y) ** 2).mean()  # θ -> L
            optimizer.zero_grad()
            loss.backward()                             # L -> θ -> φ
            optimizer.step()
            scheduler.step()
            if (step + 1) % 50 == 0 or step == steps - 1:  # one host read per 50 steps
                update(f"loss {loss.item():.4f}", advance=step + 1 - shown)
                shown = step + 1
    seconds = time.perf_counter() - start
    final = test_loss()
    metrics = {
        "steps": steps,
        "initial_test_mse": initial,
        "final_test_mse": final,
        "improvement": initial / final,
        "generated_parameters": hyper.n_target,
        "seconds": seconds,
        "device": device,
    }
    report("hypernet", metrics)
    return metrics


if __name__ == "__main__":
    main()
