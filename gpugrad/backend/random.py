"""The random family: the per-device generator (uniform, normal, integers) and dropout
with a counter-based RNG (Philox4x32-10), whose mask backward regenerates instead of
storing. The NumPy versions are the reference (kernels/dropout.cu on the GPU)."""

from __future__ import annotations

import random

from . import trace as _trace
from .array import widen

_U32 = 0xFFFFFFFF
_PHILOX_M = (0xD2511F53, 0xCD9E8D57)
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)


class RandomFamily:
    """Random numbers of a backend (mixed into Backend; uses `xp`)."""

    def manual_seed(self, seed: int) -> None:
        """Reseed this device's generator and its dropout stream."""
        raise NotImplementedError

    def uniform(self, shape, dtype):
        """Uniform samples in [0, 1) of `shape` and array dtype `dtype`."""
        raise NotImplementedError

    def normal(self, shape, dtype):
        """Standard normal samples of `shape` and array dtype `dtype`."""
        raise NotImplementedError

    def randint(self, low, high, shape, dtype):
        """Integers uniform in [low, high) of `shape` and array dtype `dtype`."""
        raise NotImplementedError

    # -- dropout with a counter-based RNG --------------------------------------------------
    # Whether dropout regenerates its mask in backward from a Philox (seed, offset) instead
    # of storing it (the CUDA backend: one kernel each way, no mask in memory). The CPU
    # keeps storing it: there a stored mask is cheaper than NumPy recomputing Philox.
    regenerates_dropout_mask = False
    _philox_seed: int | None = None
    _philox_offset = 0

    def philox_state(self, n: int) -> tuple[int, int]:
        """(seed, offset) for `n` fresh dropout values, advancing the offset past them (as
        PyTorch's CUDA generator does). The seed follows `manual_seed`; it is kept on the
        host, so drawing one never reads the device."""
        if self._philox_seed is None:
            self._philox_seed = random.getrandbits(63)
        offset = self._philox_offset
        self._philox_offset += (n + 3) // 4  # counters used: one per four values
        return self._philox_seed, offset

    def seed_philox(self, seed: int) -> None:
        """Restart the dropout stream at (seed, offset 0) (called by `manual_seed`)."""
        self._philox_seed, self._philox_offset = int(seed) & ((1 << 64) - 1), 0

    @_trace.traced
    def dropout_forward(self, x, p: float, seed: int, offset: int):
        """y = x·m/(1 − p) where m is the Philox4x32-10 mask of (seed, offset) (see
        `dropout_mask`); the same (seed, offset) regenerates it in `dropout_backward`."""
        return self._dropout_apply(x, p, seed, offset)

    @_trace.traced
    def dropout_backward(self, g, p: float, seed: int, offset: int):
        """x̄ = ȳ·m/(1 − p) with the forward's mask, regenerated from (seed, offset)."""
        return self._dropout_apply(g, p, seed, offset)

    def dropout_mask(self, n: int, p: float, seed: int, offset: int):
        """The keep mask (bool, n elements) of dropout: element i keeps when word i mod 4 of
        Philox4x32-10(counter = (j_lo, j_hi, offset_lo, offset_hi), key = (seed_lo,
        seed_hi)), j = i div 4, is ≥ ⌊p·2³²⌋."""
        xp = self.xp
        j = xp.arange((n + 3) // 4, dtype=xp.uint64)
        words = philox4x32_10(xp, (j & _U32, j >> 32, offset & _U32, (offset >> 32) & _U32),
                              (seed & _U32, (seed >> 32) & _U32))
        u = xp.stack(words, axis=-1).reshape(-1)[:n]
        return u >= xp.uint32(dropout_threshold(p))

    def _dropout_apply(self, x, p, seed, offset):
        xp = self.xp
        acc = xp.float64 if x.dtype == xp.float64 else xp.float32
        if p >= 1:
            scale = acc(0)
        else:
            keep = self.dropout_mask(x.size, p, seed, offset).reshape(x.shape)
            scale = xp.where(keep, acc(1.0 / (1.0 - p)), acc(0))
        return (widen(xp, x) * scale).astype(x.dtype, copy=False)

    def dropout_philox_state(self, n: int) -> tuple[int, int] | None:
        """(seed, offset) for a dropout of `n` elements whose mask backward regenerates
        (`philox_state`), or None where this backend stores a Bernoulli mask instead."""
        return self.philox_state(n) if self.regenerates_dropout_mask else None


def dropout_threshold(p: float) -> int:
    """⌊p·2³²⌋ for 0 ≤ p < 1: a Philox word u keeps its element when u ≥ this."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1) here, got {p}")
    return min(int(p * 4294967296.0), _U32)


def philox4x32_10(xp, counter, key) -> tuple:
    """Philox4x32-10 (Random123) of a counter of four 32-bit words (arrays or ints,
    broadcasting) and a key of two 32-bit ints: four uint32 arrays. The products of two
    32-bit words are formed exactly in uint64."""
    c0, c1, c2, c3 = (xp.asarray(c, dtype=xp.uint64) & xp.uint64(_U32) for c in counter)
    k0, k1 = int(key[0]) & _U32, int(key[1]) & _U32
    m0, m1 = xp.uint64(_PHILOX_M[0]), xp.uint64(_PHILOX_M[1])
    low = xp.uint64(_U32)
    for r in range(10):
        if r:
            k0, k1 = (k0 + _PHILOX_W[0]) & _U32, (k1 + _PHILOX_W[1]) & _U32
        p0, p1 = m0 * c0, m1 * c2
        c0, c1, c2, c3 = ((p1 >> xp.uint64(32)) ^ c1 ^ xp.uint64(k0), p1 & low,
                          (p0 >> xp.uint64(32)) ^ c3 ^ xp.uint64(k1), p0 & low)
    return tuple(c.astype(xp.uint32) for c in (c0, c1, c2, c3))


