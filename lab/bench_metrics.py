"""Speed of ``Evaluator.update`` on CPU: images/s at 512x512 with about 50 objects each.

    OMP_NUM_THREADS=1 python lab/bench_metrics.py [--images 200] [--size 512] [--objects 50] [--classes 4]

Ground truth: random discs and boxes of 2-60 px on background 0, a few ignored pixels.
Prediction: the ground truth with each object shifted by up to 2 px, some objects dropped and
some false blobs added, so every code path (spill, misses, false positives) does real work.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch

from segdil.metrics import Evaluator


def make_pair(rng: np.random.Generator, size: int, objects: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    gt = np.zeros((size, size), np.uint8)
    pred = np.zeros((size, size), np.uint8)
    for _ in range(objects):
        c = int(rng.integers(1, classes))
        r = int(np.exp(rng.uniform(np.log(1.0), np.log(30.0))))
        x, y = (int(v) for v in rng.integers(0, size, 2))
        dx, dy = (int(v) for v in rng.integers(-2, 3, 2))
        draw = cv2.circle if rng.random() < 0.5 else lambda img, p, r, c, t: cv2.rectangle(img, (p[0] - r, p[1] - r), (p[0] + r, p[1] + r), c, t)
        draw(gt, (x, y), r, c, -1)
        if rng.random() < 0.8:
            draw(pred, (x + dx, y + dy), r, c, -1)
    for _ in range(objects // 5):
        x, y = (int(v) for v in rng.integers(0, size, 2))
        cv2.circle(pred, (x, y), int(rng.integers(1, 6)), int(rng.integers(1, classes)), -1)
    gt[rng.random((size, size)) < 0.001] = 255
    return pred, gt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--objects", type=int, default=50)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    pairs = [make_pair(rng, args.size, args.objects, args.classes) for _ in range(args.batch * 4)]
    pred = torch.from_numpy(np.stack([p for p, _ in pairs])).long()
    gt = torch.from_numpy(np.stack([g for _, g in pairs])).long()
    evaluator = Evaluator(args.classes)
    evaluator.update(pred[: args.batch], gt[: args.batch])  # warm-up
    evaluator.reset()

    done = 0
    start = time.perf_counter()
    while done < args.images:
        i = (done // args.batch) % 4 * args.batch
        evaluator.update(pred[i : i + args.batch], gt[i : i + args.batch])
        done += args.batch
    update_s = time.perf_counter() - start
    t0 = time.perf_counter()
    result = evaluator.compute()
    compute_s = time.perf_counter() - t0
    objects = result["num_objects"] / done
    print(f"{done} images {args.size}x{args.size}, {objects:.1f} objects/image, {torch.get_num_threads()} torch threads, {cv2.getNumThreads()} OpenCV threads")
    print(f"update: {done / update_s:.1f} images/s ({1e3 * update_s / done:.2f} ms/image); compute: {1e3 * compute_s:.1f} ms")


if __name__ == "__main__":
    main()
