"""cupy.random: generators computed by NumPy's, results on the device."""

from __future__ import annotations

import numpy as np

from .. import _core


class Generator:
    """cupy.random.Generator (random, standard_normal, integers, ...)."""

    def __init__(self, bit_generator=None) -> None:
        self._g = np.random.default_rng(bit_generator)

    def random(self, size=None, dtype=np.float64, out=None):
        return _core.call(lambda: self._g.random(size, dtype=dtype), (), {})

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        return _core.call(lambda: self._g.standard_normal(size, dtype=dtype), (), {})

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return _core.call(lambda: self._g.integers(low, high, size=size, dtype=dtype,
                                                    endpoint=endpoint), (), {})

    def __getattr__(self, name):
        fn = getattr(self._g, name)
        return lambda *a, **k: _core.call(fn, a, k, name=f"Generator.{name}")


def default_rng(seed=None) -> Generator:
    return Generator(seed)


_global = Generator()


def seed(s=None) -> None:
    global _global
    _global = Generator(s)


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    legacy = getattr(np.random, name)
    return lambda *a, **k: _core.call(legacy, a, k, name=f"cupy.random.{name}")
