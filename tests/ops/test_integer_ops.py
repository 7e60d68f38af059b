"""Integer and bool elementwise ops against PyTorch: bitwise and shift operators, logical
ops, comparisons as functions and methods, exact integer division with rounding modes,
division by zero, and where with two numbers."""

import numpy as np
import pytest
import torch

import gpugrad as gg

A = np.array([[7, -7, 5, 0], [12, -1, 3, 9]], dtype=np.int64)
B = np.array([2, 3, -2, 5], dtype=np.int64)


def _same(ours, theirs):
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("op", ["__and__", "__or__", "__xor__", "__lshift__", "__rshift__",
                                "bitwise_and", "bitwise_or", "bitwise_xor",
                                "bitwise_left_shift", "bitwise_right_shift"])
def test_bitwise_matches_torch(op):
    b = np.abs(B) if "shift" in op else B
    a, at = gg.tensor(A), torch.tensor(A)
    _same(getattr(a, op)(gg.tensor(b)), getattr(at, op)(torch.tensor(b)))
    _same(getattr(a, op)(2), getattr(at, op)(2))


def test_bitwise_on_bool_and_not():
    m, n = np.array([True, False, True]), np.array([True, True, False])
    for op in ("__and__", "__or__", "__xor__"):
        _same(getattr(gg.tensor(m), op)(gg.tensor(n)),
              getattr(torch.tensor(m), op)(torch.tensor(n)))
    _same(~gg.tensor(A), ~torch.tensor(A))
    _same(gg.bitwise_not(gg.tensor(m)), torch.bitwise_not(torch.tensor(m)))


def test_bitwise_rejects_floats():
    with pytest.raises(TypeError, match="bitwise_and: expected integer or bool tensors, got "
                                        "gpugrad.float32"):
        gg.bitwise_and(gg.tensor([1.0]), gg.tensor([1.0]))
    with pytest.raises(TypeError, match="bitwise_left_shift: expected integer"):
        gg.tensor([True]) << gg.tensor([True])


@pytest.mark.parametrize("name", ["logical_and", "logical_or", "logical_xor", "eq", "ne",
                                  "lt", "le", "gt", "ge", "maximum", "minimum", "fmax",
                                  "fmin"])
def test_functions_and_methods_match_torch(name):
    a, b = gg.tensor(A), gg.tensor(B)
    at, bt = torch.tensor(A), torch.tensor(B)
    _same(getattr(gg, name)(a, b), getattr(torch, name)(at, bt))
    _same(getattr(a, name)(b), getattr(at, name)(bt))


def test_logical_not():
    _same(gg.logical_not(gg.tensor(A)), torch.logical_not(torch.tensor(A)))


@pytest.mark.parametrize("mode", ["trunc", "floor"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int8])
def test_integer_div_rounding_is_exact(mode, dtype):
    big = np.array([2**62 + 1, -(2**62) - 3], dtype=np.int64) if dtype == np.int64 else None
    a = A.astype(dtype)
    b = B.astype(dtype)
    _same(gg.div(gg.tensor(a), gg.tensor(b), rounding_mode=mode),
          torch.div(torch.tensor(a), torch.tensor(b), rounding_mode=mode))
    _same(gg.div(gg.tensor(a), 3, rounding_mode=mode),
          torch.div(torch.tensor(a), 3, rounding_mode=mode))
    if big is not None:  # no float32 round trip: exact beyond 2^24
        _same(gg.div(gg.tensor(big), gg.tensor([3, 7]), rounding_mode=mode),
              torch.div(torch.tensor(big), torch.tensor([3, 7]), rounding_mode=mode))


def test_unknown_rounding_mode():
    with pytest.raises(ValueError, match="rounding_mode .* but found 'round'"):
        gg.div(gg.tensor([1.0]), 2.0, rounding_mode="round")


@pytest.mark.parametrize("fn", [lambda a, b: a // b, lambda a, b: a % b,
                                lambda a, b: a.fmod(b),
                                lambda a, b: a.div(b, rounding_mode="trunc"),
                                lambda a, b: a.div(b, rounding_mode="floor")])
def test_integer_division_by_zero_raises_as_torch(fn):
    a, b = np.array([4, 5]), np.array([1, 0])
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        fn(torch.tensor(a), torch.tensor(b))
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        fn(gg.tensor(a), gg.tensor(b))
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        fn(gg.tensor(a), 0)


def test_float_division_by_zero_is_inf():
    _same(gg.tensor([1.0, -1.0]) // 0.0, torch.tensor([1.0, -1.0]) // 0.0)


def test_integer_fmod_and_remainder_keep_dtype():
    _same(gg.tensor(A).fmod(gg.tensor(B)), torch.tensor(A).fmod(torch.tensor(B)))
    _same(gg.tensor(A) % gg.tensor(B), torch.tensor(A) % torch.tensor(B))


@pytest.mark.parametrize("x,y", [(1.0, 2), (1, 2), (True, False), (1, 2.5)])
def test_where_with_two_numbers(x, y):
    c = np.array([True, False, True])
    _same(gg.where(gg.tensor(c), x, y), torch.where(torch.tensor(c), x, y))
