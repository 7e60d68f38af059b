"""Devices as recent PyTorch spells them: gg.device objects, gg.accelerator, Tensor.device,
is_cuda/is_cpu/get_device and the forms of Tensor.to, compared with torch (CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gpugrad as gg


@pytest.mark.parametrize("args,kw", [
    (("cpu",), {}), (("cuda",), {}), (("cuda:1",), {}), (("cuda", 2), {}),
    ((), {"type": "cuda", "index": 1}), ((), {"type": "cpu"}),
])
def test_device_objects_match_torch(args, kw):
    ours, theirs = gg.device(*args, **kw), torch.device(*args, **kw)
    assert ours.type == theirs.type
    # torch leaves the index of a bare "cuda" unset; gpugrad resolves it to GPU 0.
    want_index = 0 if theirs.type == "cuda" and theirs.index is None else theirs.index
    assert ours.index == want_index
    assert ours == gg.device(ours) and hash(ours) == hash(gg.device(str(ours)))
    assert ours == str(ours)


def test_device_errors_and_equality():
    assert gg.device("cuda") == "cuda:0" and gg.device("cpu") != "cuda"
    assert gg.device(3) == "cuda:3"  # an int is a GPU index, as torch.device(3)
    with pytest.raises(ValueError, match="unknown device"):
        gg.device("tpu")
    with pytest.raises(TypeError, match="not both"):
        gg.device("cpu", type="cuda")
    with pytest.raises(TypeError, match="device must be"):
        gg.device(1.5)


def test_device_as_a_context_manager_sets_the_default():
    before = gg.default_device()
    with gg.device("cpu") as d:
        assert d == "cpu" and gg.zeros(1).device == "cpu" and gg.default_device() == "cpu"
    assert gg.default_device() == before


def test_accelerator_matches_torch_on_this_machine():
    assert gg.accelerator.is_available() == gg.cuda.is_available()
    assert gg.accelerator.device_count() == gg.cuda.device_count()
    if not gg.cuda.is_available():
        assert gg.accelerator.current_accelerator() is None
        with pytest.raises(RuntimeError, match="none is available"):
            gg.accelerator.current_device_index()
        if not torch.accelerator.is_available():
            assert torch.accelerator.current_accelerator() is None
    else:
        acc = gg.accelerator.current_accelerator()
        assert acc.type == "cuda" and isinstance(acc, gg.device)
    gg.accelerator.synchronize()


def test_tensor_device_attributes():
    x, tx = gg.zeros(2, device="cpu"), torch.zeros(2)
    assert isinstance(x.device, gg.device) and x.device.type == tx.device.type == "cpu"
    assert x.is_cpu == tx.is_cpu and x.is_cuda == tx.is_cuda
    assert x.get_device() == tx.get_device() == -1


@pytest.mark.parametrize("call", [
    lambda m, x: x.to("cpu"), lambda m, x: x.to(m.device("cpu")),
    lambda m, x: x.to(m.float64), lambda m, x: x.to(dtype=m.int32),
    lambda m, x: x.to("cpu", m.float64), lambda m, x: x.to(m.device("cpu"), m.float16),
    lambda m, x: x.to("cpu", m.float64, non_blocking=True),
    lambda m, x: x.to(device="cpu", dtype=m.float64, non_blocking=True, copy=True),
    lambda m, x: x.to(m.zeros(1, dtype=m.int64)),
    lambda m, x: x.to(copy=True), lambda m, x: x.to(m.float32),
])
def test_to_forms_match_torch(call):
    a = np.array([1.5, -2.25, 3.0], dtype=np.float32)
    x, tx = gg.tensor(a), torch.tensor(a)
    ours, theirs = call(gg, x), call(torch, tx)
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    assert ours.device.type == theirs.device.type
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert (ours is x) == (theirs is tx)  # a no-op .to returns self; copy=True never does


def test_to_keeps_the_graph_and_rejects_bad_arguments():
    x = gg.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(gg.float64, non_blocking=True)
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    assert x.to(copy=True).requires_grad
    with pytest.raises(TypeError, match="unexpected"):
        x.to(bogus=1)


@pytest.mark.skipif(gg.cuda.is_available(), reason="checks the error without a GPU")
def test_to_cuda_without_a_gpu_names_the_device():
    with pytest.raises(gg.DeviceError, match="cuda:0.*not available"):
        gg.zeros(1).to("cuda")
    with pytest.raises(gg.DeviceError, match="cuda:1"):
        gg.zeros(1).to(1)


@pytest.mark.gpu
@pytest.mark.skipif(not gg.cuda.is_available(), reason="needs a GPU")
def test_to_cuda_and_back():
    x = gg.tensor([1.0, 2.0], device="cpu", requires_grad=True)
    y = x.to(gg.accelerator.current_accelerator(), gg.float64, non_blocking=True)
    assert y.is_cuda and not y.is_cpu and y.device.type == "cuda" and y.get_device() == 0
    assert y.to(x).device == "cpu" and x.to(0).device == "cuda:0"
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    assert x.type(gg.float64).type() == "gpugrad.DoubleTensor"
    assert y.type() == "gpugrad.cuda.DoubleTensor"
