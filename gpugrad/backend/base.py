"""The Backend interface: the only seam between gpugrad's math and an array library.

A backend is the sum of its kernel families, each a module holding the NumPy reference
of its methods (the CUDA backend overrides them family by family, in cupy_*.py):

* array.py: moving data, shapes, scatters, scans, reductions, free host checks;
* ufuncs.py: single ufuncs, the pointwise table's programs, multi-output elementwise kernels;
* rows.py: softmax, log-softmax, cross-entropy and layer norm over the last axis;
* random.py: the generator and Philox dropout;
* optim.py: multi-tensor optimizer updates, gradient norm, unscaling and clipping.
"""

from __future__ import annotations

from .array import ArrayFamily, TransferCounter
from .optim import OptimFamily
from .random import RandomFamily
from .rows import RowFamily
from .ufuncs import PointwiseFamily

__all__ = ["Backend", "TransferCounter"]


class Backend(ArrayFamily, PointwiseFamily, RowFamily, RandomFamily, OptimFamily):
    """Array operations for one device.

    `xp` is the array module (numpy or cupy) for plain array math. The named methods are
    the places where the backends differ or where a fused kernel matters for speed.
    """
