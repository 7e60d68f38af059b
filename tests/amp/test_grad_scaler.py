"""gg.amp.GradScaler against torch.amp.GradScaler("cpu"), its skip-on-inf rule, its
errors, and the absence of host reads in a scaled step."""

import numpy as np
import pytest
import torch

import gpugrad as gg

# The scripted infs overflow on purpose in the forward and backward passes.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

RNG = np.random.default_rng(0)
X = RNG.standard_normal((6, 3)).astype(np.float32)
W0 = RNG.standard_normal((3, 2)).astype(np.float32)

# A scripted run: True = finite gradients, False = an inf in the loss.
SCRIPT = [True, True, False, True, True, True, False, False, True, True, True, True, False]


def _make(lib, opt_name, **scaler_kwargs):
    w = lib.tensor(W0.copy(), requires_grad=True)
    opt = getattr(lib.optim, opt_name)([w], lr=0.05, **({"momentum": 0.9}
                                                       if opt_name == "SGD" else {}))
    kwargs = dict(init_scale=8.0, growth_interval=2, **scaler_kwargs)
    scaler = gg.amp.GradScaler(**kwargs) if lib is gg else torch.amp.GradScaler("cpu", **kwargs)
    return w, opt, scaler


def _step(lib, w, opt, scaler, finite: bool, clip: bool = False):
    opt.zero_grad()
    loss = ((lib.tensor(X) @ w) ** 2).mean() * (1.0 if finite else float("inf"))
    scaler.scale(loss).backward()
    if clip:
        scaler.unscale_(opt)
        (gg if lib is gg else torch).nn.utils.clip_grad_norm_([w], 0.5)
    scaler.step(opt)
    scaler.update()


@pytest.mark.parametrize("opt_name", ["Adam", "SGD"])
@pytest.mark.parametrize("clip", [False, True])
def test_scale_trajectory_and_parameters_match_torch(opt_name, clip):
    ours, theirs = _make(gg, opt_name), _make(torch, opt_name)
    for i, finite in enumerate(SCRIPT):
        _step(gg, *ours, finite, clip)
        _step(torch, *theirs, finite, clip)
        assert ours[2].get_scale() == theirs[2].get_scale(), f"step {i}"
        assert ours[2]._get_growth_tracker() == theirs[2]._get_growth_tracker(), f"step {i}"
        np.testing.assert_allclose(ours[0].detach().numpy(), theirs[0].detach().numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=f"step {i}")


def test_inf_gradient_leaves_parameters_and_state_untouched_and_halves_scale():
    w, opt, scaler = _make(gg, "Adam")
    _step(gg, w, opt, scaler, True)
    before = w.detach().numpy().copy()
    state = {k: v.numpy().copy() for k, v in opt.state[w].items()}
    scale = scaler.get_scale()
    _step(gg, w, opt, scaler, False)
    np.testing.assert_array_equal(w.detach().numpy(), before)
    for k, v in opt.state[w].items():
        np.testing.assert_array_equal(v.numpy(), state[k], err_msg=k)
    assert scaler.get_scale() == scale / 2 and scaler._get_growth_tracker() == 0


def test_scale_multiplies_the_loss_and_unscale_divides_the_gradient():
    w, opt, scaler = _make(gg, "SGD")
    loss = (gg.tensor(X) @ w).sum()
    scaled = scaler.scale(loss)
    assert scaled.item() == pytest.approx(8.0 * loss.item(), rel=1e-6)
    scaled.backward()
    np.testing.assert_allclose(w.grad.numpy(), 8.0 * X.sum(0)[:, None].repeat(2, 1), rtol=1e-6)
    scaler.unscale_(opt)
    np.testing.assert_allclose(w.grad.numpy(), X.sum(0)[:, None].repeat(2, 1), rtol=1e-6)
    a, b = scaler.scale([loss, (loss,)])
    assert a.item() == pytest.approx(scaled.item()) and isinstance(b, tuple)


def test_scaled_step_with_inf_reads_nothing_on_the_host():
    w, opt, scaler = _make(gg, "Adam")
    _step(gg, w, opt, scaler, True)  # state and scale exist
    counter = w._backend.counter  # the device the step runs on (cuda under GPUGRAD_DEVICE)
    counter.reset()
    for finite in (False, True, False):
        _step(gg, w, opt, scaler, finite, clip=True)
    assert (counter.device_to_host, counter.synchronizations) == (0, 0)
    assert scaler.get_scale() == 2.0 and counter.device_to_host == 1  # the counter counts


