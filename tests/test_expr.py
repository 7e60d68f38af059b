"""The pointwise expression DAG: hash-consing, canonical commutative arguments, symbolic
VJPs, substitution (how chains compose), and the renderings of a program."""

import numpy as np

from gpugrad.backend import expr as E
from gpugrad.backend.pointwise import Program
from gpugrad.ops.table import ROWS

x, y = E.var("x0"), E.var("x1")


def test_hash_consing_and_commutative_canonical_order():
    assert E.exp(x) * y is y * E.exp(x)
    assert E.hypot(x, y) is E.hypot(y, x)
    assert E.maximum(x, y) is not E.maximum(y, x)  # which zero wins a ±0 tie differs
    assert x - y is not y - x
    assert E.const(0) is not E.const(0.0)  # 0 keeps an integer tensor integer
    # common subexpressions are one node, so a program computes them once
    prog = Program(("x0",), (E.sigmoid(x) * E.sigmoid(x) + E.sigmoid(x),))
    assert prog.python_source().count("_H.sigmoid") == 1


def test_symbolic_vjp_and_second_derivative():
    g = E.var("g0")
    (d,) = E.vjp([E.tanh(x)], [g], [x])
    fn = Program(("x0", "g0"), (d,)).numpy_fn()
    a = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(fn(np, a, np.ones_like(a)), 1 - np.tanh(a) ** 2)
    (dd,) = E.vjp([d], [E.const(1.0)], [x])
    fn2 = Program(("x0", "g0"), (dd,)).numpy_fn()
    np.testing.assert_allclose(fn2(np, a, np.ones_like(a)), -2 * np.tanh(a) * (1 - np.tanh(a) ** 2))


def test_substitution_composes_rows():
    """tanh(sigmoid(x)) as one expression: the sigmoid row's output fed into tanh's."""
    inner, outer = ROWS["sigmoid"].outputs[0], ROWS["tanh"].outputs[0]
    chain = E.substitute(outer, {x: inner})
    assert chain is E.tanh(E.sigmoid(x))
    a = np.linspace(-3, 3, 7)
    got = Program(("x0",), (chain,)).numpy_fn()(np, a)
    np.testing.assert_allclose(got, np.tanh(1 / (1 + np.exp(-a))))


def test_saved_values_are_derived_from_the_vjp():
    assert ROWS["exp"].saves_output and ROWS["exp"].saved_inputs == ()
    assert ROWS["tanh"].saves_output and ROWS["sigmoid"].saves_output
    assert ROWS["silu"].saved_inputs == (0,) and not ROWS["silu"].saves_output
    assert ROWS["relu"].saves_output  # its hand-written VJP reads y
    assert ROWS["where"].saved_inputs == (0,)  # only the condition


def test_out_rendering_writes_into_the_output():
    prog = ROWS["gelu"].program_keep
    a = np.linspace(-3, 3, 11)
    o0, o1 = np.empty_like(a), np.empty_like(a)
    prog.numpy_out_fn()(np, o0, o1, a)
    y, cdf = prog.numpy_fn()(np, a)
    np.testing.assert_array_equal(o0, y)
    np.testing.assert_array_equal(o1, cdf)
