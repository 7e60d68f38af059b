"""`DataLoader`: batches from a data set, in the main process or in worker processes.

With `num_workers > 0`, each worker is a process (forked where the platform allows, as
PyTorch does on Linux) that loads and collates whole batches; the parent keeps
`prefetch_factor` batches per worker in flight, so loading overlaps with the training
step, and hands batches out in sampler order. A worker that dies (killed, out of memory)
is noticed within a fraction of a second and raises a RuntimeError naming it; an
exception inside a worker is raised again in the parent with the worker's traceback.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import queue
import signal
import time
from collections.abc import Callable, Iterable

from ..._generator import Generator
from . import _worker
from .collate import default_collate, default_convert
from .dataset import Dataset, IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler, _draw_seed

__all__ = ["DataLoader"]


class _InfiniteNones(Sampler):
    """The "sampler" of an iterable data set: the data set itself decides when to stop."""

    def __iter__(self):
        return itertools.repeat(None)


class DataLoader:
    """Iterate over `dataset` in batches, as `torch.utils.data.DataLoader`.

    `batch_size` samples per batch (None: no batching, samples pass through
    `default_convert`), order from `sampler` (or `shuffle=True`: a `RandomSampler` using
    `generator`), or whole batches from `batch_sampler`; `drop_last` drops a short last
    batch; `collate_fn` merges samples (default `default_collate`). `num_workers`
    processes load batches ahead (`prefetch_factor` each, default 2), each seeded with
    base_seed + worker id and calling `worker_init_fn(worker_id)` first; `timeout` > 0
    bounds the wait for a batch. With `persistent_workers` the same worker processes
    serve every epoch. `pin_memory` is accepted (batches are host arrays already).
    """

    def __init__(self, dataset: Dataset, batch_size: int | None = 1,
                 shuffle: bool | None = None, sampler: Sampler | Iterable | None = None,
                 batch_sampler: Sampler | Iterable | None = None, num_workers: int = 0,
                 collate_fn: Callable | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable | None = None, multiprocessing_context=None,
                 generator: Generator | None = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "",
                 in_order: bool = True) -> None:
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers option should be non-negative; use "
                             f"num_workers=0 to disable multiprocessing (got {num_workers})")
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout option should be non-negative, got {timeout}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("DataLoader: prefetch_factor option could only be specified in "
                             "multiprocessing; let num_workers > 0 to enable multiprocessing, "
                             "otherwise set prefetch_factor to None")
        if prefetch_factor is not None and prefetch_factor < 1:
            raise ValueError(f"DataLoader: prefetch_factor must be at least 1, got "
                             f"{prefetch_factor}")
        if persistent_workers and num_workers == 0:
            raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
        self.is_iterable = isinstance(dataset, IterableDataset)
        if self.is_iterable:
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"shuffle option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"sampler option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                                 "batch_size, shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and "
                             "is mutually exclusive with drop_last")
        if sampler is None:
            if self.is_iterable:
                sampler = _InfiniteNones()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if batch_sampler is not None else default_convert)
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.prefetch_factor = prefetch_factor if prefetch_factor is not None else 2
        self.persistent_workers = persistent_workers
        self.in_order = in_order

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if not self.persistent_workers:
            return _MultiProcessIter(self)
        it = self.__dict__.get("_workers_iter")
        if it is None or it._shut:
            it = self._workers_iter = _MultiProcessIter(self)
        else:
            it.reset()
        return it

    def __len__(self) -> int:
        if self.is_iterable:
            n = len(self.dataset)  # TypeError when the data set has no length, as in torch
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)


class _SingleProcessIter:
    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader
        self._sampler_iter = iter(loader._index_sampler)
        self._iterator = iter(loader.dataset) if loader.is_iterable else None

    def __iter__(self):
        return self

    def __next__(self):
        index = next(self._sampler_iter)
        ld = self._loader
        return _worker.fetch(ld.dataset, self._iterator, index, ld._auto_collation,
                             ld.collate_fn, ld.drop_last)

    def __len__(self) -> int:
        return len(self._loader)


def _context(spec):
    if spec is None:
        return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    return mp.get_context(spec) if isinstance(spec, str) else spec


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class _MultiProcessIter:
    """Hands out batches in sampler order while the workers load ahead."""

    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader
        n = loader.num_workers
        ctx = _context(loader.multiprocessing_context)
        base_seed = _draw_seed(loader.generator)
        self._result_queue = ctx.Queue()
        self._done = ctx.Event()
        self._index_queues, self._workers = [], []
        for i in range(n):
            iq = ctx.Queue()
            w = ctx.Process(target=_worker.worker_loop, daemon=True, name=f"gpugrad-loader-{i}",
                            args=(loader.dataset, loader.is_iterable, iq, self._result_queue,
                                  self._done, loader._auto_collation, loader.collate_fn,
                                  loader.drop_last, base_seed + i, loader.worker_init_fn, i,
                                  n, os.getpid()))
            w.start()
            self._index_queues.append(iq)
            self._workers.append(w)
        self._send_idx = 0
        self._shut = False
        self._start_epoch()

    def _start_epoch(self) -> None:
        n = len(self._workers)
        self._active = [True] * n
        self._sampler_iter = iter(self._loader._index_sampler)
        self._next_worker = itertools.cycle(range(n))
        # Task ids keep counting across epochs, so a late answer from an earlier epoch of
        # persistent workers is recognised as stale.
        self._tasks: dict = {}  # task id -> [worker id] or [worker id, payload]
        self._rcvd_idx = self._send_idx
        for _ in range(self._loader.prefetch_factor * n):
            self._put_task()

    def reset(self) -> None:
        """Start a new epoch on the same (persistent) workers."""
        for iq in self._index_queues:
            iq.put(_worker.RESUME)
        self._start_epoch()

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader)

    def _put_task(self) -> None:
        for _ in range(len(self._workers)):
            wid = next(self._next_worker)
            if self._active[wid]:
                break
        else:
            return
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        self._index_queues[wid].put((self._send_idx, index))
        self._tasks[self._send_idx] = [wid]
        self._send_idx += 1

    def __next__(self):
        while True:
            # Skip tasks whose worker has run out of data (iterable data sets).
            while self._rcvd_idx < self._send_idx:
                task = self._tasks.get(self._rcvd_idx)
                if task is not None and (len(task) == 2 or self._active[task[0]]):
                    break
                self._tasks.pop(self._rcvd_idx, None)
                self._rcvd_idx += 1
            else:
                if not self._loader.persistent_workers:
                    self._shutdown()
                raise StopIteration
            task = self._tasks[self._rcvd_idx]
            if len(task) == 2:
                del self._tasks[self._rcvd_idx]
                self._rcvd_idx += 1
                self._put_task()
                return self._unpack(task[1])
            idx, payload = self._get()
            if idx not in self._tasks:  # a late answer to a skipped task
                continue
            data = _worker.loads(payload)
            if isinstance(data, _worker.IterableEnd):
                self._active[data.worker_id] = False
                del self._tasks[idx]
                continue
            if idx != self._rcvd_idx:
                self._tasks[idx].append(data)
                continue
            del self._tasks[idx]
            self._rcvd_idx += 1
            self._put_task()
            return self._unpack(data)

    def _unpack(self, data):
        if isinstance(data, bytes):
            data = _worker.loads(data)
        if isinstance(data, _worker.ExceptionWrapper):
            self._shutdown()
            data.reraise()
        return data

    def _get(self):
        """The next (task id, payload) from any worker, checking that all are alive."""
        timeout = self._loader.timeout
        deadline = time.monotonic() + timeout if timeout > 0 else None
        while True:
            try:
                return self._result_queue.get(timeout=_worker.POLL_S)
            except queue.Empty:
                pass
            for i, w in enumerate(self._workers):
                if not w.is_alive():
                    pid, code = w.pid, w.exitcode
                    self._shutdown()
                    raise RuntimeError(f"DataLoader worker {i} (pid {pid}) exited "
                                       f"unexpectedly ({_describe_exit(code)}); if it was "
                                       "killed for memory, try fewer workers or smaller "
                                       "batches")
            if deadline is not None and time.monotonic() > deadline:
                self._shutdown()
                raise RuntimeError(f"DataLoader timed out after {timeout} seconds waiting "
                                   "for a batch from its workers")

    def _shutdown(self) -> None:
        if self._shut:
            return
        self._shut = True
        self._done.set()
        for iq, w in zip(self._index_queues, self._workers):
            if w.is_alive():
                try:
                    iq.put(None)
                except (OSError, ValueError):
                    pass
        for w in self._workers:
            w.join(timeout=1.0)
            if w.is_alive():
                w.terminate()
                w.join(timeout=1.0)
        for q in (*self._index_queues, self._result_queue):
            q.cancel_join_thread()
            q.close()

    def __del__(self) -> None:
        try:
            self._shutdown()
        except Exception:
            pass
