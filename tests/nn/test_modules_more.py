"""Module hooks, parameter containers, parameter utilities, parametrizations and the
extra layers of issue 15, each against PyTorch."""

import numpy as np
import pytest
import torch
from oracle import check_module, copy_weights, rand

import gpugrad as gg


def _mlp(lib):
    torch.manual_seed(0)
    return lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 2))


def _twins():
    theirs = _mlp(torch).double()
    ours = _mlp(gg).double()
    copy_weights(ours, theirs)
    return ours, theirs


# --- hooks -----------------------------------------------------------------------------------
def test_forward_hooks_see_and_replace_inputs_and_outputs_as_torch():
    x = rand(5, 3)
    results = {}
    for lib, m in zip((gg, torch), _twins()):
        log = []

        def pre(mod, args, log=log):
            log.append(("pre", type(mod).__name__, len(args)))
            return args[0] * 2  # a single value is wrapped into a tuple

        def post(mod, args, out, log=log):
            log.append(("post", tuple(out.shape)))
            return out + 1

        h1 = m[0].register_forward_pre_hook(pre)
        h2 = m[0].register_forward_hook(post)
        y1 = m(lib.tensor(x))
        h1.remove()
        h2.remove()
        h2.remove()  # a second remove does nothing
        y2 = m(lib.tensor(x))
        results[lib.__name__] = (log, y1.detach().numpy(), y2.detach().numpy())
    (la, a1, a2), (lb, b1, b2) = results["gpugrad"], results["torch"]
    assert la == lb == [("pre", "Linear", 1), ("post", (5, 4))]
    np.testing.assert_allclose(a1, b1, rtol=1e-12)
    np.testing.assert_allclose(a2, b2, rtol=1e-12)
    assert not np.allclose(a1, a2)


def test_forward_hooks_with_kwargs_prepend_and_context_manager():
    m = gg.nn.Linear(3, 2)
    order = []
    m.register_forward_hook(lambda mod, a, o: order.append("second"))
    m.register_forward_hook(lambda mod, a, o: order.append("first"), prepend=True)
    m.register_forward_pre_hook(lambda mod, a, kw: ((a[0] * 0,), kw), with_kwargs=True)
    with m.register_forward_hook(lambda mod, a, kw, o: order.append(sorted(kw)),
                                 with_kwargs=True):
        out = m(gg.tensor(rand(2, 3).astype(np.float32)))
    m(gg.tensor(rand(2, 3).astype(np.float32)))
    assert order == ["first", "second", [], "first", "second"]
    np.testing.assert_allclose(out.detach().numpy(), np.broadcast_to(m.bias.detach().numpy(),
                                                                     (2, 2)))


def test_always_call_forward_hook_runs_when_forward_raises():
    m = gg.nn.Linear(3, 2)
    seen = []
    m.register_forward_hook(lambda mod, a, o: seen.append(o), always_call=True)
    with pytest.raises(gg.errors.ShapeError):
        m(gg.tensor(rand(2, 4).astype(np.float32)))
    assert seen == [None]


def test_full_backward_hook_matches_torch():
    logs = {}
    x0 = rand(5, 3)
    for lib, m in zip((gg, torch), _twins()):
        log = []

        def hook(mod, grad_in, grad_out, log=log):
            log.append((type(mod).__name__, [None if g is None else g.detach().numpy().copy()
                                             for g in grad_in],
                        [g.detach().numpy().copy() for g in grad_out]))
            return (grad_in[0] * 3,)

        def pre(mod, grad_out, log=log):
            log.append(("pre", [g.detach().numpy().copy() for g in grad_out]))

        m[2].register_full_backward_hook(hook)
        m[0].register_full_backward_hook(hook)
        m[2].register_full_backward_pre_hook(pre)
        x = lib.tensor(x0, requires_grad=True)
        (m(x) ** 2).sum().backward()
        logs[lib.__name__] = (log, x.grad.numpy(), m[0].weight.grad.numpy())
    (la, xa, wa), (lb, xb, wb) = logs["gpugrad"], logs["torch"]
    assert [e[0] for e in la] == [e[0] for e in lb] == ["pre", "Linear", "Linear"]
    for ea, eb in zip(la, lb):
        for ga, gb in zip(ea[1:], eb[1:]):
            for a, b in zip(ga, gb):
                assert (a is None) == (b is None)
                if a is not None:
                    np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(xa, xb, rtol=1e-12)  # replaced grad_input propagates
    np.testing.assert_allclose(wa, wb, rtol=1e-12)


