"""One oracle for every op test: run the same computation in gpugrad and in PyTorch (CPU)
on the same inputs and compare forward values and gradients.

    check(lambda x, y: x * y, [rand(3, 1), rand(4)])

`fn` receives gpugrad tensors in one run and torch tensors in the other, so it must use
only names both libraries share (operators and methods); pass `torch_fn` when they differ.
Inputs are NumPy arrays; float inputs require grad. The upstream gradient is random.
"""

from __future__ import annotations

import numpy as np
import torch

import gpugrad as gg

RNG = np.random.default_rng(1234)


def rand(*shape, dtype=np.float64, low=-2.0, high=2.0) -> np.ndarray:
    """Uniform random array (float64 by default, so comparisons are tight)."""
    return RNG.uniform(low, high, size=shape).astype(dtype)


def positive(*shape, dtype=np.float64) -> np.ndarray:
    return rand(*shape, dtype=dtype, low=0.5, high=2.0)


def noncontig(a: np.ndarray) -> np.ndarray:
    """A transposed, non-contiguous view with the same shape as `a`'s transpose."""
    return np.asfortranarray(a).T if a.ndim >= 2 else a[::1]


def _to_list(out):
    if isinstance(out, (tuple, list)):
        return list(out)
    return [out]


def check(fn, inputs, torch_fn=None, atol=1e-6, rtol=1e-5, grad=True, non_contiguous=False):
    """Compare `fn` in gpugrad against PyTorch on `inputs` (NumPy arrays or scalars)."""
    torch_fn = torch_fn or fn
    gg_in, th_in = [], []
    for a in inputs:
        if isinstance(a, np.ndarray):
            diff = grad and a.dtype.kind == "f"
            g_arr = a
            if non_contiguous and a.ndim >= 2:
                g_arr = np.asfortranarray(a)
            g = gg.from_numpy(g_arr.copy() if not non_contiguous else g_arr)
            g = g.to(gg.default_device())  # GPUGRAD_DEVICE=cuda runs the oracles on the GPU
            if diff:
                g.requires_grad_(True)
            t = torch.from_numpy(a.copy()).requires_grad_(diff)
            gg_in.append(g)
            th_in.append(t)
        else:
            gg_in.append(a)
            th_in.append(a)
    gg_out = _to_list(fn(*gg_in))
    th_out = _to_list(torch_fn(*th_in))
    assert len(gg_out) == len(th_out)
    for g, t in zip(gg_out, th_out):
        assert tuple(g.shape) == tuple(t.shape), f"shape {g.shape} != torch {tuple(t.shape)}"
        assert str(g.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], \
            f"dtype {g.dtype} != torch {t.dtype}"
        np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), atol=atol, rtol=rtol,
                                   equal_nan=True)
    if not grad:
        return
    outs = [(g, t) for g, t in zip(gg_out, th_out) if t.requires_grad]
    if not outs:
        return
    cots = [rand(*t.shape, dtype=t.detach().numpy().dtype) for _, t in outs]
    g_leaves = [x for x in gg_in if isinstance(x, gg.Tensor) and x.requires_grad]
    t_leaves = [x for x in th_in if isinstance(x, torch.Tensor) and x.requires_grad]
    g_grads = gg.autograd.grad([g for g, _ in outs], g_leaves,
                               [gg.from_numpy(c.copy()).to(g.device)
                                for c, (g, _) in zip(cots, outs)], allow_unused=True)
    t_grads = torch.autograd.grad([t for _, t in outs], t_leaves,
                                  [torch.from_numpy(c.copy()) for c in cots], allow_unused=True)
    for k, (gg_g, th_g) in enumerate(zip(g_grads, t_grads)):
        if th_g is None:
            assert gg_g is None or np.all(gg_g.numpy() == 0), f"input {k}: torch has no grad"
            continue
        assert gg_g is not None, f"input {k}: gpugrad returned no gradient"
        assert tuple(gg_g.shape) == tuple(th_g.shape)
        np.testing.assert_allclose(gg_g.numpy(), th_g.numpy(), atol=atol, rtol=rtol,
                                   err_msg=f"gradient of input {k}", equal_nan=True)


def gradcheck(fn, *arrays, **kw):
    """float64 finite-difference check of `fn` at the given NumPy arrays."""
    ins = [gg.tensor(a, dtype=gg.float64, requires_grad=True) if isinstance(a, np.ndarray)
           and a.dtype.kind == "f" else (gg.tensor(a) if isinstance(a, np.ndarray) else a)
           for a in arrays]
    assert gg.autograd.gradcheck(fn, ins, **kw)


# --- modules ------------------------------------------------------------------------------
def second_order(fn):
    """x ↦ ∂(Σ w·fn(x))/∂x with create_graph, so gradcheck checks fn's second derivative."""
    def run(x):
        with gg.enable_grad():  # gradcheck's finite differences run without grad
            x = x if x.requires_grad else x.detach().requires_grad_()
            y = fn(x)
            w = gg.tensor(np.linspace(0.5, 1.5, y.numel()).reshape(y.shape))
            (g,) = gg.autograd.grad((y * w).sum(), x, create_graph=True)
        return g
    return run


def copy_weights(ours, theirs) -> None:
    """Copy every torch parameter and buffer into the gpugrad twin (same names)."""
    sd = {k: gg.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()}
    ours.load_state_dict(sd)


