"""`gg.profiler`: which ops and kernels a region ran, in which phase, on which device and
for how long, as `torch.profiler` reports it.

    >>> import gpugrad as gg
    >>> model = gg.nn.Sequential(gg.nn.Linear(4, 8), gg.nn.ReLU(), gg.nn.Linear(8, 2))
    >>> opt = gg.optim.SGD(model.parameters(), lr=0.1)
    >>> with gg.profiler.profile() as prof:
    ...     loss = model(gg.randn(16, 4)).sum()
    ...     loss.backward()
    ...     opt.step()
    >>> [e.name for e in prof.events() if e.kind == "op" and e.phase == "forward"]
    ['Linear', 'Relu', 'Linear', 'Sum']
    >>> [e.name for e in prof.events() if e.name.endswith("Backward")]  # graph nodes
    ['SumBackward', 'LinearBackward', 'ReluBackward', 'LinearBackward']
    >>> sorted({e.phase for e in prof.events() if e.kind == "kernel"})
    ['backward', 'forward', 'optimizer']
    >>> text = prof.key_averages().table(sort_by="cpu_time_total", row_limit=10)
    >>> prof.export_chrome_trace("trace.json")  # doctest: +SKIP

`prof.events()` lists plain records (`Event`): every op's forward (`Function.apply`), every
graph node's backward, every backend kernel or blocked CPU pass (generated pointwise
programs, GEMMs, the CUDA kernels, the optimizers' multi-tensor updates) and every range
(`record_function`, `Optimizer.step`), each with its phase: "forward", "backward" (a
node's backward and everything it runs), "optimizer" (inside `Optimizer.step` or
`zero_grad`) or "other" (a kernel outside every op and range). Times are host wall
clock, except for CUDA kernels: their duration is device time, from CUDA events recorded
around each launch and read only when the region ends (no host synchronisation inside).

PyTorch's training-loop form works as there: `schedule=gg.profiler.schedule(wait=1,
warmup=1, active=3)` with `prof.step()` at the end of each step records only the active
steps (each a range "ProfilerStep#N") and hands each cycle to `on_trace_ready`, e.g.
`gg.profiler.tensorboard_trace_handler("./log")`. Rows and events answer to PyTorch's
names too (`key`, `count`, `cpu_time_total`, `self_cpu_time_total`, `device_time_total`,
`input_shapes`, ...).

`prof.compile_stats()` counts the generated kernels and programs built in the region (a
NumPy program's compile, an NVRTC build) and their total time; the table ends with it.

Cheap when off: each choke point tests one module attribute (`gpugrad.backend.trace.
active`). The recording core lives in `gpugrad/backend/trace.py`, which every layer may
call; this module, above the others, turns its records into events, tables and traces.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import gzip
import io
import json
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .backend import trace as _trace
from .optim.optimizer import Optimizer

__all__ = ["CompileStats", "Event", "KeyAverage", "KeyAverages", "ProfilerAction",
           "ProfilerActivity", "profile", "record_function", "schedule",
           "tensorboard_trace_handler"]


class _TorchTimes:
    """PyTorch's names for the times (µs) of an event or a row: `cpu_*` for host-timed
    ones, `device_*` (and the older `cuda_*`) for CUDA kernels timed on the device; self
    time leaves out the host time of the events nested inside (device-timed kernels are
    not nested: their launch stays in the op's self time)."""

    @property
    def cpu_time_total(self) -> float:
        """Host-timed total in µs; 0 for device-timed kernels."""
        return 0.0 if self.device_time else self.total_us

    @property
    def self_cpu_time_total(self) -> float:
        """Host-timed total in µs less the events nested inside; 0 for device-timed."""
        return 0.0 if self.device_time else self.self_us

    @property
    def device_time_total(self) -> float:
        """Device-timed total in µs; 0 for host-timed events."""
        return self.total_us if self.device_time else 0.0

    @property
    def self_device_time_total(self) -> float:
        """Device-timed self total in µs (a kernel nests nothing: its total)."""
        return self.self_us if self.device_time else 0.0

    cuda_time_total = device_time_total
    self_cuda_time_total = self_device_time_total

    @property
    def cpu_time(self) -> float:
        """Mean host time per call in µs."""
        return self.cpu_time_total / self.count

    @property
    def cuda_time(self) -> float:
        """Mean device time per call in µs."""
        return self.device_time_total / self.count


class ProfilerActivity(enum.Enum):
    """What a profile records: CPU (ops, ranges and CPU kernels, host time) and CUDA
    (CUDA kernels timed on the device; without it they are timed on the host)."""

    CPU = "cpu"
    CUDA = "cuda"


@dataclass(frozen=True)
class Event(_TorchTimes):
    """One record of a profile.

    `kind` is "op" (a forward op or a graph node's backward), "kernel" (a backend kernel
    or blocked pass) or "range" (`record_function`, `Optimizer.step`); `phase` is
    "forward", "backward", "optimizer" or "other"; `shapes` are the shapes of the array
    inputs (the cotangents for a backward node) and `dtype` the first one's dtype;
    `start_us` is measured from the start of the region; `op` is the enclosing op (a
    kernel's owner, a nested op's parent) or None; `device_time` says that the duration
    is CUDA device time; `self_us` is the duration less that of the events nested in it
    on its thread. PyTorch's names work too: `key`, `input_shapes`, `cpu_time_total`,
    `self_cpu_time_total`, `device_time_total`, `cuda_time_total`, ..."""

    kind: str
    name: str
    phase: str
    device: str
    shapes: tuple
    dtype: str | None
    start_us: float
    duration_us: float
    op: str | None = None
    thread: int = 0
    device_time: bool = False
    self_us: float = 0.0

    count = 1  # a row of one call, as PyTorch's FunctionEvent

    @property
    def key(self) -> str:
        """The name (PyTorch's `key`)."""
        return self.name

    @property
    def total_us(self) -> float:
        """The duration (an event is a row of one call)."""
        return self.duration_us

    @property
    def input_shapes(self) -> list:
        """The input shapes as lists (PyTorch's `input_shapes`)."""
        return [list(s) for s in self.shapes]


@dataclass(frozen=True)
class KeyAverage(_TorchTimes):
    """Events of one name (and kind and device) aggregated: count, total and self time
    (PyTorch's names: `key`, `count`, `cpu_time_total`, `self_cpu_time_total`,
    `device_time_total`/`cuda_time_total`, `cpu_time`, `input_shapes`, ...)."""

    key: str
    kind: str
    device: str
    phases: tuple
    count: int
    total_us: float
    device_time: bool
    shapes: tuple | None = None
    ops: tuple = ()  # the ops that ran a kernel
    self_us: float = 0.0

    @property
    def mean_us(self) -> float:
        return self.total_us / self.count

    @property
    def input_shapes(self) -> list:
        """The input shapes as lists when grouped by them, else [] (PyTorch's name)."""
        return [] if self.shapes is None else [list(s) for s in self.shapes]


@dataclass(frozen=True)
class CompileStats:
    """Generated kernels and programs built in a region: `count` builds of `distinct`
    kernels taking `total_ms`; `by_compiler` maps "python" (a NumPy program's compile) and
    "nvrtc" (a CUDA build) to (count, ms); `entries` lists (compiler, name, ms)."""

    count: int = 0
    distinct: int = 0
    total_ms: float = 0.0
    by_compiler: dict = field(default_factory=dict)
    entries: tuple = ()

    def summary(self) -> str:
        """One line for the end of a table."""
        if not self.count:
            return "Compiled in this region: nothing (every kernel and program was cached)"
        parts = ", ".join(f"{k}: {n} in {ms:.1f} ms" for k, (n, ms) in
                          sorted(self.by_compiler.items()))
        return (f"Compiled in this region: {self.count} kernels/programs ({self.distinct} "
                f"distinct) in {self.total_ms:.1f} ms ({parts})")


# sort_by spellings: ours and PyTorch's (a row is host- or device-timed, so PyTorch's CPU
# and device totals sort by the one total here)
_SORT = {"duration": "total", "total": "total", "cpu_time_total": "total",
         "cuda_time_total": "total", "device_time_total": "total",
         "self": "self", "self_cpu_time_total": "self", "self_cuda_time_total": "self",
         "self_device_time_total": "self", "mean": "mean", "cpu_time": "mean",
         "cuda_time": "mean", "device_time": "mean", "count": "count", "name": "name"}
# PyTorch's memory columns: gg.profiler does not profile memory
_MEMORY_SORT = {"cpu_memory_usage", "self_cpu_memory_usage", "cuda_memory_usage",
                "self_cuda_memory_usage", "device_memory_usage", "self_device_memory_usage"}


class KeyAverages(list):
    """The rows of `profile.key_averages()` (a list of `KeyAverage`), with `table`."""

    def __init__(self, rows: Iterable[KeyAverage], region_us: float,
                 compiles: CompileStats) -> None:
        super().__init__(rows)
        self.region_us = region_us
        self.compiles = compiles

    def table(self, sort_by: str | None = "duration", row_limit: int = 100,
              max_src_column_width: int = 75, max_name_column_width: int | None = None,
              max_shapes_column_width: int = 80, header: str | None = None,
              top_level_events_only: bool = False) -> str:
        """A rich table (as text): per row the calls, total, self and mean time and the
        share of the region's wall time, sorted by `sort_by` ("duration"/"total", "self",
        "mean", "count", "name", or PyTorch's "cpu_time_total", "self_cpu_time_total",
        "cuda_time_total", ...), at most `row_limit` rows (a negative limit: all), then the
        compile cost. `header` is the title; names longer than `max_name_column_width`
        are cut. PyTorch's `max_src_column_width` and `max_shapes_column_width` change
        nothing (no source column; shapes follow the name); `top_level_events_only` is
        not supported."""
        from rich.console import Console
        from rich.table import Table

        if top_level_events_only:
            raise NotImplementedError("table: top_level_events_only is not supported; "
                                      "filter profile.events() by their `op` instead")
        if sort_by in _MEMORY_SORT:
            raise ValueError(f"table: cannot sort_by {sort_by!r}: gg.profiler does not "
                             f"profile memory")
        key = _SORT.get(sort_by or "duration")
        if key is None:
            raise ValueError(f"table: unknown sort_by {sort_by!r}; expected one of "
                             f"{', '.join(sorted(_SORT))}")
        rows = sorted(self, key={"total": lambda r: -r.total_us,
                                 "self": lambda r: -r.self_us,
                                 "mean": lambda r: -r.mean_us,
                                 "count": lambda r: -r.count,
                                 "name": lambda r: r.key}[key])
        if row_limit is not None and row_limit >= 0:
            rows = rows[:row_limit]
        table = Table(title=header or "gpugrad profile")
        for column in ("Name", "Kind", "Phase", "Device", "Calls", "Total", "Self", "Mean",
                       "% of region"):
            left = column in ("Name", "Kind", "Phase", "Device")
            cut = column == "Name" and max_name_column_width is not None
            table.add_column(column, justify="left" if left else "right",
                             max_width=max_name_column_width if cut else None,
                             no_wrap=cut, overflow="ellipsis")
        for r in rows:
            share = 100 * r.total_us / self.region_us if self.region_us else 0.0
            table.add_row(_label(r),
                          r.kind + (" (device)" if r.device_time else ""), ",".join(r.phases),
                          r.device, str(r.count), _fmt_us(r.total_us), _fmt_us(r.self_us),
                          _fmt_us(r.mean_us), f"{share:.1f}")
        out = io.StringIO()
        Console(file=out, width=160, color_system=None).print(table)
        return out.getvalue() + self.compiles.summary() + "\n"

    def __str__(self) -> str:
        return self.table()  # print(prof.key_averages()), as PyTorch's


class ProfilerAction(enum.Enum):
    """What a `schedule` asks of a profile at a step: nothing, warm up (nothing is
    recorded here), record, or record and then hand the cycle to `on_trace_ready`."""

    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(*, wait: int, warmup: int, active: int, repeat: int = 0, skip_first: int = 0,
             skip_first_wait: int = 0) -> Callable[[int], ProfilerAction]:
    """PyTorch's profiler schedule: after `skip_first` steps, cycles of `wait` steps not
    recorded, `warmup` steps not recorded, and `active` steps recorded, the last of which
    saves the cycle (`on_trace_ready`); `repeat` cycles (0: until the region ends); a
    nonzero `skip_first_wait` leaves out the first cycle's wait. Returns the function of
    the step number that `profile(schedule=...)` calls."""
    for name, value, least in (("wait", wait, 0), ("warmup", warmup, 0),
                               ("active", active, 1), ("repeat", repeat, 0),
                               ("skip_first", skip_first, 0)):
        if not isinstance(value, int) or value < least:
            raise ValueError(f"schedule: {name} must be an integer >= {least}, got "
                             f"{value!r}")
    cycle = wait + warmup + active

    def action(step: int) -> ProfilerAction:
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if skip_first_wait:
            step += wait
        if repeat and step >= repeat * cycle:
            return ProfilerAction.NONE
        k = step % cycle
        if k < wait:
            return ProfilerAction.NONE
        if k < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if k < cycle - 1 else ProfilerAction.RECORD_AND_SAVE

    return action


def tensorboard_trace_handler(dir_name: str | os.PathLike, worker_name: str | None = None,
                              use_gzip: bool = False) -> Callable[[profile], None]:
    """An `on_trace_ready` that writes each saved cycle's Chrome trace into `dir_name`
    (made if missing) as `{worker_name}.{time in ns}.pt.trace.json` (`.gz` with
    `use_gzip`), as PyTorch's; `worker_name` defaults to "{host}_{pid}"."""

    def handler(prof: profile) -> None:
        os.makedirs(dir_name, exist_ok=True)
        worker = worker_name or f"{socket.gethostname()}_{os.getpid()}"
        name = f"{worker}.{time.time_ns()}.pt.trace.json" + (".gz" if use_gzip else "")
        prof.export_chrome_trace(os.path.join(dir_name, name))

    return handler


_RECORDING = (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)


class profile:
    """Record the ops, kernels and ranges run in a region: `with profile() as prof:` (or
    `prof.start()` ... `prof.stop()`), then read `prof.events()`, `prof.table()`,
    `prof.key_averages()`, `prof.compile_stats()` or `prof.export_chrome_trace(path)`.

    PyTorch's keywords are taken: `activities` (default: CPU and CUDA), `enabled`,
    `schedule` and `on_trace_ready` are honoured. With a `schedule` (see `schedule`),
    `prof.step()` ends each step (recorded as a range "ProfilerStep#N"), only the steps
    the schedule records are recorded, and each cycle it saves is handed to
    `on_trace_ready` (the results are then that cycle's); without one, the whole region
    is recorded and `on_trace_ready` is called when it ends. Shapes are always
    recorded (`record_shapes` changes nothing); `profile_memory`, `with_stack`,
    `with_flops` and `with_modules` are not supported: True warns that nothing of theirs
    is recorded. One profile records at a time; events of ops run by other threads
    meanwhile are recorded with their thread.
    """

    def __init__(self, *, activities: Iterable[ProfilerActivity] | None = None,
                 schedule: Callable[[int], ProfilerAction] | None = None,
                 on_trace_ready: Callable | None = None,
                 record_shapes: bool = False, profile_memory: bool = False,
                 with_stack: bool = False, with_flops: bool = False,
                 with_modules: bool = False, enabled: bool = True) -> None:
        if schedule is not None and not callable(schedule):
            raise TypeError(f"profile: schedule must be a function of the step number "
                            f"(gg.profiler.schedule(...)), got {schedule!r}")
        acts = set(ProfilerActivity) if activities is None else set(activities)
        for a in acts:
            if not isinstance(a, ProfilerActivity):
                raise TypeError(f"profile: activities must be ProfilerActivity values, got "
                                f"{a!r}")
        if not acts:
            raise ValueError("profile: activities is empty; give ProfilerActivity.CPU "
                             "and/or ProfilerActivity.CUDA (or leave it out for both)")
        unsupported = [name for name, on in (("profile_memory", profile_memory),
                                             ("with_stack", with_stack),
                                             ("with_flops", with_flops),
                                             ("with_modules", with_modules)) if on]
        if unsupported:
            warnings.warn(f"gg.profiler.profile: {', '.join(unsupported)} not supported: "
                          f"nothing of theirs is recorded", UserWarning, stacklevel=2)
        self.activities = frozenset(acts)
        self.enabled = bool(enabled)
        self.schedule = schedule
        self.on_trace_ready = on_trace_ready
        self.step_num = 0
        self._state = "new"  # "running", "stopped"
        self._action = ProfilerAction.NONE
        self._recorder: _trace.Recorder | None = None
        self._step_range: tuple | None = None  # (recorder, token) of "ProfilerStep#N"
        self._events: tuple | None = None
        self._compiles = CompileStats()
        self._region_us = 0.0

    # -- the region ------------------------------------------------------------------------
    def start(self) -> None:
        """Begin the region (recording, unless the schedule says to wait)."""
        if self._state != "new":
            raise RuntimeError("profile: this profile is already recording" if
                               self._state == "running" else
                               "profile: this profile has already recorded; make a new one")
        action = self._scheduled(0)
        if action in _RECORDING:
            self._begin()
        self._action = action
        self._state = "running"
        self._open_step()

    def step(self) -> None:
        """End the current step and begin the next (`step_num` counts them): with a
        schedule, recording begins, ends or saves a cycle as it says."""
        if self._state != "running":
            raise RuntimeError("profile: step() outside the region (before start() or "
                               "after stop())")
        self._close_step()
        prev = self._action
        self.step_num += 1
        action = self._scheduled(self.step_num)
        self._action = ProfilerAction.NONE  # until the transition below succeeds
        if prev in _RECORDING and (prev is ProfilerAction.RECORD_AND_SAVE
                                   or action not in _RECORDING):
            self._end(save=prev is ProfilerAction.RECORD_AND_SAVE)
        if action in _RECORDING and self._recorder is None:
            self._begin()
        self._action = action
        self._open_step()

    def stop(self) -> None:
        """End the region (reads the CUDA timing events: the one wait for the device); a
        cycle being recorded is saved."""
        if self._state != "running":
            raise RuntimeError("profile: stop() without start()" if self._state == "new"
                               else "profile: already stopped")
        self._state = "stopped"
        self._close_step()
        if self._recorder is not None:
            self._end(save=True)
        elif self._events is None:  # the schedule recorded nothing
            self._events = ()

    def __enter__(self) -> profile:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _scheduled(self, step: int) -> ProfilerAction:
        if self.schedule is None:
            return ProfilerAction.RECORD
        action = self.schedule(step)
        if not isinstance(action, ProfilerAction):
            raise TypeError(f"profile: the schedule returned {action!r} for step {step}; "
                            f"expected a gg.profiler.ProfilerAction")
        return action

    def _begin(self) -> None:
        rec = _trace.Recorder(host=ProfilerActivity.CPU in self.activities,
                              device_time=ProfilerActivity.CUDA in self.activities)
        if self.enabled:
            _trace.start(rec)  # raises while another profile records
            _optimizer_ranges(True)
        self._recorder = rec

    def _end(self, save: bool) -> None:
        rec, self._recorder = self._recorder, None  # the raw records are released
        if self.enabled:
            _optimizer_ranges(False)
            _trace.stop(rec)
        else:
            rec.finish()
        if not save:
            return
        self._events = _events(rec)
        self._compiles = _compile_stats(rec.compiles)
        self._region_us = (rec.t1 - rec.t0) / 1000
        if self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def _open_step(self) -> None:
        rec = self._recorder
        if self.schedule is not None and rec is not None and self.enabled:
            self._step_range = (rec, rec.push_range(f"ProfilerStep#{self.step_num}"))

    def _close_step(self) -> None:
        if self._step_range is not None:
            rec, token = self._step_range
            self._step_range = None
            rec.pop_range(token)

    # -- results ---------------------------------------------------------------------------
    def _done(self) -> tuple:
        if self._events is None:
            raise RuntimeError("profile: results are available once the region has ended "
                               "(with a schedule: once a cycle has been saved)")
        return self._events

    def events(self) -> list[Event]:
        """The recorded events (plain, frozen records) in order of their start."""
        return list(self._done())

    def key_averages(self, group_by_input_shape: bool = False) -> KeyAverages:
        """Events aggregated by (name, kind, device), and by input shapes when
        `group_by_input_shape`; `.table(sort_by=..., row_limit=...)` prints them."""
        groups: dict = {}
        for e in self._done():
            key = (e.name, e.kind, e.device, e.device_time,
                   e.shapes if group_by_input_shape else None)
            groups.setdefault(key, []).append(e)
        rows = []
        for (name, kind, device, dev_time, shapes), evs in groups.items():
            phases = tuple(dict.fromkeys(e.phase for e in evs))
            owners = tuple(dict.fromkeys(e.op for e in evs if e.op is not None))
            rows.append(KeyAverage(name, kind, device, phases, len(evs),
                                   sum(e.duration_us for e in evs), dev_time, shapes,
                                   owners if kind == "kernel" else (),
                                   sum(e.self_us for e in evs)))
        return KeyAverages(rows, self._region_us, self._compiles)

    def table(self, sort_by: str = "duration", row_limit: int = 100, **options) -> str:
        """`key_averages().table(sort_by, row_limit, **options)`: a rich table as text,
        with the compile cost under it."""
        return self.key_averages().table(sort_by=sort_by, row_limit=row_limit, **options)

    def compile_stats(self) -> CompileStats:
        """The generated kernels and programs built in the region and their build time."""
        self._done()
        return self._compiles

    def export_chrome_trace(self, path: str | os.PathLike) -> None:
        """Write the events as Chrome trace-event JSON ("X" complete events, µs), which
        Perfetto (ui.perfetto.dev) and chrome://tracing open: host events on one track per
        thread, device-timed kernels on one track per device; gzip-compressed when the
        path ends in ".gz". A path that cannot be written raises the OSError of `open`."""
        text = json.dumps(self.chrome_trace()).encode()  # before the file is made
        if os.fspath(path).endswith(".gz"):
            text = gzip.compress(text)
        with open(path, "wb") as f:
            f.write(text)

    def chrome_trace(self) -> dict:
        """The trace `export_chrome_trace` writes, as a dict."""
        pids = {"host": 0}
        out = []
        threads = set()
        for e in self._done():
            track = e.device if e.device_time else "host"
            pid = pids.setdefault(track, len(pids))
            tid = 0 if e.device_time else e.thread
            threads.add((pid, tid))
            out.append({"name": e.name, "cat": e.kind, "ph": "X", "ts": e.start_us,
                        "dur": e.duration_us, "pid": pid, "tid": tid,
                        "args": {"shapes": [list(s) for s in e.shapes], "dtype": e.dtype,
                                 "phase": e.phase, "device": e.device, "op": e.op}})
        for track, pid in pids.items():
            out.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                        "args": {"name": "host (CPU)" if track == "host" else track}})
        for pid, tid in sorted(threads):
            name = (f"thread {tid}" if pid == 0 else "stream")
            out.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                        "args": {"name": name}})
        return {"traceEvents": out, "displayTimeUnit": "ms"}


