"""gg.profiler as code ported from `torch.profiler` uses it, and where such code breaks
it: schedules and steps, trace handlers, torch's names on the rows and events, self
time, exceptions inside the region, threads, unwritable trace paths, and the phases of
a backward's gradient sums. No timing is asserted: counts, names, phases and nesting."""

import gzip
import json
import threading
import warnings

import pytest

import gpugrad as gg
from gpugrad import profiler
from gpugrad.backend import trace
from gpugrad.optim.optimizer import Optimizer


def test_gradient_sums_between_nodes_are_in_the_backward_phase():
    # w feeds Mul twice: its two contributions are summed by the engine, outside every
    # node's backward (an in-place add_ kernel; with create_graph an Add op)
    w = gg.randn(3, requires_grad=True)
    with profiler.profile() as prof:
        (w * w).sum().backward()
        g, = gg.autograd.grad((w * w).sum(), [w], create_graph=True)
    assert trace.active is None
    events = prof.events()
    sums = [e for e in events if e.name in ("add_", "Add", "add")]
    assert [(e.kind, e.name) for e in sums] == [("kernel", "add_"), ("op", "Add"),
                                                ("kernel", "add")]
    assert {e.phase for e in sums} == {"backward"}
    # forward ops keep the forward phase, before and after a backward
    assert [e.phase for e in events if e.name == "Mul" and e.kind == "op"] == ["forward"] * 2
    assert "other" not in {e.phase for e in events}


def _ranges(prof) -> list:
    return [e.name for e in prof.events() if e.kind == "range"]


def test_schedule_records_the_active_steps_and_saves_each_cycle():
    saved = []

    def on_ready(p):
        saved.append((p.step_num, _ranges(p),
                      sum(e.name == "Tanh" for e in p.events())))

    recording = []
    sched = profiler.schedule(wait=1, warmup=1, active=3, repeat=2)
    with profiler.profile(schedule=sched, on_trace_ready=on_ready) as prof:
        for i in range(12):
            recording.append(trace.active is not None)
            for _ in range(i + 1):  # step i runs i + 1 ops: the counts tell the steps
                gg.tanh(gg.randn(2))
            prof.step()
    assert trace.active is None
    # wait, warmup, 3 active; twice; then nothing
    assert recording == [False, False, True, True, True,
                         False, False, True, True, True, False, False]
    assert saved == [(5, ["ProfilerStep#2", "ProfilerStep#3", "ProfilerStep#4"], 3 + 4 + 5),
                     (10, ["ProfilerStep#7", "ProfilerStep#8", "ProfilerStep#9"],
                      8 + 9 + 10)]
    assert _ranges(prof) == ["ProfilerStep#7", "ProfilerStep#8", "ProfilerStep#9"]
    tanh = [e for e in prof.events() if e.name == "Tanh"]
    step8 = next(e for e in prof.events() if e.name == "ProfilerStep#8")
    inside = [e for e in tanh if step8.start_us <= e.start_us
              and e.start_us + e.duration_us <= step8.start_us + step8.duration_us]
    assert len(inside) == 9  # step 8's ops nest in its range


