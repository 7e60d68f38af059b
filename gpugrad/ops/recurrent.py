"""Fused recurrent cells: the gate math of one LSTM or GRU time step as one op.

The recurrent layers in `gg.nn.rnn` unroll a sequence into a graph of these cells, the
per-step hidden projection `h @ W_hhᵀ` (a matmul node) and the slices of the input
projection; backpropagation through time is then an ordinary backward over that graph.

Fusing the gates keeps the per-step node count small. The VJP of each cell is a short
Tensor expression: it scales the incoming cotangents by the cell's local derivatives.
When no graph is being recorded (plain `backward()`), those local derivatives are
computed straight from the activations saved by forward; under `create_graph=True` they
are rebuilt as Tensor expressions of the saved inputs, so the VJP is itself
differentiable and higher derivatives are exact.
"""

from __future__ import annotations

from ..autograd.function import Op
from ..autograd.grad_mode import _state
from ..tensor import Tensor, _wrap_array
from .elementwise import sigmoid, tanh
from .shape import cat, split, stack, transpose


def _sigmoid_(xp, a):
    """σ(a) in place (a is a fresh array)."""
    xp.negative(a, out=a)
    xp.exp(a, out=a)
    a += 1
    return xp.reciprocal(a, out=a)


class StepProjection(Op):
    """The input projection of every time step in one matmul, returned per step:
    for x of shape (T, B, I),  (y_0, …, y_{T−1}) with y_t = x_t·Wᵀ + b  (B, G each).

    VJP, with Ȳ the (T·B, G) stack of the ȳ_t and X the (T·B, I) rows of x:
        x̄ = Ȳ·W (reshaped to x),  W̄ = Ȳᵀ·X,  b̄ = Σ_rows Ȳ
    """

    @staticmethod
    def forward(ctx, x, w, b):
        steps, batch, n_in = x.shape
        ctx.save_inputs(0, 1)
        ctx.has_bias = b is not None
        y = x.reshape(steps * batch, n_in) @ w.T
        if b is not None:
            y += b  # in place: no second (T·B, G) temporary
        return tuple(y.reshape(steps, batch, w.shape[0]))

    @staticmethod
    def backward(ctx, *gs):
        need = ctx.needs_input_grad
        x, w = ctx.saved_input(0), ctx.saved_input(1)
        steps, batch, n_in = x.shape
        g = stack(gs, 0).reshape(steps * batch, w.shape[0])
        gx = (g @ w).reshape(steps, batch, n_in) if need[0] else None
        gw = transpose(g, 0, 1) @ x.reshape(steps * batch, n_in) if need[1] else None
        gb = g.sum(0) if ctx.has_bias and need[2] else None
        return gx, gw, gb


class LSTMCell(Op):
    """One LSTM step from the input projection x = W_ih·x_t + b_ih + b_hh and the hidden
    projection p = W_hh·h₋ (both (B, 4H)); with a = x + p and gate order (i, f, g, o) as in
    PyTorch:

        i = σ(a_i),  f = σ(a_f),  g = tanh(a_g),  o = σ(a_o)
        c = f·c₋ + i·g,   h = o·tanh(c)

    VJP, with δc = c̄ + h̄·o·(1 − tanh²c) the total cotangent of the cell state:

        ā_i = δc·g·i(1 − i),  ā_f = δc·c₋·f(1 − f),  ā_g = δc·i·(1 − g²),
        ā_o = h̄·tanh(c)·o(1 − o),   x̄ = p̄ = ā,   c̄₋ = δc·f

    The last line is the cell-state path through time: the gradient reaching c₋ is δc
    times the forget gate, an elementwise product rather than a matrix product.
    """

    @staticmethod
    def forward(ctx, x, p, c_prev):
        xp = ctx.xp
        n = c_prev.shape[-1]
        act = x + p
        g = act[..., 2 * n:3 * n]
        xp.tanh(g, out=g)
        _sigmoid_(xp, act[..., :2 * n])
        _sigmoid_(xp, act[..., 3 * n:])
        i, f, o = act[..., :n], act[..., n:2 * n], act[..., 3 * n:]
        c = f * c_prev
        c += i * g
        tc = xp.tanh(c)
        h = o * tc
        ctx.save_inputs(0, 1, 2)
        ctx.act, ctx.tc, ctx.c_prev = act, tc, c_prev
        return h, c

    @staticmethod
    def backward(ctx, gh, gc):
        n = ctx.tc.shape[-1]
        if _state.enabled:  # create_graph: local derivatives as differentiable expressions
            c_prev = ctx.saved_input(2)
            ai, af, ag, ao = split(ctx.saved_input(0) + ctx.saved_input(1), n, -1)
            i, f, g, o = sigmoid(ai), sigmoid(af), tanh(ag), sigmoid(ao)
            tc = tanh(f * c_prev + i * g)
            dh_dc = o * (1 - tc * tc)
            local = cat([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g),
                         tc * o * (1 - o)], -1)
        else:
            ctx.saved_input(2)  # checks that c₋ was not modified in place since forward
            xp, be = ctx.xp, ctx.backend
            act, tc, c_prev = ctx.act, ctx.tc, ctx.c_prev
            i, f, g, o = act[..., :n], act[..., n:2 * n], act[..., 2 * n:3 * n], act[..., 3 * n:]
            loc = 1 - act
            loc *= act  # σ'(a) = s(1 − s) for i, f, o
            loc[..., :n] *= g
            loc[..., n:2 * n] *= c_prev
            xp.multiply(i, 1 - g * g, out=loc[..., 2 * n:3 * n])
            loc[..., 3 * n:] *= tc
            dh_dc = _wrap_array(o * (1 - tc * tc), be)
            local = _wrap_array(loc, be)
            f = _wrap_array(f, be)
        dc = gc + gh * dh_dc
        ga = cat([dc, dc, dc, gh], -1) * local
        return ga, ga, dc * f