def test_full_backward_hook_on_a_first_layer_gets_none_grad_input():
    m = gg.nn.Linear(3, 2)
    seen = []
    m.register_full_backward_hook(lambda mod, gi, go: seen.append((gi, len(go))))
    m(gg.tensor(rand(4, 3).astype(np.float32))).sum().backward()
    assert seen == [((None,), 1)]
    assert m.weight.grad is not None


def test_hook_must_be_callable():
    with pytest.raises(TypeError, match="callable"):
        gg.nn.Linear(2, 2).register_forward_hook(3)


def test_named_modules_apply_requires_grad_like_torch():
    ours, theirs = _twins()
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    seen = []
    ours.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Tanh", "Linear", "Sequential"]
    ours.requires_grad_(False)
    assert not any(p.requires_grad for p in ours.parameters())


# --- parameter containers and utilities --------------------------------------------------------
class _WithContainers:
    @staticmethod
    def build(lib):
        torch.manual_seed(0)
        m = lib.nn.Module()
        m.plist = lib.nn.ParameterList([lib.nn.Parameter(lib.ones(2, 3)), lib.zeros(4)])
        m.plist.append(lib.nn.Parameter(lib.full((1,), 2.0)))
        m.pdict = lib.nn.ParameterDict({"b": lib.nn.Parameter(lib.ones(2)), "a": lib.zeros(3)})
        m.pdict["c"] = lib.nn.Parameter(lib.ones(1))
        return m


def test_parameter_list_and_dict_register_like_torch():
    ours, theirs = _WithContainers.build(gg), _WithContainers.build(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert len(ours.plist) == 3 and ours.plist[-1].shape == (1,)
    assert isinstance(ours.plist[1], gg.nn.Parameter)  # plain tensors are wrapped
    assert list(ours.pdict.keys()) == ["a", "b", "c"] and "a" in ours.pdict  # dicts sorted
    assert ours.pdict.pop("a").shape == (3,) and len(ours.pdict) == 2
    assert len(ours.plist[:2]) == 2
    with pytest.raises(IndexError, match="length 3"):
        ours.plist[3]
    with pytest.raises(KeyError):
        ours.pdict["zz"]


def test_parameters_to_vector_round_trip():
    ours, theirs = _twins()
    v = gg.nn.utils.parameters_to_vector(ours.parameters())
    t = torch.nn.utils.parameters_to_vector(theirs.parameters())
    np.testing.assert_array_equal(v.detach().numpy(), t.detach().numpy())
    gg.nn.utils.vector_to_parameters(v * 2, ours.parameters())
    np.testing.assert_allclose(ours[0].weight.detach().numpy(),
                               2 * theirs[0].weight.detach().numpy())
    (v * v).sum().backward()  # differentiable into the parameters
    assert ours[2].bias.grad is not None
    with pytest.raises(ValueError, match="26 elements"):
        gg.nn.utils.vector_to_parameters(gg.zeros(5), ours.parameters())


def test_clip_grad_value_matches_torch():
    ours, theirs = _twins()
    x = rand(4, 3)
    (ours(gg.tensor(x)) ** 3).sum().backward()
    (theirs(torch.tensor(x)) ** 3).sum().backward()
    gg.nn.utils.clip_grad_value_(ours.parameters(), 0.1)
    torch.nn.utils.clip_grad_value_(theirs.parameters(), 0.1)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy())


def test_lstm_flatten_parameters_is_accepted():
    m = gg.nn.LSTM(3, 4)
    m.flatten_parameters()


