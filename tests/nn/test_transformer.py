"""nn.Transformer and its encoder/decoder stacks and layers equal PyTorch's (forward,
input gradients and every parameter gradient) with PyTorch's weights loaded by name."""

import numpy as np
import pytest
import torch
from oracle import copy_weights, rand

import gpugrad as gg

D, H, FF = 8, 2, 12
# PyTorch warns about its nested-tensor fast path and mixed mask types; both are beside
# the point here
pytestmark = pytest.mark.filterwarnings("ignore:.*(nested|mismatched).*:UserWarning")


def _pair(name, *args, **kwargs):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args, **kwargs).double()
    ours = getattr(gg.nn, name)(*args, **kwargs).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_weights(ours, theirs)
    return ours, theirs


def _run(ours, theirs, arrays, masks=None, atol=1e-10):
    """Forward both with the same inputs and masks, backprop one cotangent, compare
    outputs, input gradients and parameter gradients."""
    masks = masks or {}
    g_in = [gg.tensor(a, requires_grad=True) for a in arrays]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    g_masks = {k: gg.tensor(v) for k, v in masks.items() if not isinstance(v, bool)}
    t_masks = {k: torch.tensor(v) for k, v in masks.items() if not isinstance(v, bool)}
    flags = {k: v for k, v in masks.items() if isinstance(v, bool)}
    g_out, t_out = ours(*g_in, **g_masks, **flags), theirs(*t_in, **t_masks, **flags)
    np.testing.assert_allclose(g_out.detach().numpy(), t_out.detach().numpy(), atol=atol,
                               rtol=1e-8)
    cot = rand(*t_out.shape)
    g_out.backward(gg.tensor(cot))
    t_out.backward(torch.tensor(cot))
    for i, (g, t) in enumerate(zip(g_in, t_in)):
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), atol=atol, rtol=1e-8,
                                   err_msg=f"input {i}")
    t_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), atol=atol,
                                   rtol=1e-8, err_msg=name)


ACTS = {"relu": ("relu", "relu"), "gelu": ("gelu", "gelu"),
        "callable": (gg.nn.functional.silu, torch.nn.functional.silu)}


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("act", list(ACTS))
def test_encoder_layer(norm_first, batch_first, act):
    g_act, t_act = ACTS[act]
    kw = dict(dim_feedforward=FF, dropout=0.0, norm_first=norm_first, batch_first=batch_first)
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoderLayer(D, H, activation=t_act, **kw).double()
    ours = gg.nn.TransformerEncoderLayer(D, H, activation=g_act, **kw).double()
    copy_weights(ours, theirs)
    _run(ours, theirs, [rand(5, 3, D)])


def test_encoder_layer_with_masks_and_unbatched_input():
    ours, theirs = _pair("TransformerEncoderLayer", D, H, FF, dropout=0.0, batch_first=True)
    pad = np.zeros((3, 5), bool)
    pad[0, 3:] = True
    pad[2, 1] = True
    causal = torch.nn.Transformer.generate_square_subsequent_mask(5).double().numpy()
    _run(ours, theirs, [rand(3, 5, D)], dict(src_mask=causal, src_key_padding_mask=pad,
                                             is_causal=True))
    bool_mask = np.triu(np.ones((5, 5), bool), 1)
    _run(ours, theirs, [rand(3, 5, D)], dict(src_mask=bool_mask))
    _run(ours, theirs, [rand(5, D)])


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_stack_with_final_norm(norm_first):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first)
    theirs = torch.nn.TransformerEncoder(layer, 2, norm=torch.nn.LayerNorm(D),
                                         enable_nested_tensor=False).double()
    ours = gg.nn.TransformerEncoder(
        gg.nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first), 2,
        norm=gg.nn.LayerNorm(D)).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_weights(ours, theirs)
    pad = np.zeros((2, 6), bool)
    pad[1, 4:] = True
    _run(ours, theirs, [rand(6, 2, D)], dict(src_key_padding_mask=pad))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_decoder_layer(norm_first, batch_first):
    ours, theirs = _pair("TransformerDecoderLayer", D, H, FF, dropout=0.0, activation="gelu",
                         norm_first=norm_first, batch_first=batch_first)
    n, t, s = 3, 4, 6
    tgt = rand(n, t, D) if batch_first else rand(t, n, D)
    mem = rand(n, s, D) if batch_first else rand(s, n, D)
    mpad = np.zeros((n, s), bool)
    mpad[1, 2:] = True
    tpad = np.zeros((n, t), bool)
    tpad[2, 3] = True
    causal = torch.nn.Transformer.generate_square_subsequent_mask(t).double().numpy()
    _run(ours, theirs, [tgt, mem], dict(tgt_mask=causal, tgt_is_causal=True,
                                        memory_key_padding_mask=mpad,
                                        tgt_key_padding_mask=tpad))


