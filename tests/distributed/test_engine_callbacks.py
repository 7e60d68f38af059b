"""`queue_callback`: run code when the current backward has finished (DDP waits there)."""

import threading

import pytest

import gpugrad as gg
from gpugrad.autograd.engine import queue_callback


def test_callbacks_run_after_every_grad_is_accumulated_in_order():
    w = gg.tensor([1.0, 2.0], requires_grad=True)
    b = gg.tensor(3.0, requires_grad=True)
    seen = []

    def hook(grad):
        queue_callback(lambda: seen.append(("first", w.grad.tolist(), b.grad.item())))
        queue_callback(lambda: queue_callback(lambda: seen.append(("chained",))))
        return None

    w.register_hook(hook)
    ((w * w).sum() + b * 2).backward()
    assert seen == [("first", [2.0, 4.0], 2.0), ("chained",)]


def test_a_backward_inside_a_hook_runs_only_its_own_callbacks():
    outer = gg.tensor(1.0, requires_grad=True)
    inner = gg.tensor(2.0, requires_grad=True)
    order = []

    def hook(grad):
        queue_callback(lambda: order.append("outer"))
        inner.register_hook(lambda g: queue_callback(lambda: order.append("inner")))
        with gg.enable_grad():  # hooks run with grad mode off
            (inner * 3).backward()
        order.append("inner backward returned")

    outer.register_hook(hook)
    (outer * 5).backward()
    assert order == ["inner", "inner backward returned", "outer"]


def test_queue_callback_outside_backward_is_an_error():
    with pytest.raises(RuntimeError, match="outside backward; call it from a tensor hook"):
        queue_callback(lambda: None)


def test_callbacks_of_a_failed_backward_are_dropped():
    x = gg.tensor(1.0, requires_grad=True)
    calls = []

    def failing_hook(grad):
        queue_callback(lambda: calls.append("ran"))
        raise ValueError("hook failed")

    handle = x.register_hook(failing_hook)
    with pytest.raises(ValueError, match="hook failed"):
        (x * 2).backward()
    handle.remove()
    (x * 2).backward()
    assert calls == []
    with pytest.raises(RuntimeError, match="outside backward"):
        queue_callback(lambda: None)


def test_callbacks_belong_to_the_backward_of_their_own_thread():
    inside, release = threading.Event(), threading.Event()
    ran = []

    def hook(g):
        inside.set()
        release.wait(5)
        queue_callback(lambda: ran.append("worker"))

    def worker():
        x = gg.tensor([1.0, 2.0], requires_grad=True)
        x.register_hook(hook)
        (x * 2).sum().backward()

    t = threading.Thread(target=worker)
    t.start()
    try:
        assert inside.wait(5)
        with pytest.raises(RuntimeError, match="outside backward"):
            queue_callback(lambda: ran.append("main"))  # no backward runs in this thread
    finally:
        release.set()
        t.join()
    assert ran == ["worker"]