def test_schedule_matches_torch():
    torch_profiler = pytest.importorskip("torch.profiler")
    for kw in (dict(wait=1, warmup=1, active=3, repeat=1), dict(wait=0, warmup=0, active=1),
               dict(wait=2, warmup=0, active=2, repeat=3, skip_first=3),
               dict(wait=0, warmup=2, active=4, repeat=0, skip_first=1),
               dict(wait=3, warmup=1, active=2, repeat=2, skip_first=2, skip_first_wait=1)):
        ours = profiler.schedule(**kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about warmup=0
            theirs = torch_profiler.schedule(**kw)
        assert [ours(k).name for k in range(40)] == [theirs(k).name for k in range(40)], kw


def test_a_region_ending_mid_cycle_saves_it_and_a_cycle_never_reached_leaves_no_events():
    saved = []
    with profiler.profile(schedule=profiler.schedule(wait=1, warmup=0, active=5),
                          on_trace_ready=saved.append) as prof:
        for _ in range(3):
            gg.tanh(gg.randn(2))
            prof.step()
    assert saved == [prof] and trace.active is None
    assert _ranges(prof) == ["ProfilerStep#1", "ProfilerStep#2", "ProfilerStep#3"]
    assert sum(e.name == "Tanh" for e in prof.events()) == 2
    with profiler.profile(schedule=profiler.schedule(wait=5, warmup=1, active=1),
                          on_trace_ready=saved.append) as never:
        gg.tanh(gg.randn(2))
        with pytest.raises(RuntimeError, match="once a cycle has been saved"):
            never.events()
        never.step()
    assert never.events() == [] and len(saved) == 1
    assert "Compiled in this region: nothing" in never.table()


def test_step_without_schedule_records_the_region_once():
    saved = []
    with profiler.profile(on_trace_ready=saved.append) as prof:
        for _ in range(3):
            gg.tanh(gg.randn(2))
            prof.step()
        assert trace.active is not None
        with pytest.raises(RuntimeError, match="already recording"):
            prof.start()
    assert saved == [prof] and prof.step_num == 3
    assert sum(e.name == "Tanh" for e in prof.events()) == 3
    assert _ranges(prof) == []  # as PyTorch: step ranges only with a schedule
    with pytest.raises(RuntimeError, match="outside the region"):
        prof.step()
    with pytest.raises(RuntimeError, match="outside the region"):
        profiler.profile().step()


def test_schedule_arguments_are_checked():
    with pytest.raises(ValueError, match="active must be an integer >= 1, got 0"):
        profiler.schedule(wait=1, warmup=1, active=0)
    with pytest.raises(ValueError, match="wait must be an integer >= 0, got -1"):
        profiler.schedule(wait=-1, warmup=1, active=1)
    with pytest.raises(TypeError):
        profiler.schedule(1, 1, 1)  # keywords only, as PyTorch's
    mine = profiler.profile(schedule=lambda step: step >= 1)  # not a ProfilerAction
    with pytest.raises(TypeError, match="returned False for step 0; expected a gg"):
        mine.start()
    assert trace.active is None


def test_tensorboard_trace_handler_writes_one_trace_per_saved_cycle(tmp_path):
    logdir = tmp_path / "runs" / "exp"  # made by the handler
    with profiler.profile(schedule=profiler.schedule(wait=0, warmup=1, active=2),
                          on_trace_ready=profiler.tensorboard_trace_handler(
                              str(logdir), worker_name="w0")) as prof:
        for _ in range(6):  # cycles end at steps 3 and 6
            gg.tanh(gg.randn(2))
            prof.step()
    files = sorted(logdir.iterdir())  # the names end in the time in ns: in order
    assert all(f.name.startswith("w0.") and f.name.endswith(".pt.trace.json")
               for f in files)
    steps = [sorted(e["name"] for e in json.loads(f.read_text())["traceEvents"]
                    if e["name"].startswith("ProfilerStep")) for f in files]
    assert steps == [["ProfilerStep#1", "ProfilerStep#2"], ["ProfilerStep#4", "ProfilerStep#5"]]
    gz_dir = tmp_path / "gz"
    with profiler.profile(on_trace_ready=profiler.tensorboard_trace_handler(
            gz_dir, use_gzip=True)):
        gg.tanh(gg.randn(2))
    (f,) = gz_dir.iterdir()
    assert f.name.endswith(".pt.trace.json.gz")
    assert any(e["name"] == "Tanh" for e in json.loads(gzip.open(f).read())["traceEvents"])


def test_torch_names_on_rows_and_events():
    x = gg.randn(4, 3)
    with profiler.profile() as prof:
        with profiler.record_function("model_inference"):
            gg.tanh(x)
            gg.tanh(gg.randn(2, 2))
    rows = {r.key: r for r in prof.key_averages()}
    tanh = rows["Tanh"]
    assert tanh.count == 2 and tanh.input_shapes == []  # not grouped by shape
    assert tanh.cpu_time_total == tanh.total_us and tanh.cpu_time == tanh.mean_us
    assert tanh.cuda_time_total == tanh.device_time_total == 0.0  # host-timed on the CPU
    assert tanh.self_device_time_total == tanh.self_cuda_time_total == 0.0
    # the range holds the ops, the ops their kernels: self time leaves them out
    outer = rows["model_inference"]
    assert 0 <= outer.self_cpu_time_total < outer.cpu_time_total
    assert 0 <= tanh.self_cpu_time_total < tanh.cpu_time_total
    shaped = {tuple(map(tuple, r.input_shapes)) for r in
              prof.key_averages(group_by_input_shape=True) if r.key == "Tanh"}
    assert shaped == {((4, 3),), ((2, 2),)}
    ev = next(e for e in prof.events() if e.name == "Tanh")
    assert ev.key == "Tanh" and ev.count == 1 and ev.input_shapes == [[4, 3]]
    assert ev.cpu_time_total == ev.duration_us and ev.device_time_total == 0.0
    assert 0 <= ev.self_cpu_time_total <= ev.cpu_time_total


def _record(rec, kind, name, start, end, tid=1):
    rec.records.append((kind, name, "forward", None, (), None, rec.t0 + start,
                        rec.t0 + end, None, tid, None))


def test_self_time_subtracts_what_nests_on_the_same_thread():
    rec = trace.Recorder()
    # thread 1: a range [0, 100] holding op A [10, 60] (kernel [20, 50] in it) and op B
    # [70, 90]; thread 2: op C [15, 55] overlaps A in time but nests in nothing
    _record(rec, "kernel", "k", 20_000, 50_000)
    _record(rec, "op", "A", 10_000, 60_000)
    _record(rec, "op", "B", 70_000, 90_000)
    _record(rec, "range", "R", 0, 100_000)
    _record(rec, "op", "C", 15_000, 55_000, tid=2)
    rec.finish()
    events = {e.name: e for e in profiler._events(rec)}
    assert {n: e.self_us for n, e in events.items()} == {
        "R": 30.0, "A": 20.0, "k": 30.0, "B": 20.0, "C": 40.0}
    assert {n: e.duration_us for n, e in events.items()} == {
        "R": 100.0, "A": 50.0, "k": 30.0, "B": 20.0, "C": 40.0}


def test_table_takes_torchs_keywords():
    w = gg.randn(8, requires_grad=True)
    with profiler.profile() as prof:
        with profiler.record_function("a_rather_long_range_name_for_the_table"):
            gg.tanh(gg.sigmoid(w)).sum().backward()
    ka = prof.key_averages()
    text = ka.table(sort_by="self_cpu_time_total", row_limit=3, header="step 1",
                    max_name_column_width=12, max_src_column_width=10,
                    max_shapes_column_width=10)
    assert "step 1" in text and "Self" in text
    assert "a_rather_long_range_name_for_the_table" not in text  # cut to 12
    assert sum(line.startswith("│") for line in text.splitlines()) == 3
    assert "a_rather_long_range_name_for_the_table" in ka.table()
    by_self = [r.key for r in sorted(ka, key=lambda r: -r.self_us)][:3]
    first = next(line for line in ka.table(sort_by="self_cpu_time_total").splitlines()
                 if line.startswith("│"))
    assert first.split("│")[1].strip().startswith(by_self[0][:10])
    with pytest.raises(NotImplementedError, match="top_level_events_only"):
        ka.table(top_level_events_only=True)
    with pytest.raises(ValueError, match="does not profile memory"):
        ka.table(sort_by="self_cpu_memory_usage")
    with pytest.raises(TypeError, match="group_by_stack_n"):
        prof.key_averages(group_by_stack_n=5)  # unknown keywords are not swallowed
    with pytest.raises(TypeError, match="sort_keys"):
        ka.table(sort_keys="count")
    assert str(ka) == ka.table()  # print(prof.key_averages()) prints the table
    assert "step 2" in prof.table(header="step 2")


def test_unsupported_keywords_warn_and_no_activity_is_an_error():
    for kw in ("profile_memory", "with_stack", "with_flops", "with_modules"):
        with pytest.warns(UserWarning, match=f"{kw} not supported"):
            profiler.profile(**{kw: True})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        profiler.profile(record_shapes=True, profile_memory=False)  # nothing to warn of
    with pytest.raises(ValueError, match="activities is empty"):
        profiler.profile(activities=[])
    with pytest.raises(TypeError, match="use_cuda"):
        profiler.profile(use_cuda=True)


def test_an_exception_in_the_region_stops_recording_and_leaves_nothing_on(monkeypatch):
    model = gg.nn.Linear(3, 2)
    opt = gg.optim.SGD(model.parameters(), lr=0.1)
    original_step = Optimizer.__dict__["step"]
    saved = []
    w = gg.randn(3, requires_grad=True)

    def bad_hook(g):
        raise KeyError("in a hook")

    with pytest.raises(KeyError, match="in a hook"):
        with profiler.profile(on_trace_ready=saved.append) as prof:
            with profiler.record_function("outer"):
                model(gg.randn(4, 3)).sum().backward()
                opt.step()
                h = gg.tanh(w)
                h.register_hook(bad_hook)
                h.sum().backward()  # raises inside the backward pass
    assert trace.active is None and saved == [prof]
    assert Optimizer.__dict__["step"] is original_step
    names = [e.name for e in prof.events()]
    assert {"outer", "Linear", "LinearBackward", "Optimizer.step#SGD.step", "Tanh",
            "SumBackward"} <= set(names)
    calls = []
    monkeypatch.setattr(trace.Recorder, "op", lambda *a, **k: calls.append(a))
    model(gg.randn(4, 3)).sum().backward()  # later ops: not recorded, no profile cost
    opt.step()
    assert calls == [] and [e.name for e in prof.events()] == names
    # a new profile starts from clean phases on this thread
    monkeypatch.undo()
    with profiler.profile() as again:
        gg.tanh(w)
    assert [(e.name, e.phase) for e in again.events() if e.kind == "op"] == [("Tanh",
                                                                              "forward")]


def test_an_exception_mid_cycle_saves_the_cycle_and_stops():
    saved = []
    with pytest.raises(ZeroDivisionError):
        with profiler.profile(schedule=profiler.schedule(wait=0, warmup=0, active=3),
                              on_trace_ready=saved.append) as prof:
            gg.tanh(gg.randn(2))
            prof.step()
            raise ZeroDivisionError("in step 1")
    assert trace.active is None and saved == [prof]
    assert _ranges(prof) == ["ProfilerStep#0", "ProfilerStep#1"]


def test_a_scheduled_cycle_cannot_start_while_another_profile_records():
    with profiler.profile() as outer:
        sched = profiler.profile(schedule=profiler.schedule(wait=1, warmup=0, active=1))
        with pytest.raises(RuntimeError, match="already recording"):
            with sched:
                sched.step()  # its recording would begin here
        gg.tanh(gg.randn(2))
    assert trace.active is None
    assert [e.name for e in outer.events() if e.kind == "op"] == ["Tanh"]
    assert sched.events() == []


def test_chrome_trace_paths_and_format(tmp_path):
    with profiler.profile() as prof:
        gg.tanh(gg.randn(2))
        with pytest.raises(RuntimeError, match="once the region has ended"):
            prof.export_chrome_trace(tmp_path / "early.json")
    assert not (tmp_path / "early.json").exists()  # no empty file left behind
    missing = tmp_path / "no" / "such" / "dir" / "t.json"
    with pytest.raises(FileNotFoundError, match="t.json"):
        prof.export_chrome_trace(missing)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):  # an OSError, as for an unwritable path
        prof.export_chrome_trace(tmp_path / "file" / "t.json")
    with pytest.raises(IsADirectoryError):
        prof.export_chrome_trace(tmp_path)
    for name, read in (("t.json", lambda p: p.read_text()),
                       ("t.json.gz", lambda p: gzip.open(p).read())):
        prof.export_chrome_trace(tmp_path / name)
        events = json.loads(read(tmp_path / name))["traceEvents"]
        complete = [e for e in events if e["ph"] == "X"]
        assert [e["name"] for e in complete] == [e.name for e in prof.events()]
        for e in complete:
            assert isinstance(e["name"], str) and isinstance(e["pid"], int)
            assert isinstance(e["tid"], int) and e["dur"] >= 0 and e["ts"] >= 0
        assert {e["ph"] for e in events} == {"X", "M"}


