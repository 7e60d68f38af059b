"""`DistributedSampler`: each rank's share of a data set's indices, as in PyTorch.

Every rank builds the same (optionally shuffled) order of all indices, pads it by
repeating indices from its start until it divides evenly (or, with `drop_last`, cuts
the tail), and takes every `num_replicas`-th index starting at its rank. All ranks thus
get the same number of samples, the shards are disjoint apart from the padding, and
`set_epoch` reshuffles them identically on every rank.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import numpy as np

__all__ = ["DistributedSampler"]


class DistributedSampler:
    """Iterate over this rank's indices of `dataset` (anything with a length).

    `num_replicas` and `rank` default to the process group's world size and rank.
    With `shuffle`, the order is a permutation seeded by `seed + epoch` (call
    `set_epoch(epoch)` at the start of every epoch, on every rank). Without `drop_last`,
    indices are repeated to pad every rank to `ceil(len(dataset) / num_replicas)`
    samples; with it, the tail that does not divide evenly is dropped.
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None,
                 rank: int | None = None, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            from ... import distributed

            if not distributed.is_initialized():
                raise RuntimeError("DistributedSampler: pass num_replicas and rank, or call "
                                   "gg.distributed.init_process_group() first")
            num_replicas = distributed.get_world_size() if num_replicas is None \
                else num_replicas
            rank = distributed.get_rank() if rank is None else rank
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be at least 1, "
                             f"got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank}; rank should be in "
                             f"the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        size = len(dataset)
        if drop_last and size % num_replicas:
            self.num_samples = math.ceil((size - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(size / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[int]:
        size = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(size)
        else:
            order = np.arange(size)
        if self.total_size > size:  # pad with indices from the start, repeated if needed
            order = np.resize(order, self.total_size)
        else:
            order = order[:self.total_size]
        return iter(order[self.rank:self.total_size:self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use `epoch` in the shuffle's seed: call it before each epoch, on every rank."""
        self.epoch = epoch
