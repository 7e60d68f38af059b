"""Module.__call__'s hook test (`has_hooks`) sees every registry kind, and only a
non-empty one."""

from collections import OrderedDict

import pytest

import gpugrad.nn as nn
from gpugrad.nn.hooks import HOOK_KINDS, has_hooks


@pytest.mark.parametrize("kind", HOOK_KINDS)
def test_has_hooks_sees_every_kind(kind):
    m = nn.Identity()
    assert not has_hooks(m)
    m.__dict__[kind] = OrderedDict()
    assert not has_hooks(m)  # an emptied registry
    m.__dict__[kind][0] = lambda *a: None
    assert has_hooks(m)


def test_registered_and_removed_hook():
    m = nn.Identity()
    calls = []
    h = m.register_forward_hook(lambda mod, args, out: calls.append(1))
    assert has_hooks(m)
    m(1)
    h.remove()
    assert not has_hooks(m)
    m(2)
    assert calls == [1]
