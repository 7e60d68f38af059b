"""Mixed precision on a GPU: autocast in bfloat16/float16, a scaled step without host
reads, and the CUDA backend's optimizer-section methods against their NumPy reference."""

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad.backend import cpu_backend, get_backend

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("dtype", [gg.bfloat16, gg.float16])
def test_autocast_dtypes_and_float32_master_gradients(dtype):
    rng = np.random.default_rng(0)
    x = gg.tensor(rng.standard_normal((16, 32)).astype(np.float32), device="cuda")
    w = gg.tensor(rng.standard_normal((8, 32)).astype(np.float32), device="cuda",
                  requires_grad=True)
    y = gg.tensor(rng.integers(0, 8, 16), device="cuda")
    with gg.autocast("cuda", dtype=dtype):
        logits = F.linear(x, w)
        assert logits.dtype is dtype and F.softmax(logits, -1).dtype is gg.float32
        loss = F.cross_entropy(logits, y)
    assert loss.dtype is gg.float32
    loss.backward()
    assert w.grad.dtype is gg.float32
    ref_w = gg.tensor(w.detach().cpu().numpy(), device="cuda", requires_grad=True)
    F.cross_entropy(F.linear(x, ref_w), y).backward()
    np.testing.assert_allclose(w.grad.cpu().numpy(), ref_w.grad.cpu().numpy(), rtol=5e-2,
                               atol=5e-3)


def test_scaled_step_with_inf_has_no_host_round_trip():
    gg.manual_seed(0)
    model = gg.nn.Sequential(gg.nn.Linear(16, 16), gg.nn.ReLU(), gg.nn.Linear(16, 4)).to("cuda")
    opt = gg.optim.Adam(model.parameters(), lr=1e-3)
    scaler = gg.amp.GradScaler()
    x, y = gg.randn(8, 16, device="cuda"), gg.randint(0, 4, (8,), device="cuda")
    counter = get_backend("cuda").counter
    for poison in (False, True, False):
        counter.reset()
        opt.zero_grad()
        with gg.autocast("cuda", dtype=gg.bfloat16):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss * float("inf") if poison else loss).backward()
        scaler.unscale_(opt)
        gg.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        assert (counter.device_to_host, counter.synchronizations) == (0, 0)
    assert scaler.get_scale() == 2.0 ** 15


def _pair(rng, shapes, dtype=np.float32):
    host = [rng.standard_normal(s).astype(dtype) for s in shapes]
    gpu = get_backend("cuda")
    return host, [gpu.asarray(a) for a in host]


SHAPES = [(33, 7), (1,), (1025,), ()]


@pytest.mark.parametrize("flag", [0.0, 1.0])
def test_adam_update_on_gpu_matches_numpy(flag):
    gpu, rng = get_backend("cuda"), np.random.default_rng(1)
    (p, gp), (g, gg_), (m, gm), (v, gv) = (_pair(rng, SHAPES) for _ in range(4))
    # np.abs of a 0-d array is a NumPy scalar, which the in-place reference cannot update
    v, gv = [np.asarray(np.abs(a)) for a in v], [gpu.xp.abs(a) for a in gv]
    if flag:
        g[0][0, 0] = np.inf
        gg_[0][0, 0] = np.inf
    kw = dict(lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1, amsgrad=False,
              maximize=False, decoupled_weight_decay=True)
    steps = [np.array(2, np.float32)] * len(p)
    cpu_backend.adam_update(p, g, m, v, None, steps, found_inf=np.array([flag], np.float32),
                            **kw)
    gpu.adam_update(gp, gg_, gm, gv, None, [gpu.asarray(s) for s in steps],
                    found_inf=gpu.asarray(np.array([flag], np.float32)), **kw)
    for a, b in zip(p + m + v, gp + gm + gv):
        np.testing.assert_allclose(gpu.to_host(b), a, rtol=1e-5, atol=1e-6)


def test_grad_norm_unscale_and_clip_on_gpu_match_numpy():
    gpu, rng = get_backend("cuda"), np.random.default_rng(2)
    host, dev = _pair(rng, SHAPES)
    for p in (2.0, 1.0, float("inf")):
        np.testing.assert_allclose(gpu.to_host(gpu.grad_norm(dev, p)),
                                   cpu_backend.grad_norm(host, p), rtol=1e-5)
    flag_h, flag_d = np.zeros(1, np.float32), gpu.xp.zeros(1, dtype=gpu.xp.float32)
    inv = np.array(0.5, np.float32)
    cpu_backend.unscale_grads_(host, inv, flag_h)
    gpu.unscale_grads_(dev, gpu.asarray(inv), flag_d)
    cpu_backend.clip_grads_(host, 0.1, cpu_backend.grad_norm(host))
    gpu.clip_grads_(dev, 0.1, gpu.grad_norm(dev))
    for a, b in zip(host, dev):
        np.testing.assert_allclose(gpu.to_host(b), a, rtol=1e-5, atol=1e-7)
    assert gpu.to_host(flag_d)[0] == flag_h[0] == 0.0
    dev[1][0] = np.nan
    gpu.unscale_grads_(dev, gpu.asarray(inv), flag_d)
    assert gpu.to_host(flag_d)[0] == 1.0
