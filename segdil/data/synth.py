"""The synthetic small-object benchmark: object size is the controlled variable.

Each image holds foreground objects whose size s = sqrt(area) is drawn log-uniformly from
``[min_object, max_object]`` over a textured background cluttered with distractors:

    class      colour (the cue at 2-4 px)   shape and texture (the cue at larger sizes)
    disc       red                          ellipse, darker towards the rim
    square     green                        rotated rectangle with stripes 2 px wide
    triangle   blue                         rotated equilateral triangle, flat colour
    line       yellow                       straight line 1-3 px wide (``thin_lines``)

Distractors are not objects: grey or washed-out shapes and lines of any hue, and cyan or magenta
shapes (hues far from every class). Objects may touch and overlap (later ones occlude earlier
ones); then the image is blurred and noised. A line is at most 0.9 x the image size long, so line
sizes are drawn up to ``sqrt(3 * 0.9 * size)`` at most. Every sample is a pure function of
(seed, split, index), so the benchmark is generated on the fly and never stored unless asked.
``scene: street`` is another benchmark behind the same entry points: ``segdil.data.synth_street``.
"""

from __future__ import annotations

import colorsys
import math
import zlib
from typing import Any, Callable, Optional, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from segdil.config import SynthConfig
from segdil.data import synth_street as street
from segdil.data.synth_shapes import LINE_MAX_FRACTION, SHAPES, SYNTH_CLASSES, SYNTH_COLORS, rotate
from segdil.errors import SegdilError

SPLITS = ("train", "val")

_HUES = {1: 0.0, 2: 125 / 360, 3: 225 / 360, 4: 55 / 360}
_HUE_JITTER = 8 / 360
_DISTRACTOR_HUES = (180 / 360, 300 / 360)
_TOUCH_PROB = 0.3
_LINE_CLASS = SYNTH_CLASSES.index("line")


def synth_class_names(cfg: SynthConfig) -> list[str]:
    """Class names of the benchmark as configured (``line`` only with ``thin_lines``; the street
    scene: Cityscapes' 19 train classes)."""
    if cfg.scene == "street":
        return list(street.CLASS_NAMES)
    return list(SYNTH_CLASSES) if cfg.thin_lines else [n for n in SYNTH_CLASSES if n != "line"]


def synth_class_colors(cfg: SynthConfig) -> list[list[int]]:
    if cfg.scene == "street":
        return [list(c) for c in street.CLASS_COLORS]
    return [list(SYNTH_COLORS[SYNTH_CLASSES.index(n)]) for n in synth_class_names(cfg)]


def validate_synth_config(cfg: SynthConfig) -> None:
    """One-line errors for settings the generator cannot honour."""
    if cfg.n_train < 0 or cfg.n_val < 0:
        raise SegdilError(f"data.synth.n_train/n_val: counts cannot be negative, got {cfg.n_train}, {cfg.n_val}")
    if cfg.scene == "street":  # object sizes come from the perspective: min/max_object do not apply
        if cfg.size < street.MIN_SIZE:
            raise SegdilError(f"data.synth.size: {cfg.size} is too small for the street scene (the short side of 2:1 images); use at least {street.MIN_SIZE}")
        return
    if cfg.size < 8:
        raise SegdilError(f"data.synth.size: {cfg.size} is too small; use at least 8 pixels")
    if not 1.0 <= cfg.min_object <= cfg.max_object:
        raise SegdilError(f"data.synth.min_object/max_object: need 1 <= min_object <= max_object, got {cfg.min_object}, {cfg.max_object}")
    if cfg.max_object > cfg.size * 0.7:
        raise SegdilError(f"data.synth.max_object: {cfg.max_object} does not fit a {cfg.size}px image; use at most {cfg.size * 0.7:g} or a larger size")
    if len(cfg.objects_per_image) != 2 or not 0 <= cfg.objects_per_image[0] <= cfg.objects_per_image[1]:
        raise SegdilError(f"data.synth.objects_per_image: expected [min, max] with 0 <= min <= max, got {cfg.objects_per_image}")


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed % 2**63, zlib.crc32(split.encode()), index])


