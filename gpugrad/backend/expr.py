"""Pointwise expressions: a small hash-consed DAG of scalar primitives.

An `Expr` is a leaf (a named variable, a named scalar parameter or a constant) or a
primitive applied to Exprs. Construction is hash-consed (equal expressions are the same
object, so common subexpressions merge by themselves) and commutative arguments are put
in a canonical order. Each primitive in `PRIMS` has exactly three things: a NumPy/CuPy
rendering (`np`), a CUDA C rendering computed in the accumulation type of
kernels/common.cuh (`cu`), and its local partial derivatives (`grad`).

`vjp` differentiates an expression symbolically (reverse mode over the DAG), so VJPs are
Exprs again and can be differentiated once more; `substitute` composes expressions, which
is how chains of pointwise ops fuse. Rendering to code lives in `pointwise.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Expr", "var", "param", "const", "PRIMS", "vjp", "substitute", "free_vars",
           "topo_order", "postorder"]

_TABLE: dict = {}
_COUNTER = [0]


class Expr:
    """One node of a pointwise expression (build with the functions of this module)."""

    __slots__ = ("op", "args", "value", "uid")

    def __init__(self, op: str, args: tuple, value) -> None:
        self.op, self.args, self.value = op, args, value
        self.uid = _COUNTER[0]
        _COUNTER[0] += 1

    # Python operators build expressions, so rows read like math.
    def __add__(self, o):
        return add(self, lift(o))

    def __radd__(self, o):
        return add(lift(o), self)

    def __sub__(self, o):
        return sub(self, lift(o))

    def __rsub__(self, o):
        return sub(lift(o), self)

    def __mul__(self, o):
        return mul(self, lift(o))

    def __rmul__(self, o):
        return mul(lift(o), self)

    def __truediv__(self, o):
        return div(self, lift(o))

    def __rtruediv__(self, o):
        return div(lift(o), self)

    def __neg__(self):
        return neg(self)

    def __pow__(self, o):
        return pow_(self, lift(o))

    def __lt__(self, o):
        return _node("lt", self, lift(o))

    def __le__(self, o):
        return _node("le", self, lift(o))

    def __gt__(self, o):
        return _node("gt", self, lift(o))

    def __ge__(self, o):
        return _node("ge", self, lift(o))

    def __and__(self, o):
        return _node("and", self, lift(o))

    def __or__(self, o):
        return _node("or", self, lift(o))

    def __invert__(self):
        return _node("not", self)

    # == and != keep identity (hash-consing makes equal expressions one object, and Exprs
    # are dict keys): build equality tests with eq() and ne().
    def __hash__(self) -> int:
        return self.uid

    def __eq__(self, o) -> bool:
        return self is o

    def __repr__(self) -> str:
        if self.op in ("var", "param"):
            return str(self.value)
        if self.op == "const":
            return repr(self.value[1])
        return f"{self.op}({', '.join(map(repr, self.args))})"

    @property
    def is_bool(self) -> bool:
        """Whether the expression's value is a truth value (comparisons and logic)."""
        return self.op in _BOOL_OPS or (self.op == "where" and self.args[1].is_bool)


def _key_value(value):
    # 1, 1.0 and True are different constants: they keep an integer tensor integer.
    return (type(value).__name__, value) if not isinstance(value, str) else value


def _intern(op: str, args: tuple, value=None) -> Expr:
    key = (op, tuple(a.uid for a in args), value)
    e = _TABLE.get(key)
    if e is None:
        e = _TABLE[key] = Expr(op, args, value)
    return e


def var(name: str) -> Expr:
    """An input variable (a tensor operand of the row, or its output `y`, or a cotangent)."""
    return _intern("var", (), name)


def param(name: str) -> Expr:
    """A scalar parameter: a kernel argument, not part of the compiled code."""
    return _intern("param", (), name)


def const(value) -> Expr:
    """A numeric constant (its Python type is kept: 0 and 0.0 are different constants)."""
    return _intern("const", (), _key_value(value))


def lift(x) -> Expr:
    return x if isinstance(x, Expr) else const(x)


def _is_const(e: Expr, v=None) -> bool:
    return e.op == "const" and (v is None or e.value[1] == v)


