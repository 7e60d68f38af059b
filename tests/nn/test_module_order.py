"""Registration order survives re-assignment, as in PyTorch (optimizer state and zipped
models pair parameters by position)."""

import torch

import gpugrad as gg
import gpugrad.nn as nn


def _build(lib):
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = lib.nn.Linear(2, 3)
            self.b = lib.nn.Linear(3, 3)
            self.c = lib.nn.Linear(3, 2)
            self.b = lib.nn.Linear(3, 3)  # re-assigned: keeps its place
            self.enc = lib.nn.Linear(4, 4)
            self.dec = lib.nn.Linear(4, 4)
            self.dec.weight = self.enc.weight  # tied weights
            self.register_buffer("m", lib.zeros(1))
            self.register_buffer("n", lib.zeros(1))
            self.m = lib.ones(1)  # buffer re-assigned
            self.register_buffer("m", lib.ones(2))  # and re-registered

    return Net()


def test_reassigned_and_tied_parameters_keep_pytorchs_order():
    ours, theirs = _build(gg), _build(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == \
        [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert ours.dec.weight is ours.enc.weight
    assert list(ours.dec.state_dict()) == ["weight", "bias"]


def test_replacing_a_parameter_by_a_module_moves_it_like_pytorch():
    """A name that changes kind (parameter -> module) leaves its old registry, as in
    PyTorch; only a same-kind re-assignment keeps the position."""
    ours, theirs = nn.Module(), torch.nn.Module()
    for m, lib in ((ours, gg), (theirs, torch)):
        m.p = lib.nn.Parameter(lib.zeros(1))
        m.q = lib.nn.Parameter(lib.zeros(1))
        del m.p
        m.p = lib.nn.Linear(1, 1)
        m.q = lib.nn.Parameter(lib.ones(1))
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_optimizer_state_pairs_by_position_after_reassignment():
    """Saving optimizer state from one model and loading it into a twin built the same way
    lines up parameters by position: the reordering used to swap Adam's moments."""
    gg.manual_seed(0)
    a, b = _build(gg), _build(gg)
    b.load_state_dict(a.state_dict())
    opt_a = gg.optim.Adam(a.parameters(), lr=0.1)
    x = gg.randn(5, 2)
    a.c(a.b(a.a(x))).sum().backward()
    opt_a.step()
    opt_b = gg.optim.Adam(b.parameters(), lr=0.1)
    opt_b.load_state_dict(opt_a.state_dict())
    for pa, pb in zip(a.parameters(), b.parameters()):
        sa, sb = opt_a.state[pa], opt_b.state[pb]
        assert sa.keys() == sb.keys()
        for k in sa:
            assert tuple(sa[k].shape) == tuple(sb[k].shape)
