#!/usr/bin/env python
"""Measure speed and memory: ``python tools/bench.py --model CONFIG_OR_NAME [--size 512 --batch 16] [--matrix] [--json OUT]``.

Same as ``segdil bench``; the measurement itself is in segdil/bench/.
"""

from segdil.commands.bench import command

if __name__ == "__main__":
    command()
