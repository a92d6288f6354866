"""Validation during training: the evaluation metrics, all-reduced across processes.

It runs the training model directly, not through ``inference.engine.Predictor``: the Predictor would fold BatchNorm into a copy at every validation, switch from training's autocast to the inference precision policy (bf16 guard) and gather logits on the CPU, changing the numbers that pick ``best.pt`` and slowing every validation.

Objects are scored as ``segdil eval`` scores them (``segdil.evaluation.evaluator_for_dataset``):
where the validation data has instance maps (the Cityscapes layout's ``instanceIds``, a folder's
``instances/``, the street scenes) each instance is one object, with the same evaluator and iIoU
weights as ``segdil eval --format``; elsewhere the objects are the connected components of each
class, with no instance map read.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from segdil.config import Config
from segdil.errors import SegdilError
from segdil.evaluation import evaluation_format, evaluator_for_dataset
from segdil.metrics import Evaluator


@torch.no_grad()
def validate(model: torch.nn.Module, loader, num_classes: int, cfg: Config, device: torch.device, autocast, keep: int = 0) -> tuple[dict[str, Any], tuple]:
    """The validation metrics, and the first ``keep`` (image, mask, prediction) triples for pictures."""
    ev = cfg.eval
    dataset, base_index = unwrap_subsets(loader.dataset)
    dataset = with_instance_maps(cfg, dataset)
    evaluator = instance_evaluator(cfg, dataset, num_classes, device)
    batches = iter(loader.batch_sampler) if evaluator is not None else None  # the loader's order: sequential
    if evaluator is None:
        evaluator = Evaluator(num_classes, size_bins=tuple(ev.size_bins), small_threshold=ev.small_threshold, background_class=ev.background_class, device=device)
    model.eval()
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    samples: tuple = ()
    for images, masks in loader:
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        with autocast:
            logits = model(images)
        preds = logits.argmax(1)
        if batches is None:
            evaluator.update(preds, masks.to(device, non_blocking=True))
        else:
            maps = [padded_instances(dataset, base_index(i), tuple(masks.shape[-2:])) for i in next(batches)]
            evaluator.update(preds, masks.to(device, non_blocking=True), maps)
        if keep and not samples:
            samples = (images[:keep].float().cpu(), masks[:keep].cpu(), preds[:keep].cpu())
    evaluator.all_reduce()
    return evaluator.compute(), samples


def instance_evaluator(cfg: Config, dataset, num_classes: int, device: torch.device):
    """``segdil eval``'s evaluator for this data (Cityscapes' official one, or instance objects with
    the training split's average instance sizes as iIoU weights); None for data without instance
    maps, which keeps the plain evaluator."""
    ev, data = cfg.eval, cfg.data
    fmt = evaluation_format(data)
    if fmt != "cityscapes" and getattr(dataset, "instances", None) is None:
        return None  # the common case costs nothing more
    try:
        return evaluator_for_dataset(fmt, data.root, data.train_split, dataset, num_classes, 255, ev.size_bins, ev.small_threshold, ev.background_class, device)
    except SegdilError as exc:  # eval's words name its options; here they are the config's
        raise SegdilError(f"validation ({fmt} data): {exc}") from None


def with_instance_maps(cfg: Config, dataset):
    """``dataset``, or for a folder split the same images as ``segdil eval`` opens them, with the
    ``instances/`` maps (training reads folders without them); ``dataset`` when it has none."""
    data = cfg.data
    if data.root is None or data.format != "folder" or getattr(dataset, "instances", None) is not None:
        return dataset
    from segdil.data.formats import open_dataset  # lazy: only folder data pays for it

    found = open_dataset("folder", data.root, data.val_split)
    same = getattr(found, "instances", None) is not None and [str(p) for p in found.images] == [str(p) for p in getattr(dataset, "images", [])]
    return found if same else dataset


def unwrap_subsets(dataset) -> tuple[Any, Callable[[int], int]]:
    """The dataset under any ``Subset`` wrappers (a process's validation shard) and the map from an
    index of ``dataset`` to one of it."""
    chain = []
    while isinstance(dataset, torch.utils.data.Subset):
        chain.append(dataset.indices)
        dataset = dataset.dataset

    def base_index(index: int) -> int:
        for indices in chain:
            index = int(indices[index])
        return index

    return dataset, base_index


def padded_instances(dataset, index: int, shape: tuple[int, int]) -> np.ndarray | None:
    """Instance ids of item ``index`` at the validation mask's ``shape``: zero-padded bottom and right
    as the validation transform pads the mask (``data.val_pad_multiple``); None without a map."""
    ids = dataset.load_instances(index)
    if ids is None:
        return None
    height, width = ids.shape
    if height > shape[0] or width > shape[1]:
        raise SegdilError(f"validation item {index}: its instance map is {width}x{height} but its mask {shape[1]}x{shape[0]}; the validation transform must not resize")
    return np.pad(ids, ((0, shape[0] - height), (0, shape[1] - width)))
