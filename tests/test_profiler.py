"""gg.profiler: the records of a training step (counts, phases, owners, fields), ranges,
the Chrome trace, the table, compile cost, nothing recorded when off, threads, and the
same on the (emulated) GPU. No timing is asserted: only that times are there."""

import dataclasses
import doctest
import itertools
import json
import threading

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F
from gpugrad import profiler
from gpugrad.backend import expr as E
from gpugrad.backend import get_backend, trace
from gpugrad.backend.pointwise import Program
from gpugrad.optim.optimizer import Optimizer

_FIELDS = {"kind": str, "name": str, "phase": str, "device": str, "shapes": tuple,
           "start_us": float, "duration_us": float, "thread": int, "device_time": bool}
_unique = itertools.count()


def _mlp_step(device: str):
    """A Linear-ReLU-Linear step (cross-entropy, SGD) profiled, the input without grad."""
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)).to(device)
    opt = gg.optim.SGD(model.parameters(), lr=0.1)
    x, y = gg.randn(8, 6, device=device), gg.randint(0, 3, (8,), device=device)
    with profiler.profile() as prof:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return prof


def _check_step(prof, device: str) -> list:
    events = prof.events()
    for e in events:
        for name, typ in _FIELDS.items():
            assert isinstance(getattr(e, name), typ), (e, name)
        assert e.kind in ("op", "kernel", "range")
        assert e.phase in ("forward", "backward", "optimizer", "other")
        assert e.duration_us >= 0
        assert all(isinstance(s, tuple) for s in e.shapes)
    ops = [e for e in events if e.kind == "op"]
    kernels = [e for e in events if e.kind == "kernel"]
    linear = [e for e in ops if e.name == "Linear"]
    assert [e.phase for e in linear] == ["forward", "forward"]
    assert [e.shapes for e in linear] == [((8, 6), (16, 6), (16,)), ((8, 16), (3, 16), (3,))]
    assert all(e.dtype == "float32" and e.device == device for e in linear)
    nodes = [e for e in ops if e.name == "LinearBackward"]
    assert [e.phase for e in nodes] == ["backward", "backward"]
    assert [e.shapes for e in nodes] == [((8, 3),), ((8, 16),)]  # the cotangents
    # GEMMs: one per Linear forward; backward: x̄ and W̄ for the second layer, only W̄ for
    # the first (its input needs no gradient)
    gemms = [e for e in kernels if e.name == "matmul"]
    assert [(e.phase, e.op) for e in gemms] == [("forward", "Linear")] * 2 + \
        [("backward", "LinearBackward")] * 3
    assert all(e.device == device for e in gemms)
    # every op of the step ran at least one kernel or op of its own, on its device
    assert {e.op for e in kernels} >= {"Linear", "Relu", "LinearBackward", "ReluBackward"}
    assert all(e.phase == "backward" for e in kernels if e.op and e.op.endswith("Backward"))
    step = [e for e in events if e.kind == "range"]
    assert [(e.name, e.phase) for e in step] == [("Optimizer.step#SGD.step", "optimizer")]
    update = [e for e in kernels if e.phase == "optimizer"]
    assert update and all(step[0].start_us <= e.start_us for e in update)
    assert all(e.start_us >= -1.0 for e in events)  # measured from the region's start
    return events


def test_mlp_step_records_ops_backward_nodes_and_kernels_with_phases():
    events = _check_step(_mlp_step("cpu"), "cpu")
    kernels = [e for e in events if e.kind == "kernel"]
    assert not any(e.device_time for e in events)  # host wall time on the CPU
    assert [e.name for e in kernels if e.phase == "optimizer"] == ["sgd_update"]
    # the start times are ordered and the kernels lie inside their ops
    starts = [e.start_us for e in events]
    assert starts == sorted(starts)
    for k in kernels:
        if k.op == "Relu":
            relu = next(e for e in events if e.name == "Relu")
            assert relu.start_us <= k.start_us <= relu.start_us + relu.duration_us


