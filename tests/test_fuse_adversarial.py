"""gg.fuse used as a PyTorch user would write the code: in-place writes while deferred ops
read the written tensor, outputs of one program that differ in requires_grad, copies and
pickles of deferred values, a training step (optimizer included) under @gg.fuse, and one
`gg.fuse()` object shared by threads. Each case is compared with PyTorch eager or with the
same code unfused."""

from __future__ import annotations

import copy
import pickle
import sys
import threading

import numpy as np
import pytest
import torch

import gpugrad as gg
import gpugrad.nn.functional as F

_fm = sys.modules["gpugrad.fuse"]  # the module (gg.fuse is the decorator)


def _state_is_clean() -> bool:
    return _fm._local.depth == 0 and _fm._open[0] == 0 and _fm._function._fuse_hook is None


# --- in-place writes while deferred ops read the written tensor ----------------------------
WRITES = {
    "add_": lambda t: t.add_(1),
    "mul_": lambda t: t.mul_(0),
    "setitem": lambda t: t.__setitem__(0, 100.0),
    "fill_": lambda t: t.fill_(-1),
    "view": lambda t: t[1:].mul_(5),
    "sigmoid_": lambda t: t.sigmoid_(),
}


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("target", ["deferred", "clone", "leaf"])
def test_in_place_write_after_a_deferred_read_sees_the_old_value(write, target):
    """z is deferred and reads y; writing y in place afterwards must not change z (eagerly z
    was computed before the write): y a deferred value, a plain tensor, a leaf (no_grad)."""
    xn = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    res = []
    for lib in (torch, gg):
        x = lib.tensor(xn, requires_grad=target != "leaf")
        ctx = gg.fuse() if lib is gg else torch.enable_grad()
        with ctx:
            y = x * 2 if target == "deferred" else x.clone() if target == "clone" else x
            z = y * 3
            with lib.no_grad():
                WRITES[write](y)
            w = z + y
        grads = None
        if target != "leaf":
            (grads,) = lib.autograd.grad(z.sum(), [x])
        res.append((z.detach().numpy().copy(), w.detach().numpy().copy(),
                    None if grads is None else grads.numpy().copy()))
    for a, b in zip(*res):
        if a is None:
            assert b is None
        else:
            np.testing.assert_allclose(b, a, rtol=1e-6)
    assert _state_is_clean()


def test_in_place_write_with_grad_after_a_deferred_read_keeps_both_graphs():
    xn = np.array([0.3, -1.2, 2.0])
    out = []
    for lib in (torch, gg):
        x = lib.tensor(xn, requires_grad=True)
        with gg.fuse() if lib is gg else torch.enable_grad():
            y = lib.tanh(x) * 2
            z = y * 3 + 1
            y.mul_(x)  # recorded: y's new graph reads x twice
            s = z + y
        out.append([t.detach().numpy() for t in (z, y, s)]
                   + [lib.autograd.grad(s.sum(), [x])[0].numpy()])
    for a, b in zip(*out):
        np.testing.assert_allclose(b, a, rtol=1e-10)


def test_a_write_the_region_is_not_told_about_is_caught():
    """A write that bypasses the Tensor API (here the version counter bumped directly, as
    a collective does) after a deferred read is caught, not silently read."""
    x = gg.randn(4)
    with pytest.raises(RuntimeError, match=r"gg.fuse: a tensor of shape \(4,\) read by a "
                                           r"deferred exp was modified in place"):
        with gg.fuse():
            y = gg.exp(x) * 2
            x._data[...] = 0
            x._bump_version()
            y.numpy()
    assert _state_is_clean()