def check_module(ours, theirs, *inputs, atol=1e-5, rtol=1e-4, grad_inputs=True):
    """Run both modules on the same inputs, backprop the same random cotangent, compare."""
    g_in = [gg.tensor(a, requires_grad=grad_inputs and a.dtype.kind == "f") for a in inputs]
    t_in = [torch.tensor(a, requires_grad=grad_inputs and a.dtype.kind == "f") for a in inputs]
    g_out, t_out = ours(*g_in), theirs(*t_in)
    assert tuple(g_out.shape) == tuple(t_out.shape)
    np.testing.assert_allclose(g_out.detach().numpy(), t_out.detach().numpy(), atol=atol,
                               rtol=rtol)
    cot = rand(*t_out.shape, dtype=t_out.detach().numpy().dtype)
    g_out.backward(gg.tensor(cot))
    t_out.backward(torch.tensor(cot))
    for g, t in zip(g_in, t_in):
        if t.requires_grad:
            np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), atol=atol, rtol=rtol)
    t_params = dict(theirs.named_parameters())
    g_params = dict(ours.named_parameters())
    assert list(g_params) == list(t_params)
    for name, p in g_params.items():
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), atol=atol,
                                   rtol=rtol, err_msg=name)


# --- complex ------------------------------------------------------------------------------
def crand(*shape, dtype=np.complex128, low=-2.0, high=2.0) -> np.ndarray:
    """Uniform random complex array (real and imaginary parts each in [low, high))."""
    return np.asarray(rand(*shape, low=low, high=high) + 1j * rand(*shape, low=low, high=high),
                      dtype=dtype)


def _np(t: torch.Tensor) -> np.ndarray:
    """A torch tensor's values as NumPy (resolving torch's lazy conjugation)."""
    return t.detach().resolve_conj().numpy()


def check_complex(fn, inputs, torch_fn=None, atol=1e-6, rtol=1e-5, device="cpu"):
    """`check` for complex computations: float and complex array inputs require grad,
    complex outputs get a random complex cotangent, and the gradients (the conjugate
    Wirtinger derivative, PyTorch's convention) must equal torch's, dtype included."""
    torch_fn = torch_fn or fn
    gg_in, th_in = [], []
    for a in inputs:
        if isinstance(a, np.ndarray):
            diff = a.dtype.kind in "fc"
            gg_in.append(gg.tensor(a, device=device, requires_grad=diff))
            th_in.append(torch.from_numpy(a.copy()).requires_grad_(diff))
        else:
            gg_in.append(a)
            th_in.append(a)
    gg_out, th_out = _to_list(fn(*gg_in)), _to_list(torch_fn(*th_in))
    assert len(gg_out) == len(th_out)
    for g, t in zip(gg_out, th_out):
        assert tuple(g.shape) == tuple(t.shape), f"shape {g.shape} != torch {tuple(t.shape)}"
        assert str(g.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], \
            f"dtype {g.dtype} != torch {t.dtype}"
        np.testing.assert_allclose(g.detach().cpu().numpy(), _np(t), atol=atol, rtol=rtol,
                                   equal_nan=True)
    outs = [(g, t) for g, t in zip(gg_out, th_out) if t.requires_grad]
    if not outs:
        return
    cots = [(crand if t.is_complex() else rand)(*t.shape, dtype=_np(t).dtype) for _, t in outs]
    g_leaves = [x for x in gg_in if isinstance(x, gg.Tensor) and x.requires_grad]
    t_leaves = [x for x in th_in if isinstance(x, torch.Tensor) and x.requires_grad]
    g_grads = gg.autograd.grad([g for g, _ in outs], g_leaves,
                               [gg.tensor(c, device=device) for c in cots], allow_unused=True)
    t_grads = torch.autograd.grad([t for _, t in outs], t_leaves,
                                  [torch.from_numpy(c.copy()) for c in cots], allow_unused=True)
    for k, (gg_g, th_g) in enumerate(zip(g_grads, t_grads)):
        if th_g is None:
            assert gg_g is None or np.all(gg_g.cpu().numpy() == 0), f"input {k}: torch has none"
            continue
        assert gg_g is not None, f"input {k}: gpugrad returned no gradient"
        assert tuple(gg_g.shape) == tuple(th_g.shape)
        assert str(gg_g.dtype).split(".")[-1] == str(th_g.dtype).split(".")[-1], \
            f"gradient {k}: dtype {gg_g.dtype} != torch {th_g.dtype}"
        np.testing.assert_allclose(gg_g.cpu().numpy(), _np(th_g), atol=atol, rtol=rtol,
                                   err_msg=f"gradient of input {k}", equal_nan=True)


def gradcheck_complex(fn, *arrays, **kw):
    """Finite-difference check of `fn` at NumPy arrays: complex ones as complex128 and float
    ones as float64, all requiring grad (the complex path of gg.autograd.gradcheck)."""
    ins = []
    for a in arrays:
        if isinstance(a, np.ndarray) and a.dtype.kind in "fc":
            dt = gg.complex128 if a.dtype.kind == "c" else gg.float64
            ins.append(gg.tensor(a, dtype=dt, requires_grad=True))
        else:
            ins.append(gg.tensor(a) if isinstance(a, np.ndarray) else a)
    assert gg.autograd.gradcheck(fn, ins, **kw)
