"""The demo job: train a classifier on scikit-learn's bundled 8x8 handwritten digits.

`gpugrad train` (or `python -m gpugrad`) runs it on the GPU when one is available, else on
the CPU, with a rich progress bar, a summary table, a checkpoint and (with matplotlib) a
loss/accuracy curve.

`gpugrad train --nproc N` trains data-parallel on N processes: it relaunches itself under
`mpiexec` (`gpugrad run`), wraps the model in `DistributedDataParallel` and gives each
rank its shard of every epoch through `DistributedSampler`; `--batch-size` is per rank.
Rank 0 prints and writes the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F
from gpugrad.backend import get_backend
from gpugrad.errors import DeviceError
from gpugrad.utils.data import DistributedSampler


def load_digits(seed: int):
    """(x_train, y_train, x_test, y_test) as NumPy arrays: a stratified 80/20 split, each
    pixel standardised with the training set's mean and spread."""
    try:
        from sklearn.datasets import load_digits as sk_load
    except ImportError as e:
        raise SystemExit("the demo needs scikit-learn (it ships the digits data set): "
                         'pip install -e ".[demo]"') from e
    data = sk_load()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[: len(idx) // 5]] = True
    mean, spread = x[~test].mean(0), x[~test].std(0) + 1e-3
    x = (x - mean) / spread
    return x[~test], y[~test], x[test], y[test]


def build_model(kind: str) -> nn.Module:
    """The classifier: an MLP (64-512-256-10), or a depthwise separable CNN (see
    `gpugrad.examples.cnn`)."""
    if kind == "mlp":
        return nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Dropout(0.2),
                             nn.Linear(512, 256), nn.ReLU(), nn.Dropout(0.2),
                             nn.Linear(256, 10))
    if kind == "cnn":
        from .examples.cnn import build_cnn  # the depthwise separable CNN of the example

        return build_cnn()
    raise SystemExit(f"unknown model {kind!r}: choose mlp or cnn")


def train_epoch(model: nn.Module, optimizer, x: gg.Tensor, y: gg.Tensor, batch_size: int,
                rng: np.random.Generator, on_step=None) -> float:
    """One pass over (x, y) in shuffled mini-batches with cross-entropy; returns the mean
    loss. The loss stays on the device until the single read at the end of the epoch."""
    n = len(y)
    perm = gg.tensor(rng.permutation(n), device=x.device)
    total = gg.zeros((), device=x.device)
    for i in range(0, n, batch_size):
        idx = perm[i:i + batch_size]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step()
        total = total + loss.detach() * len(idx)
    return total.item() / n


def evaluate(model: nn.Module, x: gg.Tensor, y: gg.Tensor) -> float:
    """Accuracy of `model` on (x, y), computed on the device; one number read back."""
    model.eval()
    with gg.no_grad():
        correct = (model(x).argmax(1) == y).sum()
    model.train()
    return correct.item() / len(y)