# --- primitives ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Prim:
    """A primitive: `np` and `cu` are format strings over the argument names ({0}, {1},
    ...); `grad(args, out)` returns one local partial (an Expr, or None for zero) per
    argument. `commutative` arguments are sorted; `holomorphic=False` marks a partial that
    is already the complex cotangent factor (not conjugated, e.g. abs → sgn); NumPy's
    floating-point warnings (exp → inf on purpose) are silenced by gpugrad's warnings
    filter (backend/fp_warnings.py), which costs nothing per call, unlike np.errstate."""

    np: str
    cu: str
    grad: Callable | None = None
    commutative: bool = False
    holomorphic: bool = True


_LN2, _LN10 = math.log(2.0), math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_PI_OVER_2 = math.sqrt(math.pi) / 2.0
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _zero(args, out):
    return (None,) * len(args)


PRIMS: dict[str, Prim] = {
    # arithmetic
    "add": Prim("({0} + {1})", "({0} + {1})", lambda a, y: (const(1), const(1)), True),
    "sub": Prim("({0} - {1})", "({0} - {1})", lambda a, y: (const(1), const(-1))),
    "mul": Prim("({0} * {1})", "({0} * {1})", lambda a, y: (a[1], a[0]), True),
    "div": Prim("({0} / {1})", "({0} / {1})", lambda a, y: (1.0 / a[1], -(y / a[1]))),
    "neg": Prim("(-{0})", "(-{0})", lambda a, y: (const(-1),)),
    "pow": Prim("xp.power({0}, {1})", "gg_pow({0}, {1})",
                lambda a, y: (where(eq(a[1], 0), const(0), a[1] * pow_(a[0], a[1] - 1)),
                              where(eq(a[0], 0) & (real(a[1]) >= 0), const(0), y * log(a[0])))),
    "max": Prim("xp.maximum({0}, {1})", "gg_max({0}, {1})",
                lambda a, y: (_tie_weight(a[0], a[1], "lt"), _tie_weight(a[1], a[0], "lt"))),
    "min": Prim("xp.minimum({0}, {1})", "gg_min({0}, {1})",
                lambda a, y: (_tie_weight(a[0], a[1], "gt"), _tie_weight(a[1], a[0], "gt"))),
    "abs": Prim("xp.abs({0})", "gg_abs({0})", lambda a, y: (sgn(a[0]),), holomorphic=False),
    "sgn": Prim("_H.sgn(xp, {0})", "gg_sign({0})", _zero),
    "real": Prim("xp.real({0})", "{0}", _zero),
    "floor": Prim("xp.floor({0})", "gg_floor({0})", _zero),
    "trunc": Prim("xp.trunc({0})", "gg_trunc({0})", _zero),
    "where": Prim("_H.where(xp, {0}, {1}, {2})", "({0} ? {1} : {2})",
                  lambda a, y: (None, where(a[0], const(1), const(0)),
                                where(a[0], const(0), const(1)))),
    # exponentials and logarithms
    "exp": Prim("xp.exp({0})", "gg_exp({0})", lambda a, y: (y,)),
    "expm1": Prim("xp.expm1({0})", "gg_expm1({0})", lambda a, y: (y + 1,)),
    "exp2": Prim("xp.exp2({0})", "gg_exp2({0})", lambda a, y: (y * _LN2,)),
    "log": Prim("xp.log({0})", "gg_log({0})", lambda a, y: (1.0 / a[0],)),
    "log1p": Prim("xp.log1p({0})", "gg_log1p({0})", lambda a, y: (1.0 / (a[0] + 1),)),
    "log2": Prim("xp.log2({0})", "gg_log2({0})", lambda a, y: (1.0 / (a[0] * _LN2),)),
    "log10": Prim("xp.log10({0})", "gg_log10({0})", lambda a, y: (1.0 / (a[0] * _LN10),)),
    "sqrt": Prim("xp.sqrt({0})", "gg_sqrt({0})", lambda a, y: (0.5 / y,)),
    "rsqrt": Prim("_H.rsqrt(xp, {0})", "gg_rsqrt({0})", lambda a, y: (-0.5 * y * y * y,)),
    "logaddexp": Prim("xp.logaddexp({0}, {1})", "gg_logaddexp({0}, {1})",
                      lambda a, y: (sigmoid(a[0] - a[1]), sigmoid(a[1] - a[0])), True),
    # trigonometric and hyperbolic
    "sin": Prim("xp.sin({0})", "gg_sin({0})", lambda a, y: (cos(a[0]),)),
    "cos": Prim("xp.cos({0})", "gg_cos({0})", lambda a, y: (-sin(a[0]),)),
    "tan": Prim("xp.tan({0})", "gg_tan({0})", lambda a, y: (1 + y * y,)),
    "asin": Prim("xp.arcsin({0})", "gg_asin({0})", lambda a, y: (rsqrt(1 - a[0] * a[0]),)),
    "acos": Prim("xp.arccos({0})", "gg_acos({0})", lambda a, y: (-rsqrt(1 - a[0] * a[0]),)),
    "atan": Prim("xp.arctan({0})", "gg_atan({0})", lambda a, y: (1.0 / (1 + a[0] * a[0]),)),
    "atan2": Prim("xp.arctan2({0}, {1})", "gg_atan2({0}, {1})",
                  lambda a, y: (a[1] / (a[0] * a[0] + a[1] * a[1]),
                                -a[0] / (a[0] * a[0] + a[1] * a[1]))),
    "sinh": Prim("xp.sinh({0})", "gg_sinh({0})", lambda a, y: (cosh(a[0]),)),
    "cosh": Prim("xp.cosh({0})", "gg_cosh({0})", lambda a, y: (sinh(a[0]),)),
    "tanh": Prim("xp.tanh({0})", "gg_tanh({0})", lambda a, y: (1 - y * y,)),
    "asinh": Prim("xp.arcsinh({0})", "gg_asinh({0})",
                  lambda a, y: (rsqrt(a[0] * a[0] + 1),)),
    "acosh": Prim("xp.arccosh({0})", "gg_acosh({0})",
                  lambda a, y: (rsqrt((a[0] - 1) * (a[0] + 1)),)),
    "atanh": Prim("xp.arctanh({0})", "gg_atanh({0})", lambda a, y: (1.0 / (1 - a[0] * a[0]),)),
    "hypot": Prim("xp.hypot({0}, {1})", "gg_hypot({0}, {1})",
                  lambda a, y: (a[0] / y, a[1] / y), True),
    "copysign": Prim("xp.copysign({0}, {1})", "gg_copysign({0}, {1})",
                     lambda a, y: (where(eq(a[0], 0), const(0), y / a[0]), None)),
    "fmod": Prim("xp.fmod({0}, {1})", "gg_fmod({0}, {1})",
                 lambda a, y: (const(1), -trunc(a[0] / a[1]))),
    "remainder": Prim("_H.remainder(xp, {0}, {1})", "gg_remainder({0}, {1})",
                      lambda a, y: (const(1), -floor(a[0] / a[1]))),
    # precision-sensitive special functions: hand-written, never compositions
    "sigmoid": Prim("_H.sigmoid(xp, {0})", "gg_sigmoid({0})", lambda a, y: (y * (1 - y),)),
    "softplus": Prim("_H.softplus(xp, {0})", "gg_softplus({0})",
                     lambda a, y: (sigmoid(a[0]),)),
    "erf": Prim("_H.erf(xp, {0})", "gg_erf({0})",
                lambda a, y: (_TWO_OVER_SQRT_PI * exp(-(a[0] * a[0])),)),
    "erfc": Prim("_H.erfc(xp, {0})", "gg_erfc({0})",
                 lambda a, y: (-_TWO_OVER_SQRT_PI * exp(-(a[0] * a[0])),)),
    "erfinv": Prim("_H.erfinv(xp, {0})", "gg_erfinv({0})",
                   lambda a, y: (_SQRT_PI_OVER_2 * exp(y * y),)),
    "ndtr": Prim("_H.ndtr(xp, {0})", "gg_ndtr({0})",
                 lambda a, y: (INV_SQRT_2PI * exp(-0.5 * (a[0] * a[0])),)),
    # comparisons and logic (truth values; zero derivative)
    "lt": Prim("({0} < {1})", "({0} < {1})", _zero),
    "le": Prim("({0} <= {1})", "({0} <= {1})", _zero),
    "gt": Prim("({0} > {1})", "({0} > {1})", _zero),
    "ge": Prim("({0} >= {1})", "({0} >= {1})", _zero),
    "eq": Prim("({0} == {1})", "({0} == {1})", _zero, True),
    "ne": Prim("({0} != {1})", "({0} != {1})", _zero, True),
    "and": Prim("({0} & {1})", "({0} && {1})", _zero, True),
    "or": Prim("({0} | {1})", "({0} || {1})", _zero, True),
    "not": Prim("(~{0})", "(!{0})", _zero),
    "conj": Prim("xp.conj({0})", "{0}", lambda a, y: (None,)),
}

