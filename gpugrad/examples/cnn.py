"""A depthwise separable CNN on scikit-learn's 8x8 handwritten digits.

A depthwise separable convolution factors a k×k convolution C -> C' into a depthwise
k×k convolution (`groups=C`: one filter per channel, spatial mixing only) followed by a
1×1 pointwise convolution (channel mixing only): C·k² + C·C' weights instead of C·C'·k².
The network: a 3×3 stem convolution, then two depthwise separable blocks each followed by
2×2 max-pooling (8×8 -> 4×4 -> 2×2), and a linear classifier.

    python -m gpugrad.examples.cnn [--epochs 15] [--quick]
"""

from __future__ import annotations

import time

import numpy as np

import gpugrad as gg
import gpugrad.nn as nn
from gpugrad.examples._common import parser, progress, report
from gpugrad.train import evaluate, load_digits, train_epoch


def separable(c_in: int, c_out: int) -> nn.Sequential:
    """Depthwise 3×3 (groups=c_in) then pointwise 1×1 convolution, ReLU, 2×2 max-pool."""
    return nn.Sequential(nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in),
                         nn.Conv2d(c_in, c_out, 1), nn.ReLU(), nn.MaxPool2d(2))


def build_cnn(width: int = 32) -> nn.Sequential:
    """Flat 64-pixel rows -> (1, 8, 8) images -> stem conv -> 2 separable blocks -> logits."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
        separable(width, 2 * width),          # -> (2w, 4, 4)
        separable(2 * width, 2 * width),      # -> (2w, 2, 2)
        nn.Flatten(), nn.Linear(2 * width * 4, 10))


def main(argv: list[str] | None = None) -> dict:
    """Train the CNN; returns the metrics (also printed as a table)."""
    p = parser("A depthwise separable CNN on the 8x8 digits.")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--width", type=int, default=32)
    args = p.parse_args(argv)
    epochs = min(args.epochs, 4) if args.quick else args.epochs
    device = str(gg.device(args.device)) if args.device else str(gg.default_device())
    gg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    xtr, ytr, xte, yte = load_digits(args.seed)
    x_train, y_train = gg.tensor(xtr, device=device), gg.tensor(ytr, device=device)
    x_test, y_test = gg.tensor(xte, device=device), gg.tensor(yte, device=device)
    model = build_cnn(args.width).to(device)
    optimizer = gg.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = gg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    history = []
    start = time.perf_counter()
    with progress(epochs, "cnn") as update:
        for _ in range(epochs):
            loss = train_epoch(model, optimizer, x_train, y_train, args.batch_size, rng)
            scheduler.step()
            acc = evaluate(model, x_test, y_test)
            history.append({"loss": loss, "test_accuracy": acc})
            update(f"loss {history[-1]['loss']:.4f}  test acc {acc:.2%}")
    seconds = time.perf_counter() - start
    metrics = {"device": device, "epochs": epochs,
               "parameters": sum(p.numel() for p in model.parameters()),
               "train_loss": history[-1]["loss"], "test_accuracy": history[-1]["test_accuracy"],
               "seconds": seconds}
    report("depthwise separable CNN on digits", metrics)
    return metrics


if __name__ == "__main__":
    main()
