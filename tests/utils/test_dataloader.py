"""gg.utils.data against torch.utils.data: data sets, samplers, collation, DataLoader
(single process and worker processes, including a worker that dies)."""

from __future__ import annotations

import collections
import os
import signal
import time

import numpy as np
import pytest
import torch
import torch.utils.data as tdata

import gpugrad as gg
from gpugrad.utils import data as gdata


def _same(ours, theirs):
    """Recursively compare a gpugrad batch with a torch batch: types, dtypes, values."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, gg.Tensor), type(ours)
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
        assert ours.device == "cpu"
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    elif isinstance(theirs, dict):
        assert type(ours) is type(theirs) and ours.keys() == theirs.keys()
        for k in theirs:
            _same(ours[k], theirs[k])
    elif isinstance(theirs, (list, tuple)):
        assert type(ours).__name__ == type(theirs).__name__ and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _same(a, b)
    else:
        assert ours == theirs


Point = collections.namedtuple("Point", "x y")


@pytest.mark.parametrize("batch", [
    [1, 2, 3],
    [1.5, 2.0],
    [True, False],
    ["a", "b"],
    [np.float32(1.5), np.float32(2)],
    [np.arange(3, dtype=np.int32), np.arange(3, 6, dtype=np.int32)],
    [(1, 2.0, "x"), (3, 4.0, "y")],
    [[1, 2], [3, 4]],
    [{"a": 1, "b": np.ones(2)}, {"a": 2, "b": np.zeros(2)}],
    [Point(1, 2.0), Point(3, 4.0)],
    [{"p": (1, [2.0, 3.0])}, {"p": (4, [5.0, 6.0])}],
])
def test_default_collate_matches_torch(batch):
    _same(gdata.default_collate(batch), tdata.default_collate(batch))


def test_default_collate_stacks_tensors_and_keeps_grad():
    a = gg.randn(2, 3, requires_grad=True)
    b = gg.randn(2, 3)
    out = gdata.default_collate([a, b])
    assert out.shape == (2, 2, 3) and out.requires_grad
    np.testing.assert_array_equal(out[1].detach().numpy(), b.numpy())


def test_default_collate_errors():
    with pytest.raises(TypeError, match="found <class 'object'>"):
        gdata.default_collate([object(), object()])
    with pytest.raises(RuntimeError, match="equal size"):
        gdata.default_collate([[1, 2], [3]])


def test_default_convert_matches_torch():
    sample = {"a": np.arange(3), "b": (np.float64(2.0), 5, "s")}
    _same(gdata.default_convert(sample), tdata.default_convert(sample))


def test_classes_take_type_parameters_as_torch():
    class Ints(gdata.Dataset[int]):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return i

    class Every(gdata.Sampler[int]):
        def __iter__(self):
            return iter([2, 0])

    assert [b.tolist() for b in gdata.DataLoader(Ints(), sampler=Every())] == [[2], [0]]
    assert issubclass(gdata.IterableDataset[int], gdata.Dataset)


def test_tensor_dataset_subset_concat():
    x, y = np.arange(12.0).reshape(6, 2), np.arange(6)
    ours = gdata.TensorDataset(gg.tensor(x), gg.tensor(y))
    theirs = tdata.TensorDataset(torch.tensor(x), torch.tensor(y))
    assert len(ours) == len(theirs) == 6
    _same(ours[4], theirs[4])
    sub, tsub = gdata.Subset(ours, [5, 0, 3]), tdata.Subset(theirs, [5, 0, 3])
    assert len(sub) == 3
    _same(sub[0], tsub[0])
    cat, tcat = ours + sub, theirs + tsub
    assert isinstance(cat, gdata.ConcatDataset) and cat.cumulative_sizes == [6, 9]
    for i in (-9, -1, 0, 5, 6, 8):
        _same(cat[i], tcat[i])
    with pytest.raises(ValueError, match="exceed dataset length"):
        cat[-10]
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(4,\)"):
        gdata.TensorDataset(gg.zeros(3, 2), gg.zeros(4))


def test_random_split_lengths_fractions_and_generator():
    ds = list(range(10))
    for lengths in ([3, 7], [0.3, 0.3, 0.4], [0.25, 0.25, 0.5]):
        ours = gdata.random_split(ds, lengths, generator=gg.Generator().manual_seed(1))
        theirs = tdata.random_split(ds, lengths, generator=torch.Generator().manual_seed(1))
        assert [len(s) for s in ours] == [len(s) for s in theirs]
        assert sorted(i for s in ours for i in s.indices) == list(range(10))
    a = gdata.random_split(ds, [5, 5], generator=gg.Generator().manual_seed(7))
    b = gdata.random_split(ds, [5, 5], generator=gg.Generator().manual_seed(7))
    c = gdata.random_split(ds, [5, 5], generator=gg.Generator().manual_seed(8))
    assert a[0].indices == b[0].indices and a[0].indices != c[0].indices
    with pytest.raises(ValueError, match="does not equal the length"):
        gdata.random_split(ds, [3, 3])


def test_samplers_match_torch():
    ds = list(range(7))
    assert list(gdata.SequentialSampler(ds)) == list(tdata.SequentialSampler(ds))
    for bs in (1, 3, 7, 8):
        for drop in (False, True):
            ours = gdata.BatchSampler(gdata.SequentialSampler(ds), bs, drop)
            theirs = tdata.BatchSampler(tdata.SequentialSampler(ds), bs, drop)
            assert list(ours) == list(theirs) and len(ours) == len(theirs)
    perm = list(gdata.RandomSampler(ds, generator=gg.Generator().manual_seed(3)))
    assert sorted(perm) == ds and perm != ds
    assert perm == list(gdata.RandomSampler(ds, generator=gg.Generator().manual_seed(3)))
    draws = list(gdata.RandomSampler(ds, replacement=True, num_samples=50))
    assert len(draws) == 50 and set(draws) <= set(ds) and len(set(draws)) > 3
    more = list(gdata.RandomSampler(ds, num_samples=10))
    assert len(more) == 10 and sorted(more[:7]) == ds
    w = list(gdata.WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 40))
    assert set(w) == {1, 3}
    with pytest.raises(ValueError, match="batch_size"):
        gdata.BatchSampler(ds, 0, False)


def test_random_sampler_without_generator_follows_manual_seed():
    gg.manual_seed(5)
    a = list(gdata.RandomSampler(range(20)))
    gg.manual_seed(5)
    assert a == list(gdata.RandomSampler(range(20)))


def _loader_pairs(**kw):
    x = np.arange(30.0).reshape(10, 3)
    y = np.arange(10)
    return (gdata.DataLoader(gdata.TensorDataset(gg.tensor(x), gg.tensor(y)), **kw),
            tdata.DataLoader(tdata.TensorDataset(torch.tensor(x), torch.tensor(y)), **kw))


@pytest.mark.parametrize("kw", [
    dict(batch_size=4), dict(batch_size=4, drop_last=True), dict(batch_size=10),
    dict(batch_size=None), dict(batch_size=3, sampler=[9, 0, 4, 4]),
    dict(batch_sampler=[[1, 2], [0], [9, 8, 7]]),
    dict(batch_size=2, collate_fn=lambda b: len(b)),
])
def test_dataloader_single_process_matches_torch(kw):
    ours, theirs = _loader_pairs(**kw)
    assert len(ours) == len(theirs)
    got, want = list(ours), list(theirs)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        _same(a, b)


def test_dataloader_shuffle_is_a_seeded_permutation():
    ds = gdata.TensorDataset(gg.arange(10))
    runs = [[b[0].tolist() for b in gdata.DataLoader(
        ds, batch_size=3, shuffle=True, generator=gg.Generator().manual_seed(s))]
        for s in (0, 0, 1)]
    assert runs[0] == runs[1] != runs[2]
    assert sorted(sum(runs[0], [])) == list(range(10))
    loader = gdata.DataLoader(ds, batch_size=10, shuffle=True)
    epochs = {tuple(next(iter(loader))[0].tolist()) for _ in range(5)}
    assert len(epochs) > 1  # a new order every epoch


def test_dataloader_argument_errors_match_torch():
    ds = list(range(4))
    cases = [dict(batch_sampler=[[0]], batch_size=2), dict(sampler=[0, 1], shuffle=True),
             dict(num_workers=-1), dict(prefetch_factor=2), dict(persistent_workers=True),
             dict(batch_size=None, drop_last=True)]
    for kw in cases:
        with pytest.raises(ValueError):
            tdata.DataLoader(ds, **kw)
        with pytest.raises(ValueError):
            gdata.DataLoader(ds, **kw)


class _Stream(gdata.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = gdata.get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))

    def __len__(self):
        return self.n


class _TStream(tdata.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = tdata.get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))

    def __len__(self):
        return self.n


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("kw", [dict(batch_size=3), dict(batch_size=3, drop_last=True),
                                dict(batch_size=None)])
def test_iterable_dataset_matches_torch(num_workers, kw):
    ours = gdata.DataLoader(_Stream(11), num_workers=num_workers, **kw)
    theirs = tdata.DataLoader(_TStream(11), num_workers=num_workers, **kw)
    got, want = list(ours), list(theirs)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        _same(a, b)
    assert len(ours) == len(theirs)
    with pytest.raises(ValueError, match="shuffle"):
        gdata.DataLoader(_Stream(3), shuffle=True)


class _Squares(gdata.Dataset):
    def __len__(self):
        return 23

    def __getitem__(self, i):
        info = gdata.get_worker_info()
        return {"x": np.full(2, i * i, dtype=np.float32), "i": i,
                "w": -1 if info is None else info.id}


def test_workers_give_the_same_batches_in_order():
    serial = list(gdata.DataLoader(_Squares(), batch_size=4))
    parallel = list(gdata.DataLoader(_Squares(), batch_size=4, num_workers=3,
                                     prefetch_factor=3, pin_memory=True))
    assert len(parallel) == len(serial) == 6
    for a, b in zip(parallel, serial):
        np.testing.assert_array_equal(a["x"].numpy(), b["x"].numpy())
        assert a["i"].tolist() == b["i"].tolist() and a["x"].device == "cpu"
    assert {w for b in parallel for w in b["w"].tolist()} == {0, 1, 2}


def test_workers_with_shuffle_seed_and_init_fn(tmp_path):
    def init(worker_id):
        (tmp_path / f"w{worker_id}").write_text(str(gdata.get_worker_info().seed))

    def run(seed):
        loader = gdata.DataLoader(gdata.TensorDataset(gg.arange(12)), batch_size=5,
                                  shuffle=True, num_workers=2, worker_init_fn=init,
                                  generator=gg.Generator().manual_seed(seed),
                                  persistent_workers=True)
        return [b[0].tolist() for b in loader]

    a, b = run(4), run(4)
    assert a == b and sorted(sum(a, [])) == list(range(12)) and [len(x) for x in a] == [5, 5, 2]
    seeds = [int((tmp_path / f"w{i}").read_text()) for i in range(2)]
    assert seeds[1] == seeds[0] + 1


class _Counting(gdata.Dataset):
    """Each fetch appends to a file, so the test can see what the workers loaded."""

    def __init__(self, log):
        self.log = log

    def __len__(self):
        return 40

    def __getitem__(self, i):
        with open(self.log, "a") as f:
            f.write(f"{i}\n")
        return i


def test_workers_prefetch_while_the_consumer_computes(tmp_path):
    log = tmp_path / "loaded"
    it = iter(gdata.DataLoader(_Counting(log), batch_size=2, num_workers=2,
                               prefetch_factor=2))
    assert next(it).tolist() == [0, 1]
    # While the consumer holds the first batch, the workers load ahead: the other
    # prefetched batches (2 workers × 2) arrive without another next().
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(log.read_text().split()) < 10:
        time.sleep(0.02)
    assert len(log.read_text().split()) >= 10
    assert [b.tolist() for b in it][0] == [2, 3]


class _Dies(gdata.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 5:
            os.kill(os.getpid(), signal.SIGKILL)
        return i


def test_killed_worker_raises_a_clear_error_quickly():
    loader = gdata.DataLoader(_Dies(), batch_size=2, num_workers=2, timeout=30)
    with pytest.raises(RuntimeError, match=r"DataLoader worker 0 \(pid \d+\) exited "
                                           r"unexpectedly \(killed by signal SIGKILL\)"):
        list(loader)


class _Raises(gdata.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 3:
            raise KeyError("no sample 3")
        return i


@pytest.mark.parametrize("num_workers", [0, 2])
def test_worker_exception_is_raised_in_the_parent(num_workers):
    loader = gdata.DataLoader(_Raises(), batch_size=2, num_workers=num_workers)
    with pytest.raises(KeyError, match="no sample 3") as info:
        list(loader)
    if num_workers:
        assert "worker process 1" in str(info.value)


def test_worker_init_fn_error_names_the_worker():
    def init(worker_id):
        raise ValueError(f"init failed in {worker_id}")

    loader = gdata.DataLoader(list(range(4)), batch_size=2, num_workers=1, worker_init_fn=init)
    with pytest.raises(ValueError, match="worker process 0"):
        list(loader)


def test_distributed_sampler_in_a_dataloader():
    ds = gdata.TensorDataset(gg.arange(10))
    sampler = gdata.DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False)
    assert [b[0].tolist() for b in gdata.DataLoader(ds, batch_size=2, sampler=sampler)] == \
        [[1, 3], [5, 7], [9]]


class _BigOps(gdata.Dataset):
    """Each sample runs an elementwise op large enough for gpugrad's CPU thread pool."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        x = gg.ones(1 << 21) * float(i)
        return (x + x).sum()


