"""GraphConv against a hand-written torch message-passing layer (index_add_) with the
same weights: forward values and gradients for node features, weights and bias."""

import numpy as np
import pytest
import torch

import gpugrad as gg
from gpugrad import nn

# A small directed graph: node 4 has no in-edges, 2 has three, with a repeated edge 0->2.
EDGES = np.array([[0, 1, 3, 0, 2, 4, 0],
                  [2, 2, 0, 1, 3, 1, 2]])
N = 5


def torch_graph_conv(x, edge_index, w_root, w_nbr, b, aggr):
    """x_i' = W_root x_i + W_nbr AGG_{j->i} x_j + b, written out with index_add_."""
    src, dst = edge_index
    agg = torch.zeros(x.shape[0], x.shape[1], dtype=x.dtype).index_add_(0, dst, x[src])
    if aggr == "mean":
        deg = torch.zeros(x.shape[0], dtype=x.dtype).index_add_(
            0, dst, torch.ones(dst.shape[0], dtype=x.dtype))
        agg = agg / deg.clamp(min=1).unsqueeze(-1)
    out = x @ w_root.T + agg @ w_nbr.T
    return out if b is None else out + b


@pytest.mark.parametrize("aggr", ["sum", "mean"])
@pytest.mark.parametrize("sizes", [(3, 4), (6, 2)])  # aggregate before / after projecting
@pytest.mark.parametrize("bias", [True, False])
def test_graph_conv_matches_torch(aggr, sizes, bias):
    n_in, n_out = sizes
    conv = nn.GraphConv(n_in, n_out, aggr=aggr, bias=bias, dtype=gg.float64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, n_in))
    xg = gg.tensor(x, requires_grad=True)
    out = conv(xg, gg.tensor(EDGES))
    params = {n: torch.tensor(p.detach().numpy(), requires_grad=True)
              for n, p in conv.named_parameters()}
    xt = torch.tensor(x, requires_grad=True)
    ref = torch_graph_conv(xt, torch.tensor(EDGES), params["weight_root"], params["weight_nbr"],
                           params.get("bias"), aggr)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12,
                               atol=1e-12)
    cot = rng.standard_normal(ref.shape)
    out.backward(gg.tensor(cot))
    ref.backward(torch.tensor(cot))
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    for name, p in conv.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), params[name].grad.numpy(), rtol=1e-12,
                                   atol=1e-12, err_msg=name)


def test_node_gradient_collects_own_and_neighbour_paths():
    """With identity weights and sum aggregation, d(sum out)/dx_j = 1 + out-degree(j)."""
    conv = nn.GraphConv(2, 2, bias=False, dtype=gg.float64)
    with gg.no_grad():
        conv.weight_root.copy_(gg.eye(2, dtype=gg.float64))
        conv.weight_nbr.copy_(gg.eye(2, dtype=gg.float64))
    x = gg.tensor(np.ones((N, 2)), requires_grad=True)
    conv(x, gg.tensor(EDGES)).sum().backward()
    out_degree = np.bincount(EDGES[0], minlength=N)
    np.testing.assert_allclose(x.grad.numpy(), np.repeat(1 + out_degree[:, None], 2, 1))


def test_mean_of_isolated_node_is_zero_and_gradcheck():
    x = gg.tensor(np.random.default_rng(1).standard_normal((N, 3)), requires_grad=True)
    agg = nn.graph.aggregate(x, gg.tensor(EDGES), "mean")
    np.testing.assert_allclose(agg.detach().numpy()[4], 0.0)
    conv = nn.GraphConv(3, 2, aggr="mean", dtype=gg.float64)
    edges = gg.tensor(EDGES)
    params = list(conv.parameters())
    assert gg.autograd.gradcheck(lambda x, *ps: conv(x, edges), [x] + params)


def test_bad_inputs():
    conv = nn.GraphConv(3, 2)
    with pytest.raises(gg.ShapeError, match=r"\(5, 4\).*in_features = 3"):
        conv(gg.zeros(5, 4), gg.tensor(EDGES))
    with pytest.raises(gg.ShapeError, match=r"\(2, E\).*\(3, 7\)"):
        conv(gg.zeros(5, 3), gg.zeros(3, 7, dtype=gg.int64))
    with pytest.raises(TypeError, match="integer"):
        conv(gg.zeros(5, 3), gg.zeros(2, 7))
    with pytest.raises(ValueError, match="aggr"):
        nn.GraphConv(3, 2, aggr="max")
    with pytest.raises(IndexError):
        conv(gg.zeros(3, 3), gg.tensor(EDGES))  # node 4 does not exist
