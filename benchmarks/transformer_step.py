"""A pre-norm transformer block training step: LayerNorm, multi-head self-attention,
residual, LayerNorm, GELU MLP, residual; mean-squared loss; SGD update.

gpugrad and PyTorch eager start from the same weights (copied through the state dict).
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import Workload

BATCH, SEQ, DIM, HEADS, FFN = 16, 64, 128, 4, 512
LR = 0.01


def _block(nn):
    """The same architecture in either library (`nn` is gpugrad.nn or torch.nn)."""

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(DIM)
            self.attn = nn.MultiheadAttention(DIM, HEADS, batch_first=True)
            self.ln2 = nn.LayerNorm(DIM)
            self.fc1 = nn.Linear(DIM, FFN)
            self.act = nn.GELU()
            self.fc2 = nn.Linear(FFN, DIM)

        def forward(self, x):
            h = self.ln1(x)
            x = x + self.attn(h, h, h, need_weights=False)[0]
            return x + self.fc2(self.act(self.fc1(self.ln2(x))))

    return Block()


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SEQ, DIM)).astype(np.float32)
    y = rng.standard_normal((BATCH, SEQ, DIM)).astype(np.float32)
    return x, y


def _reference_weights() -> dict:
    import torch

    torch.manual_seed(0)
    return {k: v.detach().numpy().copy() for k, v in _block(torch.nn).state_dict().items()}


def gpugrad_impl(device: str):
    import gpugrad as gg
    import gpugrad.nn.functional as F

    model = _block(gg.nn)
    model.load_state_dict({k: gg.tensor(v) for k, v in _reference_weights().items()})
    model = model.to(device)
    opt = gg.optim.SGD(model.parameters(), lr=LR)
    xn, yn = _data()
    x, y = gg.tensor(xn, device=device), gg.tensor(yn, device=device)

    def step():
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()

    return step, lambda: [p.detach().cpu().numpy() for p in model.parameters()], \
        (gg.cuda.synchronize if device != "cpu" else None)


def torch_impl(device: str):
    import torch

    model = _block(torch.nn)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in _reference_weights().items()})
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    xn, yn = _data()
    x, y = torch.from_numpy(xn).to(device), torch.from_numpy(yn).to(device)

    def step():
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()

    return step, lambda: [p.detach().cpu().numpy() for p in model.parameters()], \
        (torch.cuda.synchronize if device != "cpu" else None)


def _flops() -> float:
    proj = 4 * 2 * BATCH * SEQ * DIM * DIM          # q, k, v and output projections
    attn = 2 * 2 * BATCH * SEQ * SEQ * DIM          # scores and weighted sum
    mlp = 2 * 2 * BATCH * SEQ * DIM * FFN
    return 3 * (proj + attn + mlp)


WORKLOADS = [Workload("transformer", f"transformer block b{BATCH} s{SEQ} d{DIM} h{HEADS}, "
                      "SGD step", {"gpugrad": gpugrad_impl, "torch": torch_impl},
                      flops=_flops(), rtol=1e-3, atol=1e-5)]
