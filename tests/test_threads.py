"""Grad mode and the default device are per thread: concurrent training is reproducible."""

import threading

import numpy as np

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F
from gpugrad.device import set_thread_default_device


def _setup(seed: int):
    gg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 4))
    x, y = gg.randn(64, 8), gg.randint(0, 4, (64,))
    return model, x, y


def _train(model, x, y, out: list, no_grad_probe: bool = False):
    opt = gg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(60):
        if no_grad_probe and step % 7 == 0:
            with gg.no_grad():  # must not switch off recording in the other thread
                model(x)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    out.extend(p.detach().numpy().copy() for p in model.parameters())


def test_two_threads_match_sequential_runs():
    sequential = []
    for seed in (1, 2):
        res: list = []
        _train(*_setup(seed), res)
        sequential.append(res)
    concurrent: list = [[], []]
    setups = [_setup(1), _setup(2)]
    threads = [threading.Thread(target=_train, args=(*setups[i], concurrent[i], i == 0))
               for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seq, con in zip(sequential, concurrent):
        assert len(seq) == len(con) == 4
        for a, b in zip(seq, con):
            np.testing.assert_array_equal(a, b)


def test_default_device_is_per_thread():
    seen = {}

    def worker():
        set_thread_default_device("cuda:3")
        seen["worker"] = str(gg.default_device())

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["worker"] == "cuda:3"
    assert gg.default_device() == "cpu" or gg.cuda.is_available()