_BOOL_OPS = frozenset({"lt", "le", "gt", "ge", "eq", "ne", "and", "or", "not"})


def _node(op: str, *args: Expr) -> Expr:
    if PRIMS[op].commutative:
        args = tuple(sorted(args, key=lambda e: e.uid))
    if all(a.op == "const" for a in args) and op in _FOLD:
        return const(_FOLD[op](*(a.value[1] for a in args)))
    return _intern(op, args)


_FOLD = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
         "neg": lambda a: -a}


# --- constructors (light algebraic simplification keeps derived VJPs small) ----------------
def add(a: Expr, b: Expr) -> Expr:
    if _is_const(a, 0):
        return b
    if _is_const(b, 0):
        return a
    if b.op == "neg":
        return sub(a, b.args[0])
    return _node("add", a, b)


def sub(a: Expr, b: Expr) -> Expr:
    if _is_const(b, 0):
        return a
    if _is_const(a, 0):
        return neg(b)
    return _node("sub", a, b)


def mul(a: Expr, b: Expr) -> Expr:
    for x, c in ((a, b), (b, a)):
        if _is_const(c, 1):
            return x
        if _is_const(c, -1):
            return neg(x)
        if c.op == "where" and _is_const(c.args[1]) and _is_const(c.args[2]) \
                and c.args[1].value[1] in (0, 1) and c.args[2].value[1] in (0, 1):
            # x·[cond] is where(cond, x, 0): exact where x is inf or NaN (PyTorch's where rule)
            return where(c.args[0], mul(x, c.args[1]) if c.args[1].value[1] else const(0),
                         mul(x, c.args[2]) if c.args[2].value[1] else const(0))
    if a.op == "neg" and b.op == "neg":
        return mul(a.args[0], b.args[0])
    if a.op == "neg":
        return neg(mul(a.args[0], b))
    if b.op == "neg":
        return neg(mul(a, b.args[0]))
    return _node("mul", a, b)