class record_function(contextlib.ContextDecorator):
    """A named range (`with record_function("data"):` or as a decorator) recorded as an
    event of kind "range" while a profile runs; nothing otherwise."""

    def __init__(self, name: str, args: str | None = None) -> None:
        if not isinstance(name, str):  # else the table fails on it, far from here
            raise TypeError(f"record_function: name must be a str, got "
                            f"{type(name).__name__} {name!r}")
        self.name = name
        self.args = args
        self._open: list = []  # (recorder, token) per entry of a `with` on this object

    def _recreate_cm(self) -> record_function:
        # each call of a decorated function has its own range: calls from several
        # threads, or recursive ones, must not close each other's
        return type(self)(self.name, self.args)

    def __enter__(self) -> record_function:
        rec = _trace.active
        self._open.append((rec, rec.push_range(self.name) if rec is not None else None))
        return self

    def __exit__(self, *exc) -> None:
        rec, token = self._open.pop()
        if rec is not None:
            rec.pop_range(token)


# -- Optimizer.step and zero_grad as ranges of the optimizer phase ---------------------------
# As PyTorch wraps Optimizer.step for its profiler, the step and zero_grad of every optimizer
# class are wrapped while a profile runs (and only then: nothing is left when it stops).
_wrapped: dict = {}
_wrap_lock = threading.Lock()


