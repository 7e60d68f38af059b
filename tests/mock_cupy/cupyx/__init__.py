"""Mock cupyx (the part gpugrad calls): scatter_add/max/min and scipy.special.erfc."""

import numpy as np
from cupy import _core


def scatter_add(a, slices, value) -> None:
    """a[slices] += value, adding repeated indices (numpy.add.at)."""
    _core.call(np.add.at, (a, slices, value), {}, name="cupyx.scatter_add")


def scatter_max(a, slices, value) -> None:
    """a[slices] = maximum(a[slices], value), repeated indices keeping their largest value
    (numpy.maximum.at)."""
    _core.call(np.maximum.at, (a, slices, value), {}, name="cupyx.scatter_max")


def scatter_min(a, slices, value) -> None:
    """a[slices] = minimum(a[slices], value), repeated indices keeping their smallest value
    (numpy.minimum.at)."""
    _core.call(np.minimum.at, (a, slices, value), {}, name="cupyx.scatter_min")