def test_growth_never_overflows_float32():
    w, opt, scaler = _make(gg, "SGD")
    scaler._init_scale = 2.0 ** 127
    for _ in range(4):
        _step(gg, w, opt, scaler, True)
    assert scaler.get_scale() == 2.0 ** 127


@pytest.mark.parametrize("sequence, message", [
    (("unscale_", "unscale_"), "already been called on this optimizer"),
    (("step", "unscale_"), "after step"),
    (("step", "step"), "already been called since the last update"),
])
def test_stage_errors_match_torch(sequence, message):
    w, opt, scaler = _make(gg, "SGD")
    scaler.scale((gg.tensor(X) @ w).sum()).backward()
    getattr(scaler, sequence[0])(opt)
    with pytest.raises(RuntimeError, match=message):
        getattr(scaler, sequence[1])(opt)


def test_other_errors():
    w, opt, scaler = _make(gg, "SGD")
    with pytest.raises(RuntimeError, match="call scale"):
        scaler.step(opt)
    scaler.scale((gg.tensor(X) @ w).sum()).backward()
    with pytest.raises(RuntimeError, match="Closure"):
        scaler.step(opt, closure=lambda: None)
    with pytest.raises(RuntimeError, match="No inf checks were recorded prior to update"):
        scaler.update()
    half = gg.tensor(W0.astype(np.float16), requires_grad=True)
    half.grad = gg.ones(3, 2, dtype=gg.float16)
    with pytest.raises(ValueError, match=r"float16 gradients \(parameter 0 of group 0"):
        scaler.unscale_(gg.optim.SGD([half], lr=0.1))
    with pytest.raises(ValueError, match="growth_factor must be > 1.0"):
        gg.amp.GradScaler(growth_factor=1.0)
    with pytest.raises(ValueError, match="backoff_factor must be < 1.0"):
        gg.amp.GradScaler(backoff_factor=1.0)
    with pytest.raises(TypeError, match="init_scale= by keyword"):
        gg.amp.GradScaler(1024.0)


def test_update_with_new_scale():
    w, opt, scaler = _make(gg, "SGD")
    scaler.scale((gg.tensor(X) @ w).sum())
    scaler.update(64.0)
    assert scaler.get_scale() == 64.0
    scaler.update(gg.tensor([0.5]))
    assert scaler.get_scale() == 0.5
    with pytest.raises(TypeError, match="one-element float32"):
        scaler.update(gg.tensor([1.0, 2.0]))
    assert scaler.get_scale() == 0.5


def test_state_dict_round_trip_and_torch_compatibility():
    w, opt, scaler = _make(gg, "SGD")
    for finite in (True, True, False, True):
        _step(gg, w, opt, scaler, finite)
    sd = scaler.state_dict()
    assert sd == {"scale": 8.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                  "growth_interval": 2, "_growth_tracker": 1}
    fresh = gg.amp.GradScaler()
    fresh.load_state_dict(sd)
    assert fresh.get_scale() == 8.0 and fresh._get_growth_tracker() == 1
    _, _, tscaler = _make(torch, "SGD")
    assert set(tscaler.state_dict()) == set(sd)
    fresh.load_state_dict(tscaler.state_dict())
    assert fresh.get_scale() == 8.0
    with pytest.raises(RuntimeError, match="state dict is empty"):
        fresh.load_state_dict({})
    with pytest.raises(KeyError, match="_growth_tracker"):
        fresh.load_state_dict({k: v for k, v in sd.items() if k != "_growth_tracker"})
    with pytest.raises(TypeError, match="growth_interval must be a number"):
        fresh.load_state_dict({**sd, "scale": 2.0, "growth_interval": "x"})
    assert fresh.get_scale() == 8.0  # nothing changed by the failed loads


def test_disabled_scaler_is_a_pass_through():
    w, opt, scaler = _make(gg, "SGD", enabled=False)
    loss = (gg.tensor(X) @ w).sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    before = w.detach().numpy().copy()
    scaler.step(opt)
    scaler.update()
    assert not np.array_equal(w.detach().numpy(), before)
    assert scaler.get_scale() == 1.0 and scaler.state_dict() == {}
    assert not scaler.is_enabled()
