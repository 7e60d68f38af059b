"""The Optimizer base class: parameter groups, zero_grad, a validated step, state dicts.

Subclasses say which per-parameter state they keep (`_param_state_keys`), check their
hyperparameters (`_check_group`), create missing state (`_init_state`) and apply one
update to a group through a backend method (`_update_group`). The base class checks
every gradient and every state tensor before anything is written, so a failing step
leaves all parameters and all state as they were.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable, Iterable

import numpy as np

from ..autograd import enable_grad
from ..autograd.function import version_counter
from ..backend import cpu_backend
from ..errors import DeviceError, ShapeError
from ..tensor import Tensor, _wrap_array

__all__ = ["Optimizer", "required", "check_hyper"]


class _Required:
    """Marks a hyperparameter that every parameter group must give."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class of all optimizers.

    `params` is an iterable of tensors, or of dicts with a "params" entry and per-group
    hyperparameters (the rest come from `defaults`). `state` maps each parameter (a
    Tensor) to a dict of its state; `param_groups` is the list of group dicts.
    """

    #: Per-parameter state entries shaped like the parameter (checked before each step).
    _param_state_keys: tuple = ()

    def __init__(self, params, defaults: dict) -> None:
        self.defaults = dict(defaults)
        # defaultdict as in PyTorch: custom optimizers write `self.state[p]["buf"] = ...`
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        self._host_steps: dict = {}  # param -> Python int mirror of state["step"]
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got a Tensor")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"

    # -- parameter groups -------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters (a dict with "params" and optional hyperparameters
        that override the optimizer's defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs; "
                            "use a list instead")
        elif params is None:
            raise ValueError("param_group needs a 'params' entry")
        params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        self._check_group(group)
        group["params"] = params
        self.param_groups.append(group)

    def _check_group(self, group: dict) -> None:
        """Raise ValueError for invalid hyperparameters (subclasses extend this, with
        `check_hyper`). Runs when a group is added or loaded and again before every step,
        so values set later through `param_groups` (by a scheduler or a user) are checked
        before anything is updated."""
        check_hyper(group.get("lr"), "learning rate")

    # -- gradients ------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters: drop them (`set_to_none=True`, the
        default) or fill them with zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    g.detach_()
                    g.zero_()

    # -- one step ---------------------------------------------------------------------------
    def step(self, closure: Callable | None = None, *, found_inf: Tensor | None = None):
        """Update every parameter that has a gradient; returns `closure()` when given
        (the closure re-evaluates the model and returns the loss).

        `found_inf` (a float32 tensor of one element, as `gg.amp.GradScaler` passes) skips
        the update on the device when nonzero: parameters and state keep their values and
        step counts do not advance, with no host read of the flag (the counts then live on
        the parameters' devices, see `_next_steps`).

        All gradients and state are checked first: on an error nothing is changed.
        """
        _check_found_inf(found_inf, type(self).__name__)
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        self._check_groups_before_step()
        work = [self._collect(gi, group) for gi, group in enumerate(self.param_groups)]
        flags: dict = {}  # backend -> found_inf array on that backend's device
        for group, (params, grads) in zip(self.param_groups, work):
            if not params:
                continue
            if Tensor._before_write is not None:  # a gg.fuse region may read them: first
                Tensor._before_write(*params)
            for p in params:
                self._init_state(group, p)
            self._update_group(group, params, grads, _FoundInf(found_inf, flags))
            for p in params:  # p._bump_version() without its per-call import
                version_counter(p).value += 1
        return loss

    def _check_groups_before_step(self) -> None:
        """Every group's hyperparameters, checked before any group is updated. A group
        whose entries are the very objects last checked (same keys, each value `is` the
        one seen, all of immutable types) is not checked again; a scheduler or user that
        assigns a new value gets it checked at the next step."""
        groups = self.param_groups
        checked = self.__dict__.get("_checked_groups")
        if checked is None or len(checked) != len(groups):
            checked = self._checked_groups = [None] * len(groups)
        for gi, group in enumerate(groups):
            seen = checked[gi]
            if (seen is not None and seen[0] is group and len(group) == len(seen[2])
                    and all(map(operator.is_, group.values(), seen[2]))
                    and tuple(group) == seen[1]):
                continue
            checked[gi] = None
            try:
                self._check_group(group)
            except (TypeError, ValueError) as e:
                raise type(e)(f"{type(self).__name__}.step: param_groups[{gi}]: {e}") from None
            if all(type(v) in _IMMUTABLE for k, v in group.items() if k != "params"):
                checked[gi] = (group, tuple(group), tuple(group.values()))

    def _collect(self, gi: int, group: dict) -> tuple[list, list]:
        """The parameters of a group that have gradients, and those gradients, after
        checking that they and the existing state fit the parameters."""
        name = type(self).__name__
        params, grads = [], []
        state, keys = self.state, self._param_state_keys
        for i, p in enumerate(group["params"]):
            g = p.grad
            if g is None:
                continue
            if not _fits(g, p):  # the message (and the full checks) only when something is off
                where = f"{name}.step: parameter {i} of group {gi}"
                _check_like(g, p, f"{where}: gradient")
                _check_writable(p, where)
            for key in keys:
                value = state[p].get(key) if p in state else None
                if value is not None and not _fits(value, p):
                    where = f"{name}.step: parameter {i} of group {gi}"
                    _check_like(value, p, f"{where}: state {key!r}")
                    _check_writable(value, f"{where}: state {key!r}")
            params.append(p)
            grads.append(g)
        return params, grads

    def _init_state(self, group: dict, p: Tensor) -> None:
        """Create the missing state entries of parameter `p` (subclasses override)."""

    def _update_group(self, group: dict, params: list, grads: list, found_inf) -> None:
        """Apply one update to `params` (all with gradients `grads`) in place; `found_inf`
        gives each backend's skip flag (`found_inf.on(backend)`: an array or None)."""
        raise NotImplementedError

    def _next_steps(self, group: dict, params: list, found_inf=None) -> list:
        """Advance each parameter's step count and return the counts for the update.

        Host counting (the default): state["step"] is a 0-d float32 CPU tensor, as in
        PyTorch, and a Python int beside it gives bias corrections without a read; the
        counts returned are ints. Device counting (a "capturable" group, a `found_inf`
        array from a GradScaler, or a parameter already counted on its device):
        state["step"] is a 0-d float32 tensor on the parameter's device, advanced there by
        1 − found_inf, and the returned counts are those arrays. Replays of a captured CUDA
        graph need device counting, so capturing a host-counting step raises."""
        capturable = group.get("capturable", False)
        steps = []
        for p in params:
            state = self.state[p]
            if not capturable and found_inf is None and p in self._host_steps:
                if _capturing(p._backend):
                    raise RuntimeError(f"{type(self).__name__}.step: CUDA graph capture needs "
                                       "capturable=True (host step counts would be frozen "
                                       "into the graph)")
                n = self._host_steps[p] + 1
                self._host_steps[p] = n
                step = state["step"]
                step._data[...] = n
                step._bump_version()
                steps.append(n)
                continue
            self._host_steps.pop(p, None)
            step = state["step"]
            if step._backend is not p._backend:  # host -> device copy, no read back
                step = state["step"] = _wrap_array(
                    p._backend.asarray(np.asarray(step._data, np.float32)), p._backend)
            if found_inf is None:
                step._data += 1
            else:
                step._data += 1 - found_inf.reshape(())
            step._bump_version()
            steps.append(step._data)
        return steps

    def _zero_step(self, p: Tensor) -> None:
        self.state[p]["step"] = _wrap_array(np.zeros((), np.float32), cpu_backend)
        self._host_steps[p] = 0

    # -- state dicts -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The optimizer's state in PyTorch's format: {"state": {index: {name: value}},
        "param_groups": [{..hyperparameters.., "params": [index, ...]}]}, where parameters
        are numbered in group order. State tensors are returned by reference."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        by_index = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": dict(sorted(by_index.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict from `state_dict()` (of an optimizer over parameters with the
        same shapes and group layout). Tensors are copied onto each parameter's device and
        floating state is cast to its dtype. Everything is checked before anything changes."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "state" not in state_dict or \
                "param_groups" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and "
                             "'param_groups'")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: loaded state dict has "
                             f"{len(saved_groups)} parameter groups, the optimizer has "
                             f"{len(self.param_groups)}")
        id_map = {}
        for gi, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved.get("params", ())) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: loaded parameter group {gi} has "
                                 f"{len(saved.get('params', ()))} parameters, the optimizer's "
                                 f"has {len(group['params'])}")
            id_map.update(zip(saved["params"], group["params"]))
        new_state, new_steps = {}, {}
        for key, values in state_dict["state"].items():
            p = id_map.get(_as_index(key))
            if p is None:
                raise ValueError(f"{name}.load_state_dict: state refers to parameter {key!r}, "
                                 "which is in no parameter group")
            if not isinstance(values, dict):
                raise ValueError(f"{name}.load_state_dict: state of parameter {key!r} must be "
                                 f"a dict, got {type(values).__name__}")
            new_state[p] = self._load_param_state(p, values, f"{name}.load_state_dict: "
                                                  f"parameter {key!r}")
            if "step" in new_state[p]:
                new_steps[p] = int(round(float(new_state[p]["step"]._data)))
        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            ng = {k: v for k, v in saved.items() if k != "params"}
            ng["params"] = group["params"]
            self._check_group({**self.defaults, **ng})
            new_groups.append(ng)
        self.state = defaultdict(dict, new_state)
        self._host_steps = new_steps
        self.param_groups[:] = new_groups

    def _load_param_state(self, p: Tensor, values: dict, where: str) -> dict:
        out = {}
        for key, value in values.items():
            if type(value).__module__.split(".")[0] == "torch":
                value = Tensor(value)
            if key == "step":
                if isinstance(value, Tensor):
                    if value.numel() != 1:
                        raise ValueError(f"{where}: state 'step' must hold one number, got "
                                         f"shape {value.shape}")
                    value = value._backend.to_host(value._data).reshape(()).item()
                if not isinstance(value, (int, float)):
                    raise ValueError(f"{where}: state 'step' must be a number, got "
                                     f"{type(value).__name__}")
                out[key] = _wrap_array(np.array(value, np.float32), cpu_backend)
            elif isinstance(value, Tensor):
                if key in self._param_state_keys and value.shape != p.shape:
                    raise ShapeError(f"{where}: state {key!r} has shape {value.shape}, but the "
                                     f"parameter has shape {p.shape}")
                dtype = p.dtype if value.dtype.is_floating_point else value.dtype
                out[key] = Tensor(value, dtype=dtype, device=p.device)
            else:
                out[key] = value
        return out


