"""`affine_grid` and `grid_sample` (spatial transformers), as PyTorch's, composed from
existing ops: the sampling positions' integer parts are constants, the interpolation
weights are differentiable in the grid, and the corner values are `gather`s, so the
gradient reaches the input (scatter-add) and the grid (through the weights)."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..ops.elementwise import abs, cast, clamp, floor, round, where  # noqa: A004
from ..ops.index import gather
from ..tensor import Tensor

__all__ = ["affine_grid", "grid_sample"]


def _base(n: int, align_corners: bool) -> np.ndarray:
    if align_corners:
        return np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1)
    return (np.arange(n) * 2 + 1) / n - 1


def affine_grid(theta: Tensor, size, align_corners: bool = False) -> Tensor:
    """Sampling grid (N, H, W, 2) (or (N, D, H, W, 3)) of the affine maps `theta` (N, 2, 3)
    (or (N, 3, 4)) applied to the normalised output coordinates in [−1, 1]."""
    size = tuple(int(s) for s in size)
    if len(size) == 4 and tuple(theta.shape[1:]) == (2, 3):
        n, _, h, w = size
        ys, xs = np.meshgrid(_base(h, align_corners), _base(w, align_corners), indexing="ij")
        base = np.stack([xs, ys, np.ones_like(xs)], -1).reshape(1, h * w, 3)
        out_shape = (n, h, w, 2)
    elif len(size) == 5 and tuple(theta.shape[1:]) == (3, 4):
        n, _, d, h, w = size
        zs, ys, xs = np.meshgrid(_base(d, align_corners), _base(h, align_corners),
                                 _base(w, align_corners), indexing="ij")
        base = np.stack([xs, ys, zs, np.ones_like(xs)], -1).reshape(1, d * h * w, 4)
        out_shape = (n, d, h, w, 3)
    else:
        raise ShapeError(f"affine_grid: expected theta (N, 2, 3) with a 4-d size or (N, 3, 4) "
                         f"with a 5-d size, got theta {tuple(theta.shape)} and size {size}")
    if theta.shape[0] != n:
        raise ShapeError(f"affine_grid: theta {tuple(theta.shape)} has {theta.shape[0]} maps "
                         f"for a batch of {n}")
    b = Tensor(base, dtype=theta.dtype, device=theta.device)
    return (b @ theta.transpose(1, 2)).reshape(*out_shape)


def _reflect(x: Tensor, twice_low: float, twice_high: float) -> Tensor:
    if twice_low == twice_high:
        return x * 0.0
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    x = abs(x - low)
    flips = floor(x.detach() / span)
    extra = x - flips * span
    even = (flips - 2 * floor(flips / 2)) == 0
    return where(even, extra + low, span - extra + low)


def _source(coord: Tensor, n: int, padding_mode: str, align_corners: bool) -> Tensor:
    x = (coord + 1) / 2 * (n - 1) if align_corners else ((coord + 1) * n - 1) / 2
    if padding_mode == "border":
        x = clamp(x, 0, n - 1)
    elif padding_mode == "reflection":
        x = _reflect(x, 0, 2 * (n - 1)) if align_corners else _reflect(x, -1, 2 * n - 1)
        x = clamp(x, 0, n - 1)
    return x


def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear",
                padding_mode: str = "zeros", align_corners: bool | None = None) -> Tensor:
    """Sample (N, C, H, W) at the normalised (x, y) positions of `grid` (N, Ho, Wo, 2):
    bilinear (or nearest) interpolation; positions outside read zeros, the border, or the
    reflection of the input (`padding_mode`)."""
    if mode not in ("bilinear", "nearest"):
        raise NotImplementedError(f"grid_sample: mode {mode!r} is not supported (bilinear or "
                                  "nearest)")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"grid_sample: padding_mode must be 'zeros', 'border' or "
                         f"'reflection', got {padding_mode!r}")
    if input.ndim != 4 or grid.ndim != 4 or grid.shape[-1] != 2 or \
            grid.shape[0] != input.shape[0]:
        raise ShapeError(f"grid_sample: expected input (N, C, H, W) and grid (N, Ho, Wo, 2), "
                         f"got {tuple(input.shape)} and {tuple(grid.shape)}")
    ac = bool(align_corners)
    n, c, h, w = input.shape
    _, ho, wo, _ = grid.shape
    x = _source(grid[..., 0], w, padding_mode, ac).reshape(n, 1, ho * wo)
    y = _source(grid[..., 1], h, padding_mode, ac).reshape(n, 1, ho * wo)
    flat = input.reshape(n, c, h * w)

    def corner(xi: Tensor, yi: Tensor) -> Tensor:
        inside = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
        idx = cast(clamp(yi, 0, h - 1) * w + clamp(xi, 0, w - 1), "int64")
        vals = gather(flat, 2, idx.expand(n, c, ho * wo))
        return where(inside, vals, 0.0)

    if mode == "nearest":
        out = corner(round(x.detach()), round(y.detach()))  # half to even, as nearbyint
    else:
        x0, y0 = floor(x.detach()), floor(y.detach())
        wx1, wy1 = x - x0, y - y0
        wx0, wy0 = 1 - wx1, 1 - wy1
        out = (corner(x0, y0) * (wx0 * wy0) + corner(x0 + 1, y0) * (wx1 * wy0)
               + corner(x0, y0 + 1) * (wx0 * wy1) + corner(x0 + 1, y0 + 1) * (wx1 * wy1))
    return out.reshape(n, c, ho, wo)
