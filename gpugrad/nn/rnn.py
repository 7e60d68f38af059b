"""Recurrent layers: `RNN`, `LSTM`, `GRU` (multi-layer, optionally bidirectional) and their
single-step cells `RNNCell`, `LSTMCell`, `GRUCell`.

Parameter names, shapes, gate order (LSTM: i, f, g, o; GRU: r, z, n) and the default
initialisation U(−1/√H, 1/√H) are PyTorch's, so state dicts load either way.

Each layer and direction runs the whole sequence as one fused op (`LSTMLayer`,
`GRULayer`, `RNNLayer` in `gpugrad.ops.recurrent`): one input-projection matmul for all
steps, then per step one hidden-projection matmul and the gate math, on arrays. Its plain
backward is backpropagation through time written on arrays, with each weight gradient one
matmul over all steps; under `create_graph=True` it differentiates the unrolled graph of
the layer (`StepProjection` and one fused cell op per step), which stays the definition.
Dropout between layers is an ordinary op outside the layer ops.
"""

from __future__ import annotations

import math

from ..creation import empty, zeros
from ..errors import ShapeError
from ..ops.elementwise import relu, tanh
from ..ops.recurrent import gru_cell, gru_layer, lstm_cell, lstm_layer, rnn_layer
from ..ops.shape import cat, contiguous, stack, unbind
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _check_state(name: str, h: Tensor, expected: tuple, what: str) -> None:
    if not isinstance(h, Tensor):
        raise TypeError(f"{name}: {what} must be a Tensor, got {type(h).__name__}")
    if tuple(h.shape) != expected:
        raise ShapeError(f"{name}: Expected {what} size {expected}, got {tuple(h.shape)}")


class RNNBase(Module):
    """Shared machinery of `RNN`, `LSTM` and `GRU` (see those for the math)."""

    def flatten_parameters(self) -> None:
        """Accepted for PyTorch compatibility (cuDNN's weight packing); the weights are
        already used as they are stored, so this does nothing."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None) -> None:
        super().__init__()
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"hidden_size must be a positive integer, got {hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"dropout should be a number in [0, 1], got {dropout}")
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bool(bidirectional)
        dirs = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * dirs
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                setattr(self, "weight_ih" + sfx, Parameter(empty(gate_size, layer_in,
                                                                 device=device, dtype=dtype)))
                setattr(self, "weight_hh" + sfx, Parameter(empty(gate_size, hidden_size,
                                                                 device=device, dtype=dtype)))
                if bias:
                    setattr(self, "bias_ih" + sfx, Parameter(empty(gate_size, device=device,
                                                                   dtype=dtype)))
                    setattr(self, "bias_hh" + sfx, Parameter(empty(gate_size, device=device,
                                                                   dtype=dtype)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(−1/√hidden_size, 1/√hidden_size), as in PyTorch."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def _weights(self, layer: int, d: int) -> tuple:
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        p = self._parameters
        return (p["weight_ih" + sfx], p["weight_hh" + sfx], p.get("bias_ih" + sfx),
                p.get("bias_hh" + sfx))

    # -- forward ------------------------------------------------------------------------
    def _prepare(self, input: Tensor, hx):
        """(T, B, I) input, initial states per (layer, direction), and how to undo the layout."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
        if input.ndim not in (2, 3):
            raise ShapeError(f"{name}: Expected input to be 2D or 3D, got {input.ndim}D tensor "
                             f"of shape {tuple(input.shape)}")
        if input.dtype.category < 2:
            raise TypeError(f"{name}: input must be a floating-point tensor, got {input.dtype}")
        batched = input.ndim == 3
        if input.shape[-1] != self.input_size:
            raise ShapeError(f"{name}: input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {input.shape[-1]} (input shape "
                             f"{tuple(input.shape)})")
        if not batched:
            x = input.unsqueeze(1)
        elif self.batch_first:
            x = input.transpose(0, 1)
        else:
            x = input
        if x.shape[0] == 0:
            raise ShapeError(f"{name}: the input sequence is empty (input shape "
                             f"{tuple(input.shape)})")
        b = x.shape[1]
        n_states = self.num_layers * (2 if self.bidirectional else 1)
        expected = (n_states, b, self.hidden_size) if batched else (n_states, self.hidden_size)
        n_parts = 2 if self.mode == "LSTM" else 1
        if hx is None:
            parts = [zeros(n_states, b, self.hidden_size, dtype=x.dtype, device=x.device)
                     for _ in range(n_parts)]
        else:
            if self.mode == "LSTM":
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError(f"{name}: hx must be a tuple (h_0, c_0)")
                parts = list(hx)
            else:
                parts = [hx]
            for k, h in enumerate(parts):
                _check_state(name, h, expected, ("hidden", "cell")[k])
            if not batched:
                parts = [h.unsqueeze(1) for h in parts]
            parts = [h.to(x.dtype) if h.dtype is not x.dtype else h for h in parts]
        states = [unbind(h, 0) if n_states > 1 else (h.squeeze(0),) for h in parts]
        return x, states, batched

    def _run_direction(self, x: Tensor, weights: tuple, h: Tensor, c, reverse: bool):
        """One layer, one direction over x (T, B, I). Returns (output (T, B, H), h_T, c_T)."""
        w_ih, w_hh, b_ih, b_hh = weights
        mode = self.mode
        if mode == "LSTM":  # the whole time loop is one op
            return lstm_layer(x, h, c, w_ih, w_hh, b_ih, b_hh, reverse=reverse)
        if mode == "GRU":
            return (*gru_layer(x, h, w_ih, w_hh, b_ih, b_hh, reverse=reverse), None)
        out, h = rnn_layer(x, h, w_ih, w_hh, b_ih, b_hh, reverse=reverse,
                           relu=mode == "RNN_RELU")
        return out, h, None

    def forward(self, input: Tensor, hx: Tensor | tuple | None = None) -> tuple:
        """Run the layer over a sequence; see the class docstring for shapes."""
        x, states, batched = self._prepare(input, hx)
        is_lstm = self.mode == "LSTM"
        dirs = 2 if self.bidirectional else 1
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            per_dir = []
            for d in range(dirs):
                k = layer * dirs + d
                c0 = states[1][k] if is_lstm else None
                out, h, c = self._run_direction(x, self._weights(layer, d), states[0][k], c0,
                                                reverse=bool(d))
                per_dir.append(out)
                h_n.append(h)
                c_n.append(c)
            last = layer == self.num_layers - 1
            x = per_dir[0] if dirs == 1 else cat(per_dir, -1)
            if last and batched and self.batch_first:
                x = contiguous(x.transpose(0, 1))
            if not last and self.dropout > 0 and self.training:
                x = F.dropout(x, self.dropout, True)
        output = x if batched else x.squeeze(1)
        h_n = stack(h_n, 0)
        if not batched:
            h_n = h_n.squeeze(1)
        if not is_lstm:
            return output, h_n
        c_n = stack(c_n, 0)
        return output, (h_n, c_n if batched else c_n.squeeze(1))

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN: h_t = act(W_ih·x_t + b_ih + W_hh·h_{t−1} + b_hh), act tanh or relu.

    `forward(input, h_0=None)` takes input (T, B, input_size) ((B, T, ·) with batch_first,
    or unbatched (T, input_size)) and h_0 (num_layers·num_directions, B, hidden_size);
    it returns (output, h_n) with output (T, B, num_directions·hidden_size) holding the
    last layer's h_t for every t, and h_n every layer's final state.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity {nonlinearity!r}; use 'tanh' or 'relu'")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype)