class _FoundInf:
    """The skip flag of one `step()`, moved to each backend's device on first use."""

    __slots__ = ("flag", "cache")

    def __init__(self, flag: Tensor | None, cache: dict) -> None:
        self.flag, self.cache = flag, cache

    def on(self, backend):
        """The flag as a float32 (1,) array on `backend`'s device, or None."""
        if self.flag is None:
            return None
        if backend not in self.cache:
            flag = self.flag if self.flag._backend is backend else self.flag.to(backend.device)
            self.cache[backend] = flag._data.reshape(1)
        return self.cache[backend]


def _check_found_inf(found_inf, name: str) -> None:
    if found_inf is None:
        return
    if not isinstance(found_inf, Tensor):
        raise TypeError(f"{name}.step: found_inf must be a Tensor, got "
                        f"{type(found_inf).__name__}")
    if found_inf.numel() != 1 or found_inf.dtype.name != "float32":
        raise TypeError(f"{name}.step: found_inf must be a float32 tensor with one element, "
                        f"got dtype {found_inf.dtype} and shape {tuple(found_inf.shape)}")


def _capturing(backend) -> bool:
    """True while the current CUDA stream of a GPU backend is capturing a graph."""
    return backend.is_capturing()


def _as_index(key):
    """A state key as an int when it is a digit string (e.g. after a JSON round trip)."""
    return int(key) if isinstance(key, str) and key.isdigit() else key