@pytest.mark.parametrize("opt", ["SGD", "Adam"])
def test_training_step_under_fuse_with_the_optimizer_inside(opt):
    """out's last bias add stays deferred (the loss reads it through a reduction
    epilogue), and opt.step() then writes the bias: out must hold the value from before
    the step, and the fused steps must equal the unfused ones."""
    x, t = gg.randn(16, 4), gg.randn(16, 1)
    runs = []
    for fused in (False, True):
        gg.manual_seed(0)
        model = gg.nn.Sequential(gg.nn.Linear(4, 8), gg.nn.GELU(), gg.nn.Linear(8, 1))
        optim = getattr(gg.optim, opt)(model.parameters(), lr=0.05)

        def step(x, t, model=model, optim=optim):
            out = model(x)
            loss = F.mse_loss(out, t)
            optim.zero_grad()
            loss.backward()
            optim.step()
            return loss, out

        step = gg.fuse(step) if fused else step
        runs.append([(loss.item(), out.detach().numpy()) for loss, out in
                     (step(x, t) for _ in range(3))])
    for (l0, o0), (l1, o1) in zip(*runs):
        assert l1 == pytest.approx(l0, rel=1e-5)
        np.testing.assert_allclose(o1, o0, rtol=1e-5, atol=1e-6)


# --- outputs of one program -----------------------------------------------------------------
def test_outputs_of_one_program_keep_their_own_requires_grad():
    """a and b run as one two-output program at the region's end; b depends on no tensor
    that requires grad, so it must stay a leaf without a graph, as eagerly."""
    x, c = gg.randn(3, requires_grad=True), gg.randn(3)
    with gg.fuse():
        a = gg.sin(x) * 2
        b = gg.cos(c) * 3
    assert a.requires_grad and a.grad_fn is not None
    assert not b.requires_grad and b.grad_fn is None and b.is_leaf
    np.testing.assert_allclose(b.numpy(), np.cos(c.numpy()) * 3, rtol=1e-6)
    (g,) = gg.autograd.grad(a.sum(), [x])
    np.testing.assert_allclose(g.numpy(), 2 * np.cos(x.detach().numpy()), rtol=1e-6)


# --- copies and pickles ---------------------------------------------------------------------
@pytest.mark.parametrize("how", ["deepcopy", "copy", "pickle"])
def test_copies_and_pickles_of_a_deferred_value_are_plain_tensors(how):
    x = gg.randn(3, 4)
    do = {"deepcopy": copy.deepcopy, "copy": copy.copy,
          "pickle": lambda t: pickle.loads(pickle.dumps(t))}[how]
    with gg.fuse():
        y = gg.sin(x) * 2
        c = do(y)
        assert type(c) is gg.Tensor and type(c._data) is np.ndarray
        assert type(y) is gg.Tensor  # computed for the copy, completed in place
    np.testing.assert_allclose(c.numpy(), np.sin(x.numpy()) * 2, rtol=1e-6)
    if how != "copy":
        assert not np.shares_memory(c.numpy(), y.numpy())


# --- threads --------------------------------------------------------------------------------
def test_one_fuse_object_entered_by_two_threads():
    """A module-level `gg.fuse()` used by two threads at once: each `with` closes its own
    thread's region, so every value is computed when its block ends."""
    region = gg.fuse()
    barrier = threading.Barrier(2)
    errors: list = []

    def work(k: int) -> None:
        try:
            x = gg.randn(8, 8)
            for i in range(20):
                with region:
                    y = gg.sin(x) * k + i
                    barrier.wait(timeout=10)  # both threads inside, entered in either order
                if type(y._data) is not np.ndarray:
                    errors.append(f"thread {k}, step {i}: still deferred after its block")
                np.testing.assert_allclose(y.numpy(), np.sin(x.numpy()) * k + i, rtol=1e-5)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(k,)) for k in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert _state_is_clean()