class LSTM(RNNBase):
    """Long short-term memory: with gates (i, f, g, o) from W_ih·x_t + b_ih + W_hh·h_{t−1} +
    b_hh (σ for i, f, o; tanh for g), c_t = f·c_{t−1} + i·g and h_t = o·tanh(c_t).

    `forward(input, (h_0, c_0)=None)` returns (output, (h_n, c_n)); shapes as for `RNN`.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit: r = σ(W_ir·x + b_ir + W_hr·h + b_hr), z likewise,
    n = tanh(W_in·x + b_in + r·(W_hn·h + b_hn)), h_t = (1 − z)·n + z·h_{t−1}.

    `forward(input, h_0=None)` returns (output, h_n); shapes as for `RNN`.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, device, dtype)


# --- single-step cells -------------------------------------------------------------------------
class _CellBase(Module):
    def __init__(self, input_size: int, hidden_size: int, bias: bool, gates: int, device,
                 dtype) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_ih = Parameter(empty(gates * hidden_size, input_size, device=device,
                                         dtype=dtype))
        self.weight_hh = Parameter(empty(gates * hidden_size, hidden_size, device=device,
                                         dtype=dtype))
        if bias:
            self.bias_ih = Parameter(empty(gates * hidden_size, device=device, dtype=dtype))
            self.bias_hh = Parameter(empty(gates * hidden_size, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        stdv = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def _check(self, input: Tensor) -> tuple:
        name = type(self).__name__
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ShapeError(f"{name}: input has inconsistent input_size: got input of shape "
                             f"{tuple(input.shape)}, expected input_size {self.input_size}")
        x = input if input.ndim == 2 else input.unsqueeze(0)
        return x, input.ndim == 2

    def _state(self, hx, x: Tensor, batched: bool) -> Tensor:
        if hx is None:
            return zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
        expected = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        _check_state(type(self).__name__, hx, expected, "hidden")
        return hx if batched else hx.unsqueeze(0)


class RNNCell(_CellBase):
    """One Elman step: h' = act(W_ih·x + b_ih + W_hh·h + b_hh), act tanh or relu."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity {nonlinearity!r}; use 'tanh' or 'relu'")
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """h' of shape (B, hidden_size) (or (hidden_size,) for an unbatched input)."""
        x, batched = self._check(input)
        h = self._state(hx, x, batched)
        pre = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh,
                                                                   self.bias_hh)
        out = tanh(pre) if self.nonlinearity == "tanh" else relu(pre)
        return out if batched else out.squeeze(0)


class LSTMCell(_CellBase):
    """One LSTM step: returns (h', c') from input x and (h, c); gate order i, f, g, o."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple:
        """(h', c'), each (B, hidden_size) (or (hidden_size,) for an unbatched input)."""
        x, batched = self._check(input)
        h, c = (None, None) if hx is None else hx
        h, c = self._state(h, x, batched), self._state(c, x, batched)
        h, c = lstm_cell(F.linear(x, self.weight_ih, self.bias_ih),
                         F.linear(h, self.weight_hh, self.bias_hh), c)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(_CellBase):
    """One GRU step: h' = (1 − z)·n + z·h; gate order r, z, n."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """h' of shape (B, hidden_size) (or (hidden_size,) for an unbatched input)."""
        x, batched = self._check(input)
        h = self._state(hx, x, batched)
        out = gru_cell(F.linear(x, self.weight_ih, self.bias_ih),
                       F.linear(h, self.weight_hh, self.bias_hh), h)
        return out if batched else out.squeeze(0)
