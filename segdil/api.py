"""The Python API: load a checkpoint, predict numpy images, score masks.

    import segdil
    model = segdil.load("runs/hdc/best.pt")
    mask = model.predict(image)            # uint8 H x W x 3 RGB in, uint8 H x W class indices out
    probs = model.predict_proba(image)     # float32 C x H x W softmax probabilities
    mask = model.predict(image, tta="flip")   # test-time augmentation, as `segdil predict --tta flip`
    masks = model.predict([image1, image2])    # a list in, a list out; same-size images share a forward
    by_path = model.predict("photos/")         # a folder: {image path: mask}, sorted by name
    metrics = segdil.evaluate(pred_masks, gt_masks, num_classes=4)   # the dict of `segdil eval --json`

Prediction is the CLI's (``segdil predict``): the checkpoint's normalisation and the one
``segdil.inference.engine.Predictor`` (BatchNorm folded, channels_last, bf16 where native; whole
images within the memory budget, exact tiles above it), with ``tta`` views averaged by
``segdil.inference.tta.tta_logits``. ``segdil.load(path, precision="fp32", fuse=False)`` gives the
plain reference forward.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

import numpy as np
import torch

from segdil.checkpoint import checkpoint_config, load_checkpoint, model_from_checkpoint
from segdil.data.io import image_to_tensor, list_images, load_image
from segdil.device import resolve_device
from segdil.errors import SegdilError, shown
from segdil.inference.engine import InferenceOptions, Predictor
from segdil.inference.tiling import same_size_runs
from segdil.inference.tta import TTA, parse_tta, tta_logits
from segdil.models import model_class

TTASpec = Union[TTA, str, Sequence[str], None]  # a TTA, or what --tta takes: "flip", ["flip", "scales=0.5,1"]
Images = Union[np.ndarray, str, Path, Sequence[Union[np.ndarray, str, Path]]]  # one image, a list, an N x H x W x 3 array or a folder
OPTIONS = tuple(f.name for f in dataclasses.fields(InferenceOptions) if f.name not in ("tile", "overlap"))  # segdil.load's keywords
DEFAULT_BATCH = 8  # images per forward pass at most (the engine splits further to stay within the memory budget)


class Model:
    """A segmentation checkpoint ready to predict (see ``load``)."""

    def __init__(self, ckpt: dict[str, Any], device: str | torch.device = "auto", source: str = "checkpoint", **inference: Any):
        args = ckpt["model_args"]
        if model_class(args.get("name")).is_classifier:
            raise SegdilError(f"{source}: model {args.get('name')!r} classifies whole images; segdil.load needs a segmentation model")
        InferenceOptions(**inference).check()  # precision, memory_budget_mb, ...: refused here, not at the first predict
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

    def predictor(self, tile: Optional[int] = None, overlap: Optional[int] = None) -> Predictor:
        """The one ``segdil.inference.engine.Predictor`` of these options (made on first use, then kept)."""
        key = (tile, overlap)
        if key not in self._predictors:
            self._predictors[key] = Predictor(self.network, self.device, InferenceOptions(**{**self.inference, "tile": tile, "overlap": overlap}))
        return self._predictors[key]

    def logits(self, image: np.ndarray, *, tile: Optional[int] = None, overlap: Optional[int] = None, tta: TTASpec = None) -> torch.Tensor:
        """float32 C x H x W logits of one uint8 H x W x 3 RGB image (a path is read first).
        ``tile``/``overlap`` force tiling (default: whole image within the budget; overlap from the
        receptive field); with ``tta`` (e.g. ``"flip"``) the log of the views' averaged probabilities."""
        return next(self._logits_each([image], tile, overlap, tta, 1))

    def _logits_each(self, images: Iterable[Any], tile, overlap, tta: TTASpec, batch_size: int) -> Iterator[torch.Tensor]:
        """The C x H x W logits of each image in order; consecutive images of one size share a forward."""
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"predict: batch_size={shown(batch_size)}; give an integer >= 1")
        predictor, views = self.predictor(tile, overlap), tta if isinstance(tta, TTA) else parse_tta(tta)
        arrays = (_as_image(image, f"images[{index}]") for index, image in enumerate(images))
        for run in same_size_runs(arrays, lambda array: array.shape, batch_size):
            batch = torch.stack([image_to_tensor(array, self.mean, self.std) for array in run])
            yield from tta_logits(predictor, batch, views)

    def predict(self, images: Images, *, tile: Optional[int] = None, overlap: Optional[int] = None, tta: TTASpec = None, batch_size: int = DEFAULT_BATCH) -> Any:
        """uint8 H x W class-index masks. One uint8 H x W x 3 RGB image (or image path) -> one mask; a list ->
        a list of masks in its order; an N x H x W x 3 array -> N x H x W; a folder -> {image path: mask},
        sorted by name. Consecutive images of one size are predicted ``batch_size`` at a time."""
        return self._each(images, lambda logits: logits.argmax(0).to(torch.uint8).numpy(), tile, overlap, tta, batch_size)

    def predict_proba(self, images: Images, *, tile: Optional[int] = None, overlap: Optional[int] = None, tta: TTASpec = None, batch_size: int = DEFAULT_BATCH) -> Any:
        """float32 C x H x W class probabilities (softmax) per image, in the shapes of ``predict``; ``argmax(0)`` is ``predict``."""
        return self._each(images, lambda logits: torch.softmax(logits, 0).numpy(), tile, overlap, tta, batch_size)

    def _each(self, images: Images, convert, tile, overlap, tta: TTASpec, batch_size: int) -> Any:
        if isinstance(images, (str, Path)) and Path(images).is_dir():
            paths = list_images(Path(images))
            if not paths:
                raise SegdilError(f"{images}: no images in this folder (extensions .png, .jpg, .jpeg, .tif, .tiff, .bmp; subfolders are not read)")
            return dict(zip(paths, (convert(x) for x in self._logits_each(paths, tile, overlap, tta, batch_size))))
        if isinstance(images, (list, tuple)):
            return [convert(x) for x in self._logits_each(images, tile, overlap, tta, batch_size)]
        if isinstance(images, np.ndarray) and images.ndim == 4:
            return np.stack([convert(x) for x in self._logits_each(list(images), tile, overlap, tta, batch_size)])
        return convert(next(self._logits_each([images], tile, overlap, tta, 1)))


