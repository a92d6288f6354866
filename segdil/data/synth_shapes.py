"""The classes of the synthetic benchmark, their colours, and its shapes drawn exactly at pixel centres."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

# here, not in synth.py, so that segdil.data.io can name them without importing the generator (which imports io)
SYNTH_CLASSES: tuple[str, ...] = ("background", "disc", "square", "triangle", "line")
SYNTH_COLORS: tuple[tuple[int, int, int], ...] = ((0, 0, 0), (230, 40, 40), (40, 190, 60), (50, 90, 235), (235, 210, 30))
LINE_MAX_FRACTION = 0.9  # a line is at most this fraction of the image side long

# Each shape returns (y0, x0, inside, shade) over its bounding box clipped to the image, or None.
# Pixel (i, j) has its centre at (y=i, x=j); coverage is exact at pixel centres, so the expected
# area of a shape drawn at size s is s * s.


def window(cy: float, cx: float, radius: float, height: int, width: int):
    y0, y1 = max(0, math.floor(cy - radius)), min(height, math.ceil(cy + radius) + 1)
    x0, x1 = max(0, math.floor(cx - radius)), min(width, math.ceil(cx + radius) + 1)
    if y0 >= y1 or x0 >= x1:
        return None
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
    return y0, x0, dy, dx


def rotate(dy: np.ndarray, dx: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
    return dx * c + dy * s, dy * c - dx * s


def disc(rng: np.random.Generator, cy: float, cx: float, size: float, shape: tuple[int, int]):
    aspect = rng.uniform(1.0, 1.6)
    r = size / math.sqrt(math.pi)
    a, b = r * math.sqrt(aspect), r / math.sqrt(aspect)
    angle = rng.uniform(0, math.pi)
    win = window(cy, cx, a, *shape)
    if win is None:
        return None
    y0, x0, dy, dx = win
    u, v = rotate(dy, dx, angle)
    d = (u / a) ** 2 + (v / b) ** 2
    return y0, x0, d <= 1.0, 1.0 - 0.45 * np.minimum(d, 1.0)


def square(rng: np.random.Generator, cy: float, cx: float, size: float, shape: tuple[int, int]):
    aspect = rng.uniform(1.0, 1.5)
    w, h = size * math.sqrt(aspect), size / math.sqrt(aspect)
    angle = rng.uniform(0, math.pi)
    win = window(cy, cx, math.hypot(w, h) / 2, *shape)
    if win is None:
        return None
    y0, x0, dy, dx = win
    u, v = rotate(dy, dx, angle)
    inside = (np.abs(u) <= w / 2) & (np.abs(v) <= h / 2)
    stripes = (np.floor((u + w / 2) / 2.0) % 2).astype(np.float32)
    return y0, x0, inside, 0.65 + 0.35 * np.broadcast_to(stripes, inside.shape)


def triangle(rng: np.random.Generator, cy: float, cx: float, size: float, shape: tuple[int, int]):
    circumradius = size * math.sqrt(4 / math.sqrt(3)) / math.sqrt(3)
    angle = rng.uniform(0, 2 * math.pi)
    win = window(cy, cx, circumradius, *shape)
    if win is None:
        return None
    y0, x0, dy, dx = win
    inside = np.ones(np.broadcast_shapes(dy.shape, dx.shape), dtype=bool)
    for k in range(3):
        phi = angle + k * 2 * math.pi / 3
        inside &= dx * np.float32(math.cos(phi)) + dy * np.float32(math.sin(phi)) <= circumradius / 2
    return y0, x0, inside, None


def line_geometry(rng: np.random.Generator, size: float, image_size: int) -> tuple[float, float]:
    """Width 1-3 px and length with width * length = size**2, at least 3 widths long."""
    max_width = max(1, min(3, int(size / math.sqrt(3))))
    width = float(rng.integers(1, max_width + 1))
    return width, min(size * size / width, LINE_MAX_FRACTION * image_size)


def line(rng: np.random.Generator, cy: float, cx: float, size: float, shape: tuple[int, int]):
    width, length = line_geometry(rng, size, min(shape))
    angle = rng.uniform(0, math.pi)
    win = window(cy, cx, length / 2 + width / 2, *shape)
    if win is None:
        return None
    y0, x0, dy, dx = win
    u, v = rotate(dy, dx, angle)
    along = u - np.clip(u, -length / 2, length / 2)
    return y0, x0, along**2 + v**2 <= (width / 2) ** 2, None


SHAPES: dict[int, Callable] = {1: disc, 2: square, 3: triangle, 4: line}