def test_record_function_nests_and_is_a_decorator():
    @profiler.record_function("decorated")
    def f(t):
        return (t * 2).sum()

    x = gg.randn(4, 4)
    with profiler.profile() as prof:
        with profiler.record_function("outer"):
            with profiler.record_function("inner"):
                y = gg.tanh(x)
            f(y)
    ranges = {e.name: e for e in prof.events() if e.kind == "range"}
    assert set(ranges) == {"outer", "inner", "decorated"}
    outer, inner, deco = ranges["outer"], ranges["inner"], ranges["decorated"]
    for r in (inner, deco):
        assert outer.start_us <= r.start_us
        assert r.start_us + r.duration_us <= outer.start_us + outer.duration_us + 1e-3
    tanh = next(e for e in prof.events() if e.name == "Tanh")
    assert inner.start_us <= tanh.start_us  # an op inside a range keeps the forward phase
    assert tanh.phase == "forward" and outer.phase == "other"
    with profiler.record_function("no profile"):  # outside a profile: nothing, no error
        gg.tanh(x)


def test_chrome_trace_loads_with_complete_events(tmp_path):
    prof = _mlp_step("cpu")
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    trace_json = json.loads(path.read_text())
    complete = [e for e in trace_json["traceEvents"] if e["ph"] == "X"]
    assert len(complete) == len(prof.events())
    for e in complete:
        assert {"name", "cat", "ts", "dur", "pid", "tid", "args"} <= set(e)
        assert isinstance(e["ts"], float) and isinstance(e["dur"], float)
        assert {"shapes", "dtype", "phase", "device", "op"} <= set(e["args"])
    names = {e["name"] for e in complete}
    assert {"Linear", "LinearBackward", "matmul", "Optimizer.step#SGD.step"} <= names
    meta = [e for e in trace_json["traceEvents"] if e["ph"] == "M"]
    assert {"process_name", "thread_name"} <= {e["name"] for e in meta}


def test_table_and_key_averages():
    prof = _mlp_step("cpu")
    text = prof.table()
    for name in ("Linear", "LinearBackward", "ReluBackward", "matmul", "sgd_update"):
        assert name in text
    assert text.rstrip().splitlines()[-1].startswith("Compiled in this region")
    rows = {(r.key, r.kind): r for r in prof.key_averages()}
    assert rows[("Linear", "op")].count == 2
    assert rows[("matmul", "kernel")].count == 5
    assert rows[("matmul", "kernel")].phases == ("forward", "backward")
    short = prof.key_averages().table(sort_by="cpu_time_total", row_limit=2)
    assert sum(line.startswith("│") for line in short.splitlines()) == 2
    by_count = prof.key_averages().table(sort_by="count", row_limit=1)
    assert "matmul" in by_count  # the most frequent name
    shaped = prof.key_averages(group_by_input_shape=True)
    assert len([r for r in shaped if r.key == "Linear"]) == 2
    with pytest.raises(ValueError, match="unknown sort_by 'speed'"):
        prof.table(sort_by="speed")


def test_compile_stats_count_programs_built_in_the_region():
    x = np.ones((3, 4), dtype=np.float32)
    prog = Program(("x0",), (E.mul(E.var("x0"), E.const(1.0 + next(_unique) / 977)),))
    backend = get_backend("cpu")
    with profiler.profile() as first:
        backend.pointwise(prog, [x])
    stats = first.compile_stats()
    assert stats.count == stats.distinct == 1
    assert stats.by_compiler["python"][0] == 1 and stats.total_ms >= 0
    assert stats.entries[0][:2] == ("python", f"gg_pw_{prog.key}")
    assert "1 kernels/programs" in first.table()
    with profiler.profile() as second:  # cached now
        backend.pointwise(prog, [x])
    assert second.compile_stats().count == 0
    assert [e.name for e in second.events()] == [f"gg_pw_{prog.key}"]
    assert "nothing" in second.table()