def _optimizer_ranges(on: bool) -> None:
    with _wrap_lock:
        if not on:
            for (cls, attr), fn in _wrapped.items():
                setattr(cls, attr, fn)
            _wrapped.clear()
            return
        stack = [Optimizer]
        while stack:
            cls = stack.pop()
            stack.extend(cls.__subclasses__())
            for attr in ("step", "zero_grad"):
                fn = cls.__dict__.get(attr)
                if fn is not None and (cls, attr) not in _wrapped:
                    _wrapped[(cls, attr)] = fn
                    setattr(cls, attr, _optimizer_range(fn, attr))


def _optimizer_range(fn, attr: str):
    @functools.wraps(fn)
    def method(self, *args, **kwargs):
        rec = _trace.active
        if rec is None or rec.current_phase() == "optimizer":  # super().step() inside
            return fn(self, *args, **kwargs)
        token = rec.push_range(f"Optimizer.{attr}#{type(self).__name__}.{attr}", "optimizer")
        try:
            if attr == "step":
                args, kwargs = _closure_in_forward(rec, args, kwargs)
            return fn(self, *args, **kwargs)
        finally:
            rec.pop_range(token)

    return method


def _closure_in_forward(rec: _trace.Recorder, args: tuple, kwargs: dict):
    """step(closure) (LBFGS): the closure's forward is in the forward phase (its backward
    is in the backward phase anyway), not in the optimizer's."""
    closure = args[0] if args else kwargs.get("closure")
    if closure is None:
        return args, kwargs

    def forward():
        depth = rec.enter_phase("forward")
        try:
            return closure()
        finally:
            rec.leave_phase(depth)

    if args:
        return (forward,) + args[1:], kwargs
    return args, {**kwargs, "closure": forward}


