"""CUDA graphs on a GPU: the capture GEMM inside a real capture, and captured training
steps (plain, Adam with device step counts, GradScaler with a skipped step) replaying
exactly what eager execution does."""

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F
from gpugrad.backend import get_backend

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("dtype", [gg.float32, gg.float16, gg.float64])
@pytest.mark.parametrize("sa, sb", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (2, 4, 5))])
def test_matmul_captured_through_cublas_matches_eager(dtype, sa, sb):
    import cupy

    a = gg.randn(*sa, device="cuda").to(dtype)
    b = gg.randn(*sb, device="cuda").to(dtype)
    graph = gg.cuda.CUDAGraph()
    with graph.capture():
        out = gg.matmul(a, b)
    assert get_backend("cuda").xp is cupy  # the capture's module swap is undone
    for _ in range(2):  # new inputs in the same buffers
        graph.replay()
        expected = cupy.matmul(a._data, b._data)
        tol = 2e-2 if dtype is gg.float16 else 1e-5
        np.testing.assert_allclose(cupy.asnumpy(out._data).astype(np.float64),
                                   cupy.asnumpy(expected).astype(np.float64), rtol=tol, atol=tol)
        a._data[...] = cupy.random.standard_normal(a.shape).astype(a._data.dtype)


def _model():
    gg.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), nn.LayerNorm(32), nn.ReLU(), nn.Linear(32, 4)).to(
        "cuda")


def _batches(n):
    rng = np.random.default_rng(1)
    return [(gg.tensor(rng.standard_normal((8, 10)).astype(np.float32), device="cuda"),
             gg.tensor(rng.integers(0, 4, 8), device="cuda")) for _ in range(n)]


def _trainer(make_opt, scaled=False):
    model = _model()
    opt = make_opt(model.parameters())
    scaler = gg.amp.GradScaler() if scaled else None

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        return loss

    return model, step, scaler


@pytest.mark.parametrize("make_opt", [
    lambda ps: gg.optim.SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: gg.optim.Adam(ps, lr=1e-2, capturable=True),
])
@pytest.mark.parametrize("scaled", [False, True])
def test_replayed_training_step_equals_eager(make_opt, scaled):
    batches = _batches(4)
    eager_model, eager_step, _ = _trainer(make_opt, scaled)
    graph_model, graph_step, _ = _trainer(make_opt, scaled)
    for _ in range(2):  # the warm-up of the graphed run uses the example batch
        eager_step(*batches[0])
    for x, y in batches[1:]:
        eager_step(x, y)
    run = gg.cuda.graphed(graph_step, *batches[0], warmup=2)
    for x, y in batches[1:]:
        run(x, y)
    for p, q in zip(graph_model.parameters(), eager_model.parameters()):
        np.testing.assert_allclose(p.detach().cpu().numpy(), q.detach().cpu().numpy(),
                                   rtol=1e-4, atol=1e-5)


def test_replayed_scaled_step_skips_an_inf_batch_on_the_device():
    model, step, scaler = _trainer(lambda ps: gg.optim.Adam(ps, lr=1e-2, capturable=True),
                                   scaled=True)
    (x, y), = _batches(1)
    run = gg.cuda.graphed(step, x, y, warmup=2)
    before = [p.detach().cpu().numpy() for p in model.parameters()]
    scale = scaler.get_scale()
    run(x * float("inf"), y)
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.detach().cpu().numpy(), b)
    assert scaler.get_scale() == scale / 2


def test_capture_errors_restore_the_backend():
    import cupy

    model, step, _ = _trainer(lambda ps: gg.optim.Adam(ps, lr=1e-2))
    (x, y), = _batches(1)
    step(x, y)
    with pytest.raises(RuntimeError, match="capturable=True"):
        gg.cuda.graphed(step, x, y, warmup=1)
    graph = gg.cuda.CUDAGraph()
    with pytest.raises(Exception, match="capturing"):
        with graph.capture():
            x.sum().item()
    backend = x._backend
    assert backend.xp is cupy and not gg.cuda.is_current_stream_capturing()
    with pytest.raises(RuntimeError, match="nothing has been captured"):
        graph.replay()
