#!/usr/bin/env python
"""Peak memory of `segdil predict` on one large image, measured in a fresh process.

    python lab/predict_memory.py CHECKPOINT --size 8000x6000 [--memory-budget MB] [predict options]

Writes a JPEG photo of that size (matplotlib's sample photograph, resized) to a temporary
folder, runs `segdil predict` on it in a child process and prints the child's peak resident set
size (``ru_maxrss`` of the waited-for child), the budget and the wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--size", default="8000x6000", help="width x height")
    args, predict_args = parser.parse_known_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    from segdil.bench.predict_speed import sample_photos

    with tempfile.TemporaryDirectory() as tmp:
        photo = sample_photos(Path(tmp) / "in", height, width, 1)[0]
        command = [sys.executable, "-m", "segdil", "predict", args.checkpoint, str(photo), "--out", str(Path(tmp) / "out"), *predict_args]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
        elapsed = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if done.returncode != 0:
            sys.exit(f"predict failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        print(f"predict {width}x{height} {' '.join(predict_args)}: peak RSS {peak_mb:.0f} MB, {elapsed:.1f} s; {done.stdout.strip()}")


if __name__ == "__main__":
    main()
