"""The per-step checks of an optimizer are cheap without being skipped: hyperparameters
are checked again whenever a group entry changes (a new value, a new key, or any value of
a mutable type), gradients and state whenever they do not fit the parameter."""

import numpy as np
import pytest

import gpugrad as gg


class CountingSGD(gg.optim.SGD):
    def __init__(self, *args, **kw):
        self.checks = 0
        super().__init__(*args, **kw)

    def _check_group(self, group):
        self.checks += 1
        super()._check_group(group)
        extra = group.get("extra")
        if isinstance(extra, list) and extra and extra[0] < 0:
            raise ValueError(f"Invalid extra value: {extra}")


def _opt(**kw):
    p = gg.tensor([1.0, 2.0], requires_grad=True)
    opt = CountingSGD([p], lr=0.1, **kw)
    p.grad = gg.tensor([1.0, 1.0])
    return opt, p


def test_unchanged_group_is_checked_once_then_rechecked_on_change():
    opt, p = _opt(momentum=0.5)
    built = opt.checks
    for _ in range(3):
        opt.step()
    assert opt.checks == built + 1
    opt.param_groups[0]["lr"] = 0.2  # a new value object: checked again
    opt.step()
    assert opt.checks == built + 2
    opt.param_groups[0]["new_key"] = 1  # a new entry: checked again
    opt.step()
    assert opt.checks == built + 3
    opt.param_groups[0]["lr"] = -1.0
    before = p.detach().numpy().copy()
    with pytest.raises(ValueError, match=r"CountingSGD\.step: param_groups\[0\]: "
                                         r"Invalid learning rate: -1\.0"):
        opt.step()
    np.testing.assert_array_equal(p.detach().numpy(), before)
    with pytest.raises(ValueError, match="Invalid learning rate"):  # still refused
        opt.step()


def test_mutable_group_values_are_checked_every_step():
    opt, p = _opt()
    opt.param_groups[0]["extra"] = [1]
    opt.step()
    opt.step()
    n = opt.checks
    opt.param_groups[0]["extra"][0] = -1  # mutated in place: same object, new content
    before = p.detach().numpy().copy()
    with pytest.raises(ValueError, match=r"param_groups\[0\]: Invalid extra value: \[-1\]"):
        opt.step()
    assert opt.checks == n + 1
    np.testing.assert_array_equal(p.detach().numpy(), before)


def test_replaced_param_groups_are_checked():
    opt, p = _opt()
    opt.step()
    opt.param_groups[0] = dict(opt.param_groups[0], lr=float("nan"))
    with pytest.raises(ValueError, match="Invalid learning rate: nan"):
        opt.step()


@pytest.mark.parametrize("bad", ["shape", "dtype", "read_only"])
def test_state_that_does_not_fit_is_refused_every_step(bad):
    opt, p = _opt(momentum=0.9)
    opt.step()
    opt.step()  # the fast path has run
    buf = {"shape": gg.zeros(3), "dtype": gg.zeros(2, dtype=gg.float64)}.get(bad)
    if bad == "read_only":
        frozen = np.zeros(2, np.float32)
        frozen.flags.writeable = False
        buf = gg.from_numpy(frozen)
    opt.state[p]["momentum_buffer"] = buf
    before = p.detach().numpy().copy()
    err = {"shape": gg.ShapeError, "dtype": TypeError, "read_only": RuntimeError}[bad]
    with pytest.raises(err, match=r"SGD\.step: parameter 0 of group 0: state "
                                  r"'momentum_buffer'"):
        opt.step()
    np.testing.assert_array_equal(p.detach().numpy(), before)


def test_step_bumps_parameter_versions():
    opt, p = _opt()
    from gpugrad.autograd.function import version_of

    v = version_of(p)
    opt.step()
    opt.step()
    assert version_of(p) == v + 2
