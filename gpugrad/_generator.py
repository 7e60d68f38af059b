"""`gg.Generator`: a random number generator object, as `torch.Generator`.

A Generator owns its own stream, separate from the per-backend stream that
`gg.manual_seed` seeds, so a data loader's shuffle or a split can be reproduced without
touching the global state. On the CPU it is NumPy's PCG64; on a GPU, CuPy's generator.
The numbers differ from PyTorch's (a different algorithm); the semantics are the same.
"""

from __future__ import annotations

import contextlib
import json

import numpy as np

from .backend import cpu_backend, get_backend
from .device import device as Device
from .tensor import _wrap_array

__all__ = ["Generator", "rng_for", "sample"]

# torch.Generator().initial_seed(): a fresh generator is deterministic, as in PyTorch.
DEFAULT_SEED = 67280421310721


class Generator:
    """A seedable random stream: `manual_seed(s)`, `seed()`, `initial_seed()`,
    `get_state()` / `set_state(state)`, accepted by `generator=` of every random function,
    `DataLoader` and `random_split`."""

    def __init__(self, device: str | Device = "cpu") -> None:
        self.device = Device(device)
        self._initial_seed = DEFAULT_SEED
        self._rng = self._make(DEFAULT_SEED)

    def _make(self, seed: int):
        if self.device.type == "cpu":
            return np.random.default_rng(seed)
        backend = get_backend(self.device)
        with backend.cuda_device:
            return backend.xp.random.default_rng(seed)

    def manual_seed(self, seed: int) -> Generator:
        """Restart the stream from `seed` (any int; negative ones wrap as in PyTorch)."""
        seed = int(seed)
        if not -(2 ** 63) <= seed < 2 ** 64:
            raise RuntimeError(f"Generator.manual_seed: seed {seed} is out of the range "
                               f"[-2**63, 2**64)")
        seed %= 2 ** 64
        self._initial_seed = seed
        self._rng = self._make(seed)
        return self

    def seed(self) -> int:
        """Seed from the operating system's entropy; returns the new seed."""
        s = int(np.random.SeedSequence().entropy) % 2 ** 63
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        """The seed the stream last started from."""
        return self._initial_seed

    def get_state(self):
        """The stream's state as a uint8 CPU tensor (restore it with `set_state`)."""
        if self.device.type != "cpu":
            raise NotImplementedError("Generator.get_state: only CPU generators can save "
                                      "their state; reseed a CUDA generator with manual_seed")
        blob = json.dumps({"seed": self._initial_seed,
                           "bit_generator": self._rng.bit_generator.state}).encode()
        return _wrap_array(np.frombuffer(blob, dtype=np.uint8).copy(), cpu_backend)

    def set_state(self, new_state) -> Generator:
        """Restore a state returned by `get_state` (a uint8 tensor)."""
        if self.device.type != "cpu":
            raise NotImplementedError("Generator.set_state: only CPU generators can restore "
                                      "their state")
        dtype = getattr(new_state, "dtype", None)
        if str(dtype) not in ("gpugrad.uint8", "uint8"):
            raise TypeError(f"Generator.set_state: expected a uint8 tensor from get_state(), "
                            f"got {type(new_state).__name__} of dtype {dtype}")
        try:
            state = json.loads(np.asarray(new_state).tobytes().decode())
            rng = np.random.default_rng()
            rng.bit_generator.state = state["bit_generator"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise RuntimeError("Generator.set_state: the tensor is not a state saved by "
                               "Generator.get_state()") from None
        self._rng, self._initial_seed = rng, int(state["seed"])
        return self

    def __repr__(self) -> str:
        return f"<gpugrad.Generator device='{self.device}'>"


def rng_for(backend, generator: Generator | None, op: str):
    """The NumPy/CuPy random generator an op on `backend` draws from: `generator`'s when
    given (its device type must match, as in PyTorch), else the backend's global one."""
    if generator is None:
        return backend.rng
    if not isinstance(generator, Generator):
        raise TypeError(f"{op}: generator must be a gg.Generator, got "
                        f"{type(generator).__name__}")
    if generator.device.type != backend.device.type:
        raise RuntimeError(f"{op}: expected a '{backend.device.type}' device type for "
                           f"generator but found '{generator.device.type}'")
    return generator._rng


def sample(backend, generator: Generator | None, op: str, kind: str, shape: tuple, dtype,
           *params):
    """Draw an array of `shape` and NumPy `dtype` on `backend`: kind "uniform" ([0, 1)),
    "normal" (standard), "exponential" (rate 1) or "integers" (params low, high)."""
    rng = rng_for(backend, generator, op)
    with getattr(backend, "cuda_device", contextlib.nullcontext()):
        if kind == "integers":
            return rng.integers(params[0], params[1], size=shape, dtype=np.int64).astype(
                dtype, copy=False)
        fn = {"uniform": rng.random, "normal": rng.standard_normal,
              "exponential": rng.standard_exponential}[kind]
        if dtype in (np.float32, np.float64):
            return fn(shape, dtype=dtype)
        return fn(shape).astype(dtype)