def load(checkpoint: str | Path, device: str = "auto", **inference: Any) -> Model:
    """The model of a segdil checkpoint (``best.pt``/``last.pt`` of a run) on ``device`` (auto, cpu, cuda:N).
    ``inference``: ``InferenceOptions`` fields, e.g. ``precision="fp32"`` (``auto``, ``bf16`` or ``fp32``, as
    ``--precision``), ``fuse=False``, ``memory_budget_mb=2048``; another keyword is a TypeError naming the valid ones."""
    unknown = sorted(set(inference) - set(OPTIONS))
    if unknown:
        raise TypeError(f"segdil.load: unknown keyword {', '.join(shown(k) for k in unknown)}; valid: device, {', '.join(OPTIONS)} (tile and overlap go to predict)")
    _check_options(inference)  # before the checkpoint is read
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
    Predictions under ignored ground truth are not scored. Masks are integer class indices (floats only
    when they hold whole numbers); a value such as 0.7, a wrong ``num_classes`` or ``class_names`` of
    another length is a ValueError naming the argument.
    """
    # lazy: the metrics (OpenCV, SciPy) load with the first evaluate, not with segdil.load
    from segdil.evaluation import confusion_counts
    from segdil.metrics import Evaluator
    from segdil.metrics.instances import InstanceEvaluator

    if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool) or not 1 <= num_classes <= 256:
        raise ValueError(f"evaluate: num_classes={shown(num_classes)}; give the number of classes, an integer 1-256")
    num_classes = int(num_classes)
    if class_names is not None and (isinstance(class_names, str) or len(list(class_names)) != num_classes):
        got = "a string" if isinstance(class_names, str) else f"{len(list(class_names))} names"
        raise ValueError(f"evaluate: class_names holds {got} for num_classes={num_classes}; give one name per class, in class-index order")
    settings = (num_classes, int(ignore_index), tuple(size_bins), float(small_threshold), background_class)
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
        pred, gt = _index_mask(pred, f"pred_masks[{index}]"), _index_mask(gt, f"gt_masks[{index}]")
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
    result["confusion_matrix"] = confusion_counts(evaluator)
    return {**result, "class_names": list(class_names) if class_names is not None else None}


def _check_options(inference: dict[str, Any]) -> None:
    """``segdil.load``'s inference keywords: types and ranges, one line naming the keyword."""
    for name in ("fuse", "channels_last", "compile"):
        if name in inference and not isinstance(inference[name], bool):
            raise ValueError(f"segdil.load: {name}={shown(inference[name])}; give True or False")
    budget = inference.get("memory_budget_mb", 1)
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not np.isfinite(budget) or budget <= 0:
        raise ValueError(f"segdil.load: memory_budget_mb={shown(budget)}; give a positive number of megabytes, e.g. 2048")
    InferenceOptions(**inference).check()  # precision: the vocabulary of train.precision and --precision


def _index_mask(mask: Any, where: str) -> np.ndarray:
    """``mask`` as an integer array; floats are accepted only when they hold whole numbers (class indices)."""
    array = np.asarray(mask)
    if array.dtype == bool:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        return array
    if np.issubdtype(array.dtype, np.floating):
        fractional = array[np.isfinite(array) & (array != np.round(array))]
        if fractional.size or not np.isfinite(array).all():
            value = fractional.flat[0] if fractional.size else array[~np.isfinite(array)].flat[0]
            raise ValueError(
                f"evaluate: {where} holds {array.dtype} values such as {value:g}, not class indices; pass integer masks "
                "(e.g. probs.argmax(0) of predict_proba, or model.predict)"
            )
        return array.astype(np.int64)
    raise ValueError(f"evaluate: {where} has dtype {array.dtype}; pass integer class-index masks (H x W)")


def _as_image(image: Any, where: str = "image") -> np.ndarray:
    """uint8 H x W x 3 RGB of an array or an image path; anything else is a ValueError naming the fix."""
    if isinstance(image, (str, Path)):
        return load_image(image)
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        batch = "; for several images pass a list (or an N x H x W x 3 array)" if array.ndim == 4 else ""
        raise ValueError(f"predict: {where}: expected an H x W x 3 RGB image, got shape {array.shape}{batch}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"predict: {where}: empty image of shape {array.shape}; give an image at least 1 x 1 pixels")
    if array.dtype != np.uint8:
        raise ValueError(f"predict: {where}: expected uint8 pixel values 0-255, got {array.dtype}; {_uint8_advice(array.dtype)}")
    return np.ascontiguousarray(array)


def _uint8_advice(dtype: np.dtype) -> str:
    if dtype == np.uint16:
        return "for 16-bit images (0-65535) use (image // 257).astype(np.uint8)"
    if np.issubdtype(dtype, np.floating):
        return "for floats in 0-1 use (image * 255).round().astype(np.uint8); for floats in 0-255 use image.round().clip(0, 255).astype(np.uint8)"
    if dtype == bool:
        return "for a binary image use image.astype(np.uint8) * 255"
    return "scale the values to 0-255, then .astype(np.uint8)"
