"""Run a checkpoint over image files and folders: index masks, colour overlays, class probabilities.

For an image ``INPUT/<relative path>/<stem>.<ext>`` the outputs are, under ``--out DIR``:
    DIR/<relative path>/<stem>.png           index mask of the image's size, palette in the class colours
    DIR/<relative path>/<stem>_overlay.png   the image blended with the mask colours (``overlay``)
    DIR/<relative path>/<stem>_probs.npy     float16 softmax probabilities, C x H x W (``probs``)
A file given directly has no relative path. Everything is checked before anything is written.

The model runs through :class:`segdil.inference.engine.Predictor` (the fast path: BatchNorm
folded, channels_last, bf16 where native, whole images within a memory budget, exact tiles
above it). Decoding runs ahead in a reader thread and mask writing in a writer thread, so both
overlap with the forward passes. Temporaries of our own naming (``.<output name>.<random>.tmp``,
see :mod:`segdil.atomic`) left by a killed run are removed on start; ``skip_existing`` continues
an interrupted run.
"""

from __future__ import annotations

import os
import queue
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from segdil.atomic import TEMP_NAME_CHARS, TEMP_SUFFIX, atomic_write
from segdil.checkpoint import checkpoint_config, load_checkpoint, model_from_checkpoint
from segdil.data.io import IMAGE_EXTS, class_palette, load_image, max_image_pixels, save_image, save_mask
from segdil.data.transforms import to_tensor
from segdil.device import resolve_device
from segdil.errors import SegdilError, shown
from segdil.inference.engine import InferenceOptions, Predictor
from segdil.inference.overlay import OverlayStyle, overlay_image
from segdil.inference.tiling import same_size_runs
from segdil.inference.tta import tta_logits
from segdil.models import model_class
from segdil.output_paths import LOCK_NAME, check_output_folder, folder_lock
from segdil.path_names import shown_path


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
    skipped_existing: list[Path] = field(default_factory=list)  # sources whose outputs all existed (skip_existing)
    symlink_loops: list[Path] = field(default_factory=list)  # folder entries that are symlink loops (not predicted)
    stale_temporaries: list[Path] = field(default_factory=list)  # removed on start
    fp32_fallbacks: int = 0  # images the bf16 guard ran in fp32 (near-tied classes)
    inference: str = ""  # what ran (Predictor.describe)


def normalize_exts(exts: Sequence[str]) -> tuple[str, ...]:
    """``["PNG", ".jpg"]`` -> ``(".png", ".jpg")``."""
    out = tuple(dict.fromkeys("." + e.strip().lower().lstrip(".") for e in exts if e.strip().lstrip(".")))
    if not out:
        raise SegdilError("--ext: no extensions given; e.g. --ext png,jpg")
    return out


def collect_images(inputs: Sequence[Path], exts: Sequence[str], recursive: bool, loops: list[Path] | None = None) -> list[tuple[Path, Path]]:
    """(image file, its folder relative to the input folder) for every input; folders are scanned
    for ``exts`` (hidden files skipped), files are taken whatever their extension. Folder entries
    with one of ``exts`` that are symlink loops are not images: they are appended to ``loops``."""
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        try:
            is_file, is_dir = item.is_file(), item.is_dir()
        except OSError as exc:  # a name over the system's limit, a permission problem
            raise SegdilError(f"{shown(str(item))}: {exc.strerror or exc}; give image files or folders") from None
        if is_file:
            _check_named_image(item)
            found.append((item, Path()))
        elif is_dir:
            candidates = list(item.rglob("*") if recursive else item.iterdir())
            if loops is not None:
                loops.extend(sorted(p for p in candidates if p.suffix.lower() in exts and p.is_symlink() and _is_symlink_loop(p)))
            files = sorted(
                p for p in candidates
                if p.is_file() and p.suffix.lower() in exts and not any(part.startswith(".") for part in p.relative_to(item).parts)
            )
            if not files:
                hint = "" if recursive else "; add --recursive to include subfolders"
                raise SegdilError(f"{shown(str(item))}: no images with extensions {', '.join(exts)}{hint}")
            found.extend((p, p.parent.relative_to(item)) for p in files)
        else:
            raise SegdilError(f"{shown(str(item))}: input not found; give image files or folders")
    unique: dict[tuple[Path, Path], Path] = {}
    for path, rel in found:  # the same file named twice (directly and through its folder) once
        unique.setdefault((path.resolve(), rel), path)
    return [(path, rel) for (_, rel), path in unique.items()]