# -- turning records into events ------------------------------------------------------------
def _events(rec: _trace.Recorder) -> tuple:
    t0 = rec.t0
    threads = {threading.main_thread().ident: 0}
    devices: dict = {None: "cpu"}
    dtypes: dict = {None: None}
    out = []
    records = rec.resolved
    nested = _nested_ns(records)
    for i, (kind, name, phase, backend, shapes, dtype, s, e, owner, tid, dev) in \
            enumerate(records):
        if dev is not None:
            start, dur = dev[0] - t0 / 1000, dev[1]
            own = dur
        else:
            start, dur = (s - t0) / 1000, (e - s) / 1000
            own = max(0.0, (e - s - nested[i]) / 1000)
        device = devices.get(backend)
        if device is None:
            device = devices[backend] = str(backend.device)
        if dtype not in dtypes:
            dtypes[dtype] = str(dtype).removeprefix("gpugrad.")
        out.append(Event(kind, name, phase, device, shapes, dtypes[dtype], start, dur, owner,
                         threads.setdefault(tid, len(threads)), dev is not None, own))
    out.sort(key=lambda ev: ev.start_us)
    return tuple(out)


def _nested_ns(records) -> list:
    """Per record, the host time (ns) of the records directly nested in it on its thread
    (those it contains; device-timed kernels nest in nothing): its duration less this is
    its self time."""
    nested = [0] * len(records)
    host = sorted((r[6], -r[7], i) for i, r in enumerate(records) if r[10] is None)
    stacks: dict = {}  # thread -> indices of the records open at this point
    for start, neg_end, i in host:
        end = -neg_end
        stack = stacks.setdefault(records[i][9], [])
        while stack and records[stack[-1]][7] < end:
            stack.pop()
        if stack:
            nested[stack[-1]] += end - start
        stack.append(i)
    return nested


def _compile_stats(compiles: list) -> CompileStats:
    by: dict = {}
    for what, _, ns in compiles:
        n, ms = by.get(what, (0, 0.0))
        by[what] = (n + 1, ms + ns / 1e6)
    return CompileStats(len(compiles), len({name for _, name, _ in compiles}),
                        sum(ns for _, _, ns in compiles) / 1e6, by,
                        tuple((what, name, ns / 1e6) for what, name, ns in compiles))


def _label(row: KeyAverage) -> str:
    """A row's name in the table: a kernel's owning ops follow (a generated kernel's name
    is its program's hash), then the shapes when grouped by them."""
    label = row.key
    if row.ops:
        label += f" ({', '.join(row.ops[:2])}{', …' if len(row.ops) > 2 else ''})"
    if row.shapes:
        label += f" {list(map(list, row.shapes))}"
    return label


def _fmt_us(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    if us >= 1e3:
        return f"{us / 1e3:.2f} ms"
    return f"{us:.1f} µs"