def test_forked_workers_get_a_fresh_thread_pool():
    (gg.ones(1 << 21) * 2.0).sum()  # the parent's pool threads exist before the fork
    loader = gdata.DataLoader(_BigOps(), batch_size=2, num_workers=2, timeout=30)
    got = [b.tolist() for b in loader]
    assert got == [[0.0, 2.0 * (1 << 21)], [4.0 * (1 << 21), 6.0 * (1 << 21)]]


class _Noise(gdata.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return gg.rand(1)[0]


def test_workers_draw_different_reproducible_random_streams():
    def run(seed):
        loader = gdata.DataLoader(_Noise(), batch_size=2, num_workers=2,
                                  generator=gg.Generator().manual_seed(seed))
        return [v for b in loader for v in b.tolist()]

    a, b, c = run(1), run(1), run(2)
    assert a == b and a != c
    assert a[0] != a[2]  # worker 0 and worker 1 do not repeat each other's numbers


def test_abandoned_iterator_shuts_its_workers_down():
    it = iter(gdata.DataLoader(list(range(100)), batch_size=1, num_workers=2))
    assert next(it).tolist() == [0]
    workers = list(it._workers)
    it._shutdown()
    assert all(not w.is_alive() for w in workers)


class _Pid(gdata.Dataset):
    def __len__(self):
        return 9

    def __getitem__(self, i):
        return {"i": i, "pid": os.getpid()}


def test_persistent_workers_serve_every_epoch():
    loader = gdata.DataLoader(_Pid(), batch_size=2, shuffle=True, num_workers=2,
                              persistent_workers=True, generator=gg.Generator().manual_seed(0))
    first = iter(loader)
    next(first)  # an epoch abandoned half way: its stale batches must not leak into the next
    epochs, pids = [], set()
    for _ in range(3):
        batches = list(loader)
        epochs.append([i for b in batches for i in b["i"].tolist()])
        pids |= {p for b in batches for p in b["pid"].tolist()}
    assert all(sorted(e) == list(range(9)) for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1
    assert len(pids) == 2  # the same two processes throughout
    stream = gdata.DataLoader(_Stream(7), batch_size=2, num_workers=2, persistent_workers=True)
    want = [b.tolist() for b in gdata.DataLoader(_Stream(7), batch_size=2, num_workers=2)]
    assert [b.tolist() for b in stream] == want and [b.tolist() for b in stream] == want
    loader._workers_iter._shutdown()
    stream._workers_iter._shutdown()


def test_dropped_persistent_loader_workers_exit_cleanly():
    import gc

    loader = gdata.DataLoader(gdata.TensorDataset(gg.arange(6)), batch_size=4, num_workers=2,
                              persistent_workers=True)
    assert [b[0].tolist() for b in loader] == [[0, 1, 2, 3], [4, 5]]
    workers = list(loader._workers_iter._workers)
    del loader
    gc.collect()  # the loader and its iterator refer to each other
    for w in workers:
        w.join(timeout=30)
    # Exit code 0: they stopped on the shutdown signal, not by being terminated (-15).
    assert [w.exitcode for w in workers] == [0, 0]


def test_spawned_workers_work_too():
    # The default start method where fork is missing (macOS, Windows): the data set and
    # the batches cross the process boundary by pickling.
    ds = gdata.TensorDataset(gg.arange(5), gg.arange(5.0) * 2)
    loader = gdata.DataLoader(ds, batch_size=2, num_workers=1, multiprocessing_context="spawn",
                              timeout=120)
    got = [(a.tolist(), b.tolist()) for a, b in loader]
    assert got == [([0, 1], [0.0, 2.0]), ([2, 3], [4.0, 6.0]), ([4], [8.0])]