def test_decoder_stack():
    torch.manual_seed(0)
    theirs = torch.nn.TransformerDecoder(
        torch.nn.TransformerDecoderLayer(D, H, FF, dropout=0.0), 2,
        norm=torch.nn.LayerNorm(D)).double()
    ours = gg.nn.TransformerDecoder(gg.nn.TransformerDecoderLayer(D, H, FF, dropout=0.0), 2,
                                    norm=gg.nn.LayerNorm(D)).double()
    copy_weights(ours, theirs)
    mem_mask = rand(4, 5)
    _run(ours, theirs, [rand(4, 2, D), rand(5, 2, D)], dict(memory_mask=mem_mask))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_loads_a_pytorch_state_dict_and_matches(batch_first, norm_first):
    ours, theirs = _pair("Transformer", D, H, 2, 1, FF, dropout=0.0, batch_first=batch_first,
                         norm_first=norm_first)
    n, s, t = 2, 5, 4
    src = rand(n, s, D) if batch_first else rand(s, n, D)
    tgt = rand(n, t, D) if batch_first else rand(t, n, D)
    spad = np.zeros((n, s), bool)
    spad[0, 4] = True
    causal = torch.nn.Transformer.generate_square_subsequent_mask(t).double().numpy()
    _run(ours, theirs, [src, tgt], dict(tgt_mask=causal, src_key_padding_mask=spad,
                                        memory_key_padding_mask=spad))


def test_transformer_init_and_default_sizes():
    m = gg.nn.Transformer(64, 4, dim_feedforward=256)
    t = torch.nn.Transformer(64, 4, dim_feedforward=256)
    assert len(m.encoder.layers) == len(m.decoder.layers) == 6
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in t.state_dict().items()}
    w = m.encoder.layers[0].linear1.weight.detach().numpy()
    bound = np.sqrt(6.0 / (64 + 256))  # xavier-uniform, as PyTorch re-initialises
    assert np.abs(w).max() <= bound * (1 + 1e-6) and np.abs(w).max() > 0.9 * bound
    assert m.encoder.layers[0] is not m.encoder.layers[1]


def test_square_subsequent_mask_matches_torch():
    ours = gg.nn.Transformer.generate_square_subsequent_mask(5).numpy()
    theirs = torch.nn.Transformer.generate_square_subsequent_mask(5).numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_errors():
    m = gg.nn.Transformer(D, H, 1, 1, FF, dropout=0.0)
    with pytest.raises(RuntimeError, match="batch number"):
        m(gg.tensor(rand(5, 2, D)), gg.tensor(rand(4, 3, D)))
    with pytest.raises(RuntimeError, match="d_model"):
        m(gg.tensor(rand(5, 2, D + 1)), gg.tensor(rand(4, 2, D)))
    with pytest.raises(RuntimeError, match="activation"):
        gg.nn.TransformerEncoderLayer(D, H, activation="swishy")


def test_dropout_is_active_in_training_only():
    m = gg.nn.TransformerEncoderLayer(D, H, FF, dropout=0.5)
    x = gg.tensor(rand(5, 2, D).astype(np.float32))
    assert not np.allclose(m(x).detach().numpy(), m(x).detach().numpy())
    m.eval()
    np.testing.assert_array_equal(m(x).detach().numpy(), m(x).detach().numpy())
