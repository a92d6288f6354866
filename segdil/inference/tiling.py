"""Blended overlapping tiles, and the plain reference forward.

``segdil.inference.engine.Predictor`` is the prediction path of predict, eval and the API; it
uses ``_predict_tiled`` below for models without a receptive-field bound. ``predict_logits`` is
the plain path (a pixel budget, then blended tiles), kept for callers that want it.

Registered models return full H×W logits for any input size (those that need a multiple of
their stride pad and crop inside ``forward``), so images go in as they are. Above
``PIXEL_BUDGET`` pixels, or with an explicit ``tile``, each image is cut into overlapping tiles
and the tile logits are averaged with a weight map. Along a side shared with another tile the
weight is 0 for the outer ``overlap // 4`` pixels and then ramps linearly to 1 over
``overlap // 2`` pixels (the ramps of two neighbours sum to 1). A pixel therefore only takes
values from tiles in which it lies at least ``overlap // 4`` pixels from a cut, so for a model
whose receptive-field radius is at most ``overlap // 4`` the tiled logits equal the whole-image
logits; for larger receptive fields the ramps blend the seams.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, TypeVar

import torch
from torch import nn

from segdil.device import autocast, resolve_device
from segdil.errors import SegdilError

PIXEL_BUDGET = 1 << 20  # pixels per forward pass (all images of a batch together) before tiling
AUTO_TILE = 512  # tile side used when an image exceeds the budget and no tile size is given


def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    *,
    device: str | torch.device = "cpu",
    tile: int | None = None,
    overlap: int = 32,
    amp: bool = False,
) -> torch.Tensor:
    """Logits ``(N, C, H, W)`` (float32, on the CPU) for normalised images ``(N, 3, H, W)``.

    The model is moved to ``device`` and run in eval mode without gradients; its training flag
    is restored afterwards. ``tile`` forces tiling with that tile side; otherwise images above
    ``PIXEL_BUDGET`` pixels are tiled with ``AUTO_TILE``. ``amp`` runs in bfloat16 autocast
    (float16 on GPUs without bfloat16). ``argmax(dim=1)`` of the result is the prediction.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    check_tiling(tile, overlap)
    device = resolve_device(device) if isinstance(device, str) else device
    height, width = images.shape[-2:]
    was_training = model.training
    model.eval().to(device)
    try:
        with torch.no_grad(), autocast(device, amp):
            if tile is None and height * width <= PIXEL_BUDGET:
                return _predict_whole(model, images, device)
            tile = tile or AUTO_TILE
            return torch.cat([_predict_tiled(model, images[i : i + 1], device, tile, overlap) for i in range(len(images))])
    finally:
        model.train(was_training)


def check_tiling(tile: int | None, overlap: int) -> None:
    """Tile side and overlap must leave a positive step between tiles."""
    if overlap < 0:
        raise SegdilError(f"overlap={overlap}: must be 0 or more pixels")
    if tile is not None and tile <= overlap:
        raise SegdilError(f"tile={tile}: must be larger than the overlap ({overlap} px); use a larger tile or a smaller overlap")


def tile_starts(length: int, size: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``size`` covering ``length`` with at least ``overlap`` shared pixels."""
    if size >= length:
        return [0]
    return list(range(0, length - size, size - overlap)) + [length - size]


def edge_weights(size: int, overlap: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    """1-D blending weights of one tile side: 0, then a linear ramp, then 1 (see the module doc)."""
    weights = torch.ones(size, dtype=torch.float64)
    margin, span = overlap // 4, overlap - 2 * (overlap // 4)
    if span == 0:
        return weights.float()
    distance = torch.arange(size, dtype=torch.float64)
    if ramp_start:
        weights = torch.minimum(weights, ((distance - margin + 0.5) / span).clamp(0, 1))
    if ramp_end:
        weights = torch.minimum(weights, ((size - 1 - distance - margin + 0.5) / span).clamp(0, 1))
    return weights.float()


def _predict_whole(model: nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    height, width = images.shape[-2:]
    per_pass = max(1, PIXEL_BUDGET // (height * width))
    outputs = [_forward(model, images[i : i + per_pass], device).cpu() for i in range(0, len(images), per_pass)]
    return torch.cat(outputs)


def _predict_tiled(model: nn.Module, image: torch.Tensor, device: torch.device, tile: int, overlap: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    tile_h, tile_w = min(tile, height), min(tile, width)
    ys, xs = tile_starts(height, tile_h, overlap), tile_starts(width, tile_w, overlap)
    boxes = [(y, x) for y in ys for x in xs]
    weight_y = {y: edge_weights(tile_h, overlap, y > 0, y + tile_h < height) for y in ys}
    weight_x = {x: edge_weights(tile_w, overlap, x > 0, x + tile_w < width) for x in xs}
    total = torch.zeros(1, height, width)
    logits = None
    per_pass = max(1, PIXEL_BUDGET // (tile_h * tile_w))
    for chunk in _chunks(boxes, per_pass):
        batch = torch.cat([image[..., y : y + tile_h, x : x + tile_w] for y, x in chunk])
        out = _forward(model, batch, device).cpu()
        if logits is None:
            logits = torch.zeros(out.shape[1], height, width)
        for (y, x), tile_logits in zip(chunk, out):
            weight = weight_y[y][:, None] * weight_x[x][None, :]
            logits[:, y : y + tile_h, x : x + tile_w] += tile_logits * weight
            total[:, y : y + tile_h, x : x + tile_w] += weight
    return (logits / total)[None]


def _forward(model: nn.Module, batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    out = model(batch.to(device, torch.float32, non_blocking=True))
    if out.ndim != 4 or out.shape[0] != batch.shape[0] or out.shape[-2:] != batch.shape[-2:]:
        raise SegdilError(
            f"{type(model).__name__}: returned shape {tuple(out.shape)} for input {tuple(batch.shape)}; "
            "prediction needs a segmentation model that returns (N, C, H, W) logits"
        )
    return out.float()


T = TypeVar("T")


def same_size_runs(items: Iterable[T], shape: Callable[[T], tuple], limit: int) -> Iterator[list[T]]:
    """Consecutive items of one ``shape``, at most ``limit`` at a time: the batches images of
    different sizes can form without padding."""
    run: list[T] = []
    for item in items:
        if run and (len(run) == limit or shape(run[0]) != shape(item)):
            yield run
            run = []
        run.append(item)
    if run:
        yield run


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
