"""gpugrad: reverse-mode automatic differentiation for n-dimensional arrays on NVIDIA GPUs
(CuPy, with our own CUDA kernels) and CPUs (NumPy), with a PyTorch-like API."""

from __future__ import annotations

__version__ = "0.1.0"

from . import cuda  # noqa: I001 - grouped by topic, not sorted (any order imports)
from ._dtype import (
    DType as dtype, bfloat16, complex64, complex128, float16, float32, float64, int8, int16,
    int32, int64, uint8,
)
from ._dtype import bool_ as bool  # noqa: A001 - gg.bool as in torch.bool
from .device import default_device, device, set_default_device
from .errors import DeviceError, SerializationError, ShapeError
from .tensor import Tensor
from . import autograd
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from . import ops
from .ops import *  # noqa: F403 - the functional forms: gg.add, gg.sum, gg.cat, ...
from .ops.conv import conv1d, conv2d
from .ops.pool import max_pool2d
from .creation import (
    arange, as_tensor, empty, empty_like, eye, from_dlpack, from_numpy, full, full_like,
    linspace, manual_seed, ones, ones_like, rand, rand_like, randint, randn, randn_like, tensor,
    zeros, zeros_like,
)
from . import func
# PyTorch habits (issue 19): every public subpackage after a plain import, and the aliases
# and switches training scripts use.
from . import backends, utils
from ._dtype import uint16, uint32, uint64
from ._memory_format import (
    channels_last, channels_last_3d, contiguous_format, memory_format, preserve_format,
)
from ._compile import compile  # noqa: A004 - gg.compile as torch.compile
from .backends.cuda import get_float32_matmul_precision, set_float32_matmul_precision
from . import _cuda_amp  # registers gg.cuda.amp (importable as gpugrad.cuda.amp)
from . import linalg  # gg.linalg, as torch.linalg
from . import profiler  # gg.profiler, as torch.profiler

float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001
newaxis = None
from math import e, inf, nan, pi  # gg.pi, gg.inf, ... as torch's

from . import amp, distributed, distributions, nn, optim  # distributed: no mpi4py until init
from ._autocast import autocast
from ._dtype_info import (  # dtype queries and the default dtype, as torch's
    can_cast,
    finfo,
    get_default_dtype,
    iinfo,
    promote_types,
    set_default_dtype,
)
from ._generator import Generator
from .accelerator import is_available as _accelerator_available  # noqa: F401 - gg.accelerator
from .autograd.inference_mode import inference_mode, is_inference_mode_enabled
from .creation import logspace, randint_like
from .determinism import (
    are_deterministic_algorithms_enabled,
    is_deterministic_algorithms_warn_only_enabled,
    use_deterministic_algorithms,
)
from .device import default_device as get_default_device
from .fuse import fuse  # gg.fuse: elementwise chains as one program (a decorator or region)
from .io import load, save
from .random import (
    bernoulli,
    get_rng_state,
    multinomial,
    normal,
    randperm,
    seed,
    set_rng_state,
)
from .tensor_methods import type_name  # binds Tensor.type, new_zeros, view(dtype), ...
from .threads import (
    get_num_interop_threads,
    get_num_threads,
    set_num_interop_threads,
    set_num_threads,
)

__all__ = [n for n in dir() if not n.startswith("_")]
