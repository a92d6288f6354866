#!/usr/bin/env python
"""Train a segdil model: ``python tools/train.py CONFIG [--set key=value ...] [--work-dir DIR] [--resume]``.

Same as ``segdil train``; under ``torchrun --nproc_per_node N`` it trains with DDP.
The loop itself reads top to bottom in segdil/train/main.py.
"""

from segdil.commands.train import command

if __name__ == "__main__":
    command()