# --- parametrizations --------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_matches_torch(dim):
    torch.manual_seed(0)
    theirs = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(3, 4).double(),
                                                         dim=dim)
    ours = gg.nn.utils.parametrizations.weight_norm(gg.nn.Linear(3, 4).double(), dim=dim)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_weights(ours, theirs)
    check_module(ours, theirs, rand(5, 3), atol=1e-10)
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(),
                               rtol=1e-12)


def test_weight_norm_on_a_convolution_and_removal():
    torch.manual_seed(0)
    theirs = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv2d(2, 3, 3).double())
    ours = gg.nn.utils.parametrizations.weight_norm(gg.nn.Conv2d(2, 3, 3).double())
    copy_weights(ours, theirs)
    check_module(ours, theirs, rand(2, 2, 5, 5), atol=1e-10)
    assert gg.nn.utils.parametrize.is_parametrized(ours, "weight")
    w = ours.weight.detach().numpy()
    gg.nn.utils.parametrize.remove_parametrizations(ours, "weight")
    assert type(ours) is gg.nn.Conv2d and not gg.nn.utils.parametrize.is_parametrized(ours)
    assert [n for n, _ in ours.named_parameters()] == ["bias", "weight"]
    np.testing.assert_allclose(ours.weight.detach().numpy(), w)


def test_setting_a_parametrized_weight_uses_the_right_inverse():
    m = gg.nn.utils.parametrizations.weight_norm(gg.nn.Linear(3, 2).double())
    target = rand(2, 3)
    m.weight = gg.tensor(target)
    np.testing.assert_allclose(m.weight.detach().numpy(), target, rtol=1e-12)


@pytest.mark.parametrize("make", [lambda lib: lib.nn.Linear(4, 3),
                                  lambda lib: lib.nn.Conv2d(2, 3, 2),
                                  lambda lib: lib.nn.ConvTranspose2d(2, 3, 2)])
def test_spectral_norm_matches_torch(make):
    torch.manual_seed(0)
    theirs = torch.nn.utils.parametrizations.spectral_norm(make(torch).double(),
                                                           n_power_iterations=2)
    ours = gg.nn.utils.parametrizations.spectral_norm(make(gg).double(), n_power_iterations=2)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_weights(ours, theirs)  # the same u, v to start the power iteration from
    x = rand(2, 4) if isinstance(theirs, torch.nn.Linear) else rand(2, 2, 4, 4)
    check_module(ours, theirs, x, atol=1e-10)
    for key in ("parametrizations.weight.0._u", "parametrizations.weight.0._v"):
        np.testing.assert_allclose(ours.state_dict()[key].numpy(),
                                   theirs.state_dict()[key].numpy(), rtol=1e-10)
    ours.eval()
    theirs.eval()
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(),
                               rtol=1e-10)
    sigma = np.linalg.svd(ours.parametrizations.weight.original.detach().numpy().reshape(
        ours.weight.shape[0], -1) if not isinstance(theirs, torch.nn.ConvTranspose2d) else
        np.moveaxis(ours.parametrizations.weight.original.detach().numpy(), 1, 0).reshape(
            3, -1), compute_uv=False)[0]
    w = ours.weight.detach().numpy()
    w = np.moveaxis(w, 1, 0) if isinstance(theirs, torch.nn.ConvTranspose2d) else w
    assert abs(np.linalg.svd(w.reshape(w.shape[0], -1), compute_uv=False)[0] - 1) < 0.2
    assert sigma > 0


