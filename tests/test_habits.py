"""What PyTorch training scripts rely on around the ops (issue 19): subpackages after a plain
import, scalars given as 0-d tensors, format(), optimizer state, memory formats, the
backends switches, compile, the CUDA aliases, dtypes and NumPy's floating-point warnings."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import gpugrad as gg
import gpugrad.nn as nn


def _run(code: str) -> str:
    """Run `code` in a fresh interpreter (nothing imported yet) and return its stdout."""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout


# --- subpackages ---------------------------------------------------------------------------
PUBLIC = ["utils", "utils.data", "nn", "nn.init", "nn.utils", "nn.functional", "optim",
          "optim.lr_scheduler", "amp", "distributed", "func", "autograd", "cuda", "cuda.amp",
          "backends", "backends.cuda", "backends.cudnn", "backends.mps", "distributions"]


def test_every_public_subpackage_is_an_attribute_after_a_plain_import():
    """`import gpugrad as torch; torch.utils.data.DataLoader` works without importing the
    subpackage first, for the listed ones and for every public top-level module on disk."""
    out = _run(f"""
import pkgutil
import gpugrad
missing = []
for name in {PUBLIC!r}:
    obj = gpugrad
    for part in name.split("."):
        if not hasattr(obj, part):
            missing.append(name)
            break
        obj = getattr(obj, part)
for m in pkgutil.iter_modules(gpugrad.__path__):  # the command-line entry points aside
    if not m.name.startswith("_") and m.name not in ("examples", "train") and \\
            not hasattr(gpugrad, m.name):
        missing.append(m.name)
print(missing)
""")
    assert out.strip() == "[]"


def test_cuda_amp_imports_as_a_module():
    from gpugrad.cuda.amp import GradScaler, autocast

    assert issubclass(autocast, gg.autocast) and issubclass(GradScaler, gg.amp.GradScaler)
    assert gg.cuda.amp.autocast is autocast


# --- 0-d tensors where PyTorch takes a number -------------------------------------------
def test_zero_d_tensors_are_accepted_as_keyword_scalars():
    """LBFGS writes p.add_(d, alpha=t) with t a 0-d tensor; PyTorch reads it as a number."""
    x, y = np.random.rand(3, 4), np.random.rand(4)
    for alpha in (gg.tensor(0.5), gg.tensor([0.5]), gg.tensor(0.5, dtype=gg.float64),
                  gg.tensor(0.5, requires_grad=True)):
        np.testing.assert_allclose(gg.add(gg.tensor(x), gg.tensor(y), alpha=alpha).numpy(),
                                   x + 0.5 * y, rtol=1e-6)
        np.testing.assert_allclose(gg.sub(gg.tensor(x), gg.tensor(y), alpha=alpha).numpy(),
                                   x - 0.5 * y, rtol=1e-6)
        np.testing.assert_allclose(gg.tensor(x).add_(gg.tensor(y), alpha=alpha).numpy(),
                                   x + 0.5 * y, rtol=1e-6)
    t = gg.tensor(x, requires_grad=True)
    gg.add(t, t, alpha=gg.tensor(3.0)).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), np.full((3, 4), 4.0))
    v = gg.tensor(2.0)
    checks = {
        "mul": (gg.tensor(x) * v, x * 2), "pow": (gg.tensor(x) ** v, x ** 2),
        "rpow": (v ** gg.tensor(x), 2 ** x), "clamp": (gg.tensor(x).clamp(max=v * 0.25),
                                                      np.minimum(x, 0.5)),
        "fill_": (gg.zeros(2).fill_(v), np.full(2, 2.0)),
        "full": (gg.full((2,), v), np.full(2, 2.0)),
        "addcmul_": (gg.tensor(x).addcmul_(gg.tensor(x), gg.tensor(x), value=v), x + 2 * x * x),
        "lerp_": (gg.tensor(x).lerp_(gg.tensor(y), v * 0.25), x + 0.5 * (y - x)),
    }
    for name, (ours, expected) in checks.items():
        np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-6, err_msg=name)


def test_integer_zero_d_tensors_are_accepted_as_sizes_and_dims():
    """Sizes and dims read through __index__, as PyTorch's int arguments."""
    for lib in (gg, torch):
        two = lib.tensor(2)
        x = lib.ones(4, 6)
        shapes = [x.reshape(two, -1).shape, x.sum(dim=two - 1).shape, x.mean(two - 1).shape,
                  lib.zeros(two, two).shape, x[:two].shape, x.unsqueeze(two).shape,
                  lib.arange(two).shape, lib.ones(1).expand(two).shape]
        counts = [len(lib.ones(4).split(two)), len(lib.ones(4).chunk(two))]
        if lib is gg:
            ours = ([tuple(s) for s in shapes], counts)
        else:
            assert ours == ([tuple(s) for s in shapes], counts)


