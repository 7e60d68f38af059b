"""DistributedSampler: PyTorch's sharding, padding and per-epoch shuffle."""

import pytest
import torch.utils.data

from gpugrad.utils.data import DistributedSampler


@pytest.mark.parametrize("size", [0, 1, 5, 10, 11, 13])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("drop_last", [False, True])
def test_unshuffled_shards_equal_pytorchs(size, replicas, drop_last):
    for rank in range(replicas):
        ours = DistributedSampler(range(size), replicas, rank, shuffle=False,
                                  drop_last=drop_last)
        theirs = torch.utils.data.DistributedSampler(range(size), replicas, rank,
                                                     shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs)
        assert len(ours) == len(theirs)


@pytest.mark.parametrize("size, replicas", [(10, 3), (12, 4), (5, 7)])
def test_shuffled_shards_cover_the_data_set_with_equal_lengths(size, replicas):
    shards = [list(DistributedSampler(range(size), replicas, r, seed=3))
              for r in range(replicas)]
    assert len({len(s) for s in shards}) == 1
    every = [i for s in shards for i in s]
    assert set(every) == set(range(size))
    assert len(every) - size == (-size) % replicas  # padding only to divide evenly


def test_set_epoch_reshuffles_identically_on_every_rank():
    def epoch_order(epoch, rank):
        sampler = DistributedSampler(range(50), 2, rank, seed=1)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert epoch_order(0, 0) == epoch_order(0, 0)
    assert epoch_order(0, 0) != epoch_order(1, 0)
    for epoch in (0, 1):  # within an epoch the ranks' shards are disjoint and complete
        assert sorted(epoch_order(epoch, 0) + epoch_order(epoch, 1)) == list(range(50))
    assert list(DistributedSampler(range(50), 2, 0, seed=1)) != \
        list(DistributedSampler(range(50), 2, 0, seed=2))


def test_drop_last_cuts_the_uneven_tail():
    shards = [list(DistributedSampler(range(11), 4, r, shuffle=False, drop_last=True))
              for r in range(4)]
    assert shards == [[0, 4], [1, 5], [2, 6], [3, 7]]


def test_bad_ranks_and_missing_group_are_errors():
    with pytest.raises(ValueError, match=r"invalid rank 2; rank should be in the interval "
                                         r"\[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be at least 1, got 0"):
        DistributedSampler(range(4), num_replicas=0, rank=0)
    with pytest.raises(RuntimeError, match="pass num_replicas and rank, or call "
                                           r"gg\.distributed\.init_process_group"):
        DistributedSampler(range(4))
