"""Reading images and masks, writing palette masks.

Images always come back as uint8 H x W x 3 RGB:
    grayscale (L, 1-bit)       copied to the three channels
    RGBA, LA                   alpha dropped (no compositing)
    palette (P)                expanded through its palette
    16-bit (gray or colour)    the high byte is kept, i.e. value // 256, so 0-65535 maps to 0-255
    CMYK, YCbCr, ...           converted by Pillow
Masks come back as uint8 H x W class indices: single-channel PNGs, palette PNGs read as their
indices (not colours), 16-bit PNGs whose values fit in 0-255. An RGB mask is an error.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from segdil.atomic import atomic_write
from segdil.data.synth_shapes import SYNTH_CLASSES, SYNTH_COLORS
from segdil.errors import SegdilError

IMAGE_EXTS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

ImageFile.LOAD_TRUNCATED_IMAGES = False
Image.MAX_IMAGE_PIXELS = None  # segdil's own limit below replaces Pillow's warning-then-error guard

DEFAULT_MAX_PIXELS = 2**28  # 268 megapixels, e.g. 16384 x 16384; large aerial/microscopy tiles fit
MAX_PIXELS_ENV = "SEGDIL_MAX_IMAGE_PIXELS"


def list_images(folder: Path) -> list[Path]:
    """Image files in ``folder`` (by extension, case-insensitive), sorted by name; hidden files skipped."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTS)


def max_image_pixels() -> int:
    """The largest image (width x height) segdil decodes: ``$SEGDIL_MAX_IMAGE_PIXELS``, else 2^28."""
    text = os.environ.get(MAX_PIXELS_ENV)
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value < 1:
        raise SegdilError(f"{MAX_PIXELS_ENV}={text[:40]!r}: expected a positive number of pixels, e.g. {DEFAULT_MAX_PIXELS}")
    return value


