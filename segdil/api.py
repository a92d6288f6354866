"""The Python API: load a checkpoint, predict numpy images, score masks.

    import segdil
    model = segdil.load("runs/hdc/best.pt")
    mask = model.predict(image)            # uint8 H x W x 3 RGB in, uint8 H x W class indices out
    probs = model.predict_proba(image)     # float32 C x H x W softmax probabilities
    mask = model.predict(image, tta="flip")   # test-time augmentation, as `segdil predict --tta flip`
    metrics = segdil.evaluate(pred_masks, gt_masks, num_classes=4)   # the dict of `segdil eval --json`

Prediction is the CLI's (``segdil predict``): the checkpoint's normalisation and the one
``segdil.inference.engine.Predictor`` (BatchNorm folded, channels_last, bf16 where native; whole
images within the memory budget, exact tiles above it), with ``tta`` views averaged by
``segdil.inference.tta.tta_logits``. ``segdil.load(path, precision="fp32", fuse=False)`` gives the
plain reference forward.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
import torch

from segdil.checkpoint import checkpoint_config, load_checkpoint, model_from_checkpoint
from segdil.data.io import load_image
from segdil.data.transforms import to_tensor
from segdil.device import check_precision, resolve_device
from segdil.errors import SegdilError
from segdil.inference.engine import InferenceOptions, Predictor
from segdil.inference.tta import TTA, parse_tta, tta_logits
from segdil.metrics import Evaluator
from segdil.metrics.instances import InstanceEvaluator
from segdil.models import model_class

TTASpec = Union[TTA, str, Sequence[str], None]  # a TTA, or what --tta takes: "flip", ["flip", "scales=0.5,1"]


class Model:
    """A segmentation checkpoint ready to predict (see ``load``)."""

    def __init__(self, ckpt: dict[str, Any], device: str | torch.device = "auto", source: str = "checkpoint", **inference: Any):
        args = ckpt["model_args"]
        if model_class(args.get("name")).is_classifier:
            raise SegdilError(f"{source}: model {args.get('name')!r} classifies whole images; segdil.load needs a segmentation model")
        check_precision(inference.get("precision", "auto"), "precision")  # the vocabulary of train.precision and --precision
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.network = model_from_checkpoint(ckpt, self.device)
        data = checkpoint_config(ckpt).data
        self.mean, self.std = tuple(data.mean), tuple(data.std)
        self.num_classes = int(args.get("num_classes") or len(ckpt.get("class_names") or []))
        self.class_names: Optional[list[str]] = list(ckpt["class_names"]) if ckpt.get("class_names") else None
        self.class_colors = ckpt.get("class_colors")
        self.model_args = dict(args)
        self.inference = dict(inference)  # InferenceOptions fields (precision, fuse, memory_budget_mb, ...)
        self._predictors: dict = {}

    def __repr__(self) -> str:
        return f"segdil.Model({self.model_args.get('name')!r}, {self.num_classes} classes, device={self.device})"

    def logits(self, image: np.ndarray, *, tile: Optional[int] = None, overlap: Optional[int] = None, tta: TTASpec = None) -> torch.Tensor:
        """float32 C x H x W logits of one uint8 H x W x 3 RGB image (a path is read first).
        ``tile``/``overlap`` force tiling (default: whole image within the budget; overlap from the
        receptive field); with ``tta`` (e.g. ``"flip"``) the log of the views' averaged probabilities."""
        tensor = to_tensor(_as_image(image), self.mean, self.std)[None]
        key = (tile, overlap)
        if key not in self._predictors:
            self._predictors[key] = Predictor(self.network, self.device, InferenceOptions(**{**self.inference, "tile": tile, "overlap": overlap}))
        return tta_logits(self._predictors[key], tensor, tta if isinstance(tta, TTA) else parse_tta(tta))[0]

    def predict(self, image: np.ndarray, *, tile: Optional[int] = None, overlap: Optional[int] = None, tta: TTASpec = None) -> np.ndarray:
        """uint8 H x W class-index mask of one uint8 H x W x 3 RGB image (or image path)."""
        return self.logits(image, tile=tile, overlap=overlap, tta=tta).argmax(0).to(torch.uint8).numpy()

    def predict_proba(self, image: np.ndarray, *, tile: Optional[int] = None, overlap: Optional[int] = None, tta: TTASpec = None) -> np.ndarray:
        """float32 C x H x W class probabilities (softmax) of one image; ``argmax(0)`` is ``predict``."""
        return torch.softmax(self.logits(image, tile=tile, overlap=overlap, tta=tta), 0).numpy()


