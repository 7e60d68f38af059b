"""What a DataLoader worker process runs, and what travels between it and the parent.

A worker reads (task id, indices) from its own index queue, fetches and collates the
samples, and puts (task id, pickled batch) on the shared result queue. Tensors travel as
their NumPy arrays and come back as CPU tensors. An exception travels as an
`ExceptionWrapper` and is raised again in the parent, naming the worker.
"""

from __future__ import annotations

import copyreg
import io
import os
import pickle
import queue
import random
import sys
import traceback
from dataclasses import dataclass

from ...backend import cpu_backend, cpu_parallel
from ...creation import from_numpy
from ...device import set_default_device
from ...tensor import Tensor

__all__ = ["WorkerInfo", "get_worker_info", "ExceptionWrapper", "fetch", "dumps", "loads"]

POLL_S = 0.1  # how often an idle worker checks that its parent is alive
RESUME = "resume"  # a new epoch on persistent workers: restart the iterable data set


@dataclass(frozen=True)
class WorkerInfo:
    """Inside a worker process: its `id`, `num_workers`, `seed` and its copy of `dataset`."""

    id: int
    num_workers: int
    seed: int
    dataset: object


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """The calling worker's `WorkerInfo`, or None in the main process."""
    return _worker_info


class ExceptionWrapper:
    """An exception caught in a worker, carried to the parent with its traceback."""

    def __init__(self, where: str) -> None:
        exc_type, exc, _ = sys.exc_info()
        try:
            pickle.dumps(exc_type)
            self.exc_type = exc_type
        except Exception:  # a class the parent cannot import travels as RuntimeError
            self.exc_type = RuntimeError
        self.where = where
        self.msg = "".join(traceback.format_exception(exc_type, exc, exc.__traceback__))

    def reraise(self):
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.msg}"
        try:
            exc = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exc


class IterableEnd:
    """Sent by a worker whose iterable data set is exhausted."""

    def __init__(self, worker_id: int) -> None:
        self.worker_id = worker_id


def fetch(dataset, iterator, index, auto_collation: bool, collate_fn, drop_last: bool):
    """One batch: from a map-style `dataset` at `index` (a list of indices when batching),
    or the next items of `iterator` (StopIteration when there are no more)."""
    if iterator is not None:
        if not auto_collation:
            return collate_fn(next(iterator))
        data = []
        for _ in index:
            try:
                data.append(next(iterator))
            except StopIteration:
                break
        if not data or (drop_last and len(data) < len(index)):
            raise StopIteration
        return collate_fn(data)
    if not auto_collation:
        return collate_fn(dataset[index])
    getitems = getattr(dataset, "__getitems__", None)
    data = getitems(index) if getitems is not None else [dataset[i] for i in index]
    return collate_fn(data)


def _rebuild_tensor(array, requires_grad: bool) -> Tensor:
    t = from_numpy(array)
    return t.requires_grad_(True) if requires_grad else t


def _reduce_tensor(t: Tensor):
    return _rebuild_tensor, (t._backend.to_host(t._data), t.requires_grad and t.is_leaf)


def dumps(obj) -> bytes:
    """Pickle `obj`, tensors as their host arrays (they unpickle as CPU tensors)."""
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    p.dispatch_table = copyreg.dispatch_table.copy()
    p.dispatch_table[Tensor] = _reduce_tensor
    p.dump(obj)
    return buf.getvalue()


loads = pickle.loads


def worker_loop(dataset, is_iterable: bool, index_queue, result_queue, done_event,
                auto_collation: bool, collate_fn, drop_last: bool, seed: int, init_fn,
                worker_id: int, num_workers: int, parent_pid: int) -> None:
    """The body of worker process `worker_id` (see the module docstring)."""
    global _worker_info
    # A forked child inherits the parent's thread pool object but not its threads: start
    # a fresh pool on first use. Batches are built on the CPU whatever the parent's device.
    cpu_parallel._POOL = None
    set_default_device("cpu")
    random.seed(seed)
    cpu_backend.manual_seed(seed % 2 ** 63)
    _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
    where = f"in DataLoader worker process {worker_id}"
    init_error, iterator, ended = None, None, False
    try:
        if init_fn is not None:
            init_fn(worker_id)
        if is_iterable:
            iterator = iter(dataset)
    except Exception:
        init_error = ExceptionWrapper(where)
    while True:
        try:
            task = index_queue.get(timeout=POLL_S)
        except queue.Empty:
            # The parent died (nobody will read our results) or is shutting us down (its
            # index queue may already be finalized when that happens during garbage
            # collection, so the event is the signal that always arrives).
            if os.getppid() != parent_pid or done_event.is_set():
                return
            continue
        if task is None or done_event.is_set():  # shutting down: skip queued tasks
            return
        if task == RESUME:
            if init_error is None and is_iterable:
                try:
                    iterator, ended = iter(dataset), False
                except Exception:
                    init_error = ExceptionWrapper(where)
            continue
        task_id, index = task
        if init_error is not None:
            data, init_error = init_error, None
        elif ended:
            data = IterableEnd(worker_id)
        else:
            try:
                data = fetch(dataset, iterator, index, auto_collation, collate_fn, drop_last)
            except StopIteration:
                data, ended = IterableEnd(worker_id), True
            except Exception:
                data = ExceptionWrapper(where)
        try:
            payload = dumps(data)
        except Exception:
            payload = dumps(ExceptionWrapper(where + " (while sending its batch)"))
        result_queue.put((task_id, payload))
