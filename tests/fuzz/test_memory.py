"""Long runs: no reference cycles through our objects after a training step (normal suite),
and a 10,000-step soak of the demo MLP whose memory must stay flat (GPUGRAD_SOAK=1 only):

    GPUGRAD_SOAK=1 .venv/bin/python -m pytest -q -s tests/fuzz/test_memory.py
"""

import gc
import os
import tracemalloc

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad.train import build_model


def _ours(obj) -> bool:
    mod = type(obj).__module__ or ""
    if mod.startswith("gpugrad"):
        return True
    fn = getattr(obj, "__func__", obj)  # functions and bound methods defined in gpugrad
    return callable(fn) and (getattr(fn, "__module__", "") or "").startswith("gpugrad")


def _step(model, opt, x, y, create_graph=False):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward(create_graph=create_graph)
    opt.step()
    return loss.item()


@pytest.mark.parametrize("create_graph", [False, True])
def test_training_step_leaves_no_cycles(create_graph):
    gg.manual_seed(0)
    model = build_model("mlp")
    opt = gg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = gg.randn(32, 64), gg.randint(0, 10, (32,))
    _step(model, opt, x, y)  # warm-up: lazily created state is not garbage
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        out = model(x)
        loss = F.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward(create_graph=create_graph)
        opt.step()
        if create_graph:  # the recorded backward graph hangs off .grad: drop it
            for p in model.parameters():
                p.grad = None
        del out, loss
        found = gc.collect()
        ours = [o for o in gc.garbage if _ours(o)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not ours, (f"{found} objects in reference cycles after a training step, "
                      f"{len(ours)} of them ours: "
                      f"{sorted({type(o).__qualname__ for o in ours})}")


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.skipif(os.environ.get("GPUGRAD_SOAK") != "1",
                    reason="soak test: set GPUGRAD_SOAK=1 to run 10,000 training steps")
def test_soak_memory_flat():
    steps = int(os.environ.get("GPUGRAD_SOAK_STEPS", "10000"))
    gg.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_model("mlp")
    opt = gg.optim.Adam(model.parameters(), lr=1e-3)
    tracemalloc.start()
    marks = {}
    try:
        for step in range(1, steps + 1):
            x = gg.from_numpy(rng.standard_normal((32, 64)).astype(np.float32))
            y = gg.from_numpy(rng.integers(0, 10, 32))
            _step(model, opt, x, y)
            if step in (100, steps) or step % 1000 == 0:
                gc.collect()
                marks[step] = (tracemalloc.get_traced_memory()[0], _rss_kib())
                print(f"step {step}: traced {marks[step][0] / 2**20:.2f} MiB, "
                      f"RSS {marks[step][1] / 1024:.1f} MiB")
    finally:
        tracemalloc.stop()
    (t100, r100), (t_end, r_end) = marks[100], marks[steps]
    # flat: Python-side allocations grow by < 1 MiB, RSS by < 32 MiB over the run
    assert t_end - t100 < 2**20, f"traced memory grew {t100} -> {t_end} bytes"
    assert r_end - r100 < 32 * 1024, f"RSS grew {r100} -> {r_end} KiB"
