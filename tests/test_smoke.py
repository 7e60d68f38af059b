import numpy as np
from oracle import check, gradcheck, rand


def test_mul_broadcast_against_torch():
    check(lambda x, y: x * y + x, [rand(3, 1), rand(4)])


def test_matmul_gradcheck():
    gradcheck(lambda a, b: a @ b, rand(2, 3), rand(3, 4))


def test_noncontiguous():
    check(lambda x: (x.exp() * 2).sum(0), [rand(3, 4)], non_contiguous=True)
    assert np.isfinite(1.0)
