#!/usr/bin/env python
"""Training img/s of several configs' models, measured side by side in one process.

    python lab/train_speed.py CONFIG [CONFIG ...] [--crop 96] [--batch 8] [--rounds 10]

The models are built together and their training steps (forward, backward, AdamW; random
inputs; channels_last, bf16 autocast where the CPU or GPU has it, as the recipe runs) are
interleaved in rounds, so load on the machine hits every model alike. Prints params,
GFLOPs/MP (forward, 256×256), the median img/s and the ratio to the first config's.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from segdil.bench.step_runner import Measurement, build_runner, timed_step
from segdil.bench.variants import Variant
from segdil.config import load_config
from segdil.device import native_bf16, resolve_device
from segdil.models import count_flops, count_params, create_model_quietly


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--crop", type=int, default=96, help="side of the training crops")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10, help="timed steps of each model (the median is reported)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    variant = Variant(channels_last=True, amp=native_bf16(device))
    model_args = {path: dict(load_config(path).model, num_classes=5) for path in args.configs}
    runners = {path: build_runner(margs, variant, "train", args.crop, args.batch, device) for path, margs in model_args.items()}
    for runner in runners.values():  # warm-up: allocator, kernels
        runner.step()
        runner.step()
    measurements = {path: Measurement(variant) for path in runners}
    for _ in range(args.rounds):
        for path, runner in runners.items():
            timed_step(runner, device, measurements[path])
    print(f"crop {args.crop}, batch {args.batch}, {args.rounds} rounds, {torch.get_num_threads()} threads, amp {variant.amp}")
    print(f"{'config':40s} {'params':>9s} {'GFLOPs/MP':>9s} {'img/s':>7s} {'ratio':>6s}")
    first = None
    for path, measurement in measurements.items():
        model = create_model_quietly(**model_args[path])
        img_s = args.batch / statistics.median(measurement.step_s)
        first = first or img_s
        print(f"{Path(path).stem[:40]:40s} {count_params(model):9d} {count_flops(model, 256, 256) / 65536 / 1e3:9.1f} {img_s:7.1f} {img_s / first:6.2f}")


if __name__ == "__main__":
    main()
