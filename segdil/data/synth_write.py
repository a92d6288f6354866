"""``segdil data synth``: the synthetic benchmark written to a folder dataset (folder format,
``classes.yaml``, ``objects.json``, ``preview.png``; the street scene: the Cityscapes layout of
``segdil.data.synth_street_write``), all or nothing."""

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

from segdil.atomic import write_text
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


def write_synthetic(out_dir: str | Path, cfg: SynthConfig, *, overwrite: bool = False, progress: Optional[Callable[[int], None]] = None) -> Path:
    """Write the benchmark in the folder format plus ``objects.json`` and ``preview.png`` (the street
    scene: in the Cityscapes layout, ``segdil.data.synth_street_write``).

    Everything is written to a temporary folder beside ``out_dir`` and renamed into place at the
    end, so an interrupted run leaves nothing half-written. The same config gives identical bytes.
    """
    validate_synth_config(cfg)
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not overwrite:
        raise SegdilError(f"{out_dir}: already exists and is not empty; choose a new folder or pass --overwrite")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        (_write_street if cfg.scene == "street" else _write_folder)(tmp, cfg, progress)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            if old.exists():
                shutil.rmtree(old) if old.is_dir() else old.unlink()
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
