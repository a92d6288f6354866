"""Blended overlapping tiles, for models without a receptive-field bound.

``segdil.inference.engine.Predictor`` is the one prediction path (predict, eval, compare --tta, the
API); it calls :func:`blend_tiles` when an image of a model whose ``receptive_field_radius`` is
None does not fit its memory budget, or when tiles are forced.

Each image is cut into overlapping tiles and the tile logits are averaged with a weight map.
Along a side shared with another tile the weight is 0 for the outer ``overlap // 4`` pixels and
then ramps linearly to 1 over ``overlap // 2`` pixels (the ramps of two neighbours sum to 1). A
pixel therefore only takes values from tiles in which it lies at least ``overlap // 4`` pixels
from a cut, so for a model whose receptive-field radius is at most ``overlap // 4`` the tiled
logits equal the whole-image logits; for larger receptive fields the ramps blend the seams.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, TypeVar

import torch


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


def blend_tiles(run: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, tile: int, overlap: int, pixels: int) -> torch.Tensor:
    """float32 logits ``(1, C, H, W)`` on the CPU of one image ``(1, 3, H, W)`` from tiles of side
    ``tile`` (at most the image's sides) sharing ``overlap`` pixels, blended with
    :func:`edge_weights`; ``run`` predicts a batch of tiles of at most ``pixels`` pixels in all
    (one tile at least)."""
    height, width = image.shape[-2:]
    tile_h, tile_w = min(tile, height), min(tile, width)
    ys, xs = tile_starts(height, tile_h, overlap), tile_starts(width, tile_w, overlap)
    boxes = [(y, x) for y in ys for x in xs]
    weight_y = {y: edge_weights(tile_h, overlap, y > 0, y + tile_h < height) for y in ys}
    weight_x = {x: edge_weights(tile_w, overlap, x > 0, x + tile_w < width) for x in xs}
    total = torch.zeros(1, height, width)
    logits = None
    per_pass = max(1, pixels // (tile_h * tile_w))
    for start in range(0, len(boxes), per_pass):
        chunk = boxes[start : start + per_pass]
        batch = torch.cat([image[..., y : y + tile_h, x : x + tile_w] for y, x in chunk])
        out = run(batch).float().cpu()
        if logits is None:
            logits = torch.zeros(out.shape[1], height, width)
        for (y, x), tile_logits in zip(chunk, out):
            weight = weight_y[y][:, None] * weight_x[x][None, :]
            logits[:, y : y + tile_h, x : x + tile_w] += tile_logits * weight
            total[:, y : y + tile_h, x : x + tile_w] += weight
    return (logits / total)[None]


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
