"""Fused recurrent ops: the gate math of one LSTM or GRU time step as one op, and a whole
recurrent layer (one direction, every time step) as one op.

The unrolled form of a layer is a graph of these cells, the per-step hidden projection
`h @ W_hhᵀ` (a matmul node) and the slices of the input projection; backpropagation
through time is then an ordinary backward over that graph. `gg.nn.LSTM`, `GRU` and `RNN`
instead run `LSTMLayer`, `GRULayer` and `RNNLayer`, whose plain backward is BPTT written
on arrays (each weight gradient one matmul over all steps), and whose differentiable
backward (`create_graph=True`) differentiates the unrolled graph written with ordinary
ops, which stays the definition of the layer. Cells and layers are fused ops (`FusedOp`).
"""

from __future__ import annotations

from ..autograd.function import Op
from ..tensor import Tensor
from ._composite import FusedOp
from .elementwise import relu as relu_op
from .elementwise import sigmoid, tanh
from .shape import split, stack, transpose


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


class LSTMCell(FusedOp):
    """One LSTM step from the input projection x = W_ih·x_t + b_ih + b_hh and the hidden
    projection p = W_hh·h₋ (both (B, 4H)); with a = x + p and gate order (i, f, g, o) as in
    PyTorch:

        i = σ(a_i),  f = σ(a_f),  g = tanh(a_g),  o = σ(a_o)
        c = f·c₋ + i·g,   h = o·tanh(c)

    VJP, with δc = c̄ + h̄·o·(1 − tanh²c) the total cotangent of the cell state:

        ā_i = δc·g·i(1 − i),  ā_f = δc·c₋·f(1 − f),  ā_g = δc·i·(1 − g²),
        ā_o = h̄·tanh(c)·o(1 − o),   x̄ = p̄ = ā,   c̄₋ = δc·f

    The last line is the cell-state path through time: the gradient reaching c₋ is δc
    times the forget gate, an elementwise product rather than a matrix product. Beyond
    first order it differentiates `lstm_cell_composite`.
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
    def backward_arrays(ctx, gh, gc):
        ctx.saved_input(2)  # checks that c₋ was not modified in place since forward
        xp = ctx.xp
        act, tc, c_prev = ctx.act, ctx.tc, ctx.c_prev
        n = tc.shape[-1]
        i, f, g, o = act[..., :n], act[..., n:2 * n], act[..., 2 * n:3 * n], act[..., 3 * n:]
        ga = 1 - act
        ga *= act  # σ'(a) = s(1 − s) for i, f, o
        ga[..., :n] *= g
        ga[..., n:2 * n] *= c_prev
        xp.multiply(i, 1 - g * g, out=ga[..., 2 * n:3 * n])
        ga[..., 3 * n:] *= tc
        dc = o * (1 - tc * tc)
        dc *= gh
        dc += gc  # δc = c̄ + h̄·o·(1 − tanh²c)
        for k in range(3):
            ga[..., k * n:(k + 1) * n] *= dc
        ga[..., 3 * n:] *= gh
        return ga, ga, dc * f

    @staticmethod
    def composite(ctx, x, p, c_prev):
        return lstm_cell_composite(x, p, c_prev)


def lstm_cell_composite(x: Tensor, p: Tensor, c_prev: Tensor) -> tuple:
    """(h, c) of one LSTM step (see `LSTMCell`) written with ordinary ops."""
    ai, af, ag, ao = split(x + p, c_prev.shape[-1], -1)
    c = sigmoid(af) * c_prev + sigmoid(ai) * tanh(ag)
    return sigmoid(ao) * tanh(c), c


class GRUCell(FusedOp):
    """One GRU step from the input projection x = W_ih·x_t + b_ih and the hidden
    projection p = W_hh·h₋ + b_hh (both (B, 3H), gate order (r, z, n) as in PyTorch):

        r = σ(x_r + p_r),  z = σ(x_z + p_z),  n = tanh(x_n + r·p_n),  h = (1 − z)·n + z·h₋

    VJP, with ν = h̄·(1 − z)·(1 − n²) the cotangent of n's pre-activation:

        x̄_n = ν,  p̄_n = ν·r,  x̄_r = p̄_r = ν·p_n·r(1 − r),
        x̄_z = p̄_z = h̄·(h₋ − n)·z(1 − z),   h̄₋ = h̄·z  (plus the path through p)

    Beyond first order it differentiates `gru_cell_composite`.
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
    def backward_arrays(ctx, gh):
        for k in (0, 1, 2):  # in-place writes since forward are errors
            ctx.saved_input(k)
        xp = ctx.xp
        rz, nv, pn, h_prev = ctx.rz, ctx.n, ctx.pn, ctx.h_prev
        n = nv.shape[-1]
        r, z = rz[..., :n], rz[..., n:]
        gx = xp.empty(rz.shape[:-1] + (3 * n,), dtype=rz.dtype)
        dn = gx[..., 2 * n:]
        xp.multiply(1 - z, 1 - nv * nv, out=dn)
        xp.multiply(dn * pn, r * (1 - r), out=gx[..., :n])
        xp.multiply(h_prev - nv, z * (1 - z), out=gx[..., n:2 * n])
        for k in range(3):
            gx[..., k * n:(k + 1) * n] *= gh
        gp = gx.copy()
        gp[..., 2 * n:] *= r
        return gx, gp, gh * z

    @staticmethod
    def composite(ctx, x, p, h_prev):
        return gru_cell_composite(x, p, h_prev)


