"""The MPI process group: collectives on host arrays through mpi4py's non-blocking calls.

Every collective is an MPI request (Iallreduce, Ibcast, Iallgather, Ibarrier) that `Work`
polls against the group's timeout. GPU arrays are staged through host memory: copied to
the host, reduced there, copied back (a CUDA-aware MPI is not assumed).
"""

from __future__ import annotations

import hashlib
import os
import time

import numpy as np

from . import _monitor
from ._work import CompletedWork, Work, poll_until

DEBUG_VARIABLE = "GPUGRAD_DISTRIBUTED_DEBUG"
DEBUG_LEVELS = ("OFF", "INFO", "DETAIL")


def debug_level() -> str:
    """GPUGRAD_DISTRIBUTED_DEBUG, as PyTorch's TORCH_DISTRIBUTED_DEBUG: "OFF" (no
    cross-rank checks), "INFO" (the default here: every collective first checks that all
    ranks make the same call with tensors of the same shape, dtype and device, one
    16-byte all-reduce; DDP checks once per backward) or "DETAIL" (also a sequence number
    per collective and every DDP bucket checked)."""
    level = os.environ.get(DEBUG_VARIABLE, "INFO").strip().upper() or "INFO"
    if level not in DEBUG_LEVELS:
        raise ValueError(f"{DEBUG_VARIABLE}={os.environ[DEBUG_VARIABLE]!r}: expected one of "
                         f"{', '.join(DEBUG_LEVELS)}")
    return level

# float16 and bfloat16 have no MPI datatype: they are reduced in float32 and cast back.
_UPCAST_KINDS = {2: np.float32}


class MPIProcessGroup:
    """All processes of the MPI job (a duplicate of COMM_WORLD, so that our requests never
    match the user's own MPI messages), plus the node-local split that picks each rank's
    GPU. `timeout` is in seconds."""

    backend = "mpi"

    def __init__(self, timeout: float) -> None:
        from mpi4py import MPI

        self.MPI = MPI
        self.timeout = float(timeout)
        self.broken = False
        self.debug = debug_level()
        self._sequence = 0  # collectives checked so far (DETAIL puts it in the check)
        world = MPI.COMM_WORLD
        self.rank, self.size = world.Get_rank(), world.Get_size()
        # Idup, not Dup: a rank that never started must time out here, not hang.
        comm, request = world.Idup()
        poll_until(request.Test, time.monotonic() + self.timeout,
                   lambda: f"init_process_group timed out after {self.timeout:g} s on rank "
                           f"{self.rank} of {self.size}: not every rank called it",
                   self.mark_broken)
        self.comm = comm
        local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()

    # -- lifecycle -------------------------------------------------------------------
    def mark_broken(self) -> None:
        """Remember that a collective failed: the group must not be used, and the process
        must not wait for its peers when it exits (see `destroy`, `abort_if_broken`)."""
        self.broken = True

    def destroy(self) -> None:
        """Release the communicator (skipped after a failure: freeing it could wait on a
        dead peer)."""
        if not self.broken and self.comm is not None:
            self.comm.Free()
        self.comm = None

    def abort_if_broken(self) -> None:
        """At interpreter exit after a failed collective: end the whole job now. MPI's
        finalize would otherwise wait forever for the ranks that died or hang."""
        if self.broken:
            self.MPI.COMM_WORLD.Abort(1)

    def peer_gone(self) -> str | None:
        """A sentence about a rank of this job that has already exited, or None (see
        `_monitor`; always None outside `gpugrad run`)."""
        return _monitor.exited_peer(self.rank)

    # -- the cross-rank check of what each rank calls --------------------------------------
    def agree(self, call: str, what: str, describe: str | None = None) -> None:
        """Check that every rank is making the same call: `call` describes this rank's
        (collective, shape, dtype, device, arguments). One all-reduce of a 62-bit hash of
        it (its max and the max of its negation give the max and the min: equal on every
        rank when all agree). On a mismatch every rank sees it, so all of them gather the
        descriptions and raise RuntimeError naming the collective, each rank's call and
        what differs; nothing has been sent yet, and the group stays usable. `describe`
        (default `what`) names the call in a timeout."""
        if self.size == 1 or self.debug == "OFF":
            return
        self._sequence += 1
        if self.debug == "DETAIL":
            call = f"{call} [collective #{self._sequence}]"
        digest = int.from_bytes(hashlib.blake2b(call.encode(), digest_size=8).digest(),
                                "little") >> 2
        hashes = np.array([digest, -digest], dtype=np.int64)
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, hashes, self.MPI.MAX)
        Work(request.Test, None, lambda: describe or what, self).wait()
        if hashes[0] == -hashes[1]:
            return
        calls = [b.decode() for b in self.all_gather_bytes(call.encode())]
        raise RuntimeError(_mismatch_message(what, calls))

    def all_gather_bytes(self, payload: bytes) -> list[bytes]:
        """Every rank's `payload` (of any length), in rank order."""
        data = np.frombuffer(payload, dtype=np.uint8)
        lengths = np.empty((self.size, 1), dtype=np.int64)
        self.all_gather(lengths, np.array([data.size], dtype=np.int64)).wait()
        padded = np.zeros(int(lengths.max()), dtype=np.uint8)
        padded[:data.size] = data
        gathered = np.empty((self.size, padded.size), dtype=np.uint8)
        self.all_gather(gathered, padded).wait()
        return [gathered[r, :int(lengths[r, 0])].tobytes() for r in range(self.size)]

    # -- collectives on arrays -----------------------------------------------------------
    def all_reduce(self, array, op: str, stream=None) -> Work:
        """Start reducing `array` (NumPy or CuPy) in place across ranks with `op`."""
        buffer, write_back = _host_buffer(array, upcast=True)
        mpi_op = {"sum": self.MPI.SUM, "mean": self.MPI.SUM, "max": self.MPI.MAX,
                  "min": self.MPI.MIN}[op]

        def finish():
            if op == "mean":
                np.divide(buffer, self.size, out=buffer)
            write_back()

        if self.size == 1:
            return CompletedWork(self, finish)
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, mpi_op)
        return Work(request.Test, finish, lambda: _describe("all_reduce", array, op), self)

    def broadcast(self, array, src: int) -> Work:
        """Start copying rank `src`'s `array` into every other rank's `array`."""
        buffer, write_back = _host_buffer(array, upcast=False)
        if self.size == 1:
            return CompletedWork(self, write_back)
        request = self.comm.Ibcast(_as_bytes(buffer), root=src)
        return Work(request.Test, write_back if self.rank != src else None,
                    lambda: _describe(f"broadcast from rank {src}", array), self)

    def all_gather(self, out, array) -> Work:
        """Start gathering every rank's `array` into `out` (shape (world size, *shape))."""
        send, _ = _host_buffer(array, upcast=False)
        receive, write_back = _host_buffer(out, upcast=False, contents=False)
        if self.size == 1:
            receive[0] = send
            return CompletedWork(self, write_back)
        request = self.comm.Iallgather(_as_bytes(send), _as_bytes(receive))
        return Work(request.Test, write_back, lambda: _describe("all_gather", array), self)

    def barrier(self) -> Work:
        """Start a barrier: it completes once every rank has entered it."""
        request = self.comm.Ibarrier()
        return Work(request.Test, None, lambda: "barrier", self)


