"""Forward + backward of a one-layer LSTM (input 128, hidden 256, batch 64, 32 steps).

Timed in gpugrad and PyTorch eager (torch.nn.LSTM) on the same weights and batch, plus a
hand-written NumPy BPTT (no autodiff) as the practical floor; the implementations are first
checked to give the same output and the same gradients for the input and every weight.

On a CPU, torch.nn.LSTM runs oneDNN's fused RNN kernel (one primitive for the whole
sequence, forward and backward). The column "PyTorch unrolled" times it with oneDNN
switched off: per-step ops under autograd, the same structure as gpugrad's unrolled graph.

    python -m benchmarks.lstm_step [--device cpu|cuda] [--repeat 9] [--json PATH]
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import Workload, environment, report, time_it

INPUT, HIDDEN, BATCH, STEPS = 128, 256, 64, 32
NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def make_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(HIDDEN)
    weights = {
        "weight_ih_l0": rng.uniform(-bound, bound, (4 * HIDDEN, INPUT)),
        "weight_hh_l0": rng.uniform(-bound, bound, (4 * HIDDEN, HIDDEN)),
        "bias_ih_l0": rng.uniform(-bound, bound, 4 * HIDDEN),
        "bias_hh_l0": rng.uniform(-bound, bound, 4 * HIDDEN),
    }
    weights = {k: v.astype(np.float32) for k, v in weights.items()}
    x = rng.standard_normal((STEPS, BATCH, INPUT)).astype(np.float32)
    cot = rng.standard_normal((STEPS, BATCH, HIDDEN)).astype(np.float32)
    return weights, x, cot


def gpugrad_step(weights, x, cot, device: str):
    import gpugrad as gg
    import gpugrad.nn as nn

    lstm = nn.LSTM(INPUT, HIDDEN).to(device)
    lstm.load_state_dict({k: gg.tensor(v, device=device) for k, v in weights.items()})
    xb = gg.tensor(x, device=device, requires_grad=True)
    cb = gg.tensor(cot, device=device)

    def step():
        lstm.zero_grad()
        xb.grad = None
        out, _ = lstm(xb)
        out.backward(cb)

    def results():
        params = dict(lstm.named_parameters())
        return [out_of(lstm, xb)] + [xb.grad.cpu().numpy()] + [
            params[n].grad.cpu().numpy() for n in NAMES]

    def out_of(m, xin):
        with gg.no_grad():
            return m(xin)[0].cpu().numpy()

    return step, results, (lambda: gg.cuda.synchronize()) if device != "cpu" else None


def torch_step(weights, x, cot, device: str, onednn: bool = True):
    import torch

    lstm = torch.nn.LSTM(INPUT, HIDDEN).to(device)
    lstm.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    xb = torch.from_numpy(x).to(device).requires_grad_(True)
    cb = torch.from_numpy(cot).to(device)

    def step():
        lstm.zero_grad()
        xb.grad = None
        with torch.backends.mkldnn.flags(enabled=onednn):
            out, _ = lstm(xb)
            out.backward(cb)

    def results():
        params = dict(lstm.named_parameters())
        with torch.no_grad():
            out = lstm(xb)[0].cpu().numpy()
        return [out, xb.grad.cpu().numpy()] + [params[n].grad.cpu().numpy() for n in NAMES]

    return step, results, (lambda: torch.cuda.synchronize()) if device != "cpu" else None


def numpy_step(weights, x, cot):
    """BPTT written by hand: the floor without any autodiff."""
    w_ih, w_hh = weights["weight_ih_l0"], weights["weight_hh_l0"]
    bias = weights["bias_ih_l0"] + weights["bias_hh_l0"]
    h_dim = HIDDEN
    state = {}

    def sig(a):
        return 1 / (1 + np.exp(-a))

    def forward():
        xp = (x.reshape(-1, INPUT) @ w_ih.T + bias).reshape(STEPS, BATCH, 4 * h_dim)
        hs = np.zeros((STEPS + 1, BATCH, h_dim), np.float32)
        cs = np.zeros((STEPS + 1, BATCH, h_dim), np.float32)
        acts = np.empty((STEPS, BATCH, 4 * h_dim), np.float32)
        for t in range(STEPS):
            a = xp[t] + hs[t] @ w_hh.T
            act = acts[t]
            act[:] = sig(a)
            act[:, 2 * h_dim:3 * h_dim] = np.tanh(a[:, 2 * h_dim:3 * h_dim])
            i, f, g, o = np.split(act, 4, axis=1)
            cs[t + 1] = f * cs[t] + i * g
            hs[t + 1] = o * np.tanh(cs[t + 1])
        return hs, cs, acts

    def step():
        hs, cs, acts = forward()
        da = np.empty_like(acts)
        dh_next = np.zeros((BATCH, h_dim), np.float32)
        dc_next = np.zeros((BATCH, h_dim), np.float32)
        for t in reversed(range(STEPS)):
            i, f, g, o = np.split(acts[t], 4, axis=1)
            tc = np.tanh(cs[t + 1])
            dh = cot[t] + dh_next
            dc = dc_next + dh * o * (1 - tc * tc)
            d = da[t]
            d[:, :h_dim] = dc * g * i * (1 - i)
            d[:, h_dim:2 * h_dim] = dc * cs[t] * f * (1 - f)
            d[:, 2 * h_dim:3 * h_dim] = dc * i * (1 - g * g)
            d[:, 3 * h_dim:] = dh * tc * o * (1 - o)
            dh_next = d @ w_hh
            dc_next = dc * f
        flat = da.reshape(-1, 4 * h_dim)
        state["grads"] = [(flat @ w_ih).reshape(x.shape), flat.T @ x.reshape(-1, INPUT),
                          flat.T @ hs[:-1].reshape(-1, h_dim), flat.sum(0), flat.sum(0)]
        state["out"] = hs[1:]

    def results():
        return [state["out"]] + state["grads"]

    return step, results, None


def _timed(step, sync, repeat: int) -> dict:
    def run():
        step()
        if sync:
            sync()
    return time_it(run, repeat=repeat, warmup=2)


def run(device: str = "cpu", repeat: int = 9, json_path: str | None = None) -> list[dict]:
    weights, x, cot = make_data()
    impls = {"gpugrad": gpugrad_step(weights, x, cot, device)}
    try:
        impls["torch"] = torch_step(weights, x, cot, device)
        if device == "cpu":
            impls["torch_unrolled"] = torch_step(weights, x, cot, device, onednn=False)
    except ImportError:
        pass
    if device == "cpu":
        impls["numpy"] = numpy_step(weights, x, cot)
    for step, _, sync in impls.values():  # one step each, then all must agree
        step()
        if sync:
            sync()
    ref = impls["gpugrad"][1]()
    labels = ("output", "input grad") + tuple(f"{n} grad" for n in NAMES)
    for name, (_, results, _) in impls.items():
        for label, a, b in zip(labels, ref, results()):
            scale = max(float(np.abs(b).max()), 1.0)
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * scale,
                                       err_msg=f"gpugrad and {name} disagree on the {label}")
    # Interleave the repeats so that a load change on the machine hits every implementation.
    times = {name: [] for name in impls}
    for _ in range(3):
        for name, (step, _, sync) in impls.items():
            times[name].append(_timed(step, sync, max(repeat // 3, 1)))
    med = {name: float(np.median([t["median"] for t in ts])) for name, ts in times.items()}
    spread = {name: (max(t["max"] for t in ts) - min(t["min"] for t in ts))
              for name, ts in times.items()}
    t_g, t_t = med["gpugrad"], med.get("torch")
    row = {"name": f"LSTM {INPUT}->{HIDDEN}, batch {BATCH}, {STEPS} steps, fwd+bwd",
           "gpugrad_ms": t_g * 1e3, "gpugrad_spread_ms": spread["gpugrad"] * 1e3,
           "torch_ms": t_t * 1e3 if t_t else None,
           "torch_unrolled_ms": med["torch_unrolled"] * 1e3 if "torch_unrolled" in med else None,
           "numpy_ms": med["numpy"] * 1e3 if "numpy" in med else None,
           "ratio_to_torch": t_g / t_t if t_t else None,
           "ratio_to_torch_unrolled": (t_g / med["torch_unrolled"]) if "torch_unrolled" in med
           else None,
           "ratio_to_numpy": t_g / med["numpy"] if "numpy" in med else None}
    report("LSTM forward + backward", [row],
           [("name", "workload"), ("gpugrad_ms", "gpugrad ms"), ("gpugrad_spread_ms", "spread"),
            ("torch_ms", "PyTorch ms"), ("torch_unrolled_ms", "PyTorch unrolled ms"),
            ("numpy_ms", "NumPy BPTT (no AD) ms"), ("ratio_to_torch", "gpugrad / PyTorch"),
            ("ratio_to_torch_unrolled", "gpugrad / PyTorch unrolled"),
            ("ratio_to_numpy", "gpugrad / NumPy")], environment(device), json_path)
    return [row]


def _suite_impl(make, device: str):
    weights, x, cot = make_data()
    return make(weights, x, cot) if make is numpy_step else make(weights, x, cot, device)


# Gate GEMMs: input and hidden projections, forward once and backward twice.
_FLOPS = 3 * 2 * STEPS * BATCH * 4 * HIDDEN * (INPUT + HIDDEN)

WORKLOADS = [Workload(
    "lstm", f"LSTM {INPUT}->{HIDDEN}, batch {BATCH}, {STEPS} steps, fwd+bwd",
    {name: (lambda device, make=make: _suite_impl(make, device))
     for name, make in (("gpugrad", gpugrad_step), ("torch", torch_step),
                        ("numpy", numpy_step))},
    flops=_FLOPS, rtol=1e-3, atol=1e-4)]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=9)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    run(args.device, args.repeat, args.json)


if __name__ == "__main__":
    main()
