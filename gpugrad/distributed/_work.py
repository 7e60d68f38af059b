"""Collectives in flight: `Work` handles polled against a deadline, and the timeout error.

MPI's blocking calls never return when a peer has died, so every collective here is a
non-blocking request that we poll against a deadline. Between polls a waiting rank yields
the CPU (MPICH itself busy-polls): on an oversubscribed machine a spinning rank would
otherwise steal the core that the rank it waits for needs to get there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

# A waiting rank first polls for this long, yielding the core after every poll (so a rank
# that shares its core runs instead); then it sleeps between polls, from _FIRST_SLEEP up to
# _MAX_SLEEP. MPI progresses a request only while it is polled: sleeping from the start
# would make a 10 us all-reduce take 100 us (a sleep lasts at least ~50 us on Linux), and
# spinning for ever would burn a core while a peer is still computing.
_SPIN_SECONDS = 5e-3
_FIRST_SLEEP = 50e-6
_MAX_SLEEP = 1e-3


# While waiting, look for a peer that has exited (see `_monitor`) every this many
# seconds, and once one has, keep polling this long before giving up (it may have
# finished its part of this very collective just before it exited).
_PEER_CHECK_SECONDS = 0.5
_PEER_GRACE_SECONDS = 1.0


class DistributedTimeoutError(RuntimeError):
    """A collective did not finish within the process group's timeout: another rank died,
    hangs, or never called the same collective. The process group is unusable afterwards."""


class DistributedPeerExitedError(DistributedTimeoutError):
    """A collective cannot finish because another rank of the job has already exited (or
    died) while this one waits for it, e.g. a rank that ran out of batches early. The
    process group is unusable afterwards."""


def poll_until(done: Callable[[], bool], deadline: float, describe: Callable[[], str],
               on_timeout: Callable[[], None],
               peer_gone: Callable[[], str | None] | None = None,
               what: Callable[[], str] | None = None) -> None:
    """Call `done()` until it returns True; past `deadline` (a `time.monotonic()` value)
    call `on_timeout()` and raise DistributedTimeoutError with `describe()` in it. When
    `peer_gone()` names a peer that has exited, call `on_timeout()` and raise
    DistributedPeerExitedError instead, without waiting for the deadline (its message
    starts with `what()`, by default `describe()`)."""
    if done():
        return
    start = time.monotonic()
    sleep = _FIRST_SLEEP
    next_check = start + _PEER_CHECK_SECONDS
    gone, gone_deadline = None, None
    while not done():
        now = time.monotonic()
        if now > deadline:
            on_timeout()
            raise DistributedTimeoutError(describe())
        if gone is None and peer_gone is not None and now >= next_check:
            next_check = now + _PEER_CHECK_SECONDS
            gone = peer_gone()
            gone_deadline = now + _PEER_GRACE_SECONDS
        if gone is not None and now > gone_deadline:
            on_timeout()
            raise DistributedPeerExitedError(
                f"{(what or describe)()} cannot finish: {gone} while this rank waits for it "
                "in this collective. Every rank must make the same collective calls; a rank that "
                "runs fewer steps than the others (uneven batches per rank under DDP) does "
                "this: give every rank the same number of batches (e.g. "
                "DistributedSampler(..., drop_last=True)). The process group is unusable now.")
        if now - start < _SPIN_SECONDS:
            os.sched_yield()
        else:
            time.sleep(sleep)
            sleep = min(sleep * 2, _MAX_SLEEP)


class Work:
    """A collective that has been started. `wait()` blocks until it has finished (and its
    result is in the tensor), raising DistributedTimeoutError past the group's timeout;
    `is_completed()` asks without blocking. As PyTorch's `Work`."""

    def __init__(self, test: Callable[[], bool], finish: Callable[[], None] | None,
                 describe: Callable[[], str], group) -> None:
        self._test = test
        self._finish = finish
        self._describe = describe
        self._group = group
        self._deadline = time.monotonic() + group.timeout
        self._done = False

    def is_completed(self) -> bool:
        """True once the collective has finished (this call also drives its progress)."""
        if not self._done and self._test():
            self._complete()
        return self._done

    def wait(self) -> bool:
        """Block until the collective has finished and its result is in place; True."""
        if not self._done:
            poll_until(self._test, self._deadline, self._timeout_message,
                       self._group.mark_broken, getattr(self._group, "peer_gone", None),
                       self._where)
            self._complete()
        return True

    def _complete(self) -> None:
        self._done = True
        if self._finish is not None:
            finish, self._finish = self._finish, None
            finish()

    def _where(self) -> str:
        return f"{self._describe()} on rank {self._group.rank} of {self._group.size}"

    def _timeout_message(self) -> str:
        g = self._group
        return (f"{self._describe()} timed out after {g.timeout:g} s on rank {g.rank} of "
                f"{g.size}: another rank died, hangs, or did not call the same collective. "
                "The process group is unusable now; the job ends when this process exits.")


class CompletedWork(Work):
    """The handle of a collective that finished while it was started (world size 1,
    or a stream-ordered GPU collective whose wait is done on the device)."""

    def __init__(self, group, on_wait: Callable[[], None] | None = None) -> None:
        super().__init__(lambda: True, on_wait, lambda: "", group)
