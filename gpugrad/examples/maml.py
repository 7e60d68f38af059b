"""MAML on few-shot sine regression (Finn et al., 2017), at a small scale.

Each task is a sine wave y = A·sin(x + φ) (A ∈ [0.1, 5], φ ∈ [0, π], x ∈ [−5, 5]) seen
through K support points. From the shared initial weights θ, one gradient step adapts
to the task,

    θ'_task = θ − α·∇_θ L_support(θ),

and the meta-objective is the loss of the adapted weights on fresh query points,
Σ_task L_query(θ'_task). Its gradient with respect to θ passes *through* the inner step:
dθ'/dθ = I − α·∇²L_support(θ), a Hessian-vector product that autograd gets from
`gg.autograd.grad(..., create_graph=True)`, which records the inner gradient's own graph.

All tasks of a meta-batch run at once: θ is broadcast to one copy per task, and the
gradient with respect to that (non-leaf) copy is each task's own inner gradient.

    python -m gpugrad.examples.maml [--meta-steps 4000] [--quick]
"""

from __future__ import annotations

import math
import time

import numpy as np

import gpugrad as gg
import gpugrad.nn as nn
from gpugrad.examples._common import parser, progress, report


def init_params(hidden: int, device: str) -> list[gg.Tensor]:
    """Weights of a 1-hidden-hidden-1 ReLU MLP (PyTorch's Linear initialisation)."""
    layers = [nn.Linear(1, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, 1)]
    params = []
    for lin in layers:
        params += [lin.weight.detach().to(device).requires_grad_(True),
                   lin.bias.detach().to(device).requires_grad_(True)]
    return params


def forward(params: list[gg.Tensor], x: gg.Tensor) -> gg.Tensor:
    """The MLP with per-task weights: x (T, N, 1), each W (T, out, in), b (T, out)."""
    h = x
    last = len(params) // 2 - 1
    for i in range(0, len(params), 2):
        w, b = params[i], params[i + 1]
        h = h @ w.transpose(-1, -2) + b.unsqueeze(-2)
        if i // 2 < last:
            h = gg.relu(h)
    return h


def task_losses(params, x, y) -> gg.Tensor:
    """Mean squared error of each task: shape (T,)."""
    return ((forward(params, x) - y) ** 2).mean((1, 2))


def adapt(params: list[gg.Tensor], x: gg.Tensor, y: gg.Tensor, alpha: float, tasks: int,
          create_graph: bool) -> list[gg.Tensor]:
    """One inner SGD step per task from the shared `params`: θ' = θ − α·∇L_support."""
    per_task = [p.unsqueeze(0).expand((tasks,) + tuple(p.shape)) for p in params]
    # Σ_t L_t(θ_t): its gradient w.r.t. the copy θ_t is ∇L_t alone.
    grads = gg.autograd.grad(task_losses(per_task, x, y).sum(), per_task,
                             create_graph=create_graph)
    return [p - alpha * g for p, g in zip(per_task, grads)]


def sample_tasks(rng: np.random.Generator, tasks: int, k: int, q: int):
    """(x_support, y_support, x_query, y_query) as float32 arrays of shape (T, n, 1)."""
    amp = rng.uniform(0.1, 5.0, size=(tasks, 1, 1))
    phase = rng.uniform(0, math.pi, size=(tasks, 1, 1))
    xs = rng.uniform(-5, 5, size=(tasks, k, 1))
    xq = rng.uniform(-5, 5, size=(tasks, q, 1))
    return tuple(a.astype(np.float32) for a in
                 (xs, amp * np.sin(xs + phase), xq, amp * np.sin(xq + phase)))


def post_adaptation_loss(params, batch, alpha: float) -> float:
    """Mean query MSE after one inner step on the support set (no meta-gradient)."""
    xs, ys, xq, yq = batch
    fast = adapt(params, xs, ys, alpha, xs.shape[0], create_graph=False)
    with gg.no_grad():
        return task_losses(fast, xq, yq).mean().item()


def main(argv: list[str] | None = None) -> dict:
    """Meta-train with MAML; returns the metrics (also printed as a table)."""
    p = parser("MAML (one inner step, second-order) on few-shot sine regression.")
    p.add_argument("--meta-steps", type=int, default=4000)
    p.add_argument("--meta-batch", type=int, default=25, help="tasks per meta-step")
    p.add_argument("--shots", type=int, default=10, help="K support points per task")
    p.add_argument("--hidden", type=int, default=40)
    p.add_argument("--inner-lr", type=float, default=0.01)
    p.add_argument("--meta-lr", type=float, default=1e-3)
    args = p.parse_args(argv)
    steps = min(args.meta_steps, 300) if args.quick else args.meta_steps
    device = str(gg.device(args.device)) if args.device else str(gg.default_device())
    gg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    params = init_params(args.hidden, device)
    optimizer = gg.optim.Adam(params, lr=args.meta_lr)
    test = [gg.tensor(a, device=device)
            for a in sample_tasks(np.random.default_rng(10_000 + args.seed), 200, args.shots,
                                  50)]
    before = post_adaptation_loss(params, test, args.inner_lr)
    shown = 0
    start = time.perf_counter()
    with progress(steps, "maml") as update:
        for step in range(steps):
            xs, ys, xq, yq = (gg.tensor(a, device=device) for a in
                              sample_tasks(rng, args.meta_batch, args.shots, args.shots))
            fast = adapt(params, xs, ys, args.inner_lr, args.meta_batch, create_graph=True)
            meta_loss = task_losses(fast, xq, yq).mean()
            optimizer.zero_grad()
            meta_loss.backward()  # through the inner step: second-order MAML
            optimizer.step()
            if (step + 1) % 50 == 0 or step == steps - 1:
                update(f"meta loss {meta_loss.item():.3f}", advance=step + 1 - shown)
                shown = step + 1
    seconds = time.perf_counter() - start
    after = post_adaptation_loss(params, test, args.inner_lr)
    with gg.no_grad():  # the meta-learned θ itself, before its inner step
        unadapted = task_losses([p.unsqueeze(0) for p in params], test[2], test[3]).mean().item()
    metrics = {
        "meta_steps": steps,
        "post_adaptation_mse_before": before,
        "post_adaptation_mse_after": after,
        "pre_adaptation_mse_after": unadapted,
        "seconds": seconds,
        "device": device,
    }
    report("maml", metrics)
    return metrics


if __name__ == "__main__":
    main()