# --- layers -------------------------------------------------------------------------------------
def _layer_pair(name, *args, **kwargs):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args, **kwargs).double()
    ours = getattr(gg.nn, name)(*args, **kwargs).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [tuple(v.shape) for v in ours.state_dict().values()] == \
        [tuple(v.shape) for v in theirs.state_dict().values()]
    copy_weights(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize("name,args,kwargs,shape", [
    ("ConvTranspose2d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1, groups=2),
     (2, 4, 5, 5)),
    ("ConvTranspose2d", (3, 2, (2, 3)), dict(bias=False, dilation=2), (2, 3, 4, 5)),
    ("ConvTranspose1d", (3, 4, 3), dict(stride=3), (2, 3, 6)),
    ("Conv3d", (2, 4, 2), dict(padding=1, stride=(1, 2, 1)), (2, 2, 4, 5, 4)),
    ("GroupNorm", (2, 6), dict(), (3, 6, 4, 2)),
    ("GroupNorm", (3, 6), dict(affine=False, eps=1e-3), (3, 6, 5)),
    ("InstanceNorm1d", (3,), dict(), (2, 3, 7)),
    ("InstanceNorm2d", (3,), dict(affine=True), (2, 3, 4, 5)),
    ("InstanceNorm2d", (3,), dict(affine=True, track_running_stats=True), (2, 3, 4, 5)),
    ("LocalResponseNorm", (3,), dict(), (2, 5, 4, 3)),
    ("LocalResponseNorm", (2,), dict(alpha=0.1, beta=0.5, k=2.0), (2, 4, 6)),
    ("RMSNorm", (5,), dict(), (3, 4, 5)),
    ("RMSNorm", ((4, 5),), dict(eps=1e-3), (3, 4, 5)),
    ("MaxPool1d", (3,), dict(stride=2, padding=1), (2, 3, 9)),
    ("AvgPool1d", (3,), dict(stride=2, padding=1, count_include_pad=False), (2, 3, 9)),
    ("Upsample", (), dict(scale_factor=2, mode="bilinear"), (2, 3, 4, 3)),
    ("Upsample", (), dict(size=(5, 7), mode="nearest"), (2, 3, 4, 3)),
    ("PixelShuffle", (2,), dict(), (2, 8, 3, 2)),
    ("PixelUnshuffle", (2,), dict(), (2, 2, 4, 6)),
])
def test_layers_match_torch(name, args, kwargs, shape):
    ours, theirs = _layer_pair(name, *args, **kwargs)
    check_module(ours, theirs, rand(*shape), atol=1e-10)
    for key, value in theirs.state_dict().items():  # running statistics too
        np.testing.assert_allclose(ours.state_dict()[key].numpy(), value.numpy(), rtol=1e-10)
    ours.eval()
    theirs.eval()
    x = rand(*shape)
    np.testing.assert_allclose(ours(gg.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), atol=1e-10)


def test_conv_transpose_output_size_and_unbatched():
    ours, theirs = _layer_pair("ConvTranspose2d", 2, 3, 3, stride=2)
    x = rand(1, 2, 4, 4)
    for size in ((9, 9), (10, 10), (1, 3, 10, 9)):
        a = ours(gg.tensor(x), output_size=size).detach().numpy()
        b = theirs(torch.tensor(x), output_size=size).detach().numpy()
        np.testing.assert_allclose(a, b, atol=1e-12)
    with pytest.raises(ValueError, match="output size"):
        ours(gg.tensor(x), output_size=(12, 12))
    check_module(ours, theirs, rand(2, 4, 4), atol=1e-10)


def test_bilinear_matches_torch():
    ours, theirs = _layer_pair("Bilinear", 3, 4, 5)
    check_module(ours, theirs, rand(6, 3), rand(6, 4), atol=1e-10)
    check_module(ours, theirs, rand(2, 6, 3), rand(2, 6, 4), atol=1e-10)
    w = torch.nn.Bilinear(30, 4, 5).weight.detach().numpy()
    assert np.abs(gg.nn.Bilinear(30, 4, 5).weight.detach().numpy()).max() <= 1 / np.sqrt(30)
    assert np.abs(w).max() <= 1 / np.sqrt(30)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 1])
def test_embedding_bag_matches_torch(mode, padding_idx):
    ours, theirs = _layer_pair("EmbeddingBag", 6, 3, mode=mode, padding_idx=padding_idx)
    idx = np.array([0, 2, 1, 4, 4, 5, 1, 3])
    offsets = np.array([0, 3, 3, 5])  # the second bag is empty
    for args_g, args_t in (((gg.tensor(idx), gg.tensor(offsets)),
                            (torch.tensor(idx), torch.tensor(offsets))),
                           ((gg.tensor(idx.reshape(2, 4)),), (torch.tensor(idx.reshape(2, 4)),))):
        a, b = ours(*args_g), theirs(*args_t)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)
        cot = rand(*b.shape)
        ours.zero_grad()
        theirs.zero_grad()
        a.backward(gg.tensor(cot))
        b.backward(torch.tensor(cot))
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(),
                                   rtol=1e-12)