def _check_named_image(path: Path) -> None:
    """An image named on the command line that cannot be opened stops the run before anything is written
    (an unreadable file found in a folder is skipped and listed instead). Reads the header only."""
    try:
        with Image.open(path):
            pass
    except OSError as exc:
        reason = "an empty file" if path.stat().st_size == 0 else f"not an image that can be read ({exc.strerror or type(exc).__name__})"
        raise SegdilError(f"{shown_path(path)}: {reason}; give an image file (PNG, JPEG, TIFF, ...)") from None


def _is_symlink_loop(path: Path) -> bool:
    import errno

    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def skip_done(jobs: Sequence[PredictJob]) -> tuple[list[PredictJob], list[PredictJob]]:
    """(jobs still to do, jobs whose outputs all exist already)."""
    todo, done = [], []
    for job in jobs:
        (done if all(p.exists() for p in job.outputs()) else todo).append(job)
    return todo, done


def remove_stale_temporaries(jobs: Sequence[PredictJob]) -> list[Path]:
    """Remove temporaries of our own naming beside the planned outputs (``.<output name>.<random>.tmp``,
    as :mod:`segdil.atomic` names them), left by a run that was killed; other files are untouched."""
    by_folder: dict[Path, set[str]] = {}
    for job in jobs:
        for path in job.outputs():
            by_folder.setdefault(path.parent, set()).add(path.name[:TEMP_NAME_CHARS])
    removed = []
    pattern = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]+" + re.escape(TEMP_SUFFIX) + r"(\.[A-Za-z0-9]+)?$")
    for folder, names in by_folder.items():
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            match = pattern.match(entry.name)
            if match and match.group("name")[:TEMP_NAME_CHARS] in names and entry.is_file() and not entry.is_symlink():
                entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed


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
    """Refuse an output folder that is, holds or lies in an input (the checkpoint among them; the rules of
    :func:`segdil.output_paths.check_output_folder`), an output that is an input, and (without ``overwrite``)
    any output that already exists, before anything is written. Other files in ``out`` are left alone."""
    check_output_folder(out, "--out", inputs, foreign=lambda folder: None, reuse=True)
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
        raise SegdilError(f"{existing[0]}{more}: output already exists; pass --overwrite to replace, --skip-existing to keep what is done and continue, or choose another --out folder")


