"""Associative recall with multi-head attention.

Each example is a set of S (key, value) items, keys distinct symbols out of K and values
U(−1, 1), plus a query that is one of the keys. The target is the value stored under
the query. One `MultiheadAttention` layer, with the query as its single query token and
the items as keys and values, learns to put its attention weight on the matching item:
softmax(q·kᵀ/√d) turns into a lookup. Knowing nothing, the best guess is 0, with a mean
squared error of 1/3.

    python -m gpugrad.examples.attention [--steps 600] [--quick]
"""

from __future__ import annotations

import time

import numpy as np

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F
from gpugrad.examples._common import parser, progress, report


def recall_batch(n: int, items: int, symbols: int, rng: np.random.Generator) -> tuple:
    """(item features (n, S, K + 1), query one-hots (n, 1, K), targets (n, 1)), float32."""
    keys = np.argsort(rng.uniform(size=(n, symbols)), axis=1)[:, :items]
    values = rng.uniform(-1.0, 1.0, (n, items))
    eye = np.eye(symbols)
    feats = np.concatenate([eye[keys], values[..., None]], -1).astype(np.float32)
    pick = rng.integers(0, items, n)
    query = eye[keys[np.arange(n), pick]][:, None, :].astype(np.float32)
    target = values[np.arange(n), pick][:, None].astype(np.float32)
    return feats, query, target


class Recall(nn.Module):
    """Embed items and query, one multi-head attention read, linear read-out."""

    def __init__(self, symbols: int, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.item = nn.Linear(symbols + 1, dim)
        self.query = nn.Linear(symbols, dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.head = nn.Linear(dim, 1)

    def forward(self, items: gg.Tensor, query: gg.Tensor) -> tuple:
        kv = self.item(items)
        out, weights = self.attn(self.query(query), kv, kv)
        return self.head(out[:, 0]), weights


def main(argv: list[str] | None = None) -> dict:
    """Train the attention model; returns the metrics (also printed)."""
    p = parser("Associative recall with multi-head attention.")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--items", type=int, default=8)
    p.add_argument("--symbols", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    args = p.parse_args(argv)
    steps = min(args.steps, 300) if args.quick else args.steps
    device = str(gg.device(args.device)) if args.device else str(gg.default_device())
    gg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    model = Recall(args.symbols).to(device)
    optimizer = gg.optim.Adam(model.parameters(), lr=args.lr)
    test = recall_batch(1000, args.items, args.symbols, np.random.default_rng(args.seed + 1))
    t_items, t_query, t_target = (gg.tensor(a, device=device) for a in test)
    start = time.perf_counter()
    every, shown = max(steps // 20, 1), 0
    with progress(steps, "attention recall") as update:
        for step in range(steps):
            items, query, target = (gg.tensor(a, device=device) for a in
                                    recall_batch(args.batch_size, args.items, args.symbols, rng))
            loss = F.mse_loss(model(items, query)[0], target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % every == every - 1 or step == steps - 1:
                update(f"train mse {loss.item():.4f}", advance=step + 1 - shown)
                shown = step + 1
    seconds = time.perf_counter() - start
    with gg.no_grad():
        pred, weights = model(t_items, t_query)
        mse = F.mse_loss(pred, t_target).item()
    # Attention mass on the item whose key matches the query.
    match = (test[0][..., :-1] * test[1]).sum(-1)  # (n, S) one-hot of the matching item
    on_match = float((weights.numpy()[:, 0, :] * match).sum(-1).mean())
    baseline = float(np.mean(test[2] ** 2))
    metrics = {"device": device, "steps": steps, "test_mse": mse,
               "baseline": "always predict 0", "baseline_mse": baseline,
               "improvement_over_baseline": baseline / mse,
               "attention_on_matching_item": on_match, "seconds": seconds}
    report("associative recall with multi-head attention", metrics)
    return metrics


if __name__ == "__main__":
    main()
