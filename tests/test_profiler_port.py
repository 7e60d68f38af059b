"""gg.profiler as code ported from `torch.profiler` uses it, and where such code breaks
it: schedules and steps, trace handlers, torch's names on the rows and events, self
time, exceptions inside the region, threads, unwritable trace paths, and the phases of
a backward's gradient sums. No timing is asserted: counts, names, phases and nesting."""

import gpugrad as gg
from gpugrad import profiler
from gpugrad.backend import trace


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
