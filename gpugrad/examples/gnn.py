"""Node classification with a graph network on a stochastic block model.

The graph has `communities` groups of nodes; an edge joins two nodes of the same group
with probability p_in and of different groups with the much smaller p_out. Each node's
features are its group's mean vector buried in Gaussian noise, so features alone
classify poorly. Two `GraphConv` layers (mean aggregation) let every node average over
its neighbourhood, most of which shares its label, and the noise cancels.

Backpropagation runs the message passing in reverse: a node's gradient collects the
path through its own update and one path through every neighbour it sent a message to.
Only a fraction of the labels is used for training; the rest of the nodes are the test set.
An MLP with the same hidden size on the features alone is trained as the baseline.

    python -m gpugrad.examples.gnn [--epochs 150] [--quick]
"""

from __future__ import annotations

import time

import numpy as np

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F
from gpugrad.examples._common import parser, progress, report


def stochastic_block_model(sizes: list[int], p_in: float, p_out: float, n_features: int,
                           signal: float, rng: np.random.Generator) -> tuple:
    """(features (N, F) float32, edge_index (2, E) int64 with both directions, labels (N,))."""
    labels = np.repeat(np.arange(len(sizes)), sizes)
    n = len(labels)
    same = labels[:, None] == labels[None, :]
    prob = np.where(same, p_in, p_out)
    upper = np.triu(rng.uniform(size=(n, n)) < prob, k=1)
    src, dst = np.nonzero(upper | upper.T)
    means = rng.standard_normal((len(sizes), n_features)) * signal
    x = (means[labels] + rng.standard_normal((n, n_features))).astype(np.float32)
    return x, np.stack([src, dst]).astype(np.int64), labels.astype(np.int64)


class GNN(nn.Module):
    """GraphConv -> ReLU -> dropout -> GraphConv: per-node class logits."""

    def __init__(self, n_in: int, hidden: int, n_classes: int, dropout: float = 0.3) -> None:
        super().__init__()
        self.conv1 = nn.GraphConv(n_in, hidden, aggr="mean")
        self.conv2 = nn.GraphConv(hidden, n_classes, aggr="mean")
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: gg.Tensor, edge_index: gg.Tensor) -> gg.Tensor:
        h = self.dropout(F.relu(self.conv1(x, edge_index)))
        return self.conv2(h, edge_index)


def _fit(model, forward, y, train_idx, test_idx, epochs: int, lr: float, name: str,
         quiet: bool = False) -> float:
    """Full-batch Adam on the training nodes; returns the test accuracy."""
    optimizer = gg.optim.Adam(model.parameters(), lr=lr, weight_decay=5e-4)
    every, shown = max(epochs // 20, 1), 0
    with progress(epochs, name, quiet=quiet) as update:
        for epoch in range(epochs):
            model.train()
            loss = F.cross_entropy(forward()[train_idx], y[train_idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if epoch % every == every - 1 or epoch == epochs - 1:
                update(f"loss {loss.item():.4f}", advance=epoch + 1 - shown)
                shown = epoch + 1
    model.eval()
    with gg.no_grad():
        pred = forward().argmax(1)
    return (pred[test_idx] == y[test_idx]).sum().item() / test_idx.shape[0]


def main(argv: list[str] | None = None) -> dict:
    """Train the GNN (and the features-only MLP baseline); returns the metrics."""
    p = parser("A graph network on a stochastic block model.")
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--communities", type=int, default=4)
    p.add_argument("--nodes-per-community", type=int, default=150)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--train-fraction", type=float, default=0.3)
    args = p.parse_args(argv)
    epochs = min(args.epochs, 60) if args.quick else args.epochs
    device = str(gg.device(args.device)) if args.device else str(gg.default_device())
    gg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    sizes = [args.nodes_per_community] * args.communities
    x_np, edges_np, y_np = stochastic_block_model(sizes, p_in=0.06, p_out=0.005, n_features=16,
                                                  signal=0.35, rng=rng)
    n = len(y_np)
    perm = rng.permutation(n)
    n_train = int(args.train_fraction * n)
    x, edges, y = (gg.tensor(a, device=device) for a in (x_np, edges_np, y_np))
    train_idx = gg.tensor(perm[:n_train], device=device)
    test_idx = gg.tensor(perm[n_train:], device=device)

    start = time.perf_counter()
    gnn = GNN(x_np.shape[1], args.hidden, args.communities).to(device)
    gnn_acc = _fit(gnn, lambda: gnn(x, edges), y, train_idx, test_idx, epochs, args.lr, "gnn")
    seconds = time.perf_counter() - start
    mlp = nn.Sequential(nn.Linear(x_np.shape[1], args.hidden), nn.ReLU(), nn.Dropout(0.3),
                        nn.Linear(args.hidden, args.communities)).to(device)
    mlp_acc = _fit(mlp, lambda: mlp(x), y, train_idx, test_idx, epochs, args.lr,
                   "mlp baseline")
    metrics = {"device": device, "nodes": n, "edges": int(edges_np.shape[1]), "epochs": epochs,
               "train_nodes": n_train, "gnn_test_accuracy": gnn_acc,
               "mlp_test_accuracy (features only)": mlp_acc, "gnn_seconds": seconds}
    report("GraphConv node classification on a stochastic block model", metrics)
    return metrics


if __name__ == "__main__":
    main()
