"""The ``--overlay`` picture: class colours over the photo, background left as it is, and a legend strip.

Pixels of the background class keep the photo's own colours (a real photo is not darkened);
every other class is blended with its colour from ``classes.yaml`` (the checkpoint's class
colours). Below the picture a strip names each class present, in its colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ALPHA = 0.5  # weight of the class colour where a class is drawn
SWATCH = 12  # side of a legend swatch, px


@dataclass(frozen=True)
class OverlayStyle:
    """What every overlay of one run shares: the palette, the class names and the background class."""

    palette: np.ndarray  # (256, 3) uint8
    class_names: Sequence[str] = ()
    background: Optional[int] = 0  # drawn as the photo itself; None: every class is blended

    def name(self, index: int) -> str:
        return str(self.class_names[index]) if index < len(self.class_names) else f"class {index}"


def blend(image: np.ndarray, mask: np.ndarray, style: OverlayStyle, alpha: float = ALPHA) -> np.ndarray:
    """``image`` with every non-background pixel blended with its class colour, uint8 H x W x 3."""
    colours = style.palette[mask].astype(np.float32)
    out = image.astype(np.float32) * (1 - alpha) + colours * alpha
    if style.background is not None:
        keep = mask == style.background
        out[keep] = image[keep]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def legend_strip(width: int, classes: Sequence[int], style: OverlayStyle) -> np.ndarray:
    """A white strip ``width`` wide naming ``classes`` with their colour swatches, wrapped onto rows."""
    font = ImageFont.load_default()
    entries = [(c, style.name(c)[:40]) for c in classes]
    row_height, pad = SWATCH + 6, 6
    rows: list[list[tuple[int, str, int]]] = [[]]
    x = pad
    for c, text in entries:
        entry_width = SWATCH + 4 + int(font.getlength(text)) + 12
        if rows[-1] and x + entry_width > width:
            rows.append([])
            x = pad
        rows[-1].append((c, text, x))
        x += entry_width
    strip = Image.new("RGB", (width, pad + row_height * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for r, row in enumerate(rows):
        y = pad // 2 + r * row_height + 3
        for c, text, x in row:
            draw.rectangle([x, y, x + SWATCH - 1, y + SWATCH - 1], fill=tuple(int(v) for v in style.palette[c]), outline=(0, 0, 0))
            draw.text((x + SWATCH + 4, y), text, fill=(0, 0, 0), font=font)
    return np.asarray(strip)


def overlay_image(image: np.ndarray, mask: np.ndarray, style: OverlayStyle) -> np.ndarray:
    """The blended picture with the legend strip of the classes it shows below it."""
    present = [int(c) for c in np.unique(mask) if int(c) != 255]
    return np.concatenate([blend(image, mask, style), legend_strip(image.shape[1], present, style)], axis=0)