def test_off_records_nothing_and_a_finished_profile_is_stable(monkeypatch):
    calls = []
    for method in ("op", "backward", "kernel", "push_range", "compiled"):
        original = getattr(trace.Recorder, method)

        def spy(self, *args, _original=original, _name=method, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(trace.Recorder, method, spy)
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    opt = gg.optim.SGD(model.parameters(), lr=0.1)

    def step():
        model(gg.randn(2, 4)).sum().backward()
        opt.step()

    step()
    assert calls == [] and trace.active is None
    with profiler.profile(enabled=False) as off:
        step()
    assert calls == [] and off.events() == [] and trace.active is None
    original_step = Optimizer.__dict__["step"]
    with profiler.profile() as prof:
        assert Optimizer.__dict__["step"] is not original_step  # a range while recording
        step()
    assert {"op", "backward", "kernel", "push_range"} <= set(calls)  # the spies work
    assert trace.active is None
    assert Optimizer.__dict__["step"] is original_step  # unwrapped again
    n, events = len(calls), prof.events()
    step()
    assert len(calls) == n and prof.events() == events
    with pytest.raises(dataclasses.FrozenInstanceError):
        events[0].name = "x"
    events.clear()  # a copy: the profile's own list is unchanged
    assert prof.events()
    with pytest.raises(RuntimeError, match="already recorded"):
        prof.start()
    with pytest.raises(RuntimeError, match="already stopped"):
        prof.stop()
    with pytest.raises(RuntimeError, match="without start"):
        profiler.profile().stop()


def test_profiles_do_not_nest_and_results_wait_for_the_end():
    inner = profiler.profile()
    with profiler.profile() as outer:
        with pytest.raises(RuntimeError, match="already recording"):
            with inner:
                pass
        with pytest.raises(RuntimeError, match="once the region has ended"):
            outer.events()
        gg.tanh(gg.randn(3))
    assert [e.name for e in outer.events() if e.kind == "op"] == ["Tanh"]
    with inner:  # the refused profile may record later
        gg.tanh(gg.randn(3))
    assert [e.name for e in inner.events() if e.kind == "op"] == ["Tanh"]
    with pytest.raises(TypeError, match="schedule must be a function"):
        profiler.profile(schedule=object())
    with pytest.raises(TypeError, match="ProfilerActivity"):
        profiler.profile(activities=["cpu"])


def test_activities_and_torch_keywords():
    seen = []
    with pytest.warns(UserWarning, match="profile_memory, with_stack not supported"):
        prof = profiler.profile(activities=[profiler.ProfilerActivity.CPU],
                                record_shapes=True, profile_memory=True, with_stack=True,
                                on_trace_ready=seen.append)
    with prof:
        gg.tanh(gg.randn(3))
    assert seen == [prof]
    assert [e.name for e in prof.events() if e.kind == "op"] == ["Tanh"]
    with profiler.profile(activities=[profiler.ProfilerActivity.CUDA]) as cuda_only:
        gg.tanh(gg.randn(3))  # CPU work: not recorded
    assert cuda_only.events() == []


def test_ops_of_other_threads_are_recorded_with_their_thread():
    errors = []
    together = threading.Barrier(3)  # all alive at once: thread ids are not reused

    def work():
        try:
            together.wait(timeout=60)
            for _ in range(5):
                gg.sigmoid(gg.randn(8)).sum()
            together.wait(timeout=60)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    with profiler.profile() as prof:
        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        work()
        for t in threads:
            t.join()
    assert not errors
    sig = [e for e in prof.events() if e.name == "Sigmoid"]
    assert len(sig) == 15
    assert len({e.thread for e in sig}) == 3 and all(e.phase == "forward" for e in sig)


def test_module_docstring_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(profiler, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5 and result.failed == 0


# -- the (emulated) GPU --------------------------------------------------------------------
@pytest.mark.gpu
def test_gpu_step_kernels_are_device_timed_without_syncs_inside():
    backend = get_backend("cuda")
    backend.counter.reset()
    prof = _mlp_step("cuda")
    events = _check_step(prof, "cuda:0")
    kernels = [e for e in events if e.kind == "kernel"]
    timed = [e for e in kernels if e.device_time]
    assert timed and all(e.device == "cuda:0" for e in timed)
    assert {e.name for e in timed} >= {"matmul", "sgd_multi"}
    assert backend.counter.synchronizations == 0 and backend.counter.device_to_host == 0
    tracks = {e["args"]["name"] for e in prof.chrome_trace()["traceEvents"]
              if e["name"] == "process_name"}
    assert tracks == {"host (CPU)", "cuda:0"}


@pytest.mark.gpu
def test_gpu_compile_stats_count_nvrtc_builds():
    x = gg.randn(5, 7, device="cuda")._data
    prog = Program(("x0",), (E.mul(E.var("x0"), E.const(2.0 + next(_unique) / 977)),))
    with profiler.profile() as prof:
        get_backend("cuda").pointwise(prog, [x])
    stats = prof.compile_stats()
    assert stats.by_compiler["nvrtc"][0] == 1
    assert any(name.startswith(f"gg_pw_{prog.key}") for _, name, _ in stats.entries)
    kernel = [e for e in prof.events() if e.kind == "kernel"]
    assert [(e.name, e.device_time, e.shapes) for e in kernel] == \
        [(f"gg_pw_{prog.key}", True, ((5, 7),))]


@pytest.mark.gpu
def test_gpu_cuda_activity_off_times_kernels_on_the_host():
    x = gg.randn(64, device="cuda")
    with profiler.profile(activities=[profiler.ProfilerActivity.CPU]) as prof:
        gg.tanh(x)
    kernels = [e for e in prof.events() if e.kind == "kernel"]
    assert kernels and not any(e.device_time for e in kernels)


@pytest.mark.gpu
def test_gpu_graph_capture_inside_a_profile_times_captured_kernels_on_the_host():
    x = gg.randn(32, device="cuda")

    def step(t):
        return gg.tanh(t) * 2

    with profiler.profile() as prof:
        run = gg.cuda.graphed(step, x, warmup=1)
        out = run(x)
    np.testing.assert_allclose(out.cpu().numpy(), np.tanh(x.cpu().numpy()) * 2, rtol=1e-6)
    kernels = [e for e in prof.events() if e.kind == "kernel" and e.name == "multiply"]
    # the warm-up step ran (device events); the captured one only recorded (host time)
    assert [e.device_time for e in kernels] == [True, False]


def test_a_blocked_pass_on_the_thread_pool_is_one_kernel():
    """A large elementwise op runs in cache blocks on the CPU pool: one kernel record (on
    the calling thread), not one per block or worker."""
    from gpugrad.backend import cpu_parallel

    x = gg.randn(2 * cpu_parallel.PARALLEL_MIN // 64, 64) * 0.5
    with profiler.profile() as prof:
        gg.tanh(x)
        x * x
    kernels = [(e.name, e.op, e.thread) for e in prof.events() if e.kind == "kernel"]
    assert len(kernels) == 2
    assert kernels[0][1:] == ("Tanh", 0) and kernels[1] == ("multiply", "Mul", 0)


def test_a_thread_still_running_ops_when_the_region_ends_does_not_crash():
    stop, errors = threading.Event(), []

    def work():
        try:
            while not stop.is_set():
                gg.tanh(gg.randn(16)).sum()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=work)
    with profiler.profile() as prof:
        t.start()
        for _ in range(20):
            gg.tanh(gg.randn(16))
    events = prof.events()
    for _ in range(20):
        gg.tanh(gg.randn(16))
    stop.set()
    t.join()
    assert not errors and trace.active is None
    assert prof.events() == events and events


@pytest.mark.skipif(not hasattr(__import__("os"), "register_at_fork"), reason="needs fork")
def test_a_forked_child_records_nothing():
    """DataLoader workers forked inside a region run their ops unrecorded."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()

    def child(q):
        gg.tanh(gg.randn(4))
        q.put(trace.active is None)

    with profiler.profile() as prof:
        p = ctx.Process(target=child, args=(queue,))
        p.start()
        assert queue.get(timeout=60) is True
        p.join(timeout=60)
    assert p.exitcode == 0 and trace.active is None
    assert not [e for e in prof.events() if e.kind == "op"]


@pytest.mark.parametrize("fused", [False, True], ids=["plain", "gg.fuse"])
def test_activation_chain_backward_is_one_kernel(fused):
    """tanh(σ(x)·x + silu(x)): five elementwise nodes, whose backward the engine runs as one
    fused region (plain) or which gg.fuse records as one node: one backward op, one kernel."""
    x = gg.tensor(np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32),
                  requires_grad=True)

    def chain(v):
        return gg.tanh(gg.sigmoid(v) * v + F.silu(v))

    fn = gg.fuse(chain) if fused else chain
    fn(x).backward(gg.ones_like(x))  # builds the programs outside the region
    with gg.profiler.profile() as prof:
        fn(x).backward(gg.ones_like(x))
    back = [e for e in prof.events() if e.phase == "backward"]
    assert [e.kind for e in back] == ["op", "kernel"], [(e.kind, e.name) for e in back]
    assert back[0].name.startswith("Fused")
