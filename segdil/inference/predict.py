"""Run a checkpoint over image files and folders: index masks, colour overlays, class probabilities.

For an image ``INPUT/<relative path>/<stem>.<ext>`` the outputs are, under ``--out DIR``:
    DIR/<relative path>/<stem>.png           index mask of the image's size, palette in the class colours
    DIR/<relative path>/<stem>_overlay.png   the image blended with the mask colours (``overlay``)
    DIR/<relative path>/<stem>_probs.npy     float16 softmax probabilities, C x H x W (``probs``)
A file given directly has no relative path. Everything is checked before anything is written.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from segdil.atomic import atomic_write
from segdil.errors import SegdilError

OVERLAY_ALPHA = 0.5


@dataclass
class PredictJob:
    """One input image and the files it produces."""

    source: Path
    mask: Path
    overlay: Path | None = None
    probs: Path | None = None

    def outputs(self) -> list[Path]:
        return [p for p in (self.mask, self.overlay, self.probs) if p is not None]


@dataclass
class PredictSummary:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def normalize_exts(exts: Sequence[str]) -> tuple[str, ...]:
    """``["PNG", ".jpg"]`` -> ``(".png", ".jpg")``."""
    out = tuple(dict.fromkeys("." + e.strip().lower().lstrip(".") for e in exts if e.strip().lstrip(".")))
    if not out:
        raise SegdilError("--ext: no extensions given; e.g. --ext png,jpg")
    return out


def collect_images(inputs: Sequence[Path], exts: Sequence[str], recursive: bool) -> list[tuple[Path, Path]]:
    """(image file, its folder relative to the input folder) for every input; folders are scanned
    for ``exts`` (hidden files skipped), files are taken whatever their extension."""
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        if item.is_file():
            found.append((item, Path()))
        elif item.is_dir():
            candidates = item.rglob("*") if recursive else item.iterdir()
            files = sorted(
                p for p in candidates
                if p.is_file() and p.suffix.lower() in exts and not any(part.startswith(".") for part in p.relative_to(item).parts)
            )
            if not files:
                hint = "" if recursive else "; add --recursive to include subfolders"
                raise SegdilError(f"{item}: no images with extensions {', '.join(exts)}{hint}")
            found.extend((p, p.parent.relative_to(item)) for p in files)
        else:
            raise SegdilError(f"{item}: input not found; give image files or folders")
    unique: dict[tuple[Path, Path], Path] = {}
    for path, rel in found:  # the same file named twice (directly and through its folder) once
        unique.setdefault((path.resolve(), rel), path)
    return [(path, rel) for (_, rel), path in unique.items()]


def plan_jobs(images: Sequence[tuple[Path, Path]], out: Path, overlay: bool, probs: bool) -> list[PredictJob]:
    """Output paths for every image; two images that would write the same file are an error."""
    jobs, owner = [], {}
    for source, rel in images:
        folder = out / rel
        job = PredictJob(
            source,
            folder / f"{source.stem}.png",
            folder / f"{source.stem}_overlay.png" if overlay else None,
            folder / f"{source.stem}_probs.npy" if probs else None,
        )
        for path in job.outputs():
            if path in owner:
                raise SegdilError(f"{path}: both {owner[path]} and {source} would be written here; predict them into separate --out folders or rename one")
            owner[path] = source
        jobs.append(job)
    return jobs


def check_outputs(inputs: Sequence[Path], out: Path, jobs: Sequence[PredictJob], overwrite: bool) -> None:
    """Refuse an output folder in an input folder, an output that is an input, and (without
    ``overwrite``) any output that already exists, before anything is written."""
    out_resolved = out.resolve()
    if out.exists() and not out.is_dir():
        raise SegdilError(f"{out}: --out exists and is not a folder")
    for item in inputs:
        if item.is_dir():
            folder = item.resolve()
            if out_resolved == folder or folder in out_resolved.parents:
                raise SegdilError(f"{out}: --out is inside the input folder {item}; write predictions to a folder outside the inputs")
    sources = {job.source.resolve(): job.source for job in jobs}
    existing = []
    for job in jobs:
        for path in job.outputs():
            if path.resolve() in sources:
                raise SegdilError(f"{path}: this output would replace the input image {sources[path.resolve()]}; choose another --out folder")
            if path.exists():
                existing.append(path)
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise SegdilError(f"{existing[0]}{more}: output already exists; pass --overwrite to replace, or choose another --out folder")


def predict_files(
    checkpoint: Path,
    inputs: Sequence[Path],
    out: Path,
    *,
    overlay: bool = False,
    probs: bool = False,
    tile: int | None = None,
    overlap: int = 32,
    batch_size: int = 1,
    device: str = "auto",
    recursive: bool = False,
    exts: Sequence[str] | None = None,
    overwrite: bool = False,
    fuse: bool = False,
    progress: bool = True,
    tta=None,
) -> PredictSummary:
    """Predict every image of ``inputs`` with the checkpoint and write the outputs under ``out``.

    Unreadable files are skipped and listed in the summary; user errors (bad paths, existing
    outputs, a classifier checkpoint) raise SegdilError before anything is written. ``tta`` (a
    :class:`segdil.inference.tta.TTA`) averages the softmax probabilities of flipped/rescaled views.
    """
    from tqdm import tqdm

    from segdil.checkpoint import checkpoint_config, load_checkpoint, model_from_checkpoint
    from segdil.data.io import IMAGE_EXTS, class_palette
    from segdil.device import resolve_device
    from segdil.inference.fuse import fold_batchnorm
    from segdil.inference.tiling import check_tiling, predict_logits
    from segdil.inference.tta import predict_log_proba
    from segdil.models import model_class

    inputs = [Path(p) for p in inputs]
    out = Path(out)
    check_tiling(tile, overlap)
    exts = normalize_exts(exts or IMAGE_EXTS)
    jobs = plan_jobs(collect_images(inputs, exts, recursive), out, overlay, probs)
    check_outputs(inputs, out, jobs, overwrite)

    ckpt = load_checkpoint(checkpoint)
    model_args = ckpt["model_args"]
    if model_class(model_args.get("name")).is_classifier:
        raise SegdilError(f"{checkpoint}: model {model_args.get('name')!r} classifies whole images; segdil predict needs a segmentation model")
    if int(model_args.get("in_channels", 3)) != 3:
        raise SegdilError(f"{checkpoint}: the model takes {model_args['in_channels']} input channels; segdil predict feeds RGB images (3 channels)")
    run_device = resolve_device(device)
    model = model_from_checkpoint(ckpt, run_device)
    if fuse:
        model = fold_batchnorm(model)
    data_cfg = checkpoint_config(ckpt).data

    summary = PredictSummary()
    palette = None
    with tqdm(total=len(jobs), unit="img", desc="predict", file=sys.stderr, disable=not progress, dynamic_ncols=True) as bar:
        for batch_jobs, images, tensor in _batches(jobs, batch_size, data_cfg.mean, data_cfg.std, summary, bar):
            logits = predict_logits(model, tensor, device=run_device, tile=tile, overlap=overlap) if tta is None else predict_log_proba(model, tensor, tta, device=run_device, tile=tile, overlap=overlap)
            if palette is None:
                if logits.shape[1] > 256:
                    raise SegdilError(f"{checkpoint}: {logits.shape[1]} classes do not fit an 8-bit index mask (at most 256)")
                palette = class_palette(ckpt.get("class_colors"), ckpt.get("class_names"))
            for job, image, image_logits in zip(batch_jobs, images, logits):
                write_outputs(job, image, image_logits, palette)
                summary.written.append(job.mask)
                bar.update(1)
    return summary


def write_outputs(job: PredictJob, image: np.ndarray, logits: torch.Tensor, palette: np.ndarray) -> None:
    """Write the mask (and overlay and probabilities when asked) of one image."""
    from segdil.data.io import save_image, save_mask

    mask = logits.argmax(0).to(torch.uint8).numpy()
    if job.probs is not None:
        _save_npy(job.probs, torch.softmax(logits, 0).to(torch.float16).numpy())
    if job.overlay is not None:
        save_image(job.overlay, overlay_image(image, mask, palette))
    save_mask(job.mask, mask, palette[: int(logits.shape[0])].tolist())


def overlay_image(image: np.ndarray, mask: np.ndarray, palette: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """``image`` blended with the class colour of every pixel, uint8 H x W x 3."""
    colours = palette[mask].astype(np.float32)
    return np.clip(image.astype(np.float32) * (1 - alpha) + colours * alpha + 0.5, 0, 255).astype(np.uint8)


def _batches(jobs, batch_size, mean, std, summary: PredictSummary, bar) -> Iterator[tuple[list, list, torch.Tensor]]:
    """Runs of up to ``batch_size`` readable images of one size; unreadable files go to ``summary.failed``."""
    from segdil.data.transforms import to_tensor
    from segdil.inference.tiling import same_size_runs

    for run in same_size_runs(_readable(jobs, summary, bar), lambda item: item[1].shape, batch_size):
        yield [j for j, _ in run], [im for _, im in run], torch.stack([to_tensor(im, mean, std) for _, im in run])


def _readable(jobs, summary: PredictSummary, bar) -> Iterator[tuple[PredictJob, np.ndarray]]:
    from segdil.data.io import load_image

    for job in jobs:
        try:
            yield job, load_image(job.source)
        except SegdilError as exc:
            summary.failed.append((job.source, exc.message))
            bar.write(f"skipped {exc.message}", file=sys.stderr)
            bar.update(1)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_write(path) as f:
        np.save(f, array)