def check_predictable(ckpt: dict, checkpoint: Path) -> dict:
    """The checkpoint's ``model_args``, when its model segments RGB images with finite weights and
    as many class names as classes; else a one-line error."""
    model_args = ckpt["model_args"]
    if model_class(model_args.get("name")).is_classifier:
        raise SegdilError(f"{checkpoint}: model {model_args.get('name')!r} classifies whole images; segdil predict needs a segmentation model")
    if int(model_args.get("in_channels", 3)) != 3:
        raise SegdilError(f"{checkpoint}: the model takes {model_args['in_channels']} input channels; segdil predict feeds RGB images (3 channels)")
    names, num_classes = ckpt.get("class_names"), model_args.get("num_classes")
    if names is not None and num_classes is not None and len(names) != int(num_classes):
        raise SegdilError(f"{checkpoint}: {len(names)} class names {shown(list(names))} for a {num_classes}-class model; the checkpoint is inconsistent, use the one training wrote")
    bad = [k for k, v in ckpt.get("model", {}).items() if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise SegdilError(f"{checkpoint}: weights hold NaN or inf ({shown(bad[0])}{' and more' if len(bad) > 1 else ''}); training diverged: use an earlier checkpoint or a lower train.lr")
    return model_args


def predict_files(
    checkpoint: Path,
    inputs: Sequence[Path],
    out: Path,
    options: InferenceOptions = InferenceOptions(),
    *,
    overlay: bool = False,
    probs: bool = False,
    batch_size: int = 1,
    device: str = "auto",
    recursive: bool = False,
    exts: Sequence[str] | None = None,
    overwrite: bool = False,
    skip_existing: bool = False,
    progress: bool = True,
    tta=None,
) -> PredictSummary:
    """Predict every image of ``inputs`` with the checkpoint and write the outputs under ``out``.

    Unreadable files are skipped and listed in the summary; user errors (bad paths, existing
    outputs, a classifier checkpoint) raise SegdilError before anything is written. With
    ``skip_existing`` images whose outputs all exist are left alone (an interrupted run continues).
    ``options`` say how the model runs (:class:`segdil.inference.engine.InferenceOptions`); ``tta`` (a
    :class:`segdil.inference.tta.TTA`) averages the softmax probabilities of flipped/rescaled views.
    """
    from tqdm import tqdm

    inputs = [Path(p) for p in inputs]
    out = Path(out)
    options.check()
    max_image_pixels()  # a bad $SEGDIL_MAX_IMAGE_PIXELS is one error up front, not one per image
    if overwrite and skip_existing:
        raise SegdilError("--overwrite and --skip-existing contradict each other; give one")
    exts = normalize_exts(exts or IMAGE_EXTS)
    summary = PredictSummary()
    jobs = plan_jobs(collect_images(inputs, exts, recursive, summary.symlink_loops), out, overlay, probs)
    if skip_existing:
        jobs, done = skip_done(jobs)
        summary.skipped_existing = [job.source for job in done]
    check_outputs([Path(checkpoint), *inputs], out, jobs, overwrite or skip_existing)  # skip_existing: an unfinished image's partial outputs are redone
    summary.failed += [(loop, f"{shown(str(loop))}: a symlink loop, not an image") for loop in summary.symlink_loops]

    ckpt = load_checkpoint(checkpoint)
    model_args = check_predictable(ckpt, checkpoint)
    run_device = resolve_device(device)
    predictor = Predictor(model_from_checkpoint(ckpt, run_device), run_device, options)
    saved = checkpoint_config(ckpt)
    data_cfg = saved.data
    summary.stale_temporaries = remove_stale_temporaries(jobs)
    palette = class_palette(ckpt.get("class_colors"), ckpt.get("class_names"))
    style = OverlayStyle(palette, list(ckpt.get("class_names") or []), saved.eval.background_class)
    num_classes = int(model_args.get("num_classes") or 0)
    if num_classes > 256:
        raise SegdilError(f"{checkpoint}: {num_classes} classes do not fit an 8-bit index mask (at most 256)")

    out.mkdir(parents=True, exist_ok=True)
    lock_created = not (out / LOCK_NAME).exists()
    with (
        folder_lock(out, "--out", "prediction"),  # two runs into one folder would mix their masks
        tqdm(total=len(jobs), unit="img", desc="predict", file=sys.stderr, disable=not progress, dynamic_ncols=True) as bar,
        ThreadPoolExecutor(1) as writer,
    ):
        pending: list = []
        for batch_jobs, images, tensor in _batches(jobs, batch_size, data_cfg.mean, data_cfg.std, summary, bar):
            logits = tta_logits(predictor, tensor, tta)
            if logits.shape[1] > 256:
                raise SegdilError(f"{checkpoint}: {logits.shape[1]} classes do not fit an 8-bit index mask (at most 256)")
            pending.append(writer.submit(_write_batch, batch_jobs, images, logits, style, summary, bar))
            while len(pending) > 2:  # bound the logits waiting to be written
                pending.pop(0).result()
        for future in pending:
            future.result()
    if lock_created:
        (out / LOCK_NAME).unlink(missing_ok=True)
    summary.fp32_fallbacks, summary.inference = predictor.fp32_fallbacks, predictor.describe()
    return summary


def _write_batch(batch_jobs, images, logits, style: OverlayStyle, summary: PredictSummary, bar) -> None:
    for job, image, image_logits in zip(batch_jobs, images, logits):
        write_outputs(job, image, image_logits, style)
        summary.written.append(job.mask)
        bar.update(1)


def write_outputs(job: PredictJob, image: np.ndarray, logits: torch.Tensor, style: OverlayStyle) -> None:
    """Write the mask (and overlay and probabilities when asked) of one image."""
    mask = logits.argmax(0).to(torch.uint8).numpy()
    if job.probs is not None:
        _save_npy(job.probs, torch.softmax(logits, 0).to(torch.float16).numpy())
    if job.overlay is not None:
        save_image(job.overlay, overlay_image(image, mask, style))
    save_mask(job.mask, mask, style.palette[: int(logits.shape[0])].tolist())


def _batches(jobs, batch_size, mean, std, summary: PredictSummary, bar, ahead: int = 2) -> Iterator[tuple[list, list, torch.Tensor]]:
    """Runs of up to ``batch_size`` readable images of one size, decoded and normalised ``ahead``
    batches in advance by a reader thread; unreadable files go to ``summary.failed``."""
    done = object()
    batches: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def read() -> None:
        try:
            for run in same_size_runs(_readable(jobs, summary, bar), lambda item: item[1].shape, batch_size):
                item = ([j for j, _ in run], [im for _, im in run], torch.stack([to_tensor(im, mean, std) for _, im in run]))
                while not stop.is_set():
                    try:
                        batches.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            batches.put(done)
        except BaseException as exc:  # handed to the consumer
            batches.put(exc)

    reader = threading.Thread(target=read, name="segdil-predict-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = batches.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


def _readable(jobs, summary: PredictSummary, bar) -> Iterator[tuple[PredictJob, np.ndarray]]:
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
