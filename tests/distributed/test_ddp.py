"""DistributedDataParallel on CPU ranks equals one process training on the whole batch."""

import json

import ddp_train  # tests/distributed/workers/ddp_train.py
import no_sync
import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F


def _numpy(state: dict) -> dict:
    return {k: v.detach().numpy() for k, v in state.items()}


def _single_process_run(initial: dict, world_size: int, steps: int) -> dict:
    model = ddp_train.build_mlp()
    model.load_state_dict(initial)
    optimizer = ddp_train.make_optimizer(model.parameters())
    for x, y in ddp_train.global_batches(steps, world_size):
        optimizer.zero_grad()
        F.cross_entropy(model(gg.tensor(x)), gg.tensor(y)).backward()
        optimizer.step()
    return _numpy(model.state_dict())


@pytest.mark.parametrize("n, bucket_cap_mb", [(2, 25.0), (2, 0.002), (4, 0.002)],
                         ids=["2 ranks, one bucket", "2 ranks, many buckets",
                              "4 ranks, many buckets"])
def test_ddp_training_matches_one_process_on_the_whole_batch(mpirun, tmp_path, n,
                                                             bucket_cap_mb):
    steps = 20
    mpirun(n, "ddp_train.py", tmp_path, steps, bucket_cap_mb)
    info = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(n)]
    assert len({i["own_start"] for i in info}) == n  # the ranks did start apart
    assert (info[0]["buckets"] > 1) == (bucket_cap_mb < 0.01)
    assert all(k.startswith("module.") for k in info[0]["state_keys"])
    finals = [_numpy(gg.load(tmp_path / f"rank{r}.safetensors")) for r in range(n)]
    initial = gg.load(tmp_path / "initial.safetensors")
    for name, value in finals[0].items():
        assert not np.allclose(value, initial[name].numpy())  # training moved every tensor
        for r in range(1, n):
            np.testing.assert_allclose(finals[r][name], value, rtol=1e-6, atol=1e-7,
                                       err_msg=f"{name}: rank {r} differs from rank 0")
    reference = _single_process_run(initial, n, steps)
    for name, value in reference.items():
        np.testing.assert_allclose(finals[0][name], value, rtol=1e-4, atol=1e-5,
                                   err_msg=f"{name}: DDP differs from one process")


def test_no_sync_accumulation_equals_one_big_batch(mpirun, tmp_path):
    n = 2
    mpirun(n, "no_sync.py", tmp_path)
    local = [_numpy(gg.load(tmp_path / f"rank{r}-local.safetensors")) for r in range(n)]
    synced = [_numpy(gg.load(tmp_path / f"rank{r}-synced.safetensors")) for r in range(n)]
    for name in local[0]:  # inside no_sync nothing was averaged
        assert not np.allclose(local[0][name], local[1][name])

    model = ddp_train.build_mlp()
    model.load_state_dict(gg.load(tmp_path / "initial.safetensors"))
    batches = list(no_sync.micro_batches(n))
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    # Two accumulated per-micro-batch means = 2 x the mean over the big batch.
    (2 * F.cross_entropy(model(gg.tensor(x)), gg.tensor(y))).backward()
    for name, p in model.named_parameters():
        for r in range(n):
            np.testing.assert_allclose(synced[r][name], p.grad.numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name} on rank {r}")
