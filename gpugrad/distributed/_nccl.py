"""The NCCL process group: GPU arrays through CuPy's NCCL bindings (`cupy.cuda.nccl`).

An MPI group comes first: it starts the processes' rendezvous, gives each rank its local
rank (hence its GPU), carries NCCL's unique id from rank 0 to the others, and still moves
host arrays. GPU collectives are stream-ordered, as in PyTorch: a call enqueues the NCCL
kernel and returns; `Work.wait()` makes the current stream wait for it, without blocking
the host. The timeout therefore applies where the host does wait: `barrier()`, and the
set-up. CuPy is imported only when this group is created.
"""

from __future__ import annotations

import time

import numpy as np

from ._mpi import MPIProcessGroup
from ._work import CompletedWork, Work, poll_until


def _nccl_module():
    try:
        from cupy.cuda import nccl
    except ImportError as e:
        raise RuntimeError("init_process_group(backend='nccl') needs CuPy with NCCL: "
                           "pip install gpugrad[cuda12] (or cuda13)") from e
    if not getattr(nccl, "available", True):
        raise RuntimeError("init_process_group(backend='nccl'): this CuPy was built "
                           "without NCCL; use backend='mpi'")
    return nccl


class NCCLProcessGroup(MPIProcessGroup):
    """MPI for rendezvous and host arrays, one NcclCommunicator for GPU arrays."""

    backend = "nccl"

    def __init__(self, timeout: float) -> None:
        nccl = _nccl_module()
        import cupy

        super().__init__(timeout)
        self.cupy, self.nccl = cupy, nccl
        # One GPU per rank, by local rank: NCCL refuses two ranks on one device.
        self.device = cupy.cuda.Device(self.local_rank % cupy.cuda.runtime.getDeviceCount())
        self.device.use()
        unique_id = np.zeros(nccl.NCCL_UNIQUE_ID_BYTES if hasattr(nccl, "NCCL_UNIQUE_ID_BYTES")
                             else 128, dtype=np.int8)
        if self.rank == 0:
            unique_id[:] = nccl.get_unique_id()
        super().broadcast(unique_id, 0).wait()
        self.communicator = nccl.NcclCommunicator(self.size, tuple(int(b) for b in unique_id),
                                                  self.rank)
        # DDP's gradient buckets are reduced here, beside the default stream's backward.
        self.side_stream = cupy.cuda.Stream(non_blocking=True)
        self._types = {np.dtype(np.float16): nccl.NCCL_FLOAT16,
                       np.dtype(np.float32): nccl.NCCL_FLOAT32,
                       np.dtype(np.float64): nccl.NCCL_FLOAT64,
                       np.dtype(np.int8): nccl.NCCL_INT8, np.dtype(np.uint8): nccl.NCCL_UINT8,
                       np.dtype(np.int32): nccl.NCCL_INT32, np.dtype(np.int64): nccl.NCCL_INT64}
        try:  # CuPy's bfloat16 arrays use ml_dtypes' dtype
            import ml_dtypes

            if hasattr(nccl, "NCCL_BFLOAT16"):
                self._types[np.dtype(ml_dtypes.bfloat16)] = nccl.NCCL_BFLOAT16
        except ImportError:
            pass
        self._ops = {"sum": nccl.NCCL_SUM, "mean": nccl.NCCL_SUM, "max": nccl.NCCL_MAX,
                     "min": nccl.NCCL_MIN}

    def destroy(self) -> None:
        """Destroy the NCCL communicator (abort it after a failure), then the MPI side."""
        if self.communicator is not None:
            if self.broken:
                self.communicator.abort()
            else:
                self.communicator.destroy()
            self.communicator = None
        super().destroy()

    def mark_broken(self) -> None:
        """Also abort the NCCL communicator, so that queued kernels stop waiting."""
        super().mark_broken()
        communicator = getattr(self, "communicator", None)
        if communicator is not None:
            communicator.abort()
            self.communicator = None

    # -- collectives: GPU arrays through NCCL, host arrays through MPI ---------------------
    def _is_gpu(self, array) -> bool:
        return isinstance(array, self.cupy.ndarray)

    def _nccl_type(self, array, what: str) -> int:
        try:
            return self._types[np.dtype(array.dtype)]
        except (KeyError, TypeError):
            raise TypeError(f"{what}: NCCL cannot carry dtype {array.dtype}; supported: "
                            f"{', '.join(str(d) for d in self._types)}") from None

    def _run(self, array, enqueue, stream, what: str) -> Work:
        """Enqueue a NCCL call on `stream` (after the current stream's work on `array`)
        with `array` made contiguous, and return its stream-ordered Work."""
        cupy = self.cupy
        if self.communicator is None:
            raise RuntimeError(f"{what}: the NCCL communicator was aborted after a failure")
        current = cupy.cuda.get_current_stream()
        stream = stream or current
        if stream is not current:
            stream.wait_event(current.record())
        # The staging copy of a non-contiguous array is made, used and freed on `stream`
        # (CuPy's pool orders reuse of a block by the stream that allocated it).
        with stream:
            contiguous = array if array.flags.c_contiguous else cupy.ascontiguousarray(array)
            enqueue(contiguous, stream)
            if contiguous is not array:
                array[...] = contiguous
            done = stream.record()

        def wait_on_device():
            cupy.cuda.get_current_stream().wait_event(done)

        return CompletedWork(self, wait_on_device)

    def all_reduce(self, array, op: str, stream=None) -> Work:
        """Reduce `array` in place; GPU arrays with NCCL on `stream` (default: current)."""
        if not self._is_gpu(array):
            return super().all_reduce(array, op)
        nccl_type = self._nccl_type(array, "all_reduce")

        def enqueue(buf, s):
            self.communicator.allReduce(buf.data.ptr, buf.data.ptr, buf.size, nccl_type,
                                        self._ops[op], s.ptr)
            if op == "mean":
                with s:
                    buf /= self.size

        return self._run(array, enqueue, stream, "all_reduce")

    def broadcast(self, array, src: int) -> Work:
        """Copy rank `src`'s `array` to every rank (GPU arrays as bytes through NCCL)."""
        if not self._is_gpu(array):
            return super().broadcast(array, src)

        def enqueue(buf, s):
            raw = buf.reshape(-1).view(np.uint8)
            self.communicator.broadcast(raw.data.ptr, raw.data.ptr, raw.size,
                                        self.nccl.NCCL_UINT8, src, s.ptr)

        return self._run(array, enqueue, None, f"broadcast from rank {src}")

    def all_gather(self, out, array) -> Work:
        """Gather every rank's `array` into `out` (shape (world size, *shape))."""
        if not self._is_gpu(array):
            return super().all_gather(out, array)
        send = self.cupy.ascontiguousarray(array).reshape(-1).view(np.uint8)

        def enqueue(buf, s):
            raw = buf.reshape(-1).view(np.uint8)
            self.communicator.allGather(send.data.ptr, raw.data.ptr, send.size,
                                        self.nccl.NCCL_UINT8, s.ptr)

        return self._run(out, enqueue, None, "all_gather")

    def barrier(self) -> Work:
        """Every rank's host and GPU reach this point: an MPI barrier, then a one-element
        NCCL all-reduce that the host waits for against the timeout."""
        super().barrier().wait()
        token = self.cupy.zeros(1, dtype=np.float32)
        self.all_reduce(token, "sum")
        done = self.cupy.cuda.get_current_stream().record()
        poll_until(lambda: done.done, time.monotonic() + self.timeout,
                   lambda: f"barrier timed out after {self.timeout:g} s on rank {self.rank} "
                           f"of {self.size} waiting for the GPU collective",
                   self.mark_broken)
        return CompletedWork(self)
