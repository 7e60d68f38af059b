"""Bugs that the mock CUDA device (GPUGRAD_MOCK_CUDA=1) found in the CUDA path, each
pinned by a test that runs wherever a cuda device answers, mock or real."""

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F

pytestmark = pytest.mark.gpu


def test_bfloat16_cuda_results_are_differentiable_and_keep_their_dtype():
    # CuPy's bfloat16 is ml_dtypes', whose NumPy kind is "V": the autograd engine took
    # such outputs for integers (no grad_fn), a Python float promoted them to float32,
    # and sum returned int64.
    x = gg.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), device="cuda",
                  requires_grad=True)
    y = x.to(gg.bfloat16) * 2.0
    assert y.dtype is gg.bfloat16 and y.requires_grad and y.grad_fn is not None
    s = y.sum()
    assert s.dtype is gg.bfloat16 and float(s.item()) == 30.0
    s.backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), np.full((2, 3), 2.0, np.float32))
    assert x.grad.dtype is gg.float32


@pytest.mark.parametrize("what", ["probability target", "class weight"])
def test_cross_entropy_names_a_target_or_weight_on_another_device(what):
    # A probability target (and a class weight) on another device went unchecked, and
    # failed deep inside the op on CuPy's host/device mixing rule.
    x = gg.randn(3, 4, device="cuda")
    if what == "probability target":
        with pytest.raises(ValueError, match=r"target is on cpu but input is on cuda:0"):
            F.cross_entropy(x, gg.full((3, 4), 0.25, device="cpu"))
    else:
        with pytest.raises(ValueError, match=r"weight is on cpu but input is on cuda:0"):
            F.cross_entropy(x, gg.tensor([0, 1, 2], device="cuda"),
                            weight=gg.ones(4, device="cpu"))


def test_adam_kernel_device_step_bias_corrections_in_double():
    # adam_multi computed 1 − β₂ᵗ for a device step count in float32, where it cancels
    # (β₂ = 0.999, small t): parameters drifted ~4e-5 relative from the reference.
    from gpugrad.backend import cpu_backend, get_backend

    gpu, rng = get_backend("cuda"), np.random.default_rng(3)
    p = [rng.standard_normal(50).astype(np.float32) for _ in range(2)]
    gp = [gpu.asarray(a) for a in p]
    m, v = [np.zeros_like(a) for a in p], [np.zeros_like(a) for a in p]
    gm, gv = [gpu.asarray(a) for a in m], [gpu.asarray(a) for a in v]
    kw = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False,
              maximize=False, decoupled_weight_decay=False)
    for t in range(1, 6):
        g = [rng.standard_normal(50).astype(np.float32) for _ in p]
        step = np.array(t, np.float32)
        cpu_backend.adam_update(p, g, m, v, None, [step] * 2, **kw)
        gpu.adam_update(gp, [gpu.asarray(a) for a in g], gm, gv, None,
                        [gpu.asarray(step)] * 2, **kw)
    for a, b in zip(p, gp):
        np.testing.assert_allclose(gpu.to_host(b), a, rtol=2e-6, atol=1e-7)