def test_embedding_bag_per_sample_weights_and_last_offset():
    ours, theirs = _layer_pair("EmbeddingBag", 6, 3, mode="sum", include_last_offset=True)
    idx, offsets, w = np.array([0, 2, 1, 4, 5]), np.array([0, 2, 5]), rand(5)
    a = ours(gg.tensor(idx), gg.tensor(offsets), gg.tensor(w))
    b = theirs(torch.tensor(idx), torch.tensor(offsets), torch.tensor(w))
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="offsets"):
        ours(gg.tensor(idx))


def test_channel_dropout_and_alpha_dropout():
    gg.manual_seed(0)
    x = gg.tensor(np.ones((64, 8, 5, 5)))
    y = gg.nn.Dropout2d(0.25)(x).numpy()
    per_channel = y.reshape(64, 8, -1)
    assert ((per_channel == 0).all(-1) | (per_channel == 1 / 0.75).all(-1)).all()
    assert abs((per_channel[..., 0] == 0).mean() - 0.25) < 0.06
    y1 = gg.nn.Dropout1d(0.5)(gg.tensor(np.ones((8, 30)))).numpy()  # unbatched (C, L)
    assert ((y1 == 0).all(-1) | (y1 == 2).all(-1)).all()
    d = gg.nn.Dropout2d(0.5).eval()
    np.testing.assert_array_equal(d(x).numpy(), x.numpy())
    p = 0.2
    a = gg.nn.AlphaDropout(p)
    xs = rand(200, 50)
    ys = a(gg.tensor(xs)).numpy()
    alpha = 1.7580993408473766
    s = 1 / np.sqrt((alpha ** 2 * p + 1) * (1 - p))
    kept = np.isclose(ys, s * xs + alpha * s * p)
    dropped = np.isclose(ys, -alpha * s + alpha * s * p)
    assert (kept | dropped).all() and abs(dropped.mean() - p) < 0.03
    np.testing.assert_array_equal(a.eval()(gg.tensor(xs)).numpy(), xs)
    with pytest.raises(ValueError, match="probability"):
        gg.nn.Dropout1d(1.5)


def test_layer_errors_name_shapes():
    with pytest.raises(ValueError, match="divisible"):
        gg.nn.GroupNorm(4, 6)
    with pytest.raises(gg.errors.ShapeError, match=r"\(2, 3\)"):
        gg.nn.InstanceNorm2d(3)(gg.tensor(rand(2, 3)))
    with pytest.raises(gg.errors.ShapeError, match=r"\(3, 4\)"):
        gg.nn.RMSNorm(5)(gg.tensor(rand(3, 4)))
    with pytest.raises(gg.errors.ShapeError, match="bilinear"):
        gg.nn.Bilinear(3, 4, 5)(gg.tensor(rand(6, 3)), gg.tensor(rand(6, 5)))


@pytest.mark.parametrize("name,args,kwargs,inputs", [
    ("MaxPool3d", (2,), dict(stride=1, padding=1), [(2, 2, 3, 4, 3)]),
    ("AvgPool3d", ((2, 1, 2),), dict(count_include_pad=False, padding=(1, 0, 1)),
     [(2, 2, 3, 4, 3)]),
    ("AdaptiveMaxPool1d", (3,), dict(), [(2, 3, 8)]),
    ("AdaptiveMaxPool2d", ((2, 3),), dict(), [(2, 3, 5, 7)]),
    ("Unfold", ((2, 3),), dict(padding=1, stride=2), [(2, 3, 5, 6)]),
    ("Fold", ((4, 5), 2), dict(), [(2, 12, 12)]),
    ("CosineSimilarity", (), dict(dim=-1), [(3, 4), (3, 4)]),
    ("PairwiseDistance", (), dict(p=1.0, keepdim=True), [(3, 4), (3, 4)]),
    ("UpsamplingNearest2d", (), dict(scale_factor=2), [(1, 2, 3, 3)]),
    ("UpsamplingBilinear2d", (), dict(size=(5, 4)), [(1, 2, 3, 3)]),
    ("InstanceNorm3d", (2,), dict(affine=True), [(2, 2, 3, 2, 4)]),
])
def test_wrapper_layers_match_torch(name, args, kwargs, inputs):
    ours, theirs = _layer_pair(name, *args, **kwargs)
    check_module(ours, theirs, *[rand(*s) for s in inputs], atol=1e-10)