def test_an_empty_region():
    with profiler.profile() as prof:
        pass
    assert prof.events() == [] and list(prof.key_averages()) == []
    assert prof.table().rstrip().splitlines()[-1].startswith("Compiled in this region")
    assert [e["ph"] for e in prof.chrome_trace()["traceEvents"]] == ["M"]  # host track
    json.dumps(prof.chrome_trace())


def test_a_decorated_function_in_two_threads_keeps_each_threads_range():
    # thread a enters, then b; a leaves first: each range must still be its own
    entered, a_left = threading.Barrier(2), threading.Event()
    errors = []

    @profiler.record_function("work")
    def work(first: bool):
        gg.tanh(gg.randn(2))
        entered.wait(timeout=60)
        if first:
            return
        a_left.wait(timeout=60)

    def run(first):
        try:
            work(first)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            if first:
                a_left.set()

    with profiler.profile() as prof:
        threads = [threading.Thread(target=run, args=(f,)) for f in (True, False)]
        threads[0].start()
        threads[1].start()
        for t in threads:
            t.join()
    assert not errors
    with pytest.raises(TypeError, match="name must be a str, got int 5"):
        profiler.record_function(5)
    ranges = [e for e in prof.events() if e.name == "work"]
    ops = [e for e in prof.events() if e.name == "Tanh"]
    assert len(ranges) == 2 and len(ops) == 2 and {r.thread for r in ranges} == {1, 2}
    for r in ranges:  # each thread's op lies in that thread's range
        (op,) = [o for o in ops if o.thread == r.thread]
        assert r.start_us <= op.start_us
        assert op.start_us + op.duration_us <= r.start_us + r.duration_us + 1e-3