def gru_cell_composite(x: Tensor, p: Tensor, h_prev: Tensor) -> Tensor:
    """h of one GRU step (see `GRUCell`) written with ordinary ops."""
    n = h_prev.shape[-1]
    xr, xz, xn = split(x, n, -1)
    pr, pz, pn = split(p, n, -1)
    r, z = sigmoid(xr + pr), sigmoid(xz + pz)
    return (1 - z) * tanh(xn + r * pn) + z * h_prev


def lstm_cell(x_proj: Tensor, h_proj: Tensor, c_prev: Tensor) -> tuple:
    """(h, c) of one LSTM step; the gate pre-activation is x_proj + h_proj, (B, 4H) each."""
    return LSTMCell.apply(x_proj, h_proj, c_prev)


def step_projection(x: Tensor, weight: Tensor, bias: Tensor | None) -> tuple:
    """x_t·Wᵀ + b for every step t of x (T, B, I), as a tuple of T (B, G) tensors."""
    return StepProjection.apply(x, weight, bias)


def gru_cell(x_proj: Tensor, h_proj: Tensor, h_prev: Tensor) -> Tensor:
    """h of one GRU step from the (B, 3H) input and hidden projections and h₋."""
    return GRUCell.apply(x_proj, h_proj, h_prev)


def _lstm_unrolled(x: Tensor, h: Tensor, c: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih, b_hh,
                   reverse: bool = False, cell=lstm_cell) -> tuple:
    """One LSTM layer over x (T, B, I) as the unrolled graph: a `StepProjection`, then per
    step one hidden matmul and one cell (`LSTMCell`, or `lstm_cell_composite`: ordinary ops
    only). Returns (output (T, B, H), h_T, c_T)."""
    bias = b_ih + b_hh if b_ih is not None else None
    proj = step_projection(x, w_ih, bias)
    w_hh_t = transpose(w_hh, 0, 1)
    steps = x.shape[0]
    outs = [None] * steps
    for t in (reversed(range(steps)) if reverse else range(steps)):
        h, c = cell(proj[t], h @ w_hh_t, c)
        outs[t] = h
    return stack(outs, 0), h, c