def train(device: str | None = None, epochs: int = 40, batch_size: int = 32, lr: float = 1e-3,
          model_kind: str = "mlp", out: str = "runs/digits", seed: int = 0,
          quiet: bool = False, distributed: bool = False) -> dict:
    """Train the digits classifier; returns a summary dict (also written to out/summary.json).

    With `distributed`, this process is one rank of a job started by `gpugrad run`: it joins
    the process group, trains its shard of the data with the gradients averaged across
    ranks, and only rank 0 prints and writes files."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    rank, world = 0, 1
    if distributed:
        gg.distributed.init_process_group()  # also picks this rank's GPU, if any
        rank, world = gg.distributed.get_rank(), gg.distributed.get_world_size()
    console = Console(quiet=quiet or rank != 0)
    device = str(gg.device(device)) if device else str(gg.default_device())
    gg.manual_seed(seed)
    xtr, ytr, xte, yte = load_digits(seed)
    x_train = gg.tensor(xtr, device=device)
    y_train = gg.tensor(ytr, device=device)
    x_test, y_test = gg.tensor(xte, device=device), gg.tensor(yte, device=device)
    model = build_model(model_kind).to(device)
    sampler = None
    if distributed:
        model = nn.parallel.DistributedDataParallel(model)  # rank 0's initial weights
        gg.manual_seed(seed + rank)  # each rank its own dropout masks
        sampler = DistributedSampler(range(len(ytr)), world, rank, seed=seed)
    optimizer = gg.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    scheduler = gg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    n = len(ytr)
    rng = np.random.default_rng(seed)
    history = []
    start = time.perf_counter()
    columns = [TextColumn("[bold]epoch {task.completed}/{task.total}"), BarColumn(),
               TextColumn("loss {task.fields[loss]:.4f}"),
               TextColumn("test acc {task.fields[acc]:.2%}"),
               TextColumn("{task.fields[rate]:,.0f} samples/s"), TimeElapsedColumn()]
    # No refresh thread: a second Python thread waking up makes OpenBLAS's worker threads
    # spin and slows small matmuls tenfold; we refresh once per epoch instead.
    with Progress(*columns, console=console, transient=False, auto_refresh=False) as progress:
        task = progress.add_task("train", total=epochs, loss=float("nan"), acc=0.0, rate=0.0)
        for epoch in range(epochs):
            t0 = time.perf_counter()
            if sampler is None:
                epoch_loss = train_epoch(model, optimizer, x_train, y_train, batch_size, rng)
            else:
                sampler.set_epoch(epoch)
                shard = gg.tensor(list(sampler), device=device)
                epoch_loss = train_epoch(model, optimizer, x_train[shard], y_train[shard],
                                         batch_size, rng)
                mean_loss = gg.tensor(epoch_loss)
                gg.distributed.all_reduce(mean_loss, "mean")
                epoch_loss = mean_loss.item()
            scheduler.step()
            acc = evaluate(model, x_test, y_test)
            rate = n / (time.perf_counter() - t0)
            history.append({"epoch": epoch + 1, "loss": epoch_loss, "test_accuracy": acc})
            progress.update(task, advance=1, loss=epoch_loss, acc=acc, rate=rate)
            progress.refresh()
    elapsed = time.perf_counter() - start
    summary = {"device": device, "model": model_kind, "epochs": epochs,
               "test_accuracy": history[-1]["test_accuracy"], "train_seconds": elapsed,
               "parameters": sum(p.numel() for p in model.parameters()), "history": history}
    if distributed:
        summary["processes"] = world
        model = model.module  # the checkpoint holds the plain model, as without --nproc
        gg.distributed.destroy_process_group()
        if rank != 0:
            return summary
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    gg.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "epoch": epochs}, out_dir / "checkpoint.safetensors")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot = _plot(history, out_dir / "curve.png")
    table = Table(title="gpugrad digits demo")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("device", device if world == 1 else f"{device}, {world} processes (DDP)")
    table.add_row("model", f"{model_kind} ({summary['parameters']:,} parameters)")
    table.add_row("test accuracy", f"{summary['test_accuracy']:.2%}")
    table.add_row("training time", f"{elapsed:.1f} s")
    table.add_row("checkpoint", str(out_dir / "checkpoint.safetensors"))
    table.add_row("curve", str(plot) if plot else "— (install matplotlib for a PNG)")
    console.print(table)
    return summary


def _plot(history: list[dict], path: Path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    epochs = [h["epoch"] for h in history]
    fig, ax1 = plt.subplots(figsize=(6, 3.5))
    ax1.plot(epochs, [h["loss"] for h in history], color="tab:blue", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("train loss")
    ax1.set_yscale("log")
    ax2 = ax1.twinx()
    ax2.plot(epochs, [h["test_accuracy"] for h in history], color="tab:orange",
             label="test accuracy")
    ax2.set_ylabel("test accuracy")
    ax1.set_title("gpugrad digits demo")
    fig.legend(loc="center right", bbox_to_anchor=(0.85, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _convert(text: str, kind: type, what: str):
    """`kind(text)`, or an ArgumentTypeError saying it expected `what`."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def _positive_int(text: str) -> int:
    value = _convert(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _learning_rate(text: str) -> float:
    value = _convert(text, float, "a number")
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _device(text: str) -> str:
    try:
        return str(gg.device(text))
    except (TypeError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `gpugrad train` options (checked values: see also `check_arguments`)."""
    p.add_argument("--device", type=_device, default=None,
                   help="cpu, cuda or cuda:N (default: best)")
    p.add_argument("--epochs", type=_positive_int, default=40)
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--lr", type=_learning_rate, default=1e-3)
    p.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    p.add_argument("--out", default="runs/digits", help="folder for checkpoint and curve")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nproc", type=_positive_int, default=1,
                   help="train data-parallel on N processes (relaunches under mpiexec; "
                        "--batch-size is per process)")


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What the option types cannot see: that --device exists on this machine and that
    --out can be a folder. Reports a problem as a usage error (one line, exit status 2)
    before anything runs."""
    if args.device is not None and args.device != "cpu":
        try:
            get_backend(args.device)
        except DeviceError as e:
            parser.error(f"argument --device: {e}")
    for folder in (Path(args.out), *Path(args.out).parents):
        if folder.exists():
            if not folder.is_dir():
                parser.error(f"argument --out: cannot make the folder {args.out!r}: "
                             f"{str(folder)!r} is a file")
            break


def run(args: argparse.Namespace) -> None:
    """Entry point for parsed `gpugrad train` arguments."""
    launched = int(os.environ.get("GPUGRAD_NPROC", "1"))  # set by `gpugrad run`
    if args.nproc > 1 and launched == 1:
        from .distributed import launch

        options = ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                   "--lr", str(args.lr), "--model", args.model, "--out", args.out,
                   "--seed", str(args.seed), "--nproc", str(args.nproc)]
        if args.device:
            options += ["--device", args.device]
        try:
            # "-m": the launcher runs it with this interpreter, through the rank bootstrap
            # that reports each rank's failure
            status = launch.run(args.nproc, ["-m", "gpugrad", "train", *options])
        except RuntimeError as e:
            raise SystemExit(str(e)) from None
        if status:
            raise SystemExit(status)
        return
    train(args.device, args.epochs, args.batch_size, args.lr, args.model, args.out, args.seed,
          distributed=max(args.nproc, launched) > 1)
