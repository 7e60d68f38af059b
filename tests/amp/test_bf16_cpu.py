"""bfloat16 on the CPU through ml_dtypes (issue 15): tensors, autocast(dtype=bfloat16) and
the NumPy reference paths of the kernels, compared with PyTorch's CPU bfloat16."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F
from gpugrad.backend import cpu_backend

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
RNG = np.random.default_rng(11)


def t_bf16(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, np.float32)).to(torch.bfloat16)


def as_f32(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().numpy()
    return np.asarray(x.detach().numpy() if isinstance(x, gg.Tensor) else x).astype(np.float32)


def test_rounding_matches_torch_bit_for_bit():
    a = RNG.standard_normal(1000).astype(np.float32) * 10.0 ** RNG.integers(-8, 8, 1000)
    a[:4] = [np.inf, -np.inf, 0.0, -0.0]
    g = gg.tensor(a).to(gg.bfloat16)
    assert g.dtype is gg.bfloat16 and g.array.dtype == BF16
    want = t_bf16(a).view(torch.int16).numpy()
    np.testing.assert_array_equal(g.numpy().view(np.int16), want)
    back = g.float()
    assert back.dtype is gg.float32
    np.testing.assert_array_equal(back.numpy(), t_bf16(a).float().numpy())


def test_creation_and_dtype_rules():
    z = gg.zeros(2, 3, dtype=gg.bfloat16)
    assert z.dtype is gg.bfloat16 and z.array.dtype == BF16
    assert gg.tensor(np.ones(3, dtype=BF16)).dtype is gg.bfloat16
    x = gg.randn(4, dtype=gg.bfloat16, requires_grad=True)
    assert x.requires_grad
    assert (x + gg.ones(4, dtype=gg.float16)).dtype is gg.float32  # as torch promotes
    assert (x * 2.5).dtype is gg.bfloat16
    assert (x + gg.ones(4)).dtype is gg.float32


@pytest.mark.parametrize("name", ["add", "mul", "div", "exp", "tanh", "sigmoid", "sum",
                                  "mean", "softmax", "matmul", "relu", "einsum", "cumsum",
                                  "sort"])
def test_ops_forward_backward_match_torch(name):
    a = RNG.standard_normal((4, 8)).astype(np.float32)
    b = RNG.standard_normal((8, 4) if name == "matmul" else (4, 8)).astype(np.float32)

    def run(lib, x, y):
        if name in ("add", "mul", "div"):
            return {"add": x + y, "mul": x * y, "div": x / (y.abs() + 1)}[name]
        if name == "matmul":
            return x @ y
        if name == "einsum":
            return lib.einsum("ij,kj->ik", x, y)
        if name == "cumsum":
            return x.cumsum(1)
        if name == "sort":
            return x.sort(1).values
        if name in ("sum", "mean"):
            return getattr(x, name)(1)
        if name == "softmax":
            return lib.nn.functional.softmax(x, -1)
        return getattr(lib, name)(x)

    gx = gg.tensor(a).to(gg.bfloat16).requires_grad_()
    gy = gg.tensor(b).to(gg.bfloat16).requires_grad_()
    tx, ty = t_bf16(a).requires_grad_(), t_bf16(b).requires_grad_()
    go, to = run(gg, gx, gy), run(torch, tx, ty)
    assert go.dtype is gg.bfloat16
    np.testing.assert_allclose(as_f32(go), as_f32(to), rtol=2e-2, atol=2e-2)
    cot = RNG.standard_normal(tuple(to.shape)).astype(np.float32)
    go.backward(gg.tensor(cot).to(gg.bfloat16))
    to.backward(t_bf16(cot))
    assert gx.grad.dtype is gg.bfloat16
    np.testing.assert_allclose(as_f32(gx.grad), as_f32(tx.grad), rtol=3e-2, atol=3e-2)
    if ty.grad is not None:
        np.testing.assert_allclose(as_f32(gy.grad), as_f32(ty.grad), rtol=3e-2, atol=3e-2)


def test_autocast_bfloat16_on_cpu_matches_torch(cpu_default_device):  # autocast("cpu")
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    gm = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    gm.load_state_dict({k: gg.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = RNG.standard_normal((5, 6)).astype(np.float32)
    y = np.array([0, 1, 2, 1, 0])
    with gg.autocast("cpu", dtype=gg.bfloat16):
        out = gm(gg.tensor(x))
        loss = F.cross_entropy(out, gg.tensor(y))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tout = tm(torch.from_numpy(x))
        tloss = torch.nn.functional.cross_entropy(tout, torch.from_numpy(y))
    assert out.dtype is gg.bfloat16 and tout.dtype == torch.bfloat16
    assert loss.dtype is gg.float32 and tloss.dtype == torch.float32
    np.testing.assert_allclose(as_f32(out), as_f32(tout), rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-2)
    loss.backward()
    tloss.backward()
    for (name, p), tp in zip(gm.named_parameters(), tm.parameters()):
        assert p.grad.dtype is gg.float32, name  # float32 master weights, float32 grads
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=5e-2, atol=5e-3,
                                   err_msg=name)


def test_autocast_default_on_cpu_is_unchanged_and_bad_dtype_raises(cpu_default_device):
    a = gg.randn(2, 3)
    with gg.autocast("cpu"):
        assert (a @ a.mT).dtype is gg.float16
    with pytest.raises(TypeError, match="float16 or gg.bfloat16"):
        gg.autocast("cpu", dtype=gg.float32)


def test_without_ml_dtypes_gpugrad_imports_and_bf16_raises_clearly():
    code = (
        "import sys; sys.modules['ml_dtypes'] = None\n"
        "import gpugrad as gg\n"
        "x = gg.ones(2)\n"
        "for f in (lambda: x.to(gg.bfloat16), lambda: gg.zeros(2, dtype=gg.bfloat16),\n"
        "          lambda: gg.autocast('cpu', dtype=gg.bfloat16)):\n"
        "    try:\n"
        "        f()\n"
        "    except TypeError as e:\n"
        "        assert 'ml_dtypes' in str(e) and 'bfloat16' in str(e), e\n"
        "    else:\n"
        "        raise SystemExit('no error')\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# --- the kernels' NumPy reference paths with bfloat16 arrays ---------------------------------
def bf16(*shape, scale=1.0):
    return (RNG.standard_normal(shape).astype(np.float32) * scale).astype(BF16)


def rounded(a32):
    """What a bfloat16 kernel must return: the float32 result rounded once."""
    return np.asarray(a32, np.float32).astype(BF16).astype(np.float32)


def test_row_references_bf16():
    x = bf16(5, 7, scale=3.0)
    x32 = x.astype(np.float32)
    for fn, tfn in ((cpu_backend.softmax, torch.softmax),
                    (cpu_backend.log_softmax, torch.log_softmax)):
        out = fn(x)
        assert out.dtype == BF16
        want = tfn(torch.from_numpy(x32).to(torch.bfloat16), -1).float().numpy()
        np.testing.assert_allclose(out.astype(np.float32), want, rtol=1e-2, atol=1e-2)
        np.testing.assert_array_equal(out.astype(np.float32), rounded(tfn(
            torch.from_numpy(x32), -1).numpy()))
    w, b = bf16(7), bf16(7)
    y, mean, rstd = cpu_backend.layer_norm_forward(x, w, b, 1e-5)
    assert y.dtype == BF16 and mean.dtype == np.float32
    want = torch.nn.functional.layer_norm(torch.from_numpy(x32), (7,),
                                          torch.from_numpy(w.astype(np.float32)),
                                          torch.from_numpy(b.astype(np.float32)), 1e-5)
    np.testing.assert_allclose(y.astype(np.float32), rounded(want.numpy()), atol=1e-2)


@pytest.mark.parametrize("kind", ["relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu",
                                  "leaky_relu", "softplus", "elu"])
def test_activation_rows_bf16(kind, cpu_default_device):  # the NumPy rendering
    """The pointwise table's NumPy rendering on real bfloat16 arrays: results stay bfloat16
    and equal PyTorch's float32 results rounded to bfloat16, forward and backward."""
    x = bf16(64, scale=3.0)
    x32 = torch.from_numpy(x.astype(np.float32))
    TF = torch.nn.functional
    ref = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "gelu": TF.gelu,
           "gelu_tanh": lambda t: TF.gelu(t, approximate="tanh"), "silu": TF.silu,
           "leaky_relu": TF.leaky_relu, "softplus": TF.softplus, "elu": TF.elu}[kind]
    ours = (lambda t: F.gelu(t, approximate="tanh")) if kind == "gelu_tanh" else \
        getattr(F, kind)
    t = gg.tensor(x, requires_grad=True)
    y = ours(t)
    assert y.dtype == gg.bfloat16
    np.testing.assert_allclose(y.detach().array.astype(np.float32), rounded(ref(x32).numpy()),
                               rtol=8e-3, atol=1e-6)
    g = bf16(64)
    y.backward(gg.tensor(g))
    assert t.grad.dtype == gg.bfloat16
    tt = x32.clone().requires_grad_()
    ref(tt).backward(torch.from_numpy(g.astype(np.float32)))
    np.testing.assert_allclose(t.grad.array.astype(np.float32), tt.grad.numpy(), rtol=3e-2,
                               atol=2e-2)


