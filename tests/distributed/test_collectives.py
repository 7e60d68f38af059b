"""Collectives on 2 and 4 CPU ranks give the right values for every op and dtype."""

import json

import collectives  # tests/distributed/workers/collectives.py
import numpy as np
import pytest


@pytest.fixture(scope="module", params=[2, 4], ids=["2 ranks", "4 ranks"])
def job(request, mpirun, tmp_path_factory):
    n = request.param
    out = tmp_path_factory.mktemp(f"collectives{n}")
    mpirun(n, "collectives.py", out)
    ranks = [dict(np.load(out / f"rank{r}.npz")) for r in range(n)]
    info = [json.loads((out / f"rank{r}.json").read_text()) for r in range(n)]
    return n, ranks, info


def _expected_reduction(op, values):
    stacked = np.stack(values)
    if op == "sum":
        return stacked.sum(0).astype(values[0].dtype)
    if op == "mean":
        return (stacked.astype(np.complex128 if stacked.dtype.kind == "c" else np.float64)
                .mean(0)).astype(values[0].dtype)
    return getattr(stacked, op)(0)


def _close(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    if want.dtype == np.float16:
        np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=1e-3)
    elif want.dtype.kind in "fc":
        np.testing.assert_allclose(got, want, rtol=1e-6)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", collectives.DTYPES)
def test_all_reduce_every_op(job, dtype):
    n, ranks, _ = job
    values = [collectives.value(r, dtype) for r in range(n)]
    for op in collectives.OPS[collectives.kind(dtype)]:
        want = _expected_reduction(op, values)
        for r in range(n):
            _close(ranks[r][f"all_reduce/{op}/{dtype}"], want)


@pytest.mark.parametrize("dtype", collectives.DTYPES)
def test_async_all_reduce_of_a_transposed_view(job, dtype):
    n, ranks, _ = job
    want = _expected_reduction("sum", [collectives.value(r, dtype).T for r in range(n)])
    for r in range(n):
        _close(ranks[r][f"all_reduce_async_transposed/sum/{dtype}"], want)


@pytest.mark.parametrize("dtype", collectives.DTYPES)
def test_broadcast_and_all_gather(job, dtype):
    n, ranks, _ = job
    for r in range(n):
        _close(ranks[r][f"broadcast/{dtype}"], collectives.value(n - 1, dtype))
        _close(ranks[r][f"all_gather/{dtype}"],
               np.stack([collectives.value(q, dtype) for q in range(n)]))


def test_scalar_and_empty_tensors(job):
    n, ranks, _ = job
    for r in range(n):
        assert ranks[r]["all_reduce/max/scalar"] == n
        assert ranks[r]["all_reduce/sum/empty"].shape == (0, 3)


def test_ranks_know_who_they_are(job):
    n, _, info = job
    assert [i["rank"] for i in info] == list(range(n))
    assert {i["world_size"] for i in info} == {n}
    assert sorted(i["local_rank"] for i in info) == list(range(n))  # one node
    assert {i["backend"] for i in info} == {"mpi"}
