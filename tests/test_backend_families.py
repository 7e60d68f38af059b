"""The backend's family questions that ops ask instead of reading capability flags: which
normalisations take the fused row kernels, whether a range check is free, whether dropout
regenerates its mask, whether a graph is being captured. The CPU answers here; the CUDA
answers on the (emulated) GPU."""

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.backend import Backend, cpu_backend, get_backend
from gpugrad.backend.array import ArrayFamily
from gpugrad.backend.optim import OptimFamily
from gpugrad.backend.random import RandomFamily
from gpugrad.backend.rows import RowFamily
from gpugrad.backend.ufuncs import PointwiseFamily


def test_the_backend_is_the_sum_of_its_families():
    for family in (ArrayFamily, PointwiseFamily, RowFamily, RandomFamily, OptimFamily):
        assert issubclass(Backend, family)
    # each public method is defined in exactly one family (no family shadows another)
    seen: dict = {}
    for family in (ArrayFamily, PointwiseFamily, RowFamily, RandomFamily, OptimFamily):
        for name in vars(family):
            if not name.startswith("__"):
                assert name not in seen, f"{name} in {seen.get(name)} and {family.__name__}"
                seen[name] = family.__name__


def test_cpu_answers():
    assert not cpu_backend.fuses_rows(2, 1)
    assert cpu_backend.dropout_philox_state(10) is None
    assert not cpu_backend.is_capturing()
    lo, hi = cpu_backend.value_range(np.array([3, -1, 2]))
    assert (int(lo), int(hi)) == (-1, 3)
    assert np.isnan(cpu_backend.value_range(np.array([0.5, np.nan]))[0])


def test_fused_rows_switch_takes_the_last_axis_only(monkeypatch):
    monkeypatch.setattr(type(cpu_backend), "fused_rows", True)
    assert cpu_backend.fuses_rows(2, 1) and cpu_backend.fuses_rows(1, 0)
    assert not cpu_backend.fuses_rows(2, 0)
    assert not cpu_backend.fuses_rows(3, None)


def test_regenerating_dropout_draws_fresh_philox_counters(monkeypatch):
    monkeypatch.setattr(type(cpu_backend), "regenerates_dropout_mask", True)
    cpu_backend.seed_philox(7)
    assert cpu_backend.dropout_philox_state(9) == (7, 0)
    assert cpu_backend.dropout_philox_state(1) == (7, 3)  # 9 values used 3 counters


def test_range_checks_run_on_the_cpu(cpu_default_device):
    with pytest.raises(IndexError, match="index 5 is out of bounds"):
        gg.gather(gg.ones(2, 3), 1, gg.tensor([[0, 5]]))
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        gg.nn.functional.binary_cross_entropy(gg.tensor([0.5, float("nan")]),
                                              gg.tensor([1.0, 0.0]))
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        gg.nn.functional.one_hot(gg.tensor([0, 3]), 3)


@pytest.mark.gpu
def test_cuda_answers():
    be = get_backend("cuda")
    assert be.fuses_rows(2, 1) and not be.fuses_rows(2, 0)
    assert be.value_range(be.asarray([1, 2])) is None  # a host read would synchronise
    assert be.dropout_philox_state(4) is not None
    assert not be.is_capturing()
    with gg.cuda.graph(gg.cuda.CUDAGraph()):
        assert be.is_capturing()
