#!/usr/bin/env python
"""Which objects a model loses on the hard benchmark: those wholly inside a field, or those that
cross its edge (all of such an object counts, though look-alike decoys beside it do not).

    python lab/field_edge_objects.py CHECKPOINT [CHECKPOINT ...]

Each checkpoint predicts the validation split its config describes (the hard synthetic scene),
whole images, fp32. Per size bin (``eval.size_bins``) and group (``inside`` a field, ``edge``:
partly inside, ``outside``: no visible pixel inside, e.g. the visible rest of a partly hidden
object) it prints the objects, their mean object IoU and the share of their pixels predicted
their class (the IoU's recall part).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from segdil.checkpoint import checkpoint_config, load_checkpoint, model_from_checkpoint
from segdil.data.synth import generate_sample, hard_fields, synth_class_names
from segdil.data.transforms import to_tensor
from segdil.errors import SegdilError, shown
from segdil.metrics.evaluator import bin_labels
from segdil.metrics.objects import object_stats

GROUPS = ("inside", "edge", "outside")


def checkpoint_objects(path: Path) -> tuple[np.ndarray, list[float]]:
    """Rows (size, IoU, recall part, field share) of every validation object, and the size bins."""
    ckpt = load_checkpoint(path)
    cfg = checkpoint_config(ckpt)
    synth = cfg.data.synth
    if cfg.data.root is not None or synth.scene != "hard":
        raise SystemExit(f"Error: {shown(str(path))}: trained on {shown(cfg.data.root or synth.scene + ' synthetic scenes')}; this tool reads the hard synthetic scene only")
    model = model_from_checkpoint(ckpt)
    num_classes = len(synth_class_names(synth))
    rows = []
    for index in range(synth.n_val):
        image, mask, _ = generate_sample(synth, "val", index)
        with torch.no_grad():
            pred = model(to_tensor(image, cfg.data.mean, cfg.data.std)[None]).argmax(1)[0].numpy().astype(np.uint8)
        stats = object_stats(pred, mask, num_classes, background_class=cfg.eval.background_class)
        # the same objects, "predicted" as the mask inside the fields and as ignored outside them:
        # each object's tp is then its pixels inside a field
        in_fields = object_stats(np.where(hard_fields(synth, "val", index), mask, 255).astype(np.uint8), mask, num_classes, background_class=cfg.eval.background_class)
        rows += [(np.sqrt(s["area"]), s["iou"], s["tp"] / s["area"], f["tp"] / f["area"]) for s, f in zip(stats, in_fields, strict=True)]
    return np.array(rows).reshape(-1, 4), list(cfg.eval.size_bins)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    args = parser.parse_args()
    results = []
    for path in args.checkpoints:  # every checkpoint read before anything is printed
        try:
            results.append((path, *checkpoint_objects(path)))
        except SegdilError as error:  # a missing or broken checkpoint: one line, no traceback
            raise SystemExit(f"Error: {error}") from None
    print(f"{'checkpoint':48s} {'bin':>6s} {'group':>7s} {'objects':>7s} {'IoU':>6s} {'recalled':>8s}")
    for path, rows, edges in results:
        which = np.searchsorted(edges, rows[:, 0], side="right")
        name = "/".join(path.parts[-3:])[-48:]
        for index, label in enumerate(bin_labels(edges)):
            in_bin = rows[which == index]
            share = in_bin[:, 3]
            for group, keep in zip(GROUPS, (share >= 1.0, (share > 0.0) & (share < 1.0), share <= 0.0)):
                part = in_bin[keep]
                iou, recalled = (f"{part[:, 1].mean():6.3f}", f"{part[:, 2].mean():8.3f}") if len(part) else (f"{'-':>6s}", f"{'-':>8s}")
                print(f"{name:48s} {label:>6s} {group:>7s} {len(part):7d} {iou} {recalled}")


if __name__ == "__main__":
    main()
