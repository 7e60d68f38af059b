"""The complex tests draw from their own generator, so adding or reordering them never
changes the random inputs that the other test directories get from `oracle.RNG`."""

import zlib

import numpy as np
import oracle
import pytest


@pytest.fixture(autouse=True)
def _own_oracle_rng(request):
    saved = oracle.RNG
    oracle.RNG = np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
    yield
    oracle.RNG = saved
