"""``segdil data synth``: the synthetic benchmark written to a folder dataset (folder format,
``classes.yaml``, ``objects.json``, ``preview.png``; the street scene: the Cityscapes layout of
``segdil.data.synth_street_write``), all or nothing.

The folder also holds ``.segdil-synth.json``, the list of every file and folder written there:
``--overwrite`` replaces a folder only when it holds nothing else (never a user's files).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import yaml

from segdil.atomic import write_json, write_text
from segdil.config import SynthConfig
from segdil.data.io import save_image, save_mask
from segdil.data.synth import (
    generate_sample,
    synth_class_colors,
    synth_class_names,
    validate_synth_config,
)
from segdil.data.synth_shapes import SYNTH_COLORS
from segdil.data.synth_street_write import street_preview, write_street
from segdil.errors import SegdilError
from segdil.memory_guard import available_mb
from segdil.output_paths import check_output_folder

MANIFEST = ".segdil-synth.json"  # what data synth wrote into its folder: all that --overwrite may replace
# peak bytes per pixel of one image while a scene is generated (measured at 2048-4096 px, rounded up)
BYTES_PER_PIXEL = {"standard": 48, "hard": 112, "street": 72}
PREVIEW_BYTES_PER_PIXEL = 12  # per preview tile of a square scene: the image, its colours and the grid


def _preview(cfg: SynthConfig, count: int = 8) -> np.ndarray:
    """Images over their colour-coded masks, side by side."""
    gap, scale = 2, 2 if cfg.size <= 128 else 1
    palette = np.array(SYNTH_COLORS + ((255, 255, 255),) * (256 - len(SYNTH_COLORS)), dtype=np.uint8)
    tiles = []
    for index in range(min(count, cfg.n_train)):
        image, mask, _ = generate_sample(cfg, "train", index)
        tiles.append((image, palette[mask]))
    if not tiles:
        return np.zeros((cfg.size, cfg.size, 3), dtype=np.uint8)
    step = cfg.size * scale + gap
    grid = np.full((2 * step + gap, len(tiles) * step + gap, 3), 255, dtype=np.uint8)
    for column, (image, colours) in enumerate(tiles):
        for row, tile in enumerate((image, colours)):
            big = np.repeat(np.repeat(tile, scale, axis=0), scale, axis=1)
            y, x = gap + row * step, gap + column * step
            grid[y : y + big.shape[0], x : x + big.shape[1]] = big
    return grid


def _objects_json(names: list[str], cfg: SynthConfig, objects: dict[str, dict[str, list]], decoys: Optional[dict[str, dict[str, list]]] = None) -> str:
    """objects.json with one line per image: ``objects[split][stem] = [{class, class_id, bbox, area}, ...]``
    (and ``decoys[split][stem]`` for the street scene)."""
    lines = ["{", f' "classes": {json.dumps(names)},', f' "config": {json.dumps(dataclasses.asdict(cfg))},', ' "bbox_format": "x, y, width, height",']
    sections = {"objects": objects, **({"decoys": decoys} if decoys is not None else {})}
    for n, (key, section) in enumerate(sections.items()):
        lines.append(f" {json.dumps(key)}: {{")
        for s, (split, images) in enumerate(section.items()):
            lines.append(f"  {json.dumps(split)}: {{")
            for i, (stem, found) in enumerate(images.items()):
                lines.append(f"   {json.dumps(stem)}: {json.dumps(found)}" + ("," if i < len(images) - 1 else ""))
            lines.append("  }" + ("," if s < len(section) - 1 else ""))
        lines.append(" }" + ("," if n < len(sections) - 1 else ""))
    return "\n".join(lines + ["}", ""])


def _write_folder(tmp: Path, cfg: SynthConfig, progress: Optional[Callable[[int], None]]) -> None:
    names = synth_class_names(cfg)
    colours = synth_class_colors(cfg)
    classes_yaml = {"classes": names, "colors": colours, "reduce_zero_label": False}
    write_text(tmp / "classes.yaml", yaml.safe_dump(classes_yaml, default_flow_style=None, sort_keys=False))
    objects: dict[str, dict[str, list]] = {}
    done = 0
    for split, count in (("train", cfg.n_train), ("val", cfg.n_val)):
        objects[split] = {}
        (tmp / split / "images").mkdir(parents=True)
        (tmp / split / "masks").mkdir(parents=True)
        for index in range(count):
            image, mask, found = generate_sample(cfg, split, index)
            stem = f"{index:05d}"
            save_image(tmp / split / "images" / f"{stem}.png", image)
            save_mask(tmp / split / "masks" / f"{stem}.png", mask, colours)
            objects[split][stem] = found
            done += 1
            if progress is not None:
                progress(done)
    write_text(tmp / "objects.json", _objects_json(names, cfg, objects))
    save_image(tmp / "preview.png", _preview(cfg))


def _write_street(tmp: Path, cfg: SynthConfig, progress: Optional[Callable[[int], None]]) -> None:
    objects, decoys = write_street(tmp, cfg, progress)
    write_text(tmp / "objects.json", _objects_json(synth_class_names(cfg), cfg, objects, decoys))
    save_image(tmp / "preview.png", street_preview(cfg, min(2, cfg.n_train)))


def write_manifest(root: Path) -> None:
    """``root/.segdil-synth.json``: every file and folder under ``root`` (relative, sorted)."""
    files, folders = [], []
    for path in sorted(root.rglob("*")):
        (folders if path.is_dir() else files).append(path.relative_to(root).as_posix())
    write_json(root / MANIFEST, {"written_by": "segdil data synth", "files": files + [MANIFEST], "folders": folders})


def not_written_here(root: Path) -> Path | None:
    """The first entry under ``root`` that its manifest does not list (with no readable manifest: the
    first entry), or None when ``root`` holds only what ``segdil data synth`` wrote."""
    entries = sorted(root.rglob("*"))
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        files, folders = set(manifest["files"]), set(manifest["folders"])
    except (OSError, ValueError, KeyError, TypeError):
        return entries[0] if entries else None
    for path in entries:
        rel = path.relative_to(root).as_posix()
        if rel not in (folders if path.is_dir() and not path.is_symlink() else files):
            return path
    return None


def machine_memory_bytes() -> int | None:
    """Memory this machine has free for a new process (``MemAvailable``; else all of it), or None."""
    free_mb = available_mb()
    if free_mb is not None:
        return int(free_mb * 2**20)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_needed(cfg: SynthConfig) -> int:
    """Peak bytes to generate one image and the preview of ``cfg``."""
    pixels = cfg.size * cfg.size * (2 if cfg.scene == "street" else 1)
    per_pixel = BYTES_PER_PIXEL.get(cfg.scene, max(BYTES_PER_PIXEL.values()))
    if cfg.scene != "street":
        per_pixel += PREVIEW_BYTES_PER_PIXEL * min(8, cfg.n_train)
    return pixels * per_pixel


def check_synthetic(out_dir: Path, cfg: SynthConfig, overwrite: bool) -> None:
    """Every refusal of :func:`write_synthetic`, before anything is written."""
    validate_synth_config(cfg)
    if cfg.n_train == 0 and cfg.n_val == 0:
        raise SegdilError("data.synth.n_train/n_val: both are 0, so the dataset would hold no images; give --n-train N and --n-val M")
    need, have = memory_needed(cfg), machine_memory_bytes()
    if have is not None and need > have:
        raise SegdilError(
            f"data.synth.size: {cfg.size} needs about {need / 1e9:.1f} GB of memory to generate one image, more than the "
            f"{have / 1e9:.1f} GB this machine has free; use a smaller --size"
        )
    check_output_folder(out_dir, "", overwrite=overwrite, foreign=not_written_here)


def write_synthetic(out_dir: str | Path, cfg: SynthConfig, *, overwrite: bool = False, progress: Optional[Callable[[int], None]] = None) -> Path:
    """Write the benchmark in the folder format plus ``objects.json`` and ``preview.png`` (the street
    scene: in the Cityscapes layout, ``segdil.data.synth_street_write``).

    Everything is written to a temporary folder beside ``out_dir`` and renamed into place at the
    end, so an interrupted run leaves nothing half-written. The same config gives identical bytes.
    ``overwrite`` replaces a folder written by an earlier ``data synth`` (its ``.segdil-synth.json``
    lists everything in it); a folder holding anything else is refused.
    """
    out_dir = Path(out_dir)
    check_synthetic(out_dir, cfg, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".segdil-synth.tmp", dir=out_dir.parent))
    try:
        (_write_street if cfg.scene == "street" else _write_folder)(tmp, cfg, progress)
        write_manifest(tmp)
        if out_dir.exists():
            # the old folder is renamed onto an empty folder of a name made here, then removed
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".segdil-old.tmp", dir=out_dir.parent))
            os.replace(out_dir, old)
            try:
                os.replace(tmp, out_dir)
            except BaseException:
                os.replace(old, out_dir)
                raise
            shutil.rmtree(old)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
