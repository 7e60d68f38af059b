"""`Parameter`: a Tensor that a Module registers as one of its learnable weights."""

from __future__ import annotations

from ..tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that is a learnable weight of a Module.

    Assigning a Parameter to a Module attribute registers it, so it appears in
    `parameters()` and `state_dict()`. `Parameter(t)` shares `t`'s storage (no copy);
    it requires grad unless `requires_grad=False`.
    """

    def __init__(self, data=None, requires_grad: bool = True) -> None:
        if data is None:
            from ..creation import empty

            data = empty(0)
        if not isinstance(data, Tensor):
            data = Tensor(data)
        data = data._computed()  # a gg.fuse deferred value: its array, not a stand-in
        self._data = data._data
        self._backend = data._backend
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo: dict) -> Parameter:
        if id(self) in memo:
            return memo[id(self)]
        data = Tensor(self.detach())  # a copy on the same device
        out = Parameter(data, requires_grad=self.requires_grad)
        memo[id(self)] = out
        return out