def test_max_unpool2d_module_and_dropout3d():
    x = torch.tensor(rand(1, 2, 4, 6))
    y, idx = torch.nn.MaxPool2d(2, return_indices=True)(x)
    ours = gg.nn.MaxUnpool2d(2)(gg.tensor(y.numpy()), gg.tensor(idx.numpy()))
    np.testing.assert_array_equal(ours.numpy(), torch.nn.MaxUnpool2d(2)(y, idx).numpy())
    gg.manual_seed(1)
    z = gg.nn.Dropout3d(0.5)(gg.tensor(np.ones((4, 6, 2, 2, 2)))).numpy().reshape(4, 6, -1)
    assert ((z == 0).all(-1) | (z == 2).all(-1)).all()


@pytest.mark.parametrize("kind", ["Zero", "Constant", "Reflection", "Replication", "Circular"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_padding_layers_match_torch(kind, nd):
    args = ((1, 2, 0, 1, 2, 1)[:2 * nd],) + ((1.5,) if kind == "Constant" else ())
    ours, theirs = _layer_pair(f"{kind}Pad{nd}d", *args)
    check_module(ours, theirs, rand(*(2, 3, 4, 3, 5)[:nd + 2]), atol=1e-12)
    if kind != "Constant":
        ours, theirs = _layer_pair(f"{kind}Pad{nd}d", 1)
        check_module(ours, theirs, rand(*(2, 3, 4, 3, 5)[:nd + 2]), atol=1e-12)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("name,args,kwargs,shape", [
    ("Conv2d", (2, 3, 3), dict(padding=1), (2, 2, 5, 6)),
    ("Conv2d", (2, 3, (2, 3)), dict(padding="same"), (2, 2, 5, 6)),
    ("Conv1d", (2, 3, 3), dict(padding=2, stride=2), (2, 2, 7)),
    ("Conv3d", (2, 3, 2), dict(padding=(1, 0, 1)), (1, 2, 3, 4, 3)),
])
def test_conv_padding_modes_match_torch(mode, name, args, kwargs, shape):
    ours, theirs = _layer_pair(name, *args, padding_mode=mode, **kwargs)
    check_module(ours, theirs, rand(*shape), atol=1e-10)


def test_bad_padding_mode_raises():
    with pytest.raises(ValueError, match="padding_mode"):
        gg.nn.Conv2d(2, 3, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="zeros"):
        gg.nn.ConvTranspose2d(2, 3, 3, padding_mode="reflect")


@pytest.mark.parametrize("name,args,kwargs,shape", [
    ("AdaptiveAvgPool3d", ((2, 3, 2),), dict(), (2, 2, 5, 4, 3)),
    ("AdaptiveMaxPool3d", ((2, None, 2),), dict(), (2, 2, 5, 4, 3)),
    ("LPPool1d", (2, 3), dict(stride=2), (2, 3, 8)),
    ("LPPool2d", (3, (2, 3)), dict(), (2, 3, 6, 7)),
    ("LPPool3d", (2, 2), dict(stride=1), (1, 2, 3, 4, 3)),
    ("BatchNorm3d", (3,), dict(), (2, 3, 2, 3, 2)),
])
def test_more_pooling_and_batchnorm3d(name, args, kwargs, shape):
    ours, theirs = _layer_pair(name, *args, **kwargs)
    x = rand(*shape) if not name.startswith("LP") else rand(*shape, low=0.1, high=2.0)
    check_module(ours, theirs, x, atol=1e-10)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key].numpy(), value.numpy(), rtol=1e-10)


