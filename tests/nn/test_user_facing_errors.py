"""Errors name the op and argument the user called, not an internal one (index_select,
index_add, where). Index ranges are checked on the CPU only (a GPU check would synchronise
every call), so those tests run on the CPU."""

import numpy as np
import pytest
import torch

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F


@pytest.mark.parametrize("index, bad", [([1, 7], 7), ([[0], [-1]], -1), ([5], 5)])
def test_embedding_index_out_of_range_names_embedding(index, bad, cpu_default_device):
    emb = nn.Embedding(5, 3)
    with pytest.raises(IndexError, match=rf"^embedding: index {bad} is out of range for an "
                                         r"embedding table of 5 rows .*weight shape \(5, 3\)"):
        emb(gg.tensor(index))
    with pytest.raises(IndexError):  # PyTorch refuses the same indices
        torch.nn.functional.embedding(torch.tensor(index), torch.zeros(5, 3))


def test_embedding_in_range_still_matches_pytorch():
    w = np.random.default_rng(0).normal(size=(5, 3))
    idx = [[0, 4], [2, 2]]
    np.testing.assert_allclose(
        F.embedding(gg.tensor(idx), gg.tensor(w)).numpy(),
        torch.nn.functional.embedding(torch.tensor(idx), torch.tensor(w)).numpy())


@pytest.mark.parametrize("edges, row, what, bad", [
    ([[0, 1], [2, 9]], 1, "target", 9),
    ([[0, 6], [2, 1]], 0, "source", 6),
    ([[0, -1], [2, 1]], 0, "source", -1),
])
def test_graphconv_edge_index_out_of_range_names_graphconv(edges, row, what, bad,
                                                          cpu_default_device):
    conv = nn.GraphConv(3, 4)
    with pytest.raises(IndexError, match=rf"^GraphConv: edge_index row {row} \({what} nodes\) "
                                         rf"holds node {bad}, but there are 5 nodes"):
        conv(gg.randn(5, 3), gg.tensor(edges))


def test_aggregate_checks_targets_against_num_nodes(cpu_default_device):
    from gpugrad.nn.graph import aggregate

    out = aggregate(gg.ones(2, 1), gg.tensor([[0, 1], [3, 3]]), num_nodes=4)
    np.testing.assert_array_equal(out.numpy(), [[0.0], [0.0], [0.0], [2.0]])
    with pytest.raises(IndexError, match=r"aggregate: edge_index row 1 \(target nodes\) holds "
                                         r"node 4, but there are 4 nodes"):
        aggregate(gg.ones(2, 1), gg.tensor([[0, 1], [4, 3]]), num_nodes=4)


@pytest.mark.parametrize("mask_shape", [(3, 3), (3, 2, 4, 4), (4, 5)])
@pytest.mark.parametrize("dtype", ["bool", "float32"])
def test_sdpa_mask_shape_names_attn_mask(mask_shape, dtype):
    q = gg.randn(2, 4, 8)
    mask = gg.ones(mask_shape, dtype=getattr(gg, dtype))
    with pytest.raises(gg.ShapeError, match=rf"^scaled_dot_product_attention: attn_mask of "
                                            rf"shape {_re(str(mask_shape))} does not broadcast "
                                            r"to the attention scores' shape \(2, 4, 4\)"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=mask)
    tq = torch.randn(2, 4, 8)
    with pytest.raises(RuntimeError):  # PyTorch refuses these masks too
        torch.nn.functional.scaled_dot_product_attention(
            tq, tq, tq, attn_mask=torch.ones(mask_shape, dtype=getattr(torch, dtype)))


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_sdpa_broadcastable_masks_still_work():
    q = gg.randn(2, 4, 8)
    for shape in [(4,), (4, 4), (1, 4, 4), (2, 1, 4)]:
        out = F.scaled_dot_product_attention(q, q, q, attn_mask=gg.ones(shape, dtype=gg.bool))
        assert out.shape == (2, 4, 8)