def _mismatch_message(what: str, calls: list[str]) -> str:
    groups: dict[str, list[int]] = {}
    for rank, call in enumerate(calls):
        groups.setdefault(call, []).append(rank)
    lines = "; ".join(f"rank{'s' if len(r) > 1 else ''} {', '.join(map(str, r))}: {call}"
                      for call, r in groups.items())
    hint = ""
    if any(call.startswith("DistributedDataParallel") for call in calls):
        hint = (" Ranks that run different numbers of DDP steps (uneven batches per rank) "
                "do this: give every rank the same number of batches (e.g. "
                "DistributedSampler(..., drop_last=True)).")
    return (f"{what}: the ranks are not making the same collective call ({lines}). Every "
            "rank must call the same collectives in the same order, with tensors of the "
            f"same shape, dtype and device.{hint}")


def _describe(what: str, array, op: str | None = None) -> str:
    op = f" (op {op!r})" if op else ""
    return f"{what}{op} of a {array.dtype} array of shape {tuple(array.shape)}"


def _as_bytes(array: np.ndarray) -> np.ndarray:
    return array.reshape(-1).view(np.uint8)


def _host_buffer(array, upcast: bool, contents: bool = True):
    """A C-contiguous NumPy buffer for `array` and a function that writes the buffer back.

    `array` itself when it already is one (write-back does nothing); otherwise a copy on
    the host (GPU arrays, non-contiguous views), in float32 for 2-byte floats when
    `upcast` (MPI has no reduction for them)."""
    is_numpy = isinstance(array, np.ndarray)
    wide = _UPCAST_KINDS.get(array.dtype.itemsize) if upcast and _is_float(array) else None
    if is_numpy and array.flags.c_contiguous and wide is None:
        return array, _nothing
    if not contents:
        host = np.empty(array.shape, dtype=wide or array.dtype)
    else:
        host = array if is_numpy else _to_numpy(array)
        host = np.ascontiguousarray(host, dtype=wide or host.dtype)
        if host is array:
            host = host.copy()

    def write_back():
        if is_numpy:
            array[...] = host
        else:
            import cupy

            array[...] = cupy.asarray(host.astype(array.dtype, copy=False))

    return host, write_back


def _is_float(array) -> bool:
    return array.dtype.kind == "f" or "bfloat16" in str(array.dtype)


def _to_numpy(array) -> np.ndarray:
    import cupy

    return cupy.asnumpy(array)


def _nothing() -> None:
    return None
