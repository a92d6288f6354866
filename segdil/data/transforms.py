"""albumentations pipelines built from ``DataConfig``, seeded per item, and the one normalisation.

Training crops rather than downscales: resizing a whole image to the network input erases the
small objects this project measures, so images keep their resolution (up to ``scale_range``) and a
``crop_size`` window is cut out. Images are padded with 0 and masks with 255 (ignore); masks are
always resized with nearest-neighbour interpolation.
"""

from __future__ import annotations

import os
import random
from typing import Any, Optional, Sequence

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A
import cv2
import numpy as np
import torch

from segdil.config import DataConfig
from segdil.data.io import image_to_tensor, list_images
from segdil.errors import SegdilError

IMAGE_FILL = 0
MASK_FILL = 255


AUTO_CROP_MIN, AUTO_CROP_MAX = 64, 512
AUTO_CROP_FLOOR = 128  # the crop auto gives images that leave room for it (see resolve_crop_size)


def resolve_crop_size(cfg: DataConfig) -> int:
    """``crop_size`` as a number; ``auto`` is half the median short side of the training images but
    at least 128 px where the images leave 32 px for the crop to move, rounded down to a multiple
    of 32 and kept within 64…512 (never above the short side itself).

    A fixed 64 px crop throws away the context a 1024 px photo holds; the whole image costs too
    much memory. Half the short side keeps objects at their resolution and most of their
    surroundings; the 128 px floor gives small images' context models a view of their
    surroundings: 96 px synthetic images give 64, 128 px 96, 160-256 px 128, 512 px photos 256,
    1024 px and larger 512.
    The sizes are read from the headers of up to 32 training images (the synthetic benchmark:
    ``data.synth.size``).
    """
    if cfg.crop_size != "auto":
        return int(cfg.crop_size)
    if cfg.root is None:
        short = cfg.synth.size
    else:
        from pathlib import Path

        from PIL import Image

        folder = Path(cfg.root) / cfg.train_split / "images"
        files = list_images(folder)
        if not files:
            raise SegdilError(f"data.crop_size=auto: no training images in {folder} to size the crop from; set data.crop_size to a number of pixels")
        step = max(1, len(files) // 32)
        sides = []
        for path in files[::step][:32]:
            with Image.open(path) as image:
                sides.append(min(image.size))
        short = int(np.median(sides))
    wanted = max(short // 2, min(AUTO_CROP_FLOOR, short - 32))
    crop = min(AUTO_CROP_MAX, max(AUTO_CROP_MIN, wanted // 32 * 32))
    return min(crop, short)


def build_train_transform(cfg: DataConfig) -> A.Compose:
    """Random scale, pad to ``crop_size`` and random crop, flips, colour jitter, Gaussian noise."""
    low, high = cfg.scale_range if len(cfg.scale_range) == 2 else (None, None)
    if low is None or not 0 < low <= high:
        raise SegdilError(f"data.scale_range: expected [low, high] with 0 < low <= high, got {cfg.scale_range}")
    ops: list[Any] = []
    if (low, high) != (1.0, 1.0):
        ops.append(A.RandomScale(scale_limit=(low - 1.0, high - 1.0), interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST, p=1.0))
    crop = resolve_crop_size(cfg)
    if crop > 0:
        ops.append(A.PadIfNeeded(crop, crop, position="random", border_mode=cv2.BORDER_CONSTANT, fill=IMAGE_FILL, fill_mask=MASK_FILL))
        ops.append(A.RandomCrop(crop, crop))
    if cfg.hflip:
        ops.append(A.HorizontalFlip(p=0.5))
    if cfg.vflip:
        ops.append(A.VerticalFlip(p=0.5))
    if cfg.color_jitter > 0:
        jitter = cfg.color_jitter
        ops.append(A.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter, hue=min(0.5, jitter / 10), p=0.8))
    if cfg.noise > 0:
        if cfg.noise > 1:
            raise SegdilError(f"data.noise: {cfg.noise} is the largest noise std as a fraction of 255; use a value in [0, 1]")
        ops.append(A.GaussNoise(std_range=(0.0, cfg.noise), p=0.5))
    return A.Compose(ops, mask_interpolation=cv2.INTER_NEAREST)


def build_val_transform(cfg: DataConfig) -> A.Compose:
    """No augmentation; pad bottom/right to a multiple of ``val_pad_multiple`` when it is above 1."""
    ops: list[Any] = []
    if cfg.val_pad_multiple > 1:
        ops.append(
            A.PadIfNeeded(
                min_height=None,
                min_width=None,
                pad_height_divisor=cfg.val_pad_multiple,
                pad_width_divisor=cfg.val_pad_multiple,
                position="top_left",
                border_mode=cv2.BORDER_CONSTANT,
                fill=IMAGE_FILL,
                fill_mask=MASK_FILL,
            )
        )
    return A.Compose(ops, mask_interpolation=cv2.INTER_NEAREST)


def apply_transform(transform: Optional[Any], image: np.ndarray, mask: np.ndarray, seed: int, key: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``transform`` with randomness drawn from (seed, key) only, never from global or worker state.

    albumentations transforms get one generator shared by all their steps (``set_random_state``),
    so the same (seed, key) gives the same augmented item in any process, e.g. after a resume.
    """
    if transform is None:
        return image, mask
    if hasattr(transform, "set_random_state"):
        generator = np.random.default_rng([seed % 2**63, key % 2**63])
        transform.set_random_state(generator, random.Random(int(generator.integers(2**63))))
    out = transform(image=image, mask=mask)
    return out["image"], out["mask"]


def to_tensor(image_uint8_hwc: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 H x W x 3 RGB -> float32 [3, H, W], scaled to [0, 1] then ``(x - mean) / std`` (:func:`segdil.data.io.image_to_tensor`)."""
    return image_to_tensor(image_uint8_hwc, mean, std)


def mask_to_tensor(mask: np.ndarray) -> torch.Tensor:
    """uint8 H x W class indices -> int64 [H, W] (255 stays 255 = ignore)."""
    return torch.from_numpy(np.ascontiguousarray(mask).astype(np.int64))
