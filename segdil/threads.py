"""Data-loader workers and torch threads, chosen together so that they fit the cores.

``data.num_workers: auto`` (the default) picks both from the cores this process may use
(:func:`available_cores`: its CPU affinity, a container's CPU quota, shared by the ranks of one
machine under torchrun):

* training on the CPU: the step keeps every core busy and the data pipeline costs a few per cent
  of it (synthetic 64-pixel crops: about 2 ms per batch of 8 against 150 ms or more for the step),
  so workers only pay where a core can be set aside for them: none on up to 3 cores, then one per
  4 cores (at most 8); torch gets the other cores. A worker sharing a core with the OpenMP threads
  of the step stalls every parallel region it lands in, so the cores are never oversubscribed.
* training on CUDA: the GPU runs the step and the data pipeline is the CPU's work, so
  ``cores - 1`` workers (at most 8) and the rest of the cores for torch.

Torch threads are only ever lowered, never raised: a count set by ``OMP_NUM_THREADS``,
``torch.set_num_threads`` or ``segdil bench --threads`` below the plan's stays. An explicit
``data.num_workers`` (an integer) is used as given and leaves torch's threads alone.

:func:`apply_thread_plan` is called where the loaders are built (``segdil.data.loader``); it
prints the choice once per process (rank 0 only), e.g.
``threads: torch 2, data-loader workers 0 (2 cores)``.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Union

from segdil.errors import SegdilError

AUTO = "auto"
MAX_WORKERS = 8
Workers = Union[int, Literal["auto"]]

_announced = False  # the choice is printed once per process


def cgroup_cpu_limit(root: str | Path = "/sys/fs/cgroup") -> Optional[int]:
    """CPUs a container's quota allows (cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), rounded up; None: no quota."""
    root = Path(root)
    try:
        if (root / "cpu.max").is_file():
            quota, period = (root / "cpu.max").read_text().split()[:2]
        else:
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        if quota == "max" or int(quota) <= 0 or int(period) <= 0:
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def available_cores() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup quota, divided among the
    local ranks of a torchrun job (``LOCAL_WORLD_SIZE``)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, limit)
    try:
        local_ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        local_ranks = 1
    return max(1, cores // local_ranks)


@dataclass(frozen=True)
class ThreadPlan:
    """Workers and torch threads for one process; ``auto``: chosen here, not by the config."""

    cores: int
    workers: int
    torch_threads: int
    auto: bool

    def line(self) -> str:
        source = "" if self.auto else f"; data.num_workers: {self.workers} from the config"
        return f"threads: torch {self.torch_threads}, data-loader workers {self.workers} ({self.cores} cores{source})"


def check_workers(value: object) -> Workers:
    """``data.num_workers``: a count >= 0 or ``auto``; anything else is a one-line error naming it."""
    if value == AUTO:
        return AUTO
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise SegdilError(f"data.num_workers: {value!r} is not a worker count; use an integer >= 0 or auto")


def auto_workers(cores: int, cuda: bool) -> int:
    """The data-loader workers of ``auto`` (see the module docstring)."""
    if cuda:
        return max(0, min(MAX_WORKERS, cores - 1))
    return min(MAX_WORKERS, cores // 4)


def plan_threads(num_workers: object = AUTO, *, cores: Optional[int] = None, cuda: Optional[bool] = None, current_threads: Optional[int] = None) -> ThreadPlan:
    """The workers and torch threads for ``num_workers`` (``auto`` or a count) on ``cores``
    (default: :func:`available_cores`); ``cuda``: whether the step runs on a GPU (default: CUDA is
    available); ``current_threads``: torch's count now (default: ``torch.get_num_threads()``).
    Pure: sets nothing."""
    import torch

    value = check_workers(num_workers)
    cores = available_cores() if cores is None else max(1, int(cores))
    cuda = torch.cuda.is_available() if cuda is None else cuda
    current = torch.get_num_threads() if current_threads is None else current_threads
    if value != AUTO:
        return ThreadPlan(cores, value, current, auto=False)
    workers = auto_workers(cores, cuda)
    return ThreadPlan(cores, workers, max(1, min(current, cores - workers)), auto=True)


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a process outside one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return os.environ.get("RANK", "0") in ("", "0")


def announce(plan: ThreadPlan) -> None:
    """Print ``plan.line()`` to stderr, once per process and on rank 0 only (through tqdm when a
    progress bar may be on screen)."""
    global _announced
    if _announced or not is_main_process():
        return
    _announced = True
    try:
        from tqdm import tqdm

        tqdm.write(plan.line(), file=sys.stderr)
    except ImportError:
        print(plan.line(), file=sys.stderr, flush=True)


def apply_thread_plan(num_workers: object = AUTO, *, cuda: Optional[bool] = None, quiet: bool = False) -> ThreadPlan:
    """Plan (:func:`plan_threads`), lower torch's threads to the plan's, and announce it once."""
    import torch

    plan = plan_threads(num_workers, cuda=cuda)
    if plan.torch_threads < torch.get_num_threads():
        torch.set_num_threads(plan.torch_threads)
    if not quiet:
        announce(plan)
    return plan