def test_a_tensor_with_several_elements_as_alpha_names_the_op_and_shape():
    with pytest.raises(TypeError, match=r"add: alpha must be a number or a one-element "
                                        r"tensor, got a tensor of shape \(2,\)"):
        gg.add(gg.ones(2), gg.ones(2), alpha=gg.ones(2))


# --- format ---------------------------------------------------------------------------
def test_format_of_tensors_as_pytorch():
    for value, spec in ((0.123456, ".4f"), (3.0, "8.2e"), (7, "d"), (7, ">5"), (True, "")):
        assert format(gg.tensor(value), spec) == format(torch.tensor(value), spec)
    loss = gg.tensor(1.5)
    assert f"loss {loss:.4f}" == "loss 1.5000"
    assert format(gg.ones(2), "") == str(gg.ones(2))
    with pytest.raises(TypeError, match="unsupported format string"):
        format(gg.ones(2), ".4f")
    with pytest.raises(TypeError):
        format(torch.ones(2), ".4f")


# --- optimizer state --------------------------------------------------------------------
class _SignSGD(gg.optim.Optimizer):
    """A PyTorch-style custom optimizer: self.state[p] is created on first use."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, dict(lr=lr))

    def step(self, closure=None):
        with gg.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    state = self.state[p]
                    if "n" not in state:
                        state["n"] = 0
                        state["avg"] = gg.zeros_like(p)
                    state["n"] += 1
                    state["avg"].mul_(0.5).add_(p.grad, alpha=0.5)
                    p.sub_(state["avg"].sign(), alpha=group["lr"])


def test_optimizer_state_is_a_defaultdict_and_round_trips():
    w = nn.Parameter(gg.tensor([1.0, -2.0, 3.0]))
    opt = _SignSGD([w])
    assert opt.state[w] == {} and isinstance(opt.state, type(torch.optim.SGD(
        [torch.zeros(1, requires_grad=True)], lr=0.1).state))
    for _ in range(2):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    np.testing.assert_allclose(w.detach().numpy(), [0.8, -1.8, 2.8], rtol=1e-6)
    sd = opt.state_dict()
    assert sd["state"][0]["n"] == 2
    w2 = nn.Parameter(w.detach().clone())
    opt2 = _SignSGD([w2])
    opt2.load_state_dict(sd)
    assert opt2.state[w2]["n"] == 2 and opt2.state.default_factory is dict
    np.testing.assert_array_equal(opt2.state[w2]["avg"].numpy(), opt.state[w]["avg"].numpy())
    adam = gg.optim.Adam([w], lr=0.1)
    (w * w).sum().backward()
    adam.step()
    adam.load_state_dict(adam.state_dict())
    assert adam.state.default_factory is dict and set(adam.state[w]) >= {"exp_avg", "step"}


def test_error_messages_about_tensors_do_not_print_their_data():
    """The message names the tensor by position, shape and dtype, never by its values."""
    big = nn.Parameter(gg.full((40, 40), 0.123456))
    errors = []
    opt = gg.optim.Adam([big], lr=0.1)
    (big * big).sum().backward()
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["exp_avg"] = gg.zeros(3)
    for bad in (lambda: opt.load_state_dict(sd),
                lambda: nn.Linear(40, 40).load_state_dict({"weight": big, "bias": gg.zeros(3)}),
                lambda: big.detach().add_(gg.zeros(40, 40, dtype=gg.float64)),
                lambda: gg.zeros(3).copy_(big)):
        with pytest.raises(Exception) as info:
            bad()
        errors.append(str(info.value))
    for msg in errors:
        assert "0.1234" not in msg and "tensor(" not in msg, msg


# --- tensor attributes and memory formats -------------------------------------------------
def test_tensor_attributes_as_pytorch():
    for dtype in ("float32", "float64", "int64", "bool", "float16", "int8"):
        ours = gg.zeros(2, 3, dtype=getattr(gg, dtype if dtype != "bool" else "bool"))
        theirs = torch.zeros(2, 3, dtype=getattr(torch, dtype))
        assert ours.is_sparse is theirs.is_sparse is False
        assert ours.is_floating_point() == theirs.is_floating_point()
        assert ours.element_size() == theirs.element_size() == ours.itemsize
        assert ours.nbytes == theirs.nbytes


def test_memory_format_arguments_as_pytorch():
    x4 = gg.randn(2, 3, 4, 5)
    for fmt in (gg.contiguous_format, gg.preserve_format, gg.channels_last):
        np.testing.assert_array_equal(x4.clone(memory_format=fmt).numpy(), x4.numpy())
        np.testing.assert_array_equal(x4.contiguous(memory_format=fmt).numpy(), x4.numpy())
        np.testing.assert_array_equal(x4.to(memory_format=fmt).numpy(), x4.numpy())
    x3 = gg.randn(2, 3, 4)
    with pytest.raises(RuntimeError, match="clone: required rank 4 tensor to use "
                                           r"channels_last format, got a tensor of shape"):
        x3.clone(memory_format=gg.channels_last)
    with pytest.raises(RuntimeError, match="rank 4"):
        torch.randn(2, 3, 4).clone(memory_format=torch.channels_last)
    with pytest.raises(TypeError, match="memory_format"):
        x4.contiguous(memory_format="channels_last")
    nhwc = gg.from_numpy(np.zeros((2, 4, 5, 3), np.float32)).permute(0, 3, 1, 2)
    t_nhwc = torch.zeros(2, 4, 5, 3).permute(0, 3, 1, 2)
    for fmt, tfmt in ((gg.channels_last, torch.channels_last),
                      (gg.contiguous_format, torch.contiguous_format)):
        assert nhwc.is_contiguous(memory_format=fmt) == t_nhwc.is_contiguous(memory_format=tfmt)
        assert x4.is_contiguous(memory_format=fmt) == \
            torch.zeros(2, 3, 4, 5).is_contiguous(memory_format=tfmt)
    model = nn.Conv2d(3, 4, 3).to(memory_format=gg.channels_last)
    assert model(x4[:, :, :, :]).shape == (2, 4, 2, 3)


# --- backends, compile, cuda ---------------------------------------------------------------
def test_backends_switches_are_accepted_and_tf32_is_one_switch():
    import gpugrad.backends.cudnn as cudnn

    before = gg.backends.cuda.matmul.allow_tf32
    try:
        assert before is False and gg.get_float32_matmul_precision() == "highest"
        gg.backends.cuda.matmul.allow_tf32 = True
        assert gg.get_float32_matmul_precision() == "high"
        gg.set_float32_matmul_precision("highest")
        assert gg.backends.cuda.matmul.allow_tf32 is False
        gg.set_float32_matmul_precision("medium")
        assert gg.backends.cuda.matmul.allow_tf32 is True
        with pytest.raises(ValueError, match="'highest', 'high', 'medium'.*'fast'"):
            gg.set_float32_matmul_precision("fast")
    finally:
        gg.backends.cuda.matmul.allow_tf32 = before
    cudnn.benchmark = True
    cudnn.deterministic = True
    gg.backends.cudnn.allow_tf32 = False
    assert gg.backends.cudnn.benchmark and cudnn.allow_tf32 is False
    cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32 = False, False, True
    assert gg.backends.mps.is_available() is False
    x = gg.randn(8, 8)
    np.testing.assert_array_equal((x @ x).numpy(), x.numpy() @ x.numpy())  # CPU: unchanged


def test_compile_returns_an_eager_callable_with_pytorchs_signature():
    model = nn.Linear(3, 2)
    assert gg.compile(model) is model
    assert gg.compile(model, mode="max-autotune", fullgraph=True, dynamic=False) is model

    @gg.compile
    def f(x):
        return x * 2

    @gg.compile(backend="eager")
    def g(x):
        return x + 1

    x = gg.ones(2)
    np.testing.assert_array_equal(f(x).numpy(), [2, 2])
    np.testing.assert_array_equal(g(x).numpy(), [2, 2])
    with pytest.raises(RuntimeError, match="mode or options"):
        gg.compile(model, mode="default", options={})
    with pytest.raises(RuntimeError, match="unrecognized mode"):
        gg.compile(model, mode="fastest")
    with pytest.raises(TypeError, match="unexpected keyword"):
        gg.compile(model, nonsense=1)


def test_cuda_seed_and_amp_aliases_without_a_gpu():
    gg.cuda.manual_seed(3)
    gg.cuda.manual_seed_all(3)
    if gg.cuda.is_available():
        pytest.skip("the no-GPU behaviour")
    with pytest.warns(UserWarning, match="CUDA is not available"):
        ctx = gg.cuda.amp.autocast()
    with ctx:
        assert not gg.amp.is_autocast_enabled("cuda")
    with pytest.warns(UserWarning, match="CUDA is not available"):
        scaler = gg.cuda.amp.GradScaler(2.0 ** 10)  # init_scale first, as torch.cuda.amp
    assert not scaler.is_enabled()


@pytest.mark.gpu
def test_allow_tf32_switches_cublas_to_tf32_and_back():
    from cupy._core import _routines_linalg as linalg

    a = gg.randn(512, 512, device="cuda")
    exact = a.double() @ a.double()
    try:
        gg.backends.cuda.matmul.allow_tf32 = True
        assert linalg.get_compute_type(np.float32) == 7  # COMPUTE_TYPE_TF32
        err_tf32 = ((a @ a).double() - exact).abs().max().item()
        gg.backends.cuda.matmul.allow_tf32 = False
        assert linalg.get_compute_type(np.float32) == 1  # COMPUTE_TYPE_DEFAULT
        err_fp32 = ((a @ a).double() - exact).abs().max().item()
    finally:
        gg.backends.cuda.matmul.allow_tf32 = False
    assert err_tf32 > 10 * err_fp32  # TF32 keeps 10 mantissa bits, float32 23


# --- dtypes ---------------------------------------------------------------------------------
NUMPY_DTYPES = [np.float64, np.float32, np.float16, np.complex64, np.complex128, np.int64,
                np.int32, np.int16, np.int8, np.uint64, np.uint32, np.uint16, np.uint8, np.bool_]


@pytest.mark.parametrize("dtype", NUMPY_DTYPES, ids=lambda d: np.dtype(d).name)
def test_from_numpy_accepts_every_dtype_pytorch_does(dtype):
    a = np.arange(6).reshape(2, 3).astype(dtype)
    ours, theirs = gg.from_numpy(a), torch.from_numpy(a)
    assert str(ours.dtype).split(".")[1] == str(theirs.dtype).split(".")[1]
    assert ours.array is a or np.shares_memory(ours.array, a)
    np.testing.assert_array_equal(ours.numpy(), a)


def test_from_numpy_rejects_what_pytorch_rejects_and_wide_unsigned_do_not_promote():
    with pytest.raises(TypeError, match="unsupported array dtype"):
        gg.from_numpy(np.zeros(2, np.longdouble))
    u = gg.from_numpy(np.array([1, 2], np.uint16))
    with pytest.raises(TypeError, match="promotion of gpugrad.uint16 with gpugrad.int64"):
        u + gg.tensor([1, 2])
    np.testing.assert_array_equal((u + u).numpy(), [2, 4])
    np.testing.assert_allclose((u.float() * 0.5).numpy(), [0.5, 1.0])
    assert gg.uint32 is gg.from_numpy(np.zeros(1, np.uint32)).dtype


# --- NumPy floating-point warnings ------------------------------------------------------
def test_ieee_results_are_silent_as_in_pytorch_but_user_numpy_still_warns():
    """log(0), x/0, exp overflow, 0/0, sqrt(-1), forward and backward: no warning from
    gpugrad (PyTorch is silent); the same NumPy call in user code still warns."""
    out = _run("""
import warnings
import numpy as np
import gpugrad as gg
with warnings.catch_warnings(record=True) as ours:
    z = gg.tensor([0.0, 1.0, -1.0], requires_grad=True)
    ys = [gg.log(z), z / 0, gg.exp(z * 1000), gg.sqrt(z), gg.tensor([1e30]) ** 2]
    sum(y.sum() for y in ys[:4]).backward()
    big = gg.log(gg.zeros(1100, 1000))  # the threaded CPU path
    vals = [y.detach().numpy().tolist() for y in ys] + [float(big[0, 0])]
with warnings.catch_warnings(record=True) as user:
    np.log(np.zeros(1))
print(len(ours), len(user), vals[0][0], vals[1][0], vals[2][1], vals[-1])
""")
    n_ours, n_user, log0, div00, exp_over, big = out.split()
    assert (n_ours, n_user) == ("0", "1")
    assert (log0, div00, exp_over, big) == ("-inf", "nan", "inf", "-inf")


def test_numpy_errstate_raise_still_raises_inside_gpugrad():
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        gg.log(gg.zeros(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert gg.log(gg.zeros(1)).item() == -np.inf
