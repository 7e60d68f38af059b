"""A training step never reads device data back to the host nor synchronises: checked with
the backend's transfer counter (the CPU backend counts host reads the same way)."""

import pytest

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F
from gpugrad.backend import get_backend


def _mlp():
    return nn.Sequential(nn.Linear(20, 64), nn.LayerNorm(64), nn.ReLU(), nn.Dropout(0.1),
                         nn.Linear(64, 5))


def _cnn():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 8, 1),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))


@pytest.mark.parametrize("make, shape, optimizer", [
    (_mlp, (16, 20), lambda ps: gg.optim.Adam(ps, lr=1e-3)),
    (_cnn, (4, 1, 8, 8), lambda ps: gg.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True)),
])
def test_training_step_has_no_host_round_trip(make, shape, optimizer):
    device = gg.default_device()
    model = make().to(device)
    opt = optimizer(model.parameters())
    x, y = gg.randn(*shape, device=device), gg.randint(0, 5, (shape[0],), device=device)
    counter = get_backend(device).counter
    for _ in range(2):  # the second step runs with optimizer state in place
        counter.reset()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        assert (counter.device_to_host, counter.synchronizations) == (0, 0)
    assert norm.item() > 0 and counter.device_to_host == 1  # the counter does count reads


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the inf step overflows on purpose
@pytest.mark.parametrize("make, shape", [(_mlp, (16, 20)), (_cnn, (4, 1, 8, 8))])
def test_mixed_precision_step_with_a_skipped_inf_step_has_no_host_round_trip(make, shape):
    """autocast + GradScaler (unscale, clip, step, update): finite steps and a skipped inf
    step alike decide everything on the device."""
    device = gg.default_device()
    model = make().to(device)
    opt = gg.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = gg.amp.GradScaler()
    x, y = gg.randn(*shape, device=device), gg.randint(0, 5, (shape[0],), device=device)
    counter = get_backend(device).counter
    low = gg.float16 if gg.device(device).type == "cpu" else gg.bfloat16
    for poison in (False, True, False):
        counter.reset()
        opt.zero_grad()
        with gg.autocast(gg.device(device).type, dtype=low):
            loss = F.cross_entropy(model(x), y)
        if poison:
            loss = loss * float("inf")
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        assert (counter.device_to_host, counter.synchronizations) == (0, 0)
    assert scaler.get_scale() == 2.0 ** 15  # one backoff, read here: the one host read
