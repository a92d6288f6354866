"""Drawing for the street scene (``segdil.data.synth_street``): the camera, the canvas and its fills.

The camera is a pinhole at height ``height`` metres above a flat ground, looking along the street
(+Z), the horizon at row ``horizon``: a point (X right, Y up, Z ahead, metres) lands on
``x = centre + f X / Z``, ``y = horizon + f (height - Y) / Z``. An object's size in pixels is its size
in metres times ``f / Z``, so objects shrink with distance; ``f`` is 1.1 x the image width.

The canvas holds the image (float RGB in [0, 1]), the label map (Cityscapes train IDs), the object
map (one id per thing, 0 elsewhere) and the decoy map; every fill writes all four, so what a pixel
looks like and what it is labelled are drawn by one polygon. Polygons are convex, clipped to the
image, and rasterized by pixel centre (small ones exactly, large ones by OpenCV).
"""

from __future__ import annotations

import colorsys
import math
from typing import Optional, Sequence

import cv2
import numpy as np

FOCAL = 1.1  # focal length / image width
_EXACT_MAX = 96 * 96  # crops up to this many pixels are rasterized by pixel centre, larger ones by cv2


def hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0)), dtype=np.float32)


class Camera:
    """The pinhole camera of one scene (see the module docstring)."""

    def __init__(self, height_px: int, width_px: int, horizon: float, centre: float, cam_height: float):
        self.H, self.W = height_px, width_px
        self.f = FOCAL * width_px
        self.yh = horizon * height_px
        self.xv = centre * width_px
        self.hc = cam_height

    def project(self, X, Y, Z) -> np.ndarray:
        """(N, 2) pixel coordinates of the points (X, Y, Z); Z > 0."""
        Z = np.asarray(Z, np.float64)
        x = self.xv + self.f * np.asarray(X, np.float64) / Z
        y = self.yh + self.f * (self.hc - np.asarray(Y, np.float64)) / Z
        out = np.empty(np.broadcast_shapes(x.shape, y.shape) + (2,))
        out[..., 0], out[..., 1] = x, y
        return out.reshape(-1, 2)

    def scale(self, Z: float) -> float:
        """Pixels per metre at depth Z."""
        return self.f / Z

    def ground_depth(self, y: float) -> float:
        """The depth of the ground at row ``y`` (below the horizon)."""
        return self.f * self.hc / max(y - self.yh, 1e-6)


def clip_convex(poly: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> Optional[np.ndarray]:
    """Sutherland-Hodgman: the convex polygon ``poly`` (N, 2) cut to the box; None when nothing is left."""
    poly = np.asarray(poly, dtype=np.float64)
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    if lo[0] >= x0 and lo[1] >= y0 and hi[0] <= x1 and hi[1] <= y1:
        return poly
    if hi[0] < x0 or hi[1] < y0 or lo[0] > x1 or lo[1] > y1:
        return None
    pts = [tuple(p) for p in poly]
    for axis, bound, keep_above in ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False)):
        if not pts:
            return None
        out = []
        for i, a in enumerate(pts):
            b = pts[(i + 1) % len(pts)]
            a_in = a[axis] >= bound if keep_above else a[axis] <= bound
            b_in = b[axis] >= bound if keep_above else b[axis] <= bound
            if a_in:
                out.append(a)
            if a_in != b_in:
                t = (bound - a[axis]) / (b[axis] - a[axis])
                out.append((a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])))
        pts = out
    return np.array(pts, dtype=np.float64) if len(pts) >= 3 else None