def _rgb(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def _extent(class_id: int, size: float) -> float:
    """Half-extent used to keep a shape inside the image."""
    if class_id == _LINE_CLASS:
        return 0.0  # lines may run off the edge; their centre stays inside
    return 0.75 * size  # covers the most elongated ellipse, rectangle and triangle at any rotation


def _max_line_size(cfg: SynthConfig) -> float:
    return max(cfg.min_object, min(cfg.max_object, math.sqrt(3 * LINE_MAX_FRACTION * cfg.size)))


# --------------------------------------------------------------------------- images


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A low-saturation base colour with coarse luminance blotches, a faint tint and fine grain."""
    base = _rgb(rng.random(), rng.uniform(0.0, 0.15), rng.uniform(0.25, 0.7))
    coarse = int(rng.integers(3, 9))
    blotches = rng.uniform(0.15, 0.35) * (rng.random((coarse, coarse, 1), dtype=np.float32) - 0.5)
    tint = 0.06 * (rng.random((coarse, coarse, 3), dtype=np.float32) - 0.5)
    low = np.repeat(blotches, 3, axis=2) + tint + base  # resizing is linear: mix at low resolution
    fine = int(rng.integers(size // 6, size // 3 + 1))
    grain = rng.uniform(0.03, 0.12) * (rng.random((fine, fine, 1), dtype=np.float32) - 0.5)
    return cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC) + cv2.resize(np.repeat(grain, 3, axis=2), (size, size), interpolation=cv2.INTER_LINEAR)


def _paint(image: np.ndarray, drawn, colour: np.ndarray) -> None:
    y0, x0, inside, shade = drawn
    h, w = inside.shape
    region = image[y0 : y0 + h, x0 : x0 + w]
    if shade is None:
        region[inside] = colour
    else:
        region[inside] = shade[inside][:, None] * colour[None, :]


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high)))) if high > low else float(low)


def _draw_distractors(rng: np.random.Generator, image: np.ndarray, cfg: SynthConfig) -> None:
    low, high = cfg.objects_per_image
    shape = image.shape[:2]
    for _ in range(int(rng.integers(max(1, low // 2), max(2, high) + 1))):
        kind = int(rng.integers(1, 5))
        size = _log_uniform(rng, cfg.min_object, _max_line_size(cfg) if kind == _LINE_CLASS else cfg.max_object)
        cy, cx = rng.uniform(0, cfg.size, size=2)
        if rng.random() < 0.6:  # grey or washed out, any hue
            colour = _rgb(rng.random(), rng.uniform(0.0, 0.12), rng.uniform(0.1, 0.95))
        else:  # a hue far from every class
            hue = _DISTRACTOR_HUES[int(rng.integers(0, 2))] + rng.uniform(-10, 10) / 360
            colour = _rgb(hue, rng.uniform(0.25, 0.7), rng.uniform(0.4, 0.9))
        drawn = SHAPES[kind](rng, cy, cx, size, shape)
        if drawn is not None:
            _paint(image, drawn, colour)


# --------------------------------------------------------------------------- the hard scene


def _value_noise(rng: np.random.Generator, size: int, cells: int, channels: int = 1) -> np.ndarray:
    """Smooth noise in [-0.5, 0.5]: a random ``cells``×``cells`` grid resized with cubic interpolation."""
    grid = rng.random((cells, cells, channels), dtype=np.float32) - np.float32(0.5)
    out = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    return out.reshape(size, size, channels)


def _hard_background(rng: np.random.Generator, cfg: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """A procedural natural-looking background and the ``fields`` mask where objects count.

    The texture is fractal value noise (four octaves) in a random earthy palette, plus a layer of
    low-saturation class-hued blotches at object scale (so hue alone does not say "object"). The
    fields are 1-3 large rotated ellipses or rectangles edged by a 2 px rim, their insides a
    little brighter and smoother; the same texture and clutter run across the edge, so whether a
    pixel lies in a field is visible only from tens of pixels around it.
    """
    size = cfg.size
    a = _rgb(rng.uniform(0.05, 0.2), rng.uniform(0.1, 0.35), rng.uniform(0.25, 0.55))
    b = _rgb(rng.uniform(0.2, 0.45), rng.uniform(0.1, 0.35), rng.uniform(0.3, 0.6))
    fractal = np.zeros((size, size, 1), dtype=np.float32)
    for octave, cells in enumerate((3, 6, 12, max(13, size // 4))):
        fractal += _value_noise(rng, size, cells) * np.float32(0.6**octave)
    mix = np.clip(fractal + 0.5, 0.0, 1.0)
    image = a * (1 - mix) + b * mix + 0.25 * _value_noise(rng, size, 5, 3) * np.float32(0.3)
    # scale-ambiguous texture: blotches of a class hue, washed out, the size of small objects
    cells = max(4, size // int(rng.integers(4, 9)))
    blotch = np.clip(_value_noise(rng, size, cells)[..., 0] * 4.0 - 0.8, 0.0, 1.0)[..., None]
    hue = _HUES[int(rng.integers(1, 5))] + rng.uniform(-_HUE_JITTER, _HUE_JITTER)
    image = image * (1 - 0.6 * blotch) + 0.6 * blotch * _rgb(hue, rng.uniform(0.2, 0.45), rng.uniform(0.4, 0.7))

    fields = np.zeros((size, size), dtype=bool)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    rims = np.zeros((size, size), dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(0.2, 0.8, size=2) * size
        ry, rx = rng.uniform(0.2, 0.4, size=2) * size
        u, v = rotate(yy - cy, xx - cx, rng.uniform(0, math.pi))
        if rng.random() < 0.5:
            d = (u / rx) ** 2 + (v / ry) ** 2
            rim_width = 2.0 / min(rx, ry) * 2.0
        else:
            d = np.maximum(np.abs(u) / rx, np.abs(v) / ry)
            rim_width = 2.0 / min(rx, ry)
        inside = d <= 1.0
        rims |= inside & (d > 1.0 - rim_width)
        fields |= inside
    smooth = cv2.GaussianBlur(image, (0, 0), sigmaX=1.2)
    lift = np.float32(rng.uniform(0.04, 0.1))
    image = np.where(fields[..., None], 0.7 * smooth + 0.3 * image + lift, image)
    rim_colour = _rgb(rng.random(), rng.uniform(0.0, 0.2), rng.choice([rng.uniform(0.05, 0.2), rng.uniform(0.75, 0.95)]))
    image[rims] = rim_colour
    return image.astype(np.float32), fields & ~rims


def hard_fields(cfg: SynthConfig, split: str, index: int) -> np.ndarray:
    """The boolean mask where objects count in sample ``index`` of ``split`` of the hard scene (the
    fields, without their rims): what ``generate_sample`` draws first, drawn again."""
    if cfg.scene != "hard":
        raise SegdilError(f"data.synth.scene: {cfg.scene!r} has no fields; only the hard scene does")
    return _hard_background(_rng(cfg.seed, split, index), cfg)[1]


def _object_colour(rng: np.random.Generator, class_id: int, camouflage: bool) -> np.ndarray:
    """A class hue; in the hard scene a third of the objects are washed out (camouflaged)."""
    hue = _HUES[class_id] + rng.uniform(-_HUE_JITTER, _HUE_JITTER)
    if camouflage and rng.random() < 1 / 3:
        return _rgb(hue, rng.uniform(0.3, 0.55), rng.uniform(0.45, 0.75))
    return _rgb(hue, rng.uniform(0.65, 1.0), rng.uniform(0.6, 1.0))


def _centre_in(rng: np.random.Generator, region: np.ndarray, margin: float) -> Optional[tuple[float, float]]:
    """A random pixel centre in ``region`` at least ``margin`` from the image border (None: none)."""
    size = region.shape[0]
    lo, hi = int(math.ceil(min(margin, size / 2))), int(math.floor(size - min(margin, size / 2)))
    ys, xs = np.nonzero(region[lo : hi + 1, lo : hi + 1])
    if len(ys) == 0:
        return None
    k = int(rng.integers(0, len(ys)))
    return float(ys[k] + lo), float(xs[k] + lo)


def _draw_decoys(rng: np.random.Generator, image: np.ndarray, cfg: SynthConfig, fields: np.ndarray, n_classes: int) -> None:
    """Look-alikes of every class (same shapes, colours and sizes) outside the fields: background."""
    low, high = cfg.objects_per_image
    outside = ~fields
    for _ in range(int(rng.integers(low, high + 1))):
        class_id = int(rng.integers(1, n_classes + 1))
        top = _max_line_size(cfg) if class_id == _LINE_CLASS else cfg.max_object
        obj_size = _log_uniform(rng, cfg.min_object, top)
        centre = _centre_in(rng, outside, min(_extent(class_id, obj_size), cfg.size / 2))
        if centre is None:
            continue
        colour = _object_colour(rng, class_id, camouflage=True)
        drawn = SHAPES[class_id](rng, *centre, obj_size, image.shape[:2])
        if drawn is not None:
            _paint(image, drawn, colour)


def generate_sample(cfg: SynthConfig, split: str, index: int) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """One image (uint8 HxWx3), its mask (uint8 HxW) and its objects; a pure function of (seed, split, index).

    Each object is ``{"class", "class_id", "bbox": [x, y, w, h], "area"}`` measured on the mask
    (visible pixels after occlusion); fully occluded objects are left out. The street scene is
    ``segdil.data.synth_street.generate_street``'s (2 x size wide, Cityscapes train IDs).
    """
    if cfg.scene == "street":
        scene = street.generate_street(cfg, split, index)
        return scene.image, scene.mask, scene.objects
    rng = _rng(cfg.seed, split, index)
    size = cfg.size
    shape = (size, size)
    n_classes = len(synth_class_names(cfg)) - 1
    hard = cfg.scene == "hard"
    if hard:
        image, fields = _hard_background(rng, cfg)
        _draw_decoys(rng, image, cfg, fields, n_classes)
    else:
        image, fields = _background(rng, size), None
    _draw_distractors(rng, image, cfg)

    instances = np.zeros(shape, dtype=np.int32)
    classes = [0]
    boxes = [None]
    low, high = cfg.objects_per_image
    previous: Optional[tuple[float, float, float]] = None
    for _ in range(int(rng.integers(low, high + 1))):
        class_id = int(rng.integers(1, n_classes + 1))
        top = _max_line_size(cfg) if class_id == _LINE_CLASS else cfg.max_object
        obj_size = _log_uniform(rng, cfg.min_object, top)
        margin = min(_extent(class_id, obj_size), size / 2)
        if fields is not None:
            centre = _centre_in(rng, fields, margin)
            if centre is None:
                continue
            cy, cx = centre
        elif previous is not None and rng.random() < _TOUCH_PROB:  # touch or overlap the previous object
            py, px, pr = previous
            direction = rng.uniform(0, 2 * math.pi)
            distance = (pr + margin) * rng.uniform(0.6, 1.05)
            cy, cx = py + distance * math.sin(direction), px + distance * math.cos(direction)
        else:
            cy, cx = rng.uniform(margin, size - margin, size=2)
        cy, cx = min(max(cy, margin), size - margin), min(max(cx, margin), size - margin)
        colour = _object_colour(rng, class_id, camouflage=hard)
        drawn = SHAPES[class_id](rng, cy, cx, obj_size, shape)
        if drawn is None or not drawn[2].any():
            continue
        _paint(image, drawn, colour)
        y0, x0, inside, _ = drawn
        instance_id = len(classes)
        instances[y0 : y0 + inside.shape[0], x0 : x0 + inside.shape[1]][inside] = instance_id
        classes.append(class_id)
        boxes.append((y0, x0, inside.shape[0], inside.shape[1]))
        previous = (cy, cx, max(margin, obj_size / 2))

    sigma = rng.uniform(0.3, 0.9)
    image = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma)
    noise_std = rng.uniform(0.01, 0.04)
    image += np.float32(noise_std * math.sqrt(12.0)) * (rng.random(image.shape, dtype=np.float32) - np.float32(0.5))  # uniform, std noise_std
    image_u8 = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    mask = np.asarray(classes, dtype=np.uint8)[instances]

    names = synth_class_names(cfg)
    objects = []
    areas = np.bincount(instances.ravel(), minlength=len(classes)).tolist()
    for instance_id in range(1, len(classes)):
        area = areas[instance_id]
        if area == 0:
            continue
        y0, x0, h, w = boxes[instance_id]
        visible = instances[y0 : y0 + h, x0 : x0 + w] == instance_id
        rows, cols = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
        bbox = [x0 + int(cols[0]), y0 + int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]
        objects.append({"class": names[classes[instance_id]], "class_id": classes[instance_id], "bbox": bbox, "area": area})
    return image_u8, mask, objects


# --------------------------------------------------------------------------- dataset


class SyntheticSegmentation(Dataset):
    """The benchmark in memory: item ``k`` is sample ``k % len`` augmented with randomness from (seed, k).

    Items are ``(image FloatTensor[3,H,W] normalised, mask LongTensor[H,W], 255 = ignore)``.
    ``seed`` (augmentation) defaults to ``cfg.seed``. Generated samples are kept in memory (per
    process, so per loader worker) when the whole split takes at most ``cache_mb`` megabytes.
    Street scenes have instance maps (``instances`` is not None): ``load_instances(i)`` is what the
    Cityscapes reader gives for the scene written by ``segdil data synth --scene street``.
    """

    def __init__(
        self,
        split: str,
        cfg: SynthConfig,
        transform: Optional[Callable] = None,
        *,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        seed: Optional[int] = None,
        cache_mb: float = 256.0,
    ):
        if split not in SPLITS:
            raise SegdilError(f"synthetic split {split!r}: unknown; the synthetic benchmark has splits {', '.join(SPLITS)}")
        validate_synth_config(cfg)
        self.split = split
        self.cfg = cfg
        self.transform = transform
        self.mean, self.std = tuple(mean), tuple(std)
        self.seed = cfg.seed if seed is None else seed
        self.class_names = synth_class_names(cfg)
        self.class_colors = synth_class_colors(cfg)
        self.length = cfg.n_train if split == "train" else cfg.n_val
        self.street = cfg.scene == "street"
        self.instances: Optional[list[int]] = list(range(self.length)) if self.street else None  # generated with each scene
        sample_bytes = cfg.size**2 * (12 if self.street else 4)  # street: 2:1 images, 16-bit instance ids
        self.cache: Optional[dict[int, tuple]] = {} if self.length * sample_bytes <= cache_mb * 2**20 else None

    def __len__(self) -> int:
        return self.length

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``index`` before augmentation: (uint8 HxWx3, uint8 HxW)."""
        return self._sample(index)[:2]

    def load_instances(self, index: int, mask: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        """int64 HxW instance ids of sample ``index`` (street scenes; None for the other scenes)."""
        ids = self._sample(index)[2]
        return None if ids is None else ids.astype(np.int64)

    def _sample(self, index: int) -> tuple:
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        if self.street:
            image, mask, ids = street.street_sample(self.cfg, self.split, index)
            ids.flags.writeable = False
        else:
            (image, mask, _), ids = generate_sample(self.cfg, self.split, index), None
        image.flags.writeable = mask.flags.writeable = False  # shared by every later read
        if self.cache is not None:
            self.cache[index] = (image, mask, ids)
        return image, mask, ids

    def __getitem__(self, key: int) -> tuple[torch.Tensor, torch.Tensor]:
        # lazy: albumentations loads when samples are read, not for `segdil data synth` (which imports this module)
        from segdil.data.transforms import apply_transform, mask_to_tensor, to_tensor

        if self.length == 0:
            raise IndexError("empty synthetic split")
        image, mask = self.load(int(key) % self.length)
        image, mask = apply_transform(self.transform, image, mask, self.seed, int(key))
        return to_tensor(image, self.mean, self.std), mask_to_tensor(mask)
