"""detect_anomaly names the forward op and the user's line behind a NaN gradient."""

import pytest

import gpugrad as gg


def sqrt_of_zero(x):
    return gg.sqrt(x * 0)  # d/dx sqrt(0·x) = 0 · 1/(2·0) = nan


def test_nan_gradient_names_op_and_user_line():
    x = gg.tensor([1.0, 2.0], requires_grad=True)
    with gg.autograd.detect_anomaly():
        y = sqrt_of_zero(x).sum()
        with pytest.raises(RuntimeError) as info:
            y.backward()
    msg = str(info.value)
    assert "SqrtBackward" in msg and "nan" in msg
    assert "test_anomaly.py" in msg and "sqrt_of_zero" in msg and "gg.sqrt(x * 0)" in msg


def test_without_anomaly_mode_nan_propagates_silently():
    x = gg.tensor([1.0, 2.0], requires_grad=True)
    sqrt_of_zero(x).sum().backward()
    assert gg.isnan(x.grad).all().item()
    assert not gg.autograd.is_anomaly_enabled()


def test_finite_gradients_pass_and_mode_is_restored():
    x = gg.tensor([1.0, 2.0], requires_grad=True)
    with gg.autograd.detect_anomaly():
        assert gg.autograd.is_anomaly_enabled()
        (x.exp() * x).sum().backward()
    assert not gg.autograd.is_anomaly_enabled()
    assert x.grad is not None


def test_inf_is_reported_too():
    x = gg.tensor([0.0], requires_grad=True)
    with gg.autograd.detect_anomaly(), pytest.raises(RuntimeError, match="LogBackward.*inf"):
        gg.log(x).sum().backward()
