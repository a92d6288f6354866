"""DataLoaders that repeat exactly: seeded shuffling, seeded workers, augmentation seeded per item."""

from __future__ import annotations

import random
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def seed_worker(worker_id: int) -> None:
    """Seed numpy and random in a worker from the loader's per-worker torch seed.

    OpenCV's thread count is left alone: ``cv2.setNumThreads`` in a forked worker can deadlock.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    torch.manual_seed(seed)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    sampler: Optional[Sampler] = None,
    shuffle: bool = False,
    num_workers: int = 0,
    drop_last: bool = False,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader with pinned memory (when CUDA is available), persistent seeded workers.

    ``sampler`` (e.g. one that yields keys ``epoch * len(dataset) + i``) excludes ``shuffle``;
    the datasets here derive all augmentation randomness from the key, so batches do not depend
    on which worker loads them.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=shuffle if sampler is None else False,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=num_workers > 0,
        worker_init_fn=seed_worker if num_workers > 0 else None,
        generator=generator,
    )
