"""max_pool2d on batches large enough for the CPU thread pool: the images are shared among
the threads in cache-sized ranges (cpu_parallel.over_rows) forward and backward, and the
values, indices (ties and NaN included) and gradients are PyTorch's."""

import numpy as np
import pytest
import torch

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad.backend import cpu_parallel


@pytest.mark.parametrize("kw", [dict(kernel_size=2),  # disjoint windows: copy, no accumulation
                                dict(kernel_size=2, stride=3, dilation=2),  # disjoint, gaps
                                dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)])
def test_threaded_max_pool2d_matches_torch(kw, monkeypatch, cpu_default_device):  # CPU pool
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (65, 32, 24, 24)).astype(np.float32)  # ties everywhere
    x[5, 3, 7, 7] = np.nan
    ranges = []
    real = cpu_parallel.run_shares
    monkeypatch.setattr(cpu_parallel, "run_shares",
                        lambda run, n, parts: (ranges.append(parts), real(run, n, parts)))
    ours = gg.tensor(x, requires_grad=True)
    out, idx = F.max_pool2d(ours, return_indices=True, **kw)
    n_forward = len(ranges)
    cot = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(gg.tensor(cot))
    theirs = torch.tensor(x, requires_grad=True)
    t_out, t_idx = torch.nn.functional.max_pool2d(theirs, return_indices=True, **kw)
    t_out.backward(torch.tensor(cot))
    np.testing.assert_array_equal(out.detach().numpy(), t_out.detach().numpy())
    np.testing.assert_array_equal(idx.numpy(), t_idx.numpy())
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6, atol=1e-6)
    if cpu_parallel.THREADS > 1:  # the pool was used, forward and backward
        assert n_forward >= 1 and len(ranges) >= 2