class LSTMLayer(FusedOp):
    """A whole LSTM layer in one direction: inputs x (T, B, I), h₀, c₀ (B, H), W_ih (4H, I),
    W_hh (4H, H), biases b_ih, b_hh (4H,) or None; outputs (h_1 … h_T) as (T, B, H), h_T, c_T.
    With `reverse=True` the steps run from t = T−1 down to 0 (the backward direction of a
    bidirectional layer; "previous" below then means t + 1). Per step, as in `LSTMCell`:

        a_t = W_ih·x_t + b_ih + b_hh + W_hh·h_{t−1},  gates (i, f, g, o) of a_t
        i, f, o = σ(a_i, a_f, a_o),  g = tanh(a_g),  c_t = f·c_{t−1} + i·g,  h_t = o·tanh(c_t)

    VJP (backpropagation through time): with h̄_t the cotangent of output t, run t from the
    last step back to the first, starting from δh = h̄_T, δc = c̄_T (the final states'):

        δh ← h̄_t + δh,  δc ← δc + δh·o·(1 − tanh²c_t)
        ā_t = (δc·g·i(1 − i), δc·c_{t−1}·f(1 − f), δc·i(1 − g²), δh·tanh(c_t)·o(1 − o))
        δh ← ā_t·W_hh,  δc ← δc·f          (the cotangents of h_{t−1}, c_{t−1})

    and, with Ā, X, H₋ the (T·B, ·) stacks of ā_t, x_t and h_{t−1} over all steps,

        x̄ = Ā·W_ih,  W̄_ih = Āᵀ·X,  W̄_hh = Āᵀ·H₋,  b̄_ih = b̄_hh = Σ_rows Ā,  h̄₀ = δh, c̄₀ = δc

    so the weight gradients are one matrix product each, not one per step. Forward writes
    σ(a) as ½ + ½·tanh(a/2), so all four gates take one tanh over the (B, 4H) row.

    The arrays above are computed by hand when no graph is being recorded. Under
    `create_graph=True` the VJP instead differentiates the unrolled graph of the same
    layer (`StepProjection` and `lstm_cell_composite` per step, rebuilt from the saved
    inputs), so that higher derivatives are exact and that graph remains the definition.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=False):
        xp = ctx.xp
        steps, batch, n_in = x.shape
        n = w_hh.shape[1]
        dt = x.dtype
        # Per gate column: σ(a) = ½ + ½·tanh(½a) for i, f, o; tanh(a) for g.
        scale = xp.full((4 * n,), 0.5, dtype=dt)
        scale[2 * n:3 * n] = 1
        shift = scale.copy()
        shift[2 * n:3 * n] = 0
        x2 = x.reshape(steps * batch, n_in)
        acts = x2 @ (w_ih.T * scale)  # (T·B, 4H), half the pre-activation for σ gates
        if b_ih is not None:
            acts += (b_ih + b_hh) * scale
        acts = acts.reshape(steps, batch, 4 * n)
        w_hh_s = xp.ascontiguousarray(w_hh.T * scale)  # contiguous: a faster BLAS call
        hs = xp.empty((steps + 1, batch, n), dtype=dt)  # all h in time order, plus h₀
        cs = xp.empty((steps + 1, batch, n), dtype=dt)
        tcs = xp.empty((steps, batch, n), dtype=dt)  # tanh(c_t)
        tmp = xp.empty((batch, 4 * n), dtype=dt)
        ig = xp.empty((batch, n), dtype=dt)
        # Step t reads state slot t (t + 1 in reverse) and writes slot t + 1 (t).
        first, last = (steps, 0) if reverse else (0, steps)
        hs[first] = h0
        cs[first] = c0
        for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
            prev, nxt = (t + 1, t) if reverse else (t, t + 1)
            a = acts[t]
            xp.matmul(hs[prev], w_hh_s, out=tmp)
            a += tmp
            xp.tanh(a, out=a)
            a *= scale
            a += shift  # now the gate values (i, f, g, o)
            c = cs[nxt]
            xp.multiply(a[:, n:2 * n], cs[prev], out=c)
            xp.multiply(a[:, :n], a[:, 2 * n:3 * n], out=ig)
            c += ig
            xp.tanh(c, out=tcs[t])
            xp.multiply(a[:, 3 * n:], tcs[t], out=hs[nxt])
        ctx.save_inputs(0, 1, 2, 3, 4, 5, 6)
        ctx.save_output(0)
        ctx.set_materialize_grads(False)
        ctx.reverse = reverse
        ctx.arrays = (x2, w_ih, w_hh, acts, hs, cs, tcs)
        out = hs[:steps] if reverse else hs[1:]
        return out, hs[last].copy(), cs[last].copy()

    @staticmethod
    def composite(ctx, *inputs):
        return _lstm_unrolled(*inputs, reverse=ctx.reverse, cell=lstm_cell_composite)

    @staticmethod
    def backward_arrays(ctx, gout, g_h, g_c):
        need = ctx.needs_input_grad
        xp = ctx.xp
        # Check against in-place writes what this VJP reads (and that it was not freed).
        ctx.saved_output_array()
        ctx.saved_input(4)
        if need[0]:
            ctx.saved_input(3)
        if need[3]:
            ctx.saved_input(0)
        x2, w_ih, w_hh, acts, hs, cs, tcs = ctx.arrays
        steps, batch, g4 = acts.shape
        n = g4 // 4
        dt = acts.dtype
        reverse = ctx.reverse
        d_all = xp.empty_like(acts)  # ā_t for every step
        dh = xp.zeros((batch, n), dtype=dt) if g_h is None else g_h.copy()
        dc = xp.zeros((batch, n), dtype=dt) if g_c is None else g_c.copy()
        tmp = xp.empty((batch, n), dtype=dt)
        der = xp.empty((batch, g4), dtype=dt)
        order = range(steps) if reverse else range(steps - 1, -1, -1)
        last = order[-1]
        for t in order:
            prev = t + 1 if reverse else t
            y, tc, d = acts[t], tcs[t], d_all[t]
            i, f, g, o = y[:, :n], y[:, n:2 * n], y[:, 2 * n:3 * n], y[:, 3 * n:]
            if gout is not None:
                dh += gout[t]
            xp.multiply(tc, tc, out=tmp)
            xp.subtract(1, tmp, out=tmp)
            tmp *= o
            tmp *= dh
            dc += tmp  # δc ← δc + δh·o·(1 − tanh²c)
            xp.multiply(dc, g, out=d[:, :n])
            xp.multiply(dc, cs[prev], out=d[:, n:2 * n])
            xp.multiply(dc, i, out=d[:, 2 * n:3 * n])
            xp.multiply(dh, tc, out=d[:, 3 * n:])
            # Local derivatives: y(1 − y) for σ gates, 1 − y² for g.
            xp.multiply(y, y, out=der)
            xp.subtract(y[:, :2 * n], der[:, :2 * n], out=der[:, :2 * n])
            xp.subtract(y[:, 3 * n:], der[:, 3 * n:], out=der[:, 3 * n:])
            xp.subtract(1, der[:, 2 * n:3 * n], out=der[:, 2 * n:3 * n])
            d *= der
            dc *= f
            if t != last or need[1]:
                dh = d @ w_hh
        gx, gw_ih, gw_hh, gb_ih, gb_hh = _input_and_weight_grads(
            d_all, x2, hs, w_ih, n, reverse, need[0], need[3], need[4], need[5], need[6])
        return (gx, dh if need[1] else None, dc if need[2] else None, gw_ih, gw_hh, gb_ih,
                gb_hh)

    def _release(self) -> None:
        super()._release()
        self.arrays = None  # the saved activations and states go with the saved inputs


def _gru_unrolled(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih, b_hh,
                  reverse: bool = False, cell=gru_cell) -> tuple:
    """One GRU layer over x (T, B, I) as the unrolled graph: a `StepProjection`, then per
    step one hidden matmul (plus b_hh) and one cell (`GRUCell`, or `gru_cell_composite`).
    Returns (output (T, B, H), h_T)."""
    proj = step_projection(x, w_ih, b_ih)
    w_hh_t = transpose(w_hh, 0, 1)
    steps = x.shape[0]
    outs = [None] * steps
    for t in (reversed(range(steps)) if reverse else range(steps)):
        hp = h @ w_hh_t
        h = cell(proj[t], hp if b_hh is None else hp + b_hh, h)
        outs[t] = h
    return stack(outs, 0), h


class GRULayer(FusedOp):
    """A whole GRU layer in one direction: inputs x (T, B, I), h₀ (B, H), W_ih (3H, I),
    W_hh (3H, H), biases b_ih, b_hh (3H,) or None; outputs (h_1 … h_T) as (T, B, H) and h_T
    (`reverse=True`: steps from T−1 down to 0). Per step, as in `GRUCell`, with
    x = W_ih·x_t + b_ih and p = W_hh·h_{t−1} + b_hh:

        r = σ(x_r + p_r),  z = σ(x_z + p_z),  n = tanh(x_n + r·p_n),  h_t = (1 − z)·n + z·h_{t−1}

    VJP (backpropagation through time), from the last step back, starting from δh = h̄_T:

        δh ← h̄_t + δh,  ν = δh·(1 − z)·(1 − n²)
        x̄_t = (ν·p_n·r(1 − r), δh·(h_{t−1} − n)·z(1 − z), ν),  p̄_t = (x̄_r, x̄_z, ν·r)
        δh ← δh·z + p̄_t·W_hh      (the cotangent of h_{t−1})

    and, with X̄, P̄, X, H₋ the (T·B, ·) stacks over all steps,

        x̄ = X̄·W_ih,  W̄_ih = X̄ᵀ·X,  W̄_hh = P̄ᵀ·H₋,  b̄_ih = Σ_rows X̄,  b̄_hh = Σ_rows P̄,  h̄₀ = δh

    Computed on arrays when no graph is being recorded; under `create_graph=True` the VJP
    differentiates the unrolled graph (`StepProjection`, `gru_cell_composite`), as
    `LSTMLayer` does.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False):
        xp = ctx.xp
        steps, batch, n_in = x.shape
        n = w_hh.shape[1]
        dt = x.dtype
        x2 = x.reshape(steps * batch, n_in)
        acts = x2 @ w_ih.T  # (T·B, 3H): x, then the gate values (r, z, n) in place
        if b_ih is not None:
            acts += b_ih
        acts = acts.reshape(steps, batch, 3 * n)
        w_hh_t = xp.ascontiguousarray(w_hh.T)
        hs = xp.empty((steps + 1, batch, n), dtype=dt)
        pns = xp.empty((steps, batch, n), dtype=dt)  # p_n of every step
        p = xp.empty((batch, 3 * n), dtype=dt)
        first, last = (steps, 0) if reverse else (0, steps)
        hs[first] = h0
        for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
            prev, nxt = (t + 1, t) if reverse else (t, t + 1)
            a = acts[t]
            xp.matmul(hs[prev], w_hh_t, out=p)
            if b_hh is not None:
                p += b_hh
            rz = a[:, :2 * n]
            rz += p[:, :2 * n]
            _sigmoid_(xp, rz)
            pns[t] = p[:, 2 * n:]
            an = a[:, 2 * n:]
            p[:, 2 * n:] *= rz[:, :n]
            an += p[:, 2 * n:]
            xp.tanh(an, out=an)
            h = hs[nxt]  # h = n + z·(h₋ − n)
            xp.subtract(hs[prev], an, out=h)
            h *= rz[:, n:]
            h += an
        ctx.save_inputs(0, 1, 2, 3, 4, 5)
        ctx.save_output(0)
        ctx.set_materialize_grads(False)
        ctx.reverse = reverse
        ctx.arrays = (x2, w_ih, w_hh, acts, hs, pns)
        out = hs[:steps] if reverse else hs[1:]
        return out, hs[last].copy()

    @staticmethod
    def composite(ctx, *inputs):
        return _gru_unrolled(*inputs, reverse=ctx.reverse, cell=gru_cell_composite)

    @staticmethod
    def backward_arrays(ctx, gout, g_h):
        need = ctx.needs_input_grad
        xp = ctx.xp
        _check_not_modified(ctx, need)
        x2, w_ih, w_hh, acts, hs, pns = ctx.arrays
        steps, batch, g3 = acts.shape
        n = g3 // 3
        dt = acts.dtype
        reverse = ctx.reverse
        dxs = xp.empty_like(acts)  # x̄_t for every step
        dps = xp.empty_like(acts)  # p̄_t
        dh = xp.zeros((batch, n), dtype=dt) if g_h is None else g_h.copy()
        tmp = xp.empty((batch, n), dtype=dt)
        order = range(steps) if reverse else range(steps - 1, -1, -1)
        for t in order:
            prev = t + 1 if reverse else t
            y, pn, dx, dp = acts[t], pns[t], dxs[t], dps[t]
            r, z, nv = y[:, :n], y[:, n:2 * n], y[:, 2 * n:]
            if gout is not None:
                dh += gout[t]
            nu = dx[:, 2 * n:]
            xp.multiply(nv, nv, out=nu)
            xp.subtract(1, nu, out=nu)
            xp.subtract(1, z, out=tmp)
            nu *= tmp
            nu *= dh  # ν = δh·(1 − z)·(1 − n²)
            xp.multiply(nu, r, out=dp[:, 2 * n:])
            xp.subtract(1, r, out=tmp)
            tmp *= r
            tmp *= pn
            xp.multiply(nu, tmp, out=dx[:, :n])
            xp.subtract(1, z, out=tmp)
            tmp *= z
            xp.subtract(hs[prev], nv, out=dx[:, n:2 * n])
            dx[:, n:2 * n] *= tmp
            dx[:, n:2 * n] *= dh
            dp[:, :2 * n] = dx[:, :2 * n]
            dh *= z
            dh += dp @ w_hh
        flat_x = dxs.reshape(steps * batch, g3)
        flat_p = dps.reshape(steps * batch, g3)
        gx = gw_ih = gw_hh = gb_ih = gb_hh = None
        if need[0]:
            gx = (flat_x @ w_ih).reshape(steps, batch, x2.shape[1])
        if need[2]:
            gw_ih = flat_x.T @ x2
        if need[3]:
            h_prev = hs[1:] if reverse else hs[:steps]
            gw_hh = flat_p.T @ h_prev.reshape(steps * batch, n)
        if need[4]:
            gb_ih = flat_x.sum(0)
        if need[5]:
            gb_hh = flat_p.sum(0)

        return gx, dh if need[1] else None, gw_ih, gw_hh, gb_ih, gb_hh

    def _release(self) -> None:
        super()._release()
        self.arrays = None


