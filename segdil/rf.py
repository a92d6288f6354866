"""Receptive field, the HDC rule and exact gridding (coverage) analysis of stacked dilated kernels.

Coverage is exact: the 1-D indicator patterns of the dilated kernels are convolved, which counts
the paths from every input offset to the centre output. A square k×k kernel is separable, so
the 2-D path counts are the outer product of the 1-D ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import reduce
from typing import Sequence

import numpy as np


@dataclass
class RFReport:
    rates: tuple[int, ...]
    repeat: int
    kernel: int
    receptive_field: int
    coverage: float
    holes: int
    gridding: bool
    hdc_rule_ok: bool
    M2: int
    M: list[int]
    common_factor: int
    path_counts_1d: np.ndarray = field(repr=False)

    @property
    def stack(self) -> tuple[int, ...]:
        return self.rates * self.repeat

    def path_counts(self) -> np.ndarray:
        """2-D path-count map (RF × RF): how many paths reach the centre output from each offset."""
        return np.outer(self.path_counts_1d, self.path_counts_1d)

    def hole_offsets(self) -> list[tuple[int, int]]:
        """(dy, dx) offsets inside the receptive field that reach the centre output by no path."""
        radius = self.receptive_field // 2
        ys, xs = np.nonzero(self.path_counts() == 0)
        return [(int(y) - radius, int(x) - radius) for y, x in zip(ys, xs)]

    def to_dict(self) -> dict:
        return {
            "rates": list(self.rates),
            "repeat": self.repeat,
            "kernel": self.kernel,
            "stack": list(self.stack),
            "receptive_field": self.receptive_field,
            "coverage": self.coverage,
            "holes": self.holes,
            "gridding": self.gridding,
            "hdc_rule_ok": self.hdc_rule_ok,
            "M2": self.M2,
            "M": self.M,
            "common_factor": self.common_factor,
        }


def kernel_pattern(rate: int, kernel: int = 3) -> np.ndarray:
    """1-D indicator of a dilated kernel: ones at multiples of ``rate`` across its span."""
    pattern = np.zeros((kernel - 1) * rate + 1, dtype=np.int64)
    pattern[::rate] = 1
    return pattern


def hdc_rule(rates: Sequence[int], kernel: int = 3) -> list[int]:
    """Maximum distances M_i of the HDC paper: M_n = r_n, M_i = max(M_{i+1} − 2r_i, M_{i+1} − 2(M_{i+1} − r_i), r_i).

    Returns [M_1, …, M_n]; the group passes when M_2 ≤ kernel (M_1 is reported for completeness).
    """
    rates = list(rates)
    M = [0] * len(rates)
    M[-1] = rates[-1]
    for i in range(len(rates) - 2, -1, -1):
        M[i] = max(M[i + 1] - 2 * rates[i], M[i + 1] - 2 * (M[i + 1] - rates[i]), rates[i])
    return M


def analyze_stack(rates: Sequence[int], repeat: int = 1, kernel: int = 3) -> RFReport:
    """Analyse ``rates`` (one HDC group) stacked ``repeat`` times with k×k kernels.

    The HDC rule and the common-factor test apply to the group; receptive field and coverage to
    the whole stack. ``gridding`` is true when the stack's receptive field has holes.
    """
    rates = tuple(int(r) for r in rates)
    if not rates or any(r < 1 for r in rates) or repeat < 1 or kernel < 1:
        raise ValueError(f"rates must be positive integers and repeat, kernel >= 1; got rates={rates}, repeat={repeat}, kernel={kernel}")
    stack = rates * repeat
    counts = reduce(np.convolve, (kernel_pattern(r, kernel) for r in stack), np.ones(1, dtype=np.int64))
    rf = 1 + (kernel - 1) * sum(stack)
    assert counts.size == rf
    reached = int(np.count_nonzero(counts))
    coverage = reached**2 / rf**2
    M = hdc_rule(rates, kernel)
    m2 = M[1] if len(M) > 1 else M[0]
    return RFReport(
        rates=rates,
        repeat=repeat,
        kernel=kernel,
        receptive_field=rf,
        coverage=coverage,
        holes=rf**2 - reached**2,
        gridding=reached < rf,
        hdc_rule_ok=m2 <= kernel,
        M2=m2,
        M=M,
        common_factor=reduce(math.gcd, rates),
        path_counts_1d=counts,
    )
