#!/usr/bin/env python
"""What the bf16 guard's per-image estimate costs with many classes, against its parts.

    python lab/guard_speed.py [--classes 150] [--size 2048x1024] [--pairs 180] [--rounds 3]

On random logits of one image, times (median of ``--rounds``, interleaved): the top-two search
alone (``top2``, the floor of any estimate), the estimate with every calibration error pooled,
the estimate with ``--pairs`` class pairs kept apart, each with its own errors, as the guard
keeps them on a many-class model, and the same computed by a loop over the pairs (one pass over
the pixels per pair, the guard's first design; checked equal). Prints seconds and the ratios to
the pooled estimate.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from segdil.inference.precision import MarginErrors, image_expected_flips, top2

CHUNK_PIXELS = 1 << 20  # both estimates run on the same chunks of rows


def loop_over_pairs(errors: MarginErrors, logits: torch.Tensor) -> float:
    """``image_expected_flips`` computed with one pass over each chunk's pixels for each kept pair."""
    rows = max(1, CHUNK_PIXELS // logits.shape[-1])
    total = 0.0
    for top in range(0, logits.shape[-2], rows):
        margins, pairs = top2(logits[..., top : top + rows, :])
        pooled = torch.ones_like(pairs, dtype=torch.bool)
        for pair, pair_errors in [*errors.by_pair.items(), (None, errors.pooled)]:
            selected = pooled if pair is None else pairs == pair
            larger = len(pair_errors) - torch.searchsorted(pair_errors, margins[selected].contiguous(), right=True)
            total += float(larger.sum()) / len(pair_errors)
            pooled &= ~selected
    return 0.5 * total / (logits.shape[-2] * logits.shape[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument("--size", default="2048x1024", help="WxH of the image")
    parser.add_argument("--pairs", type=int, default=180, help="class pairs kept apart (each with its own errors)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    max_pairs = args.classes * (args.classes - 1) // 2
    if not 0 <= args.pairs <= max_pairs:
        raise SystemExit(f"--pairs {args.pairs}: {args.classes} classes have 0 to {max_pairs} pairs")

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(args.classes, height, width, generator=generator)
    pooled = (torch.rand(36864, generator=generator) * 0.05).sort().values
    # kept pairs: the first --pairs unordered pairs (i < j) by id, 200-800 errors each
    ids = [i * args.classes + j for i in range(args.classes) for j in range(i + 1, args.classes)][: args.pairs]
    by_pair = {p: (torch.rand(int(torch.randint(200, 800, (), generator=generator)), generator=generator) * 0.05).sort().values for p in ids}
    kept = MarginErrors(pooled, by_pair)
    if abs(loop_over_pairs(kept, logits) - image_expected_flips(kept, logits, CHUNK_PIXELS)) > 1e-9:
        raise SystemExit("the loop over pairs and the guard's estimate disagree")
    cases = {
        "top2 alone": lambda: top2(logits),
        "estimate, errors pooled": lambda: image_expected_flips(MarginErrors(pooled), logits, CHUNK_PIXELS),
        f"estimate, {args.pairs} pairs kept apart": lambda: image_expected_flips(kept, logits, CHUNK_PIXELS),
        "the same, a loop over the pairs": lambda: loop_over_pairs(kept, logits),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for run in cases.values():  # warm-up
        run()
    for _ in range(args.rounds):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["estimate, errors pooled"])
    print(f"{args.classes} classes, {width}x{height}, {torch.get_num_threads()} threads, median of {args.rounds}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<38} {median:7.3f} s  {median / base:5.2f}x")


if __name__ == "__main__":
    main()
