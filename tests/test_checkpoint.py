"""Checkpoints of real models: training resumes identically, and PyTorch reads our file."""

import numpy as np
import torch
from safetensors.torch import load_file

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F


def _model():
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def _steps(model, opt, x, y, n):
    for _ in range(n):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


def test_training_resumes_identically(tmp_path):
    gg.manual_seed(0)
    x, y = gg.randn(32, 6), gg.randint(0, 3, (32,))
    model = _model()
    opt = gg.optim.Adam(model.parameters(), lr=1e-2)
    _steps(model, opt, x, y, 3)
    gg.save({"model": model.state_dict(), "optim": opt.state_dict()}, tmp_path / "ck.safetensors")
    _steps(model, opt, x, y, 3)

    ck = gg.load(tmp_path / "ck.safetensors")
    resumed = _model()
    resumed.load_state_dict(ck["model"])
    resumed_opt = gg.optim.Adam(resumed.parameters(), lr=1e-2)
    resumed_opt.load_state_dict(ck["optim"])
    _steps(resumed, resumed_opt, x, y, 3)
    for a, b in zip(model.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_pytorch_twin_loads_our_weights(tmp_path):
    model = _model()
    gg.save(model.state_dict(), tmp_path / "m.safetensors")
    twin = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    twin.load_state_dict(load_file(tmp_path / "m.safetensors"))
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    with gg.no_grad():
        ours = model(gg.tensor(x)).numpy()
    np.testing.assert_allclose(ours, twin(torch.from_numpy(x)).detach().numpy(), rtol=1e-6)
