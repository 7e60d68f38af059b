"""Matrix products against PyTorch and float64 finite differences."""

import numpy as np
import pytest
import torch
from oracle import check, gradcheck, rand

import gpugrad as gg

MATMUL_SHAPES = [
    ((2, 3), (3, 4)),
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((2, 1, 2, 3), (3, 3, 2)),
    ((4,), (2, 4, 3)),
    ((2, 4, 3), (3,)),
    ((1, 1), (1, 1)),
    ((1,), (1,)),
    ((0, 3), (3, 2)),
    ((2, 0), (0, 3)),
    ((0,), (0,)),
    ((2, 0, 3), (3, 4)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES, ids=str)
def test_matmul_vs_torch(sa, sb):
    check(lambda a, b: a @ b, [rand(*sa), rand(*sb)])
    check(lambda a, b: a.matmul(b), [rand(*sa), rand(*sb)])


@pytest.mark.parametrize("sa,sb", [s for s in MATMUL_SHAPES if 0 not in s[0] + s[1]][:9],
                         ids=str)
def test_matmul_gradcheck(sa, sb):
    gradcheck(lambda a, b: a @ b, rand(*sa), rand(*sb))


def test_matmul_noncontiguous():
    check(lambda a, b: a.T @ b, [rand(3, 2), rand(3, 4)])
    check(lambda a, b: a @ b[:, ::2], [rand(2, 3), rand(3, 8)])
    check(lambda a, b: a.transpose(1, 2) @ b.mT, [rand(2, 3, 4), rand(5, 3)])
    check(lambda a, b: a @ b, [rand(2, 3), rand(3, 4)], non_contiguous=True)
    check(lambda a, b: a @ b, [rand(2, 3), rand(3)[::-1].copy()], non_contiguous=True)


def test_rmatmul():
    check(lambda a, b: b.__rmatmul__(a), [rand(2, 3), rand(3, 4)])


def test_matmul_float32():
    check(lambda a, b: a @ b, [rand(4, 5, dtype=np.float32), rand(5, 3, dtype=np.float32)],
          atol=1e-5)


def test_matmul_double_backward():
    def g(lib):
        def f(a, b):
            y = ((a @ b) ** 2).sum()
            return lib.autograd.grad(y, [a, b], create_graph=True)
        return f

    check(g(gg), [rand(2, 3, 4), rand(4, 2)], torch_fn=g(torch))
    check(g(gg), [rand(3), rand(2, 3, 4)], torch_fn=g(torch))


@pytest.mark.parametrize("name,fn,shapes", [
    ("mm", lambda a, b: a.mm(b), [(2, 3), (3, 4)]),
    ("bmm", lambda a, b: a.bmm(b), [(2, 2, 3), (2, 3, 4)]),
    ("dot", lambda a, b: a.dot(b), [(3,), (3,)]),
    ("outer", lambda a, b: a.outer(b), [(3,), (2,)]),
], ids=["mm", "bmm", "dot", "outer"])
def test_matmul_variants(name, fn, shapes):
    check(fn, [rand(*s) for s in shapes])
    gradcheck(fn, *[rand(*s) for s in shapes])


# --- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("sa,sb", [
    ((3, 4), (5, 6)), ((3,), (4,)), ((2, 3), (4,)), ((4,), (3, 2)), ((2, 3, 4), (5, 6)),
], ids=str)
def test_matmul_shape_error_names_both_shapes(sa, sb):
    pat = rf"matmul.*{sa}.*{sb}".replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=pat):
        gg.ones(*sa) @ gg.ones(*sb)


def test_matmul_example_message():
    with pytest.raises(ValueError, match=r"matmul: shapes \(3, 4\) and \(5, 6\) cannot be "
                                         r"multiplied \(4 != 5\)"):
        gg.matmul(gg.ones(3, 4), gg.ones(5, 6))


def test_matmul_batch_mismatch():
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3, 4\).*\(3, 4, 5\)"):
        gg.ones(2, 3, 4) @ gg.ones(3, 4, 5)


def test_matmul_0d_raises():
    with pytest.raises(ValueError, match=r"matmul.*\(\).*\(3,\)"):
        gg.tensor(2.0) @ gg.ones(3)


@pytest.mark.parametrize("da,db", [(gg.float32, gg.float64), (gg.float64, gg.float32),
                                   (gg.float32, gg.int64)], ids=str)
def test_matmul_dtype_mismatch_raises_type_error(da, db):
    a, b = gg.ones(2, 3, dtype=da), gg.ones(3, 2, dtype=db)
    with pytest.raises(TypeError, match=rf"matmul.*{da.name}.*{db.name}"):
        a @ b


@pytest.mark.parametrize("call,shapes", [
    (gg.mm, [(2, 3, 1), (1, 2)]), (gg.bmm, [(2, 3), (3, 2)]), (gg.dot, [(2, 2), (2,)]),
], ids=["mm", "bmm", "dot"])
def test_matmul_variant_rank_errors(call, shapes):
    with pytest.raises(ValueError, match=call.__name__):
        call(*[gg.ones(*s) for s in shapes])
