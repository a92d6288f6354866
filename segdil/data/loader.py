"""DataLoaders that repeat exactly: seeded shuffling, seeded workers, augmentation seeded per item."""

from __future__ import annotations

import random
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from segdil.errors import SegdilError
from segdil.threads import Workers, apply_thread_plan

_WORKER_ERROR = " segdil.errors.SegdilError: "  # the last line of a worker's traceback, as torch re-raises it


class OneLineErrorLoader(DataLoader):
    """A DataLoader whose workers' SegdilErrors (a bad mask met mid-run) reach the caller as the
    worker's one line, not torch's "Caught SegdilError in DataLoader worker process 0" and its traceback."""

    def __iter__(self):
        return _OneLineErrors(super().__iter__())


class _OneLineErrors:
    def __init__(self, iterator):
        self.iterator = iterator

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self.iterator)

    def __next__(self):
        try:
            return next(self.iterator)
        except SegdilError as exc:
            raise SegdilError(worker_message(exc.message)) from None


def worker_message(message: str) -> str:
    """The one line a worker raised, out of torch's re-raised "Caught ... Original Traceback ..." text."""
    if "Original Traceback" not in message or _WORKER_ERROR not in message:
        return message
    return message[message.index(_WORKER_ERROR) + len(_WORKER_ERROR) :].strip()


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
    num_workers: Workers = 0,
    drop_last: bool = False,
    seed: int = 0,
    device: Optional[torch.device] = None,
    announce: bool = True,
) -> DataLoader:
    """A DataLoader with pinned memory (when CUDA is available), persistent seeded workers.

    ``num_workers``: a count, or ``auto``: workers and torch threads chosen together for the cores
    (``segdil.threads``; ``device``, where the step runs, defaults to CUDA when available). The
    choice is printed once per process unless ``announce`` is off.
    ``sampler`` (e.g. one that yields keys ``epoch * len(dataset) + i``) excludes ``shuffle``;
    the datasets here derive all augmentation randomness from the key, so batches do not depend
    on which worker loads them. A worker's SegdilError comes out as its one line.
    """
    plan = apply_thread_plan(num_workers, cuda=None if device is None else torch.device(device).type == "cuda", quiet=not announce)
    workers = plan.workers
    generator = torch.Generator()
    generator.manual_seed(seed)
    return OneLineErrorLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=shuffle if sampler is None else False,
        num_workers=workers,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
        worker_init_fn=seed_worker if workers > 0 else None,
        generator=generator,
    )