def _rnn_unrolled(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih, b_hh,
                  reverse: bool = False, relu: bool = False) -> tuple:
    """One Elman layer over x (T, B, I) as the unrolled graph: a `StepProjection`, then per
    step one hidden matmul, an add and tanh (or relu). Returns (output (T, B, H), h_T)."""
    proj = step_projection(x, w_ih, b_ih + b_hh if b_ih is not None else None)
    w_hh_t = transpose(w_hh, 0, 1)
    steps = x.shape[0]
    outs = [None] * steps
    for t in (reversed(range(steps)) if reverse else range(steps)):
        pre = proj[t] + h @ w_hh_t
        h = relu_op(pre) if relu else tanh(pre)
        outs[t] = h
    return stack(outs, 0), h


class RNNLayer(FusedOp):
    """A whole Elman layer in one direction: inputs x (T, B, I), h₀ (B, H), W_ih (H, I),
    W_hh (H, H), biases b_ih, b_hh (H,) or None; outputs (h_1 … h_T) as (T, B, H) and h_T
    (`reverse=True`: steps from T−1 down to 0). Per step, with φ = tanh (or relu):

        h_t = φ(a_t),  a_t = W_ih·x_t + b_ih + b_hh + W_hh·h_{t−1}

    VJP (backpropagation through time), from the last step back, starting from δh = h̄_T:

        δh ← h̄_t + δh,  ā_t = δh·φ′ (1 − h_t² for tanh, [h_t > 0] for relu),  δh ← ā_t·W_hh

    and, with Ā, X, H₋ the (T·B, ·) stacks over all steps,

        x̄ = Ā·W_ih,  W̄_ih = Āᵀ·X,  W̄_hh = Āᵀ·H₋,  b̄_ih = b̄_hh = Σ_rows Ā,  h̄₀ = δh

    Computed on arrays when no graph is being recorded; under `create_graph=True` the VJP
    differentiates the unrolled graph, as `LSTMLayer` does.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False, relu=False):
        xp = ctx.xp
        steps, batch, n_in = x.shape
        n = w_hh.shape[1]
        x2 = x.reshape(steps * batch, n_in)
        hs = xp.empty((steps + 1, batch, n), dtype=x.dtype)  # all h in time order, plus h₀
        first, last = (steps, 0) if reverse else (0, steps)
        out = hs[:steps] if reverse else hs[1:]
        xp.matmul(x2, w_ih.T, out=out.reshape(steps * batch, n))
        if b_ih is not None:
            out += b_ih + b_hh
        w_hh_t = xp.ascontiguousarray(w_hh.T)
        tmp = xp.empty((batch, n), dtype=x.dtype)
        hs[first] = h0
        for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
            prev, nxt = (t + 1, t) if reverse else (t, t + 1)
            h = hs[nxt]  # holds the input projection until overwritten with h_t
            xp.matmul(hs[prev], w_hh_t, out=tmp)
            h += tmp
            if relu:
                xp.maximum(h, 0, out=h)
            else:
                xp.tanh(h, out=h)
        ctx.save_inputs(0, 1, 2, 3, 4, 5)
        ctx.save_output(0)
        ctx.set_materialize_grads(False)
        ctx.reverse, ctx.relu = reverse, relu
        ctx.arrays = (x2, w_ih, w_hh, hs)
        return out, hs[last].copy()

    @staticmethod
    def composite(ctx, *inputs):
        return _rnn_unrolled(*inputs, reverse=ctx.reverse, relu=ctx.relu)

    @staticmethod
    def backward_arrays(ctx, gout, g_h):
        need = ctx.needs_input_grad
        xp = ctx.xp
        _check_not_modified(ctx, need)
        x2, w_ih, w_hh, hs = ctx.arrays
        steps = hs.shape[0] - 1
        batch, n = hs.shape[1:]
        reverse = ctx.reverse
        d_all = xp.empty((steps, batch, n), dtype=hs.dtype)  # ā_t for every step
        dh = xp.zeros((batch, n), dtype=hs.dtype) if g_h is None else g_h.copy()
        order = range(steps) if reverse else range(steps - 1, -1, -1)
        last = order[-1]
        for t in order:
            y, d = hs[t if reverse else t + 1], d_all[t]
            if gout is not None:
                dh += gout[t]
            if ctx.relu:
                xp.multiply(dh, y > 0, out=d)
            else:
                xp.multiply(y, y, out=d)
                xp.subtract(1, d, out=d)
                d *= dh
            if t != last or need[1]:
                dh = d @ w_hh
        gx, gw_ih, gw_hh, gb_ih, gb_hh = _input_and_weight_grads(
            d_all, x2, hs, w_ih, n, reverse, need[0], need[2], need[3], need[4], need[5])
        return gx, dh if need[1] else None, gw_ih, gw_hh, gb_ih, gb_hh

    def _release(self) -> None:
        super()._release()
        self.arrays = None


def lstm_layer(x: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih, b_hh,
               reverse: bool = False) -> tuple:
    """One LSTM layer, one direction, over x (T, B, I) from (h₀, c₀) (B, H) each:
    (output (T, B, H), h_T, c_T), as one fused op."""
    return LSTMLayer.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=reverse)


def gru_layer(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih, b_hh,
              reverse: bool = False) -> tuple:
    """One GRU layer, one direction, over x (T, B, I) from h₀ (B, H): (output (T, B, H), h_T),
    as one fused op."""
    return GRULayer.apply(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=reverse)


def rnn_layer(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih, b_hh,
              reverse: bool = False, relu: bool = False) -> tuple:
    """One Elman layer (tanh, or relu), one direction, over x (T, B, I) from h₀ (B, H):
    (output (T, B, H), h_T), as one fused op."""
    return RNNLayer.apply(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=reverse, relu=relu)


def _input_and_weight_grads(d_all, x2, hs, w_ih, n: int, reverse: bool, need_x: bool,
                            need_w_ih: bool, need_w_hh: bool, need_b_ih: bool,
                            need_b_hh: bool) -> tuple:
    """(x̄, W̄_ih, W̄_hh, b̄_ih, b̄_hh) from the stacked per-step pre-activation gradients
    d_all (steps, batch, width): a recurrence's weight gradients are sums over time, so
    each is one GEMM over all steps."""
    steps, batch, width = d_all.shape
    flat = d_all.reshape(steps * batch, width)
    gx = gw_ih = gw_hh = gb_ih = gb_hh = None
    if need_x:
        gx = (flat @ w_ih).reshape(steps, batch, x2.shape[1])
    if need_w_ih:
        gw_ih = flat.T @ x2
    if need_w_hh:
        h_prev = hs[1:] if reverse else hs[:steps]
        gw_hh = flat.T @ h_prev.reshape(steps * batch, n)
    if need_b_ih or need_b_hh:
        gb = flat.sum(0)
        gb_ih = gb if need_b_ih else None
        if need_b_hh:  # a separate array: the two leaves' .grad must not alias
            gb_hh = gb.copy() if need_b_ih else gb
    return gx, gw_ih, gw_hh, gb_ih, gb_hh


def _check_not_modified(ctx, need) -> None:
    """GRU/RNN layer backward reads raw saved arrays: unpacking the saved output, W_hh
    (input 3), and the tensors whose gradients use them (W_ih for x̄, x for W̄_ih) raises
    if any was written in place since forward."""
    ctx.saved_output_array()
    ctx.saved_input(3)
    if need[0]:
        ctx.saved_input(2)
    if need[2]:
        ctx.saved_input(0)