_IMMUTABLE = frozenset({int, float, bool, str, tuple, type(None), np.float64, np.float32,
                        np.int64, np.bool_})


def _fits(t, p: Tensor) -> bool:
    """The fast form of `_check_like` and `_check_writable` (of t and p) together: True
    when they would pass (same array shape, dtype and backend, both writable arrays)."""
    if not isinstance(t, Tensor):
        return False
    a, b = t._data, p._data
    if t._backend is not p._backend or a.shape != b.shape or a.dtype != b.dtype:
        return False
    # CuPy's flags have no `writeable` (device arrays always are)
    return getattr(a.flags, "writeable", True) and getattr(b.flags, "writeable", True)


def _check_like(t, p: Tensor, what: str) -> None:
    """Raise unless `t` is a Tensor with `p`'s shape, dtype and device."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{what} must be a Tensor, got {type(t).__name__}")
    if t.shape != p.shape:
        raise ShapeError(f"{what} has shape {t.shape}, but the parameter has shape {p.shape}")
    if t.dtype != p.dtype:
        raise TypeError(f"{what} has dtype {t.dtype}, but the parameter has dtype {p.dtype}")
    if t._backend is not p._backend:
        raise DeviceError(f"{what} is on {t.device}, but the parameter is on {p.device}")


def check_hyper(value, what: str, low: float = 0.0, high: float | None = None,
                high_open: bool = False) -> None:
    """Raise ValueError("Invalid <what>: <value>") unless `value` is a real number with
    low <= value (and value <= high, or < high when `high_open`). NaN fails every
    comparison, so it is invalid too (as in PyTorch); a non-number says what it got
    instead of failing later inside an update kernel."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"Invalid {what}: {value!r} (expected a number, got "
                         f"{type(value).__name__})")
    above = value < high if high_open else value <= high if high is not None else True
    if not (value >= low and above):
        raise ValueError(f"Invalid {what}: {value}")


def _check_writable(t: Tensor, where: str) -> None:
    """A read-only parameter or state (e.g. from gg.from_numpy of a non-writeable array)
    cannot take an in-place update: refuse it before any tensor has been touched."""
    flags = getattr(t._data, "flags", None)
    if flags is not None and not getattr(flags, "writeable", True):
        raise RuntimeError(f"{where} is read-only (its memory is a read-only array, e.g. "
                           "from gg.from_numpy of a non-writeable NumPy array); the optimizer "
                           "updates it in place: optimize a writable copy (tensor.clone())")


def group_by_backend(params: Iterable[Tensor]) -> dict:
    """Indices of `params` grouped by backend, so each backend updates its own arrays."""
    out: dict = {}
    for i, p in enumerate(params):
        out.setdefault(p._backend, []).append(i)
    return out