def test_cross_entropy_reference_bf16():
    logits = bf16(6, 5, scale=2.0)
    target = np.array([0, 4, 2, -100, 1, 3])
    loss, lse = cpu_backend.softmax_cross_entropy(logits, target, -100, "mean")
    want = torch.nn.functional.cross_entropy(torch.from_numpy(logits.astype(np.float32)),
                                             torch.from_numpy(target))
    np.testing.assert_allclose(float(loss.astype(np.float32)), want.item(), rtol=1e-2)


def test_adam_reference_updates_bf16_params():
    p = bf16(10)
    g = bf16(10)
    p0 = p.astype(np.float32).copy()
    m, v = np.zeros(10, BF16), np.zeros(10, BF16)
    cpu_backend.adam_update([p], [g], [m], [v], [None], [1], lr=0.1, beta1=0.9, beta2=0.999,
                            eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
                            decoupled_weight_decay=False)
    assert p.dtype == BF16
    step = p0 - 0.1 * np.sign(g.astype(np.float32))  # the first Adam step is lr·sign(g)
    np.testing.assert_allclose(p.astype(np.float32), step, atol=2e-2)


def test_save_load_bf16_roundtrip(tmp_path):
    t = gg.randn(3, 4).to(gg.bfloat16)
    gg.save({"w": t}, tmp_path / "w.safetensors")
    back = gg.load(tmp_path / "w.safetensors")["w"]
    assert back.dtype is gg.bfloat16
    np.testing.assert_array_equal(back.numpy().view(np.int16), t.numpy().view(np.int16))


def test_autocast_bfloat16_conv_on_cpu(cpu_default_device):  # autocast("cpu")
    x = RNG.standard_normal((2, 3, 8, 8)).astype(np.float32)
    conv = nn.Conv2d(3, 4, 3)
    ref = conv(gg.tensor(x))
    with gg.autocast("cpu", dtype=gg.bfloat16):
        y = conv(gg.tensor(x))
    assert y.dtype is gg.bfloat16
    np.testing.assert_allclose(as_f32(y), ref.detach().numpy(), rtol=3e-2, atol=3e-2)
    y.float().sum().backward()
    assert conv.weight.grad.dtype is gg.float32