def test_fused_region_and_optimizer_phases():
    w = gg.randn(64, requires_grad=True)
    opt = gg.optim.Adam([w], lr=0.1)

    @gg.fuse
    def chain(v):
        return gg.tanh(gg.sigmoid(v) * v)

    with profiler.profile() as prof:
        chain(w).sum().backward()
        opt.step()
        opt.zero_grad()
    events = prof.events()
    fused = [e for e in events if e.name == "Fused"]
    assert [(e.kind, e.phase) for e in fused] == [("op", "forward")]
    # the rows the region deferred run in Fused's program: no op events of their own
    assert not {"Sigmoid", "Mul", "Tanh"} & {e.name for e in events if e.kind == "op"}
    kernels = [e for e in events if e.kind == "kernel"]
    assert [e.phase for e in kernels if e.op == "Fused"] == ["forward"]  # one pass
    assert [e.phase for e in kernels if e.op == "FusedBackward"] == ["backward"]
    assert {e.phase for e in kernels if e.name == "adam_update"} == {"optimizer"}
    assert {e.name for e in events if e.kind == "range"} == {
        "Optimizer.step#Adam.step", "Optimizer.zero_grad#Adam.zero_grad"}
    assert "other" not in {e.phase for e in events}


@pytest.mark.gpu
def test_gpu_device_timed_kernels_under_torchs_names():
    x = gg.randn(64, 32, device="cuda")
    with profiler.profile() as prof:
        gg.tanh(x @ x.T).sum()
    rows = [r for r in prof.key_averages() if r.device_time]
    assert rows and {r.key for r in rows} >= {"matmul"}
    for r in rows:  # device time, and a kernel nests nothing on the device
        assert r.cpu_time_total == r.self_cpu_time_total == 0.0
        assert r.cuda_time_total == r.device_time_total == r.total_us
        assert r.self_cuda_time_total == r.device_time_total
    op = next(r for r in prof.key_averages() if r.key == "Tanh")
    assert op.device_time_total == 0.0 and op.self_cpu_time_total <= op.cpu_time_total
    assert "Self" in prof.key_averages().table(sort_by="self_cuda_time_total")


@pytest.mark.parametrize("name", ["LBFGS", "SGD"])
def test_a_step_closure_runs_in_the_forward_and_backward_phases(name):
    model = gg.nn.Linear(3, 1)
    opt = (gg.optim.LBFGS(model.parameters(), max_iter=2) if name == "LBFGS"
           else gg.optim.SGD(model.parameters(), lr=0.1))
    x = gg.randn(5, 3)

    def closure():
        opt.zero_grad()
        loss = (model(x) ** 2).sum()
        loss.backward()
        return loss

    with profiler.profile() as prof:
        if name == "SGD":
            opt.step(closure=closure)  # by keyword
        else:
            opt.step(closure)
    phases = {e.name: e.phase for e in prof.events() if e.kind == "op"}
    assert phases["Linear"] == "forward" and phases["LinearBackward"] == "backward"
    ranges = {(e.name, e.phase) for e in prof.events() if e.kind == "range"}
    assert ranges == {(f"Optimizer.step#{name}.step", "optimizer"),
                      (f"Optimizer.zero_grad#{name}.zero_grad", "optimizer")}
    assert trace.active is None
