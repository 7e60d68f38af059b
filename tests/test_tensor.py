"""Tensor creation, attributes, conversion and devices (API.md: Creating tensors, Tensor)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import gpugrad as gg


def test_dtype_inference_follows_pytorch():
    assert gg.tensor(1.5).dtype == gg.float32
    assert gg.tensor([1.0, 2.0]).dtype == gg.float32
    assert gg.tensor([1, 2]).dtype == gg.int64
    assert gg.tensor([True]).dtype == gg.bool
    assert gg.tensor(np.zeros(2)).dtype == gg.float64
    assert gg.tensor(np.zeros(2, dtype=np.int32)).dtype == gg.int32
    assert gg.tensor([1, 2], dtype=gg.float64).dtype == gg.float64


def test_shapes_as_varargs_or_tuple():
    assert gg.zeros(2, 3).shape == gg.zeros((2, 3)).shape == (2, 3)
    assert gg.ones([4]).shape == (4,)
    assert gg.full((2, 2), 7).dtype == gg.int64
    assert gg.full((2, 2), 7.0).tolist() == [[7.0, 7.0], [7.0, 7.0]]
    assert gg.eye(3).numpy().trace() == 3
    assert gg.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert gg.arange(0, 1, 0.25).dtype == gg.float32
    np.testing.assert_allclose(gg.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5))
    assert gg.zeros_like(gg.ones(2, dtype=gg.float64)).dtype == gg.float64
    assert gg.randint(0, 10, (3, 4)).dtype == gg.int64
    r = gg.rand(1000)
    assert 0 <= r.numpy().min() and r.numpy().max() < 1


def test_manual_seed_reproduces():
    gg.manual_seed(7)
    a = gg.randn(5).tolist()
    gg.manual_seed(7)
    assert gg.randn(5).tolist() == a


def test_attributes():
    x = gg.ones(2, 3, requires_grad=True)
    assert x.ndim == 2 and x.is_leaf and x.grad is None and x.grad_fn is None
    assert x.device == "cpu" and str(x.device) == "cpu"
    assert isinstance(x.array, np.ndarray)
    y = x * 2
    assert not y.is_leaf and y.grad_fn is not None
    assert y.size() == (2, 3) and y.size(1) == 3 and y.numel() == 6 and len(y) == 2


def test_from_numpy_and_dlpack_share_memory():
    a = np.arange(4.0)
    t = gg.from_numpy(a)
    a[0] = 9
    assert t.tolist()[0] == 9
    d = gg.from_dlpack(torch.arange(3.0))
    assert d.tolist() == [0.0, 1.0, 2.0]
    back = torch.from_dlpack(t)
    assert back.tolist() == t.tolist()
    assert t.__dlpack_device__()[0] == 1


def test_item_tolist_to_clone():
    x = gg.tensor([[1.0, 2.0]])
    assert x.sum().item() == 3.0
    assert x.to(gg.float64).dtype == gg.float64
    assert x.to("cpu") is x
    c = x.clone()
    c.zero_()
    assert x.tolist() == [[1.0, 2.0]]
    with pytest.raises(RuntimeError, match="2 elements"):
        x.item()


def test_device_objects():
    d = gg.device("cuda:1")
    assert d == "cuda:1" and d.type == "cuda" and d.index == 1 and str(d) == "cuda:1"
    assert gg.device("cpu") == "cpu" and gg.device("cpu") != "cuda"
    with pytest.raises(ValueError, match="tpu"):
        gg.device("tpu")


def test_cuda_unavailable_is_a_clear_error():
    if gg.cuda.is_available():
        pytest.skip("a GPU is present")
    assert gg.default_device() == "cpu" or os.environ.get("GPUGRAD_DEVICE")
    with pytest.raises(gg.DeviceError, match="CUDA is not available"):
        gg.zeros(2, device="cuda")


def test_default_device_env_variable():
    code = "import gpugrad as gg; print(gg.default_device())"
    env = dict(os.environ, GPUGRAD_DEVICE="cpu")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "cpu"


def test_set_default_device_roundtrip():
    prev = gg.default_device()
    gg.set_default_device("cpu")
    assert gg.zeros(1).device == "cpu"
    gg.set_default_device(prev)


def test_repr():
    assert repr(gg.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "requires_grad=True" in repr(gg.ones(1, requires_grad=True))
    assert "grad_fn=<MulBackward>" in repr(gg.ones(1, requires_grad=True) * 2)


def test_bad_data_is_a_type_error():
    with pytest.raises(TypeError):
        gg.tensor([[1.0], [2.0, 3.0]])
    # bfloat16 on the CPU needs ml_dtypes; without it: tests/amp/test_bf16_cpu.py


def test_cpu_allocator_caching_can_be_switched_off():
    code = "from gpugrad.backend import numpy_backend as m; print(m.ALLOCATOR_CACHING)"
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        check=True).stdout.strip()
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=dict(os.environ, GPUGRAD_CPU_ALLOCATOR="system"))
    import platform

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert on == "True"
    assert off.stdout.strip() == "False"