def div(a: Expr, b: Expr) -> Expr:
    if _is_const(b, 1):
        return a
    return _node("div", a, b)


def neg(a: Expr) -> Expr:
    if a.op == "neg":
        return a.args[0]
    return _node("neg", a)


def pow_(a: Expr, b: Expr) -> Expr:
    if _is_const(b, 1):
        return a
    if _is_const(b, 2):
        return mul(a, a)
    return _node("pow", a, b)


def where(c: Expr, a, b) -> Expr:
    a, b = lift(a), lift(b)
    if a is b:
        return a
    return _node("where", c, a, b)


def _tie_weight(a: Expr, b: Expr, loses: str) -> Expr:
    """max/min's share for `a`: 0 where it loses, ½ on a tie, 1 else (a NaN takes all)."""
    return where(_node(loses, a, b), const(0), where(eq(a, b), const(0.5), const(1)))


def _unary(op: str) -> Callable[[Expr], Expr]:
    def build(a) -> Expr:
        return _node(op, lift(a))

    build.__name__ = op
    return build


def _binary(op: str) -> Callable[[Expr, Expr], Expr]:
    def build(a, b) -> Expr:
        return _node(op, lift(a), lift(b))

    build.__name__ = op
    return build


(exp, expm1, exp2, log, log1p, log2, log10, sqrt, rsqrt, sin, cos, tan, asin, acos, atan,
 sinh, cosh, tanh, asinh, acosh, atanh, sigmoid, softplus, erf, erfc, ndtr, abs_, sgn, real,
 floor, trunc, conj, erfinv) = map(_unary, (
    "exp", "expm1", "exp2", "log", "log1p", "log2", "log10", "sqrt", "rsqrt", "sin", "cos",
    "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
    "sigmoid", "softplus", "erf", "erfc", "ndtr", "abs", "sgn", "real", "floor", "trunc",
    "conj", "erfinv"))