@pytest.mark.parametrize("kwargs", [dict(), dict(stride=2, padding=1, output_padding=1),
                                    dict(stride=(3, 1, 2), dilation=(2, 1, 1),
                                         padding=(2, 1, 0), groups=2, bias=False)])
def test_conv_transpose3d_matches_torch(kwargs):
    ours, theirs = _layer_pair("ConvTranspose3d", 4, 6, (2, 3, 2), **kwargs)
    check_module(ours, theirs, rand(2, 4, 3, 4, 3), atol=1e-10)
    check_module(ours, theirs, rand(4, 2, 3, 2), atol=1e-10)


def _scaled(lib, k):
    class Scale(lib.nn.Module):
        def forward(self, x):
            return x * k

    return Scale()


def _skew(lib):
    class Skew(lib.nn.Module):
        def forward(self, x):
            return x - x.transpose(0, 1)

    return Skew()


def test_custom_parametrizations_compose_like_torch():
    torch.manual_seed(0)
    theirs = torch.nn.Linear(3, 3).double()
    ours = gg.nn.Linear(3, 3).double()
    copy_weights(ours, theirs)
    for lib, m in ((gg, ours), (torch, theirs)):
        lib.nn.utils.parametrize.register_parametrization(m, "weight", _skew(lib))
        lib.nn.utils.parametrize.register_parametrization(m, "weight", _scaled(lib, 3.0))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    check_module(ours, theirs, rand(4, 3), atol=1e-12)
    w = ours.weight.detach().numpy()
    np.testing.assert_allclose(w, -w.T)
    with gg.nn.utils.parametrize.cached():
        np.testing.assert_array_equal(ours.weight.detach().numpy(), w)
    with pytest.raises(ValueError, match="no parameter or buffer"):
        gg.nn.utils.parametrize.register_parametrization(ours, "nothing", _skew(gg))
    gg.nn.utils.parametrize.remove_parametrizations(ours, "weight", leave_parametrized=False)
    np.testing.assert_allclose(ours.weight.detach().numpy(),
                               theirs.parametrizations.weight.original.detach().numpy())


@pytest.mark.parametrize("make", [lambda lib: lib.nn.Linear(4, 3),
                                  lambda lib: lib.nn.Conv1d(2, 3, 3)])
def test_legacy_weight_norm_matches_torch(make):
    torch.manual_seed(0)
    theirs = torch.nn.utils.weight_norm(make(torch).double())
    ours = gg.nn.utils.weight_norm(make(gg).double())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_weights(ours, theirs)
    x = rand(2, 4) if isinstance(theirs, torch.nn.Linear) else rand(2, 2, 6)
    check_module(ours, theirs, x, atol=1e-10)
    gg.nn.utils.remove_weight_norm(ours)
    torch.nn.utils.remove_weight_norm(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="weight_norm"):
        gg.nn.utils.remove_weight_norm(ours)


def test_legacy_spectral_norm_matches_torch():
    torch.manual_seed(0)
    theirs = torch.nn.utils.spectral_norm(torch.nn.Linear(4, 3).double(), n_power_iterations=2)
    ours = gg.nn.utils.spectral_norm(gg.nn.Linear(4, 3).double(), n_power_iterations=2)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_weights(ours, theirs)
    check_module(ours, theirs, rand(2, 4), atol=1e-10)
    for key in ("weight_u", "weight_v"):
        np.testing.assert_allclose(ours.state_dict()[key].numpy(),
                                   theirs.state_dict()[key].numpy(), rtol=1e-10)
    ours.eval()
    theirs.eval()
    x = rand(2, 4)
    np.testing.assert_allclose(ours(gg.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10)
    gg.nn.utils.remove_spectral_norm(ours)
    torch.nn.utils.remove_spectral_norm(theirs)
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(),
                               rtol=1e-10)