class GRUCell(Op):
    """One GRU step from the input projection x = W_ih·x_t + b_ih and the hidden
    projection p = W_hh·h₋ + b_hh (both (B, 3H), gate order (r, z, n) as in PyTorch):

        r = σ(x_r + p_r),  z = σ(x_z + p_z),  n = tanh(x_n + r·p_n),  h = (1 − z)·n + z·h₋

    VJP, with ν = h̄·(1 − z)·(1 − n²) the cotangent of n's pre-activation:

        x̄_n = ν,  p̄_n = ν·r,  x̄_r = p̄_r = ν·p_n·r(1 − r),
        x̄_z = p̄_z = h̄·(h₋ − n)·z(1 − z),   h̄₋ = h̄·z  (plus the path through p)
    """

    @staticmethod
    def forward(ctx, x, p, h_prev):
        xp = ctx.xp
        n = h_prev.shape[-1]
        rz = _sigmoid_(xp, x[..., :2 * n] + p[..., :2 * n])
        r, z = rz[..., :n], rz[..., n:]
        pn = p[..., 2 * n:]
        nn_ = xp.tanh(x[..., 2 * n:] + r * pn)
        h = (1 - z) * nn_
        h += z * h_prev
        ctx.save_inputs(0, 1, 2)
        ctx.rz, ctx.n, ctx.pn, ctx.h_prev = rz, nn_, pn, h_prev
        return h

    @staticmethod
    def backward(ctx, gh):
        n = ctx.n.shape[-1]
        if _state.enabled:  # create_graph: local derivatives as differentiable expressions
            x, p, h_prev = ctx.saved_input(0), ctx.saved_input(1), ctx.saved_input(2)
            xr, xz, xn = split(x, n, -1)
            pr, pz, pn = split(p, n, -1)
            r, z = sigmoid(xr + pr), sigmoid(xz + pz)
            nv = tanh(xn + r * pn)
            dn = (1 - z) * (1 - nv * nv)
            dr = dn * pn * r * (1 - r)
            dz = (h_prev - nv) * z * (1 - z)
            local_x = cat([dr, dz, dn], -1)
            local_p = cat([dr, dz, dn * r], -1)
        else:
            for k in (0, 1, 2):  # in-place writes since forward are errors
                ctx.saved_input(k)
            xp, be = ctx.xp, ctx.backend
            rz, nv, pn, h_prev = ctx.rz, ctx.n, ctx.pn, ctx.h_prev
            r, z = rz[..., :n], rz[..., n:]
            loc = xp.empty(rz.shape[:-1] + (3 * n,), dtype=rz.dtype)
            dn = loc[..., 2 * n:]
            xp.multiply(1 - z, 1 - nv * nv, out=dn)
            xp.multiply(dn * pn, r * (1 - r), out=loc[..., :n])
            xp.multiply(h_prev - nv, z * (1 - z), out=loc[..., n:2 * n])
            loc_p = loc.copy()
            loc_p[..., 2 * n:] *= r
            local_x, local_p = _wrap_array(loc, be), _wrap_array(loc_p, be)
            z = _wrap_array(z, be)
        g3 = cat([gh, gh, gh], -1)
        return g3 * local_x, g3 * local_p, gh * z


def lstm_cell(x_proj: Tensor, h_proj: Tensor, c_prev: Tensor) -> tuple:
    """(h, c) of one LSTM step; the gate pre-activation is x_proj + h_proj, (B, 4H) each."""
    return LSTMCell.apply(x_proj, h_proj, c_prev)


def step_projection(x: Tensor, weight: Tensor, bias: Tensor | None) -> tuple:
    """x_t·Wᵀ + b for every step t of x (T, B, I), as a tuple of T (B, G) tensors."""
    return StepProjection.apply(x, weight, bias)


def gru_cell(x_proj: Tensor, h_proj: Tensor, h_prev: Tensor) -> Tensor:
    """h of one GRU step from the (B, 3H) input and hidden projections and h₋."""
    return GRUCell.apply(x_proj, h_proj, h_prev)