(maximum, minimum, atan2, hypot, copysign, fmod, remainder, logaddexp, eq, ne) = map(_binary, (
    "max", "min", "atan2", "hypot", "copysign", "fmod", "remainder", "logaddexp", "eq", "ne"))


# --- graph utilities --------------------------------------------------------------------------
def postorder(roots, args: Callable, key: Callable) -> list:
    """Every node reachable from `roots` through `args(node)`, each once (by `key(node)`),
    arguments before their users; iterative, so a deep graph is fine."""
    order, seen = [], set()
    for root in roots:
        stack = [(root, False)]
        while stack:
            n, done = stack.pop()
            if done:
                order.append(n)
                continue
            k = key(n)
            if k in seen:
                continue
            seen.add(k)
            stack.append((n, True))
            stack.extend((a, False) for a in reversed(args(n)) if key(a) not in seen)
    return order


def topo_order(roots) -> list[Expr]:
    """Every node reachable from `roots`, arguments before their users."""
    return postorder(roots, _args, _uid)


def _args(e: Expr) -> tuple:
    return e.args


def _uid(e: Expr) -> int:
    return e.uid


def free_vars(roots) -> set[str]:
    """Names of the variables the expressions read."""
    return {e.value for e in topo_order(roots) if e.op == "var"}


def substitute(e: Expr, mapping: dict) -> Expr:
    """`e` with each node in `mapping` (Expr → Expr) replaced, rebuilt bottom-up."""
    memo = dict(mapping)
    for node in topo_order([e]):
        if node in memo:
            continue
        if not node.args:
            memo[node] = node
            continue
        args = tuple(memo[a] for a in node.args)
        memo[node] = node if all(x is y for x, y in zip(args, node.args)) else \
            _rebuild(node.op, args)
    return memo[e]


_BUILDERS = {"add": add, "sub": sub, "mul": mul, "div": div, "neg": neg, "pow": pow_,
             "where": where}


def _rebuild(op: str, args: tuple) -> Expr:
    build = _BUILDERS.get(op)
    return build(*args) if build is not None else _node(op, *args)


def vjp(outs, cotangents, wrt, complex_: bool = False) -> list:
    """Reverse-mode symbolic VJP: for each Expr in `wrt`, Σ over outputs and paths of
    cotangent·∂out/∂wrt (None where it does not depend on it). With `complex_`, each local
    partial of a holomorphic primitive enters conjugated (PyTorch's convention)."""
    adj: dict = {}
    for o, c in zip(outs, cotangents):
        adj[o] = c if o not in adj else add(adj[o], c)
    for node in reversed(topo_order(list(outs))):
        g = adj.get(node)
        if g is None or not node.args:
            continue
        prim = PRIMS[node.op]
        if complex_ and node.op in _WIRTINGER:
            partials = (None,) * len(node.args)
            _accumulate(adj, node.args[0], _WIRTINGER[node.op](g, node))
        else:
            partials = prim.grad(node.args, node)
        for a, d in zip(node.args, partials):
            if d is None or a.is_bool:
                continue
            if complex_ and prim.holomorphic and d.op != "const":
                d = conj(d)
            _accumulate(adj, a, mul(g, d))
    return [adj.get(w) for w in wrt]


def _accumulate(adj: dict, node: Expr, term: Expr) -> None:
    prev = adj.get(node)
    adj[node] = term if prev is None else add(prev, term)


# Non-holomorphic primitives' complex VJPs, ȳ ↦ x̄ (PyTorch's conjugate-Wirtinger
# convention): conj gives conj(ȳ); real and abs have real outputs, so only the real part
# of their cotangent moves them, and |z| sends it along z/|z| (0 at 0).
_WIRTINGER = {
    "conj": lambda g, y: conj(g),
    "real": lambda g, y: real(g),
    "abs": lambda g, y: mul(real(g), where(eq(y, 0), const(0), y.args[0] / y)),
}