def load(checkpoint: str | Path, device: str = "auto", **inference: Any) -> Model:
    """The model of a segdil checkpoint (``best.pt``/``last.pt`` of a run) on ``device`` (auto, cpu, cuda:N).
    ``inference``: ``InferenceOptions`` fields, e.g. ``precision="fp32"`` (``auto``, ``bf16`` or ``fp32``, as
    ``--precision``), ``fuse=False``, ``memory_budget_mb=2048``."""
    return Model(load_checkpoint(checkpoint), device, str(checkpoint), **inference)


def evaluate(
    pred_masks: Iterable[np.ndarray],
    gt_masks: Iterable[np.ndarray],
    num_classes: int,
    *,
    ignore_index: int = 255,
    background_class: Optional[int] = 0,
    size_bins: Sequence[float] = (8.0, 16.0, 32.0, 64.0),
    small_threshold: float = 16.0,
    instances: Optional[Iterable[Optional[np.ndarray]]] = None,
    instance_sizes: Optional[dict[int, float]] = None,
    class_names: Optional[Sequence[str]] = None,
) -> dict[str, Any]:
    """Score predicted index masks against ground-truth masks (pairs of H x W integer arrays).

    Returns the dict ``segdil eval --json`` writes (docs/metrics.md). ``instances``: one instance-id
    map per image (0 = none) to use the dataset's objects instead of connected components;
    ``instance_sizes`` {class: average instance area} fixes the iIoU weights (Cityscapes-style).
    Predictions under ignored ground truth are not scored.
    """
    settings = (int(num_classes), int(ignore_index), tuple(size_bins), float(small_threshold), background_class)
    if instances is None and instance_sizes is None:
        evaluator = Evaluator(*settings)
    else:
        evaluator = InstanceEvaluator(*settings, instance_sizes=instance_sizes)
    preds, gts = list(pred_masks), list(gt_masks)
    if len(preds) != len(gts):
        raise ValueError(f"evaluate: {len(preds)} predictions but {len(gts)} ground-truth masks")
    maps = list(instances) if instances is not None else [None] * len(gts)
    if len(maps) != len(gts):
        raise ValueError(f"evaluate: {len(maps)} instance maps for {len(gts)} images")
    for index, (pred, gt, ids) in enumerate(zip(preds, gts, maps)):
        pred, gt = np.asarray(pred), np.asarray(gt)
        if pred.shape != gt.shape or gt.ndim != 2:
            raise ValueError(f"evaluate: image {index}: prediction {pred.shape} and ground truth {gt.shape} must be H x W of one size")
        scored = gt != ignore_index
        if scored.any() and (int(gt[scored].max()) >= num_classes or int(gt[scored].min()) < 0):
            raise ValueError(f"evaluate: image {index}: ground-truth value {int(gt[scored].max())} is outside 0..{num_classes - 1} and not the ignore index {ignore_index}")
        if scored.any() and (int(pred[scored].max()) >= num_classes or int(pred[scored].min()) < 0):
            raise ValueError(f"evaluate: image {index}: predicted class {int(pred[scored].max())} is outside 0..{num_classes - 1}")
        pred = np.where(scored, pred, 0)
        p, g = torch.from_numpy(pred.astype(np.int64))[None], torch.from_numpy(gt.astype(np.int64))[None]
        if isinstance(evaluator, InstanceEvaluator):
            evaluator.update(p, g, [ids])
        else:
            evaluator.update(p, g)
    result = evaluator.compute()
    result["num_images"] = len(gts)
    return {**result, "class_names": list(class_names) if class_names is not None else None}


def _as_image(image: Any) -> np.ndarray:
    if isinstance(image, (str, Path)):
        return load_image(image)
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"predict: expected an H x W x 3 RGB image, got shape {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(f"predict: expected uint8 pixel values 0-255, got {array.dtype}; e.g. (image * 255).round().astype(np.uint8)")
    return np.ascontiguousarray(array)