def _inside(pts: np.ndarray, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """Pixels of the crop whose centres lie inside the convex polygon ``pts``."""
    ys = np.arange(y0, y0 + h, dtype=np.float32)[:, None]
    xs = np.arange(x0, x0 + w, dtype=np.float32)[None, :]
    rolled = np.concatenate([pts[1:], pts[:1]])
    sign = 1.0 if float(np.sum(pts[:, 0] * rolled[:, 1] - rolled[:, 0] * pts[:, 1])) >= 0 else -1.0
    sel = np.ones((h, w), dtype=bool)
    for (ax, ay), (bx, by) in zip(pts.astype(np.float32), rolled.astype(np.float32)):
        sel &= ((bx - ax) * (ys - ay) - (by - ay) * (xs - ax)) * sign >= 0
    return sel


class Ellipse:
    """An axis-aligned ellipse; ``fill`` rasterizes it by pixel centre."""

    def __init__(self, cx: float, cy: float, rx: float, ry: float):
        self.cx, self.cy, self.rx, self.ry = float(cx), float(cy), max(float(rx), 1e-3), max(float(ry), 1e-3)


def disc(cx: float, cy: float, rx: float, ry: Optional[float] = None) -> Ellipse:
    return Ellipse(cx, cy, rx, rx if ry is None else ry)


def regular(cx: float, cy: float, r: float, n: int, rotation: float = 0.0) -> np.ndarray:
    t = rotation + np.arange(n) * 2 * math.pi / n
    return np.stack([cx + r * np.sin(t), cy - r * np.cos(t)], axis=1)


def bar(x: float, y_bottom: float, y_top: float, width: float, lean: float = 0.0) -> np.ndarray:
    """A vertical bar at least one pixel wide (poles, pipes, trunks, legs)."""
    half = max(width, 1.0) / 2
    return np.array([[x - half, y_bottom], [x + half, y_bottom], [x + lean + half, y_top], [x + lean - half, y_top]])


class Canvas:
    """Image, labels, objects and decoys of one scene, written together by ``fill``."""

    def __init__(self, camera: Camera, noise: np.ndarray, sky_label: int):
        H, W = camera.H, camera.W
        self.camera = camera
        self.noise = noise
        self.image = np.zeros((H, W, 3), dtype=np.float32)
        self.label = np.full((H, W), sky_label, dtype=np.uint8)
        self.objects = np.zeros((H, W), dtype=np.int32)
        self.decoys = np.zeros((H, W), dtype=np.int32)
        self.texture = np.zeros((H, W), dtype=np.float32)  # per-pixel amplitude of ``noise``, applied by ``textured``

    def _ellipse(self, e: Ellipse):
        H, W = self.label.shape
        x0, y0 = max(int(math.floor(e.cx - e.rx)), 0), max(int(math.floor(e.cy - e.ry)), 0)
        x1, y1 = min(int(math.ceil(e.cx + e.rx)) + 1, W), min(int(math.ceil(e.cy + e.ry)) + 1, H)
        if x1 <= x0 or y1 <= y0:
            return None
        ys = ((np.arange(y0, y1, dtype=np.float32) - np.float32(e.cy)) / np.float32(e.ry))[:, None] ** 2
        xs = ((np.arange(x0, x1, dtype=np.float32) - np.float32(e.cx)) / np.float32(e.rx))[None, :] ** 2
        return (slice(y0, y1), slice(x0, x1)), xs + ys <= 1.0

    def _region(self, poly):
        if isinstance(poly, Ellipse):
            return self._ellipse(poly)
        poly = np.asarray(poly, dtype=np.float64)
        H, W = self.label.shape
        pts = clip_convex(poly, -0.5, -0.5, W - 0.5, H - 0.5)
        if pts is None:
            return None
        x0, y0 = max(int(math.floor(pts[:, 0].min())), 0), max(int(math.floor(pts[:, 1].min())), 0)
        x1, y1 = min(int(math.ceil(pts[:, 0].max())) + 1, W), min(int(math.ceil(pts[:, 1].max())) + 1, H)
        if x1 <= x0 or y1 <= y0:
            return None
        w, h = x1 - x0, y1 - y0
        if w * h <= _EXACT_MAX:
            sel = _inside(pts, x0, y0, w, h)
        else:
            m = np.zeros((h, w), dtype=np.uint8)
            cv2.fillConvexPoly(m, np.round((pts - (x0, y0)) * 16).astype(np.int32), 1, lineType=cv2.LINE_8, shift=4)
            sel = m.view(bool)
        return (slice(y0, y1), slice(x0, x1)), sel

    def fill(
        self, poly, colour: Sequence[float], label: Optional[int] = None, *, obj: int = 0, decoy: int = 0,
        tex: float = 0.0, only: Optional[int] = None,
    ) -> int:
        """Paint the convex polygon ``poly`` (or an ``Ellipse``) with ``colour``, textured by
        ``tex`` x noise; with a ``label`` also write the label, object and decoy maps. ``only``:
        touch only pixels labelled so. Returns the number of pixels painted."""
        region = self._region(poly)
        if region is None:
            return 0
        (ys, xs), sel = region
        if only is not None:
            sel = sel & (self.label[ys, xs] == only)
        count = int(np.count_nonzero(sel))
        if not count:
            return 0
        np.copyto(self.image[ys, xs], np.asarray(colour, dtype=np.float32), where=sel[..., None])
        np.copyto(self.texture[ys, xs], np.float32(tex), where=sel)
        if label is not None:
            np.copyto(self.label[ys, xs], np.uint8(label), where=sel)
            np.copyto(self.objects[ys, xs], np.int32(obj), where=sel)
            np.copyto(self.decoys[ys, xs], np.int32(decoy), where=sel)
        return count

    def textured(self, extra: float = 0.0) -> np.ndarray:
        """The image with every surface's texture applied (plus ``extra`` x noise everywhere)."""
        factor = (self.texture + np.float32(extra)) * self.noise
        factor += np.float32(1.0)
        return self.image * factor[..., None]

    def paint(self, polys, colour: Sequence[float]) -> None:
        """Colour only (details on a surface already labelled: windows, lane marks), by OpenCV;
        ``polys``: one convex polygon (N, 2) or several (M, N, 2)."""
        H, W = self.label.shape
        polys = np.asarray(polys, dtype=np.float64)
        clipped = [clip_convex(p, -1.0, -1.0, W, H) for p in (polys[None] if polys.ndim == 2 else polys)]
        ints = [np.round(p * 16).astype(np.int32) for p in clipped if p is not None]
        if ints:
            cv2.fillPoly(self.image, ints, tuple(float(c) for c in colour), lineType=cv2.LINE_8, shift=4)

    def shade(self, poly, factor: float) -> None:
        """Darken what the polygon covers (shadows), labels unchanged."""
        region = self._region(poly)
        if region is not None:
            (ys, xs), sel = region
            self.image[ys, xs][sel] *= np.float32(factor)


def value_noise(rng: np.random.Generator, height: int, width: int, cells: tuple[int, int], channels: int = 1) -> np.ndarray:
    """Smooth noise in about [-0.5, 0.5]: a random grid of ``cells`` (rows, columns) resized cubically."""
    grid = rng.random((cells[0], cells[1], channels), dtype=np.float32) - np.float32(0.5)
    out = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return out.reshape(height, width, channels)


def texture_field(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """The shared surface texture: three octaves of value noise, about [-1, 1]; the grids are fixed in
    size, so a scene at 2048x1024 has the texture of the same scene at 1024x512, only sharper."""
    field = np.zeros((height, width, 1), dtype=np.float32)
    for cells, weight in (((8, 16), 0.9), ((32, 64), 0.7), ((128, 256), 0.6)):
        field += np.float32(weight) * value_noise(rng, height, width, cells)
    return field[..., 0]
