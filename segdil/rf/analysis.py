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

# beyond this many paths per offset int64 could overflow; counts are then kept as float64
_INT_PATHS_LIMIT = 2**62


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
    stem: int = 0

    @property
    def stack(self) -> tuple[int, ...]:
        """Every layer's rate, input side first: ``stem`` undilated layers, then the group ``repeat`` times."""
        return (1,) * self.stem + self.rates * self.repeat

    @property
    def reached(self) -> int:
        """Offsets of the RF × RF square that reach the centre output by at least one path."""
        return int(np.count_nonzero(self.path_counts_1d)) ** 2

    def path_counts(self) -> np.ndarray:
        """2-D path-count map (RF × RF): how many paths reach the centre output from each offset."""
        return np.outer(self.path_counts_1d, self.path_counts_1d)

    def hole_offsets_1d(self) -> list[int]:
        """1-D offsets with no path; the 2-D holes are the (dy, dx) with dy or dx among them."""
        radius = self.receptive_field // 2
        return [int(i) - radius for i in np.flatnonzero(self.path_counts_1d == 0)]

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
            "stem": self.stem,
            "stack": list(self.stack),
            "receptive_field": self.receptive_field,
            "coverage": self.coverage,
            "reached": self.reached,
            "holes": self.holes,
            "holes_1d": self.hole_offsets_1d(),
            "gridding": self.gridding,
            "hdc_rule_ok": self.hdc_rule_ok,
            "M2": self.M2,
            "M": self.M,
            "common_factor": self.common_factor,
            "path_counts_1d": [int(c) if float(c).is_integer() else float(c) for c in self.path_counts_1d],
        }


def stack_path_counts(stack: Sequence[int], kernel: int = 3) -> np.ndarray:
    """1-D path counts of a stack of dilated kernels: the convolution of their indicator patterns.

    Entry ``i`` counts the paths from input offset ``i - RF // 2`` to the centre output. Each layer
    adds ``kernel`` shifted copies (O(kernel · RF) per layer), so large rates stay cheap.
    """
    exact = kernel ** len(stack) < _INT_PATHS_LIMIT
    counts = np.ones(1, dtype=np.int64 if exact else np.float64)
    for rate in stack:
        grown = np.zeros(counts.size + (kernel - 1) * rate, dtype=counts.dtype)
        for tap in range(kernel):
            grown[tap * rate : tap * rate + counts.size] += counts
        counts = grown
    return counts


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


def analyze_stack(rates: Sequence[int], repeat: int = 1, kernel: int = 3, stem: int = 0) -> RFReport:
    """Analyse ``rates`` (one HDC group) stacked ``repeat`` times with k×k kernels.

    The HDC rule and the common-factor test apply to the group; receptive field and coverage to
    the whole stack, which starts with ``stem`` undilated layers (an HDC network's 3×3 stem).
    ``gridding`` is true when the stack's receptive field has holes.
    """
    rates = tuple(int(r) for r in rates)
    if not rates or any(r < 1 for r in rates) or repeat < 1 or kernel < 1 or stem < 0:
        raise ValueError(f"rates must be positive integers, repeat and kernel >= 1, stem >= 0; got rates={rates}, repeat={repeat}, kernel={kernel}, stem={stem}")
    stack = (1,) * stem + rates * repeat
    counts = stack_path_counts(stack, kernel)
    rf = 1 + (kernel - 1) * sum(stack)
    assert counts.size == rf
    reached = int(np.count_nonzero(counts))
    M = hdc_rule(rates, kernel)
    m2 = M[1] if len(M) > 1 else M[0]
    return RFReport(
        rates=rates,
        repeat=repeat,
        kernel=kernel,
        receptive_field=rf,
        coverage=reached**2 / rf**2,
        holes=rf**2 - reached**2,
        gridding=reached < rf,
        hdc_rule_ok=m2 <= kernel,
        M2=m2,
        M=M,
        common_factor=reduce(math.gcd, rates),
        path_counts_1d=counts,
        stem=stem,
    )


# --------------------------------------------------------------------------- comparison stacks


def gridding_group(total: int, length: int) -> tuple[int, ...] | None:
    """A group of ``length`` rates summing to ``total`` that share a common factor (so it grids).

    The smallest factor f of ``total`` with total / f ≥ length is used; the parts of total / f
    are as even as possible, ascending, then multiplied by f. None when no such group exists.
    """
    for factor in range(2, total + 1):
        if total % factor or total // factor < length:
            continue
        base, extra = divmod(total // factor, length)
        return tuple(factor * (base + (i >= length - extra)) for i in range(length))
    return None


def covering_group(total: int, length: int, kernel: int = 3, limit: int = 200_000) -> tuple[int, ...] | None:
    """An ascending group of ``length`` rates summing to ``total`` whose stack has no holes and
    passes the HDC rule, the lexicographically smallest one; None when none is found within
    ``limit`` candidates."""
    checked = 0

    def parts(remaining: int, count: int, low: int):
        nonlocal checked
        if count == 1:
            if remaining >= low:
                yield (remaining,)
            return
        for first in range(low, remaining // count + 1):
            for rest in parts(remaining - first, count - 1, first):
                yield (first, *rest)

    for group in parts(total, length, 1):
        checked += 1
        if checked > limit:
            return None
        if np.all(stack_path_counts(group, kernel)) and hdc_rule(group, kernel)[min(1, length - 1)] <= kernel:
            return group
    return None


def comparison_stack(report: RFReport) -> tuple[RFReport, str] | None:
    """A stack with the same receptive field but the opposite verdict, and a one-line label.

    For a hole-free stack: a group of the same length and sum whose rates share a common factor
    (it grids). For a gridding stack: a hole-free group of the same sum, with up to three more
    layers when the same length cannot cover. The stem and ``repeat`` are kept. None when no
    such stack exists (e.g. rates (1,): nothing with that receptive field grids).
    """
    total, length = sum(report.rates), len(report.rates)
    if not report.gridding:
        for size in range(length, 0, -1):
            group = gridding_group(total, size)
            if group is not None:
                other = analyze_stack(group, report.repeat, report.kernel, report.stem)
                return other, f"same RF, common factor {other.common_factor}"
        return None
    for size in range(length, length + 4):
        group = covering_group(total, size, report.kernel)
        if group is not None:
            other = analyze_stack(group, report.repeat, report.kernel, report.stem)
            return other, "same RF, no holes"
    return None


def _rates_text(rates: Sequence[int]) -> str:
    return "(" + ", ".join(str(r) for r in rates) + ")"


def describe_stack(report: RFReport) -> str:
    """``(1, 2, 5) ×2``, with the undilated stem if any: ``stem + (1, 2, 5) ×2``."""
    text = _rates_text(report.rates) + (f" ×{report.repeat}" if report.repeat > 1 else "")
    if report.stem:
        text = ("stem + " if report.stem == 1 else f"{report.stem} stem layers + ") + text
    return text
