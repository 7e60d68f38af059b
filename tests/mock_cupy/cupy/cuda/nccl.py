"""cupy.cuda.nccl on the emulated device: communicators whose collectives run through
MPI (mpi4py), since each rank's device memory is its own host memory. One process (world
size 1) or the ranks of `gpugrad run -n N` / mpirun; the rank numbering must match
MPI.COMM_WORLD's, as it does when gpugrad's MPI group hands out the ranks."""

from __future__ import annotations

import ctypes
import os

import numpy as np

from .. import _core

available = True
NCCL_UNIQUE_ID_BYTES = 128
(NCCL_INT8, NCCL_UINT8, NCCL_INT32, NCCL_UINT32, NCCL_INT64, NCCL_UINT64, NCCL_FLOAT16,
 NCCL_FLOAT32, NCCL_FLOAT64, NCCL_BFLOAT16) = range(10)
NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN, NCCL_AVG = range(5)

_TYPES = {NCCL_INT8: np.int8, NCCL_UINT8: np.uint8, NCCL_INT32: np.int32,
          NCCL_UINT32: np.uint32, NCCL_INT64: np.int64, NCCL_UINT64: np.uint64,
          NCCL_FLOAT16: np.float16, NCCL_FLOAT32: np.float32, NCCL_FLOAT64: np.float64}


class NcclError(RuntimeError):
    """An error of the (emulated) NCCL library."""


def get_unique_id() -> tuple:
    return tuple(int(b) for b in np.frombuffer(os.urandom(NCCL_UNIQUE_ID_BYTES), np.int8))


def get_version() -> int:
    return 22304


def _view(ptr: int, count: int, datatype: int) -> np.ndarray:
    if datatype == NCCL_BFLOAT16:
        import ml_dtypes

        dt = np.dtype(ml_dtypes.bfloat16)
    else:
        dt = np.dtype(_TYPES[datatype])
    buf = (ctypes.c_char * (count * dt.itemsize)).from_address(ptr)
    return np.frombuffer(buf, dtype=dt)


class NcclCommunicator:
    """A communicator of `ndev` ranks (this process is `rank`)."""

    def __init__(self, ndev: int, commId, rank: int) -> None:
        from mpi4py import MPI

        self._mpi = MPI
        self._comm = MPI.COMM_WORLD.Dup()
        if self._comm.Get_size() != ndev or self._comm.Get_rank() != rank:
            raise NcclError(f"ncclInvalidArgument: rank {rank} of {ndev}, but MPI runs "
                            f"rank {self._comm.Get_rank()} of {self._comm.Get_size()}")
        self._rank, self._size = rank, ndev

    def rank_id(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._size

    def device_id(self) -> int:
        return 0

    def _run(self, fn) -> None:
        if _core.capturing() is not None:
            raise NcclError("the mock NCCL does not record collectives in a CUDA graph")
        fn()

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream) -> None:
        def go():
            send = _view(sendbuf, count, datatype)
            data = send.astype(np.float32) if send.dtype.itemsize == 2 else send
            out = np.empty_like(data)
            mpi_op = {NCCL_SUM: self._mpi.SUM, NCCL_PROD: self._mpi.PROD,
                      NCCL_MAX: self._mpi.MAX, NCCL_MIN: self._mpi.MIN,
                      NCCL_AVG: self._mpi.SUM}[op]
            self._comm.Allreduce(np.ascontiguousarray(data), out, op=mpi_op)
            if op == NCCL_AVG:
                out = out / self._size
            _view(recvbuf, count, datatype)[...] = out.astype(send.dtype)
        self._run(go)

    def broadcast(self, sendbuf, recvbuf, count, datatype, root, stream) -> None:
        def go():
            data = _view(sendbuf if self._rank == root else recvbuf, count, datatype).copy()
            raw = data.view(np.uint8)
            self._comm.Bcast(raw, root=root)
            _view(recvbuf, count, datatype)[...] = data
        self._run(go)

    def bcast(self, buff, count, datatype, root, stream) -> None:
        self.broadcast(buff, buff, count, datatype, root, stream)

    def allGather(self, sendbuf, recvbuf, count, datatype, stream) -> None:
        def go():
            send = _view(sendbuf, count, datatype).copy().view(np.uint8)
            out = np.empty(send.size * self._size, dtype=np.uint8)
            self._comm.Allgather(send, out)
            _view(recvbuf, count * self._size, datatype).view(np.uint8)[...] = out
        self._run(go)

    def destroy(self) -> None:
        if self._comm is not None:
            self._comm.Free()
            self._comm = None

    def abort(self) -> None:
        self._comm = None
