"""Shared helpers for the optimizer tests: one tiny model written twice, in gpugrad and in
PyTorch, so an optimizer's trajectory can be compared step by step."""

from __future__ import annotations

import numpy as np
import torch

import gpugrad as gg

RNG = np.random.default_rng(7)
X = RNG.normal(size=(6, 3))
Y = RNG.normal(size=(6, 4))
INIT = {"w": RNG.normal(size=(3, 4)), "b": RNG.normal(size=(4,)), "s": np.array(0.7)}


def gg_params(dtype=np.float64) -> list:
    """Fresh gpugrad leaves w (3, 4), b (4,), s () with the shared initial values."""
    return [gg.tensor(INIT[k].astype(dtype), requires_grad=True) for k in ("w", "b", "s")]


def torch_params(dtype=np.float64) -> list:
    """The same leaves in PyTorch."""
    return [torch.tensor(INIT[k].astype(dtype), requires_grad=True) for k in ("w", "b", "s")]


def loss_fn(params, lib):
    """A small least-squares loss with a 0-d parameter coupling into it."""
    w, b, s = params
    x = lib.tensor(X.astype(_np_dtype(w)))
    y = lib.tensor(Y.astype(_np_dtype(w)))
    pred = x @ w + b * s
    return ((pred - y) ** 2).mean() + s * s * 0.1


def _np_dtype(t):
    return np.float32 if "32" in str(t.dtype) else np.float64


def run_gg(opt, params, steps: int, zero_to_none: bool = True) -> list:
    """Take `steps` optimizer steps; return the parameter values after each."""
    out = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=zero_to_none)
        loss_fn(params, gg).backward()
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out


def run_torch(opt, params, steps: int, zero_to_none: bool = True) -> list:
    """The same loop in PyTorch."""
    out = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=zero_to_none)
        loss_fn(params, torch).backward()
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out


def assert_trajectories_close(ours: list, theirs: list, rtol=1e-10, atol=1e-12) -> None:
    """Every parameter equal after every step."""
    assert len(ours) == len(theirs)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for i, (x, y) in enumerate(zip(a, b)):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol,
                                       err_msg=f"step {step + 1}, parameter {i}")


def assert_states_close(gg_opt, torch_opt, gg_ps, torch_ps, rtol=1e-10, atol=1e-12) -> None:
    """The per-parameter state (same keys, same values) of both optimizers."""
    for i, (p, q) in enumerate(zip(gg_ps, torch_ps)):
        ours, theirs = gg_opt.state.get(p, {}), torch_opt.state.get(q, {})
        assert set(ours) == set(theirs), f"parameter {i}"
        for key, value in theirs.items():
            np.testing.assert_allclose(ours[key].numpy(), value.detach().numpy(), rtol=rtol,
                                       atol=atol, err_msg=f"parameter {i} state {key}")
