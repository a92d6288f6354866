"""How much memory a training config needs at the least, against this machine's: a value that cannot
fit (``data.crop_size: 100000`` is a 30 GB padded image before the first step) is refused before
anything is allocated, with the estimate and the machine's total.

The estimates are lower bounds (the input tensors alone, not the activations), so a config refused
here could never train on this machine; one that passes may still need more.
"""

from __future__ import annotations

import math
from typing import Any

from segdil.errors import SegdilError, shown
from segdil.memory_guard import available_mb

BYTES_PER_TRAINED_PARAM = 16  # float32 weight, gradient and AdamW's two moments
BYTES_PER_BATCH_PIXEL = 3 * 4 + 8  # a float32 RGB pixel and its int64 label, as a collated batch holds them
BYTES_PER_DECODED_PIXEL = 3 + 1  # a uint8 RGB pixel and its uint8 label, as augmentation holds them
BYTES_PER_SAMPLER_INDEX = 8 + 28  # one shuffled index: torch's int64 permutation, then a Python int in a list
MIN_IMAGE_SIDE = 8  # the smallest image training takes (a folder's images are not read here)
AUTO_CROP_LOW = 64  # the smallest crop ``crop_size: auto`` gives (segdil.data.transforms)


def machine_memory_bytes() -> int | None:
    """The memory this machine has available now (``segdil.memory_guard``, the figure every command
    weighs its estimates against); None where it cannot be read."""
    available = available_mb()
    return None if available is None else int(available * 2**20)


def format_bytes(n: float) -> str:
    for unit, scale in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n / 2**10:,.1f} KB"


def training_memory(cfg: Any) -> list[tuple[str, int, str]]:
    """What one training step of ``cfg`` holds at the least: (keys, bytes, what) per part."""
    data, tc = cfg.data, cfg.train
    if data.root is None:
        height = int(data.synth.size)
        width = height * (2 if data.synth.scene == "street" else 1)
    else:
        height = width = MIN_IMAGE_SIDE
    crop = AUTO_CROP_LOW if data.crop_size == "auto" else int(data.crop_size)
    scale = max(float(s) for s in data.scale_range) if data.scale_range else 1.0
    scaled = max(math.ceil(height * scale), crop) * max(math.ceil(width * scale), crop)
    multiple = int(data.val_pad_multiple)
    val_pixels = math.ceil(height / multiple) * multiple * math.ceil(width / multiple) * multiple
    val_batch = max(1, tc.batch_size // 2) if data.root is None else 1
    parts = [
        ("data.crop_size, train.batch_size", tc.batch_size * crop * crop * BYTES_PER_BATCH_PIXEL, f"one training batch ({tc.batch_size:,} crops of {crop:,}x{crop:,} px)"),
        ("data.scale_range", scaled * BYTES_PER_DECODED_PIXEL, f"one image scaled by {scale:g} and padded to the crop"),
        ("data.val_pad_multiple", val_batch * val_pixels * BYTES_PER_BATCH_PIXEL, f"one validation batch padded to a multiple of {multiple:,} px"),
        ("data.synth.n_train", (data.synth.n_train if data.root is None else 0) * BYTES_PER_SAMPLER_INDEX, "the shuffled order of the training samples"),
    ]
    if data.root is None:
        parts.append(("data.synth.size", height * width * BYTES_PER_DECODED_PIXEL, f"one {width:,}x{height:,} px synthetic image"))
    return parts


def check_training_memory(cfg: Any, params: int = 0, have: int | None = None) -> None:
    """Refuse ``cfg`` when what one training step holds at the least (``training_memory`` plus
    ``params`` parameters being trained) is more than this machine's memory (or ``have`` bytes)."""
    have = machine_memory_bytes() if have is None else have
    if have is None:
        return
    model = ("model", params * BYTES_PER_TRAINED_PARAM, f"training the model's {params:,} parameters")
    parts = [*training_memory(cfg), model]
    total = sum(part[1] for part in parts)
    if total <= have:
        return
    # the cause: the first part that alone does not fit, in the order one value feeds the next (the image, then its crops), else the largest
    order = ["data.synth.size", "data.crop_size, train.batch_size", "data.scale_range", "data.val_pad_multiple", "data.synth.n_train", "model"]
    alone = [part for key in order for part in parts if part[0] == key and part[1] > have]
    keys, need, what = alone[0] if alone else max(parts, key=lambda part: part[1])
    values = "model" if keys == "model" else ", ".join(f"{key}={shown(_get(cfg, key), 40)}" for key in keys.split(", "))
    raise SegdilError(
        f"{values}: {what} needs at least {format_bytes(need)} of memory ({format_bytes(total)} in all); "
        f"this machine has {format_bytes(have)} available; use smaller values"
    )


def _get(cfg: Any, key: str) -> Any:
    value = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value
