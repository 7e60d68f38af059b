"""Message passing on graphs: `GraphConv`.

A node's new features combine its own features and an aggregate of its in-neighbours':

    x_i' = W_root·x_i + W_nbr·AGG_{j→i} x_j + b

The aggregate is a gather of source rows (`index_select`) followed by a scatter-add into
target rows (`segment_sum`). Backward reverses both: a node's gradient collects the path
through its own update (W_rootᵀ·x̄'_i) and, through the scatter's VJP (a gather), one
message gradient from every neighbour it sent to, as the chain rule sums all paths.
"""

from __future__ import annotations

import math

from ..autograd.grad_mode import no_grad
from ..creation import empty, ones
from ..errors import ShapeError
from ..ops.elementwise import clamp
from ..ops.index import index_out_of_range, index_select, segment_sum
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["GraphConv", "aggregate"]


def _check_edges(edge_index: Tensor, x: Tensor, op: str, num_nodes: int | None = None) -> None:
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"{op}: edge_index must be an integer Tensor of shape (2, E), got "
                        f"{type(edge_index).__name__}")
    if edge_index.dtype.category != 1:
        raise TypeError(f"{op}: edge_index must be an integer tensor, got {edge_index.dtype}")
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise ShapeError(f"{op}: edge_index must have shape (2, E), got "
                         f"{tuple(edge_index.shape)}")
    if x.ndim != 2:
        raise ShapeError(f"{op}: node features must be 2-D (num_nodes, features), got "
                         f"{tuple(x.shape)}")
    n_src, n_dst = x.shape[0], x.shape[0] if num_nodes is None else num_nodes
    for row, what, n in ((0, "source", n_src), (1, "target", n_dst)):
        bad = index_out_of_range(edge_index[row], n)
        if bad is not None:
            raise IndexError(f"{op}: edge_index row {row} ({what} nodes) holds node {bad}, "
                             f"but there are {n} nodes (node indices must be in [0, {n}); "
                             f"x has shape {tuple(x.shape)})")


def aggregate(x: Tensor, edge_index: Tensor, aggr: str = "sum",
              num_nodes: int | None = None) -> Tensor:
    """AGG_{j→i} x_j for every node i: the sum (or mean) of x over the sources j of the
    edges (j, i) in `edge_index` (2, E). Nodes without in-edges get zeros."""
    if aggr not in ("sum", "mean"):
        raise ValueError(f"aggregate: aggr must be 'sum' or 'mean', got {aggr!r}")
    _check_edges(edge_index, x, "aggregate", num_nodes)
    n = x.shape[0] if num_nodes is None else num_nodes
    src, dst = edge_index[0], edge_index[1]
    out = segment_sum(index_select(x, 0, src), dst, n)
    if aggr == "mean":
        with no_grad():
            deg = segment_sum(ones(dst.shape[0], dtype=x.dtype, device=x.device), dst, n)
            inv = 1.0 / clamp(deg, min=1.0)
        out = out * inv.unsqueeze(-1)
    return out


class GraphConv(Module):
    """Graph convolution x_i' = W_root·x_i + W_nbr·AGG_{j→i} x_j + b, with AGG the sum or
    the mean (by in-degree; isolated nodes aggregate to 0) over in-edges.

    Called as `conv(x, edge_index)` with x (num_nodes, in_features) and edge_index
    (2, E) integer, row 0 the source and row 1 the target of each edge. Parameters:
    `weight_root` and `weight_nbr` (out_features, in_features), `bias` (out_features),
    initialised like `Linear`'s.
    """

    def __init__(self, in_features: int, out_features: int, aggr: str = "sum",
                 bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        if aggr not in ("sum", "mean"):
            raise ValueError(f"GraphConv: aggr must be 'sum' or 'mean', got {aggr!r}")
        self.in_features, self.out_features, self.aggr = in_features, out_features, aggr
        kw = {"device": device, "dtype": dtype}
        self.weight_root = Parameter(empty(out_features, in_features, **kw))
        self.weight_nbr = Parameter(empty(out_features, in_features, **kw))
        if bias:
            self.bias = Parameter(empty(out_features, **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform weights and U(−1/√in, 1/√in) bias, as `Linear`."""
        init.kaiming_uniform_(self.weight_root, a=math.sqrt(5))
        init.kaiming_uniform_(self.weight_nbr, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """New node features (num_nodes, out_features)."""
        _check_edges(edge_index, x, "GraphConv")
        if x.shape[-1] != self.in_features:
            raise ShapeError(f"GraphConv: node features of shape {tuple(x.shape)} do not match "
                             f"in_features = {self.in_features}")
        # The linear map commutes with the sum/mean: aggregate in the narrower space.
        if self.out_features < self.in_features:
            nbr = aggregate(F.linear(x, self.weight_nbr), edge_index, self.aggr)
        else:
            nbr = F.linear(aggregate(x, edge_index, self.aggr), self.weight_nbr)
        return F.linear(x, self.weight_root, self.bias) + nbr

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, aggr={self.aggr!r}, "
                f"bias={self.bias is not None}")
