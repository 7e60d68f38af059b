"""Padding layers, as PyTorch's: `ZeroPad1d/2d/3d`, `ConstantPad1d/2d/3d`,
`ReflectionPad1d/2d/3d`, `ReplicationPad1d/2d/3d`, `CircularPad1d/2d/3d` (see `F.pad`)."""

from __future__ import annotations

from ..ops.resample import pad
from ..tensor import Tensor
from .module import Module

__all__ = [f"{kind}Pad{n}d" for kind in ("Zero", "Constant", "Reflection", "Replication",
                                           "Circular") for n in (1, 2, 3)]


class _PadNd(Module):
    _nd = 1
    _mode = "constant"

    def __init__(self, padding, value: float = 0.0) -> None:
        super().__init__()
        self.padding = (int(padding),) * (2 * self._nd) if isinstance(padding, int) \
            else tuple(int(p) for p in padding)
        if len(self.padding) != 2 * self._nd:
            raise ValueError(f"{type(self).__name__}: padding must be an int or a "
                             f"{2 * self._nd}-tuple, got {padding!r}")
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        if self._mode == "constant":
            return pad(input, self.padding, "constant", self.value)
        return pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}" + (f", value={self.value}" if self._mode == "constant" else "")


def _layer(kind: str, mode: str, nd: int, constant: bool):
    doc = f"Pad the last {nd} dim(s) in {mode!r} mode (see `F.pad`)."
    attrs = {"_nd": nd, "_mode": mode, "__doc__": doc, "__module__": __name__}
    if kind == "Zero":
        attrs["__init__"] = lambda self, padding: _PadNd.__init__(self, padding, 0.0)
    elif not constant:
        attrs["__init__"] = lambda self, padding: _PadNd.__init__(self, padding)
    name = f"{kind}Pad{nd}d"
    cls = type(name, (_PadNd,), attrs)
    cls.__qualname__ = name
    return cls


ZeroPad1d, ZeroPad2d, ZeroPad3d = (_layer("Zero", "constant", n, True) for n in (1, 2, 3))
ConstantPad1d, ConstantPad2d, ConstantPad3d = (_layer("Constant", "constant", n, True)
                                               for n in (1, 2, 3))
ReflectionPad1d, ReflectionPad2d, ReflectionPad3d = (_layer("Reflection", "reflect", n, False)
                                                     for n in (1, 2, 3))
ReplicationPad1d, ReplicationPad2d, ReplicationPad3d = (
    _layer("Replication", "replicate", n, False) for n in (1, 2, 3))
CircularPad1d, CircularPad2d, CircularPad3d = (_layer("Circular", "circular", n, False)
                                               for n in (1, 2, 3))
