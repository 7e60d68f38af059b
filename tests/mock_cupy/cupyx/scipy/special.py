"""Mock cupyx.scipy.special: erfc by SciPy when present, else math.erfc per element."""

import math

import numpy as np
from cupy import _core

try:
    from scipy.special import erfc as _erfc
except ImportError:  # SciPy is not a gpugrad dependency
    _vec = np.vectorize(math.erfc, otypes=[np.float64])

    def _erfc(x):
        return _vec(x).astype(np.result_type(x, np.float32))


def erfc(x):
    """The complementary error function, elementwise."""
    return _core.call(_erfc, (x,), {}, name="cupyx.scipy.special.erfc")
