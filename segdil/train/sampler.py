"""An endless, resumable training sampler built on DistributedSampler.

It yields keys ``epoch * len(dataset) + index``: datasets take the sample ``key % len`` and derive
all augmentation randomness from the key, so skipping to any position reproduces the exact
batches an uninterrupted run would have seen, on any number of workers.
"""

from __future__ import annotations

from typing import Iterator

from torch.utils.data import DistributedSampler, Sampler


class ResumableSampler(Sampler[int]):
    def __init__(self, dataset_len: int, *, seed: int, rank: int = 0, world_size: int = 1, start: int = 0):
        """``start`` is the number of samples this rank has already consumed."""
        self.n = dataset_len
        self.start = start
        self.dist = DistributedSampler(range(dataset_len), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=False)

    def __iter__(self) -> Iterator[int]:
        per_epoch = len(self.dist)
        epoch, skip = divmod(self.start, per_epoch)
        while True:
            self.dist.set_epoch(epoch)
            for index in list(self.dist)[skip:]:
                yield epoch * self.n + index
            epoch, skip = epoch + 1, 0