# --- hooks on intermediates -----------------------------------------------------------------
def test_hooks_on_an_intermediate_registered_before_its_use_see_the_whole_gradient():
    xn = np.array([0.5, -1.0, 2.0])
    seen = {}
    for lib in (torch, gg):
        x = lib.tensor(xn, requires_grad=True)
        with gg.fuse() if lib is gg else torch.enable_grad():
            a = lib.sin(x) * 2
            a.retain_grad()
            grads = []
            a.register_hook(grads.append)
            s = (lib.exp(a) * 3).sum() + (a * a).mean()  # two reductions read a
        s.backward()
        seen[lib.__name__] = (a.grad.numpy(), grads[0].numpy(), x.grad.numpy())
    for ours, theirs in zip(seen["gpugrad"], seen["torch"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10)


@pytest.mark.parametrize("what", ["retain_grad", "register_hook"])
def test_hooks_on_an_intermediate_a_program_already_read_are_refused(what):
    """s's program runs from x, not through a: a hook (or retained grad) on a registered
    now would silently miss s's part of the gradient, so it is refused, naming the fix."""
    x = gg.randn(3, requires_grad=True)
    with gg.fuse():
        a = gg.sin(x) * 2
        s = (gg.exp(a) * 3).sum()  # a reduction epilogue: a read as an intermediate
        call = a.retain_grad if what == "retain_grad" else lambda: a.register_hook(print)
        with pytest.raises(RuntimeError, match=rf"gg.fuse: {what}\(\) on a deferred value "
                                               r"of shape \(3,\) that a fused program has "
                                               r"already read .* call .* before later ops"):
            call()
        assert a.requires_grad and type(a._data) is not np.ndarray  # still deferred
    assert _state_is_clean()
    (g,) = gg.autograd.grad(s, [x])  # the region and the graph are intact after the refusal
    xn = x.detach().numpy()
    np.testing.assert_allclose(g.numpy(), 6 * np.exp(2 * np.sin(xn)) * np.cos(xn), rtol=1e-5)


def test_with_the_class_itself_names_the_fix():
    with pytest.raises(TypeError, match=r"`with gg.fuse\(\):` \(called\)"):
        with gg.fuse:
            pass
    assert _state_is_clean()


def test_a_long_loop_in_one_region_keeps_only_what_is_pending():
    """A training loop inside one `with gg.fuse():` block: the region's record of the
    values it deferred must not grow with the number of steps."""
    x = gg.randn(4, requires_grad=True)
    with gg.fuse():
        for i in range(3000):
            y = gg.sin(x) * 2 + i
            (y * y).sum().backward()
        held = len(_fm._local.regions[-1].made)
    assert held < 600, held
    np.testing.assert_allclose(y.detach().numpy(), np.sin(x.detach().numpy()) * 2 + 2999,
                               rtol=1e-6)


@pytest.mark.parametrize("grad_mode", [True, False])
def test_a_fused_result_ending_in_a_division_may_be_written_in_place(grad_mode):
    """Division's VJP reads its operands, not y, so that y may be written in place after
    it (PyTorch's rule, kept by the table); the fused program must not start saving y."""
    xn, bn = np.array([0.5, -1.0, 2.0]), np.array([2.0, 3.0, -1.5])
    out = []
    for lib in (torch, gg):
        x, b = lib.tensor(xn, requires_grad=True), lib.tensor(bn, requires_grad=True)
        with gg.fuse() if lib is gg else torch.enable_grad():
            y = lib.sin(x) / b
            with lib.set_grad_enabled(grad_mode):
                y.mul_(0.5)
        gs = lib.autograd.grad(y.sum(), [x, b])
        out.append([y.detach().numpy()] + [g.numpy() for g in gs])
    for a, c in zip(*out):
        np.testing.assert_allclose(c, a, rtol=1e-10)


def test_a_fused_result_ending_in_exp_is_saved_as_eagerly():
    """exp saves its output eagerly (PyTorch too): writing it in place is caught."""
    x = gg.randn(3, requires_grad=True)
    with gg.fuse():
        y = gg.exp(x * 2)
        with gg.no_grad():
            y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_a_pending_reader_of_a_written_value_saves_a_copy_not_the_value():
    """m is computed (an in-place op reads its graph first); r = relu(m) and d = c - m are
    deferred; then m is clamped in place under no_grad. Eagerly relu saves its output and
    sub nothing, so backward through r and d works (PyTorch too); the fused programs of r
    and d must not save m itself, which the write changes."""
    xn, wn, cn = np.array([[0.5, -1.0], [2.0, 0.1]]), np.array([0.3, -0.7]), np.ones((2, 2))
    out = []
    for lib in (torch, gg):
        x, w, c = lib.tensor(xn, requires_grad=True), lib.tensor(wn, requires_grad=True), \
            lib.tensor(cn)
        with gg.fuse() if lib is gg else torch.enable_grad():
            v = w - x
            m = lib.maximum(v * 0.5, v)
            r = lib.relu(m)
            d = c - m
            with lib.no_grad():
                m.clamp_(-0.5, 0.5)
        gs = lib.autograd.grad((r * d).sum(), [x, w])
        out.append([r.detach().numpy(), d.detach().numpy()] + [g.numpy() for g in gs])
    for a, b in zip(*out):
        np.testing.assert_allclose(b, a, rtol=1e-10)


DATA_WRITES = {
    "data.mul_": lambda p: p.data.mul_(0),
    "data -=": lambda p: p.data.__isub__(p.data * 10),
    "data[...] =": lambda p: p.data.__setitem__(..., 7.0),
    "data = ": lambda p: setattr(p, "data", p.data * 0 - 1),
}


@pytest.mark.parametrize("write", DATA_WRITES)
def test_writes_through_data_after_a_deferred_read(write):
    """`.data` shares the storage but not the version counter (writes through it are not
    tracked, as PyTorch's): a pending op that read the tensor must still see the value from
    before the write, e.g. a hand-written SGD step (`p.data -= lr * p.grad`) after a
    forward whose last bias add is still deferred."""
    out = []
    for lib in (torch, gg):
        p = lib.tensor([1.0, -2.0, 0.5], requires_grad=True)
        x = lib.tensor([[0.3, 0.2, -0.1]])
        with gg.fuse() if lib is gg else torch.enable_grad():
            z = lib.tanh(x * p) + p
            DATA_WRITES[write](p)
        (g,) = lib.autograd.grad(z.sum(), [p])
        out.append((z.detach().numpy(), g.numpy(), p.detach().numpy()))
    for a, b in zip(*out):
        np.testing.assert_allclose(b, a, rtol=1e-6)


def test_clip_grad_norm_of_a_deferred_gradient():
    """A gradient set by hand to a deferred value (p.grad = g * 2 in a region) is scaled in
    place by clip_grad_norm_ (backend code writing `g *= c` into its array), as eagerly."""
    res = []
    for fused in (False, True):
        p = gg.tensor([3.0, 4.0], requires_grad=True)
        with gg.fuse() if fused else gg.enable_grad():
            p.grad = p.detach() * 2
            total = gg.nn.utils.clip_grad_norm_([p], 1.0)
        res.append((total.item(), p.grad.numpy()))
    assert res[1][0] == pytest.approx(res[0][0]) == pytest.approx(10.0)
    np.testing.assert_allclose(res[1][1], res[0][1], rtol=1e-6)
    np.testing.assert_allclose(res[1][1], [0.6, 0.8], rtol=1e-5)


def test_a_deferred_value_stored_as_grad_or_data_is_computed():
    """p.grad = (deferred) then backward accumulates into its array; q.data = (deferred)
    then an in-place op writes into it: both as eagerly."""
    res = []
    for fused in (False, True):
        p, q = gg.tensor([3.0, 4.0], requires_grad=True), gg.tensor([1.0, 2.0])
        with gg.fuse() if fused else gg.enable_grad():
            p.grad = p.detach() * 2
            (p * p).sum().backward()
            q.data = q * 3
            q.add_(1)
        assert type(p.grad._data) is np.ndarray and type(q._data) is np.ndarray
        res.append((p.grad.numpy(), q.numpy()))
    for a, b in zip(*res):
        np.testing.assert_allclose(b, a)
    np.testing.assert_allclose(res[1][0], [12.0, 16.0])


def test_a_deferred_value_made_a_leaf():
    """y = x * 2 (x needs no grad); y.requires_grad_() makes y a leaf that later ops read
    (PyTorch); gg.nn.Parameter(deferred) holds a real array."""
    res = []
    for lib in (torch, gg):
        x = lib.tensor([0.5, 1.0])
        with gg.fuse() if lib is gg else torch.enable_grad():
            y = x * 2
            y.requires_grad_()
            z = lib.sin(y)
        z.sum().backward()
        res.append((y.is_leaf, z.requires_grad, y.grad.numpy()))
    assert res[1][:2] == res[0][:2] == (True, True)
    np.testing.assert_allclose(res[1][2], res[0][2], rtol=1e-6)
    with gg.fuse():
        w = gg.nn.Parameter(gg.sin(gg.ones(3)) * 2)
    assert type(w._data) is np.ndarray and w.is_leaf and w.requires_grad


@pytest.mark.parametrize("flag", [True, False])
def test_requires_grad_changed_after_a_deferred_read(flag):
    """z = sin(v) * w is deferred, then v's requires_grad flips: z's graph is the one
    recorded when it was written, as unfused (v.grad: None when v starts without grad;
    unfused gpugrad still accumulates into a leaf whose flag was turned off afterwards),
    not the one the flag has when z is computed."""
    out = []
    for fused in (False, True):
        v = gg.tensor([0.5, -1.0, 2.0], requires_grad=not flag)
        w = gg.tensor([1.5, 2.0, -0.5], requires_grad=True)
        with gg.fuse() if fused else gg.enable_grad():
            z = gg.sin(v) * w
            v.requires_grad_(flag)
            s = (z * 2).sum()
        s.backward()
        out.append([z.detach().numpy(), w.grad.numpy()]
                   + ([] if v.grad is None else [v.grad.numpy()]))
    assert len(out[0]) == len(out[1]) == (2 if flag else 3)  # v.grad: None if flag
    for a, b in zip(*out):
        np.testing.assert_allclose(b, a, rtol=1e-6)


def test_a_chain_that_simplifies_to_an_input_or_another_output_gets_its_own_storage():
    """-(-a) simplifies to a: the program hands back a's array; writing the result in place
    must not change a (a leaf, a computed value, or another output of the program)."""
    x = gg.tensor([1.0, 2.0])
    with gg.fuse():
        y = gg.neg(gg.neg(x))  # of a leaf
        a = gg.sin(x) * 2
        a.detach()  # computed now
        b = gg.neg(gg.neg(a))  # of a computed value
        c = gg.cos(x) * 3
        d = gg.neg(gg.neg(c))  # of another output of the same program at the exit
    arrays = [t.numpy() for t in (x, y, a, b, c, d)]
    for i, j in [(0, 1), (2, 3), (4, 5)]:
        assert not np.shares_memory(arrays[i], arrays[j])
    for t in (y, b, d):
        t.add_(100)
    np.testing.assert_allclose(x.numpy(), [1.0, 2.0])
    np.testing.assert_allclose(a.numpy(), np.sin([1.0, 2.0]) * 2, rtol=1e-6)
    np.testing.assert_allclose(c.numpy(), np.cos([1.0, 2.0]) * 3, rtol=1e-6)


@pytest.mark.parametrize("kind", ["sum", "mean"])
def test_a_reduction_epilogue_saves_only_what_its_vjp_reads(kind):
    """(v - c).mean(0) with v computed: the VJP reads no operand (eagerly sub and mean save
    nothing), so writing v in place afterwards leaves backward valid, as in PyTorch."""
    out = []
    for lib in (torch, gg):
        w = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        c = lib.tensor([[1.0, 2.0, 3.0], [0.5, 0.25, -1.0]])
        with gg.fuse() if lib is gg else torch.enable_grad():
            v = c - w
            v.reshape(6)  # a view: v is computed, and a leaf of the next chain
            m = getattr(v - c, kind)(0)
            v.add_(1)
        m.sum().backward()
        out.append((m.detach().numpy(), w.grad.numpy()))
    for a, b in zip(*out):
        np.testing.assert_allclose(b, a, rtol=1e-6)
