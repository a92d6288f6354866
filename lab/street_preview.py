#!/usr/bin/env python
"""The street benchmark's figures in docs/data.md: a preview (a 1024x512 scene beside its
colourised mask) and the histogram of instance sizes, with the numbers behind them.

    python lab/street_preview.py [--scenes 32] [--index 4] [--out docs/images/street]

Prints, over ``--scenes`` training scenes at 1024x512: the share of instances (car, person, pole,
traffic sign; sqrt of the visible area) under 32 px and under 8 px, the largest, and the generation
time per scene (wall clock and CPU time, which includes OpenCV's threads) at 1024x512 and 2048x1024.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from segdil.atomic import atomic_write, save_figure
from segdil.config import SynthConfig
from segdil.data.synth_street import generate_street
from segdil.data.synth_street_write import street_preview

MAX_PREVIEW_BYTES = 200_000
CLASSES = ("car", "person", "pole", "traffic sign")
COLOURS = {"car": "#00008e", "person": "#dc143c", "pole": "#999999", "traffic sign": "#dcdc00"}


def preview_png(cfg: SynthConfig, index: int) -> bytes:
    """The preview as the largest PNG (256-colour, adaptive palette) under MAX_PREVIEW_BYTES."""
    for width in (1600, 1400, 1200, 1024, 900, 800):
        grid = street_preview(cfg, 1, width=width, first=index)
        buffer = io.BytesIO()
        Image.fromarray(grid).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= MAX_PREVIEW_BYTES:
            return buffer.getvalue()
    return buffer.getvalue()


def sizes_by_class(cfg: SynthConfig, scenes: int) -> tuple[dict[str, list[float]], tuple[float, float]]:
    """Instance sizes per class over ``scenes`` training scenes, and (wall, CPU) seconds per scene."""
    sizes: dict[str, list[float]] = {c: [] for c in CLASSES}
    wall, cpu = time.perf_counter(), time.process_time()
    for index in range(scenes):
        for obj in generate_street(cfg, "train", index).objects:
            sizes[obj["class"]].append(float(np.sqrt(obj["area"])))
    n = max(scenes, 1)
    return sizes, ((time.perf_counter() - wall) / n, (time.process_time() - cpu) / n)


def histogram(sizes: dict[str, list[float]], scenes: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.geomspace(1, 512, 28)
    fig, ax = plt.subplots(figsize=(7.0, 3.2))
    ax.hist([sizes[c] for c in CLASSES], bins=edges, stacked=True, color=[COLOURS[c] for c in CLASSES], label=list(CLASSES))
    for x in (8, 32):
        ax.axvline(x, color="black", lw=0.8, ls="--")
    everything = np.concatenate([sizes[c] for c in CLASSES])
    ax.set_xscale("log")
    ax.set_xlabel("instance size sqrt(visible area), px (1024x512)")
    ax.set_ylabel("instances")
    ax.set_title(f"{everything.size} instances in {scenes} street scenes: {np.mean(everything < 32):.0%} under 32 px, {np.mean(everything < 8):.0%} under 8 px", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=32, help="training scenes measured for the histogram")
    parser.add_argument("--index", type=int, default=4, help="the training scene shown in the preview")
    parser.add_argument("--out", type=Path, default=Path("docs/images/street"))
    args = parser.parse_args()
    cfg = SynthConfig(scene="street", size=512)
    png = preview_png(cfg, args.index)
    with atomic_write(args.out / "preview.png") as f:
        f.write(png)
    sizes, per_scene = sizes_by_class(cfg, args.scenes)
    histogram(sizes, args.scenes, args.out / "sizes.png")
    everything = np.concatenate([sizes[c] for c in CLASSES])
    print(f"preview.png {len(png) / 1000:.0f} kB; sizes.png over {args.scenes} scenes, {everything.size} instances")
    print(f"all: <32 px {np.mean(everything < 32):.3f}, <8 px {np.mean(everything < 8):.3f}, <=8 px {np.mean(everything <= 8):.3f}, >150 px {np.mean(everything > 150):.3f}, max {everything.max():.0f} px")
    for c in CLASSES:
        s = np.array(sizes[c])
        print(f"  {c:13s} {s.size / args.scenes:5.1f}/scene  <32 px {np.mean(s < 32):.2f}  <8 px {np.mean(s < 8):.2f}  median {np.median(s):5.1f}  max {s.max():.0f}")
    _, large = sizes_by_class(SynthConfig(scene="street", size=1024), 8)
    for name, (wall, cpu) in (("1024x512", per_scene), ("2048x1024", large)):
        print(f"generation at {name}: {wall * 1000:.0f} ms per scene wall clock, {cpu * 1000:.0f} ms CPU")


if __name__ == "__main__":
    main()