def open_decoded(path: Path, what: str) -> Image.Image:
    """Open and fully decode ``path`` (``what``: "image", "mask", ... for the messages) so that
    truncated, empty and oversized files are one-line errors here, not later."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SegdilError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise SegdilError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    if not data:
        raise SegdilError(f"{path}: empty file, not an image; remove it or replace it with a valid {what}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            width, height = Image.open(io.BytesIO(data)).size  # the header only, nothing decoded
            limit = max_image_pixels()
            if width * height > limit:
                raise SegdilError(
                    f"{path}: {width}x{height} {what} ({width * height:,} pixels) is larger than the limit of {limit:,} pixels; "
                    f"split it into tiles, or raise the limit with {MAX_PIXELS_ENV} if the memory is there"
                )
            Image.open(io.BytesIO(data)).verify()  # PNG: chunk CRCs and the end marker
            image = Image.open(io.BytesIO(data))
            image.load()
    except UnidentifiedImageError:
        raise SegdilError(f"{path}: not an image file (unknown format); remove it or convert it to PNG") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise SegdilError(f"{path}: unreadable or truncated {what} ({reason}); re-export or remove it") from None
    return image


def _as_uint8_from_wide(array: np.ndarray) -> np.ndarray:
    """16-bit (or wider integer) values -> uint8 by keeping the high byte of 0-65535."""
    return (np.clip(array, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)


def load_image(path: str | Path) -> np.ndarray:
    """Read any supported image as uint8 H x W x 3 RGB (see the module docstring for conversions)."""
    path = Path(path)
    image = open_decoded(path, "image")
    mode = image.mode
    if mode in ("RGB", "L"):
        array = np.array(image)
    elif mode.startswith("I;16") or mode == "I":
        array = _as_uint8_from_wide(np.asarray(image))
    elif mode == "F":
        array = np.asarray(image, dtype=np.float32)
        scale = 255.0 if float(np.nanmax(array, initial=0.0)) <= 1.0 else 1.0
        array = np.clip(np.nan_to_num(array) * scale, 0, 255).round().astype(np.uint8)
    elif mode in ("1", "LA", "La"):
        array = np.array(image.convert("L"))
    else:  # RGBA, RGBa, P, PA, CMYK, YCbCr, LAB, HSV, ...
        array = np.array(image.convert("RGB"))
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise SegdilError(f"{path}: unsupported image layout (mode {mode}, shape {array.shape}); convert it to 8-bit RGB PNG")
    return np.ascontiguousarray(array)


def load_mask(path: str | Path) -> np.ndarray:
    """Read a class-index mask as uint8 H x W; palette PNGs give their indices, RGB masks raise."""
    path = Path(path)
    image = open_decoded(path, "mask")
    mode = image.mode
    if mode in ("L", "P"):
        array = np.array(image)
    elif mode == "1":
        array = np.array(image).astype(np.uint8)
    elif mode.startswith("I;16") or mode == "I":
        array = np.array(image)
        top = int(array.max(initial=0))
        if top > 255 or int(array.min(initial=0)) < 0:
            raise SegdilError(f"{path}: 16-bit mask with values up to {top}; class indices must fit 0-255 (255 = ignore), save it as an 8-bit PNG")
        array = array.astype(np.uint8)
    elif mode in ("RGB", "RGBA", "PA", "LA", "CMYK", "YCbCr"):
        raise SegdilError(
            f"{path}: RGB mask (mode {mode}); a mask must hold one class index per pixel: save it as a single-channel "
            "or palette PNG (map each colour to its class index, in the order of classes.yaml)"
        )
    else:
        raise SegdilError(f"{path}: unsupported mask mode {mode}; save it as an 8-bit single-channel or palette PNG")
    return np.ascontiguousarray(array)


def image_to_tensor(image_uint8_hwc: np.ndarray, mean: Sequence[float], std: Sequence[float]):
    """uint8 H x W x 3 RGB -> float32 torch tensor [3, H, W], scaled to [0, 1] then ``(x - mean) / std``
    (the one normalisation of training and inference; here, not in ``segdil.data.transforms``, so the Python API
    loads without albumentations)."""
    import torch  # lazy: reading images (segdil data check, the CLI) needs no torch

    tensor = torch.from_numpy(np.asarray(image_uint8_hwc, dtype=np.float32).transpose(2, 0, 1).copy()).div_(255.0)
    mean_t = torch.as_tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return tensor.sub_(mean_t).div_(std_t).contiguous()


def values_out_of_range(mask: np.ndarray, num_classes: int, ignore_index: int = 255) -> list[int]:
    """The values of a uint8 class-index ``mask`` that are neither a class (0..num_classes-1) nor
    ``ignore_index``, sorted; cheap enough to run on every mask a dataset loads."""
    top = int(mask.max(initial=0))
    if top < num_classes:
        return []
    counts = np.bincount(mask.ravel(), minlength=256)
    return [v for v in np.flatnonzero(counts).tolist() if v >= num_classes and v != ignore_index]


def default_palette(n: int = 256) -> list[tuple[int, int, int]]:
    """The PASCAL VOC colour map: distinct colours for small indices, same as most tools show."""
    palette = []
    for index in range(n):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette.append((r, g, b))
    return palette


def class_palette(class_colors: Sequence[Sequence[int]] | None = None, class_names: Sequence[str] | None = None) -> np.ndarray:
    """(256, 3) uint8 colours of masks, overlays and figures: the given class colours, else the
    synthetic benchmark's when the class names are its own, else the VOC colour map; index 255
    (ignore) is white."""
    colors = np.array(default_palette(256), dtype=np.uint8)
    if class_colors is None and class_names is not None:
        if list(class_names) == list(SYNTH_CLASSES[: len(class_names)]):
            class_colors = SYNTH_COLORS[: len(class_names)]
    for i, color in enumerate(list(class_colors or [])[:255]):
        colors[i] = [int(v) for v in list(color)[:3]]
    colors[255] = (255, 255, 255)
    return colors


def save_mask(path: str | Path, mask: np.ndarray, palette: Sequence[Sequence[int]] | None = None) -> None:
    """Write ``mask`` (uint8 H x W class indices) as a palette PNG, atomically (temporary file, rename).

    ``palette`` lists RGB colours by class index; missing entries use the VOC colour map.
    """
    path = Path(path)
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"save_mask: expected an H x W array, got shape {mask.shape}")
    if mask.dtype != np.uint8:
        if mask.size and (int(mask.min()) < 0 or int(mask.max()) > 255):
            raise ValueError("save_mask: values must fit 0-255")
        mask = mask.astype(np.uint8)
    colours = default_palette(256)
    for index, colour in enumerate(list(palette or [])[:256]):
        colours[index] = tuple(int(v) for v in colour[:3])
    image = Image.fromarray(np.ascontiguousarray(mask))  # mode L; putpalette turns it into P, values kept
    image.putpalette([v for colour in colours for v in colour])
    with atomic_write(path) as f:
        image.save(f, format="PNG")


def save_image(path: str | Path, image: np.ndarray) -> None:
    """Write a uint8 H x W x 3 RGB array as PNG, atomically."""
    with atomic_write(path) as f:
        Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(f, format="PNG")
