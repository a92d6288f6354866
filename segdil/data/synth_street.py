"""The street-scale synthetic benchmark (``data.synth.scene: street``): procedural street scenes in
perspective, labelled with Cityscapes' classes, where scene-level context decides.

A scene is 2 x ``size`` by ``size`` pixels (``size`` is the short side: 512 gives 1024x512, 1024
gives 2048x1024) seen by a pinhole camera 1.3-1.7 m above the road (``synth_street_draw``): sky,
buildings on both sides (windows, stepped heights, parks between blocks), sidewalks, the road and
the buildings or trees closing the street 250-1100 m ahead. Things stand on the ground and shrink
with distance, from ~300 px near the camera to 2-8 px at the horizon: cars (parked and driving),
persons (alone, in groups, on a crosswalk), poles (plain and street lights) and traffic signs on
short poles. Most instances are smaller than 32 px (sqrt of the area), as on Cityscapes.

Decoys look like things and are labelled as the stuff they are drawn on: sign-coloured plates in
the sky (sky), persons painted on facades above the ground, sign-like posters and drain pipes as
thin as poles (building). A look-alike and the real thing differ only in where they stand (on the
ground, at the size the perspective gives that row, on a pole), so hundreds of pixels of context
decide. Surfaces are textured and the colour ranges overlap (grey poles, roads, walls and skies;
red, blue and yellow clothes and cars), so colour alone does not.

Everything is a pure function of (seed, split, index): the layout is drawn in metres from one
generator and the textures from another, so a scene at 2048x1024 is the same scene as at 1024x512.
Labels are Cityscapes train IDs (19 classes, 9 of them drawn); ``cityscapes_ids`` gives the
``*_gtFine_instanceIds.png`` content (label ids, person/car instances as label id x 1000 + k).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segdil.config import SynthConfig
from segdil.data.cityscapes import CLASS_COLORS, CLASS_NAMES, TRAIN_LABELS, TRAIN_TO_LABEL_ID
from segdil.data.synth_street_draw import Camera, Canvas, texture_field
from segdil.data.synth_street_layout import layout
from segdil.data.synth_street_stuff import draw_far_end, draw_ground, draw_segment, draw_sky
from segdil.data.synth_street_things import draw_car, draw_person, draw_plate, draw_pole, draw_sign, draw_tree

LABELS = {name: CLASS_NAMES.index(cs) for name, cs in (
    ("road", "road"), ("sidewalk", "sidewalk"), ("building", "building"), ("pole", "pole"), ("sign", "traffic sign"),
    ("vegetation", "vegetation"), ("sky", "sky"), ("person", "person"), ("car", "car"),
)}  # fmt: skip
THINGS = ("car", "person", "pole", "sign")
INSTANCE_CLASSES = {t for t, _, _, inst, _ in TRAIN_LABELS if inst}  # Cityscapes instances: person, car here
MIN_SIZE = 64


@dataclass
class StreetScene:
    """One scene: ``image`` uint8 HxWx3, ``mask`` uint8 HxW train IDs, ``objects_map`` int32 HxW
    (k: ``objects[k - 1]``, 0: no thing), ``decoys_map`` likewise for ``decoys``."""

    image: np.ndarray
    mask: np.ndarray
    objects_map: np.ndarray
    objects: list[dict[str, Any]] = field(default_factory=list)
    decoys_map: np.ndarray | None = None
    decoys: list[dict[str, Any]] = field(default_factory=list)


def street_shape(cfg: SynthConfig) -> tuple[int, int]:
    """(height, width) of a street scene: ``size`` is the short side, the width twice it."""
    return int(cfg.size), 2 * int(cfg.size)


def _rngs(seed: int, split: str, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    key = [seed % 2**63, zlib.crc32(split.encode()), index, zlib.crc32(b"street")]
    return np.random.default_rng(key + [0]), np.random.default_rng(key + [1])


def _draw_entity(canvas: Canvas, e: dict, objects: list) -> None:
    def new(kind: str) -> int:
        objects.append({"class": CLASS_NAMES[LABELS[kind]], "class_id": LABELS[kind], "depth_m": round(float(e["z"]), 2)})
        return len(objects)

    kind = e["kind"]
    if kind == "car":
        draw_car(canvas, e, LABELS["car"], new("car"))
    elif kind == "person":
        cam = canvas.camera
        (x, y), = cam.project(e["x"], 0.0, e["z"])
        draw_person(canvas, x, y, e["look"]["height"] * cam.scale(e["z"]), e["look"], LABELS["person"], obj=new("person"))
    elif kind == "pole":
        pole = new("pole")
        draw_pole(canvas, e, LABELS["pole"], pole)
        if e["plate"] is not None:  # a sign fixed on the pole, facing the camera
            cam = canvas.camera
            (x, y), = cam.project(e["x"] - math.copysign(e["plate"]["radius"] + e["width"], e["x"]), e["plate"]["y"], e["z"] - 0.05)
            draw_plate(canvas, x, y, e["plate"]["radius"] * cam.scale(e["z"]), e["plate"]["style"], LABELS["sign"], obj=new("sign"))
    elif kind == "sign":
        pole = new("pole")
        draw_sign(canvas, e, LABELS["pole"], LABELS["sign"], pole, new("sign"))
    else:
        draw_tree(canvas, e, LABELS["vegetation"])


def _sky_decoys(canvas: Canvas, lay: dict, decoys: list) -> None:
    cam, sky = canvas.camera, LABELS["sky"]
    for d in lay["sky_decoys"]:
        x, y = cam.xv + d["u"] * cam.W, d["v"] * cam.yh
        if draw_plate(canvas, x, y, d["radius"] * cam.H, d["style"], sky, decoy=len(decoys) + 1, only=sky):
            decoys.append({"kind": "sign", "label": "sky"})


def _finish(canvas: Canvas, lay: dict, rng: np.random.Generator) -> np.ndarray:
    """Texture, light, blur and sensor noise; uint8."""
    import cv2

    cam, post = canvas.camera, lay["post"]
    image = canvas.textured(post["texture"])
    vignette = ((np.arange(cam.W, dtype=np.float32) / cam.W - 0.5) ** 2)[None, :] + ((np.arange(cam.H, dtype=np.float32) / cam.H - 0.5) ** 2)[:, None]
    vignette *= np.float32(-post["vignette"])
    vignette += np.float32(1.0)
    image *= vignette[..., None]
    image *= post["tint"] * np.float32(255.0)
    sigma = post["blur"] * cam.H / 512
    image = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma)
    noise = rng.random(image.shape, dtype=np.float32)
    noise *= np.float32(255.0 * post["noise"])
    image += noise
    image += np.float32(0.5 - 127.5 * post["noise"])  # centred noise, rounded below
    np.clip(image, 0.0, 255.0, out=image)
    return image.astype(np.uint8)


def _measure(ids: np.ndarray, entries: list[dict]) -> list[dict]:
    """Visible area and bbox [x, y, w, h] of each entry (id k = entries[k - 1]); invisible ones dropped."""
    flat = ids.ravel()
    where = np.flatnonzero(flat)
    values = flat[where]
    order = np.argsort(values, kind="stable")
    where, values = where[order], values[order]
    areas = np.bincount(values, minlength=len(entries) + 1)
    starts = np.concatenate([[0], np.cumsum(areas[1:])])
    W = ids.shape[1]
    out = []
    for k, entry in enumerate(entries, 1):
        if not areas[k]:
            continue
        pixels = where[starts[k - 1] : starts[k]]
        ys, xs = pixels // W, pixels % W
        bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        out.append({**entry, "id": k, "bbox": bbox, "area": int(areas[k])})
    return out


def generate_street(cfg: SynthConfig, split: str, index: int) -> StreetScene:
    """Scene ``index`` of ``split``: a pure function of (cfg.seed, split, index) and the size."""
    H, W = street_shape(cfg)
    layout_rng, pixel_rng = _rngs(cfg.seed, split, index)
    lay = layout(layout_rng)
    lay["labels"] = LABELS
    cam = Camera(H, W, *lay["camera"])
    canvas = Canvas(cam, texture_field(pixel_rng, H, W), LABELS["sky"])
    draw_sky(canvas, lay["sky"], pixel_rng)
    draw_ground(canvas, lay)
    draw_far_end(canvas, lay)
    decoys: list[dict] = []
    for seg in sorted(lay["segments"], key=lambda s: -s["z0"]):
        draw_segment(canvas, seg, lay, decoys)
    objects: list[dict] = []
    for e in sorted(lay["entities"], key=lambda e: -e["z"]):
        _draw_entity(canvas, e, objects)
    _sky_decoys(canvas, lay, decoys)
    image = _finish(canvas, lay, pixel_rng)
    for d in decoys:
        d["label_id"] = LABELS[d["label"]]
    visible = _measure(canvas.objects, objects)
    counts: dict[int, int] = {}
    for obj in visible:  # Cityscapes instance ids: label id x 1000 + k on person and car, 0 on the others
        lid = int(TRAIN_TO_LABEL_ID[obj["class_id"]])
        obj["instance_id"] = lid * 1000 + counts.get(lid, 0) if obj["class_id"] in INSTANCE_CLASSES else 0
        counts[lid] = counts.get(lid, 0) + 1
    return StreetScene(image, canvas.label, canvas.objects, visible, canvas.decoys, _measure(canvas.decoys, decoys))


def cityscapes_ids(scene: StreetScene) -> tuple[np.ndarray, np.ndarray]:
    """(labelIds uint8, instanceIds uint16) as Cityscapes ships them: label ids everywhere, and
    label id x 1000 + k (k = 0, 1, ... per class) on the person and car instances."""
    label_ids = TRAIN_TO_LABEL_ID[scene.mask]
    lut = np.zeros(int(scene.objects_map.max()) + 1, dtype=np.uint16)
    for obj in scene.objects:
        lut[obj["id"]] = obj["instance_id"]
    instances = lut[scene.objects_map]
    return label_ids, np.where(instances > 0, instances, label_ids.astype(np.uint16))


def street_sample(cfg: SynthConfig, split: str, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, mask, instance ids uint16): the ids the Cityscapes reader gives for the written scene
    (label id x 1000 + k on person and car instances, 0 elsewhere)."""
    scene = generate_street(cfg, split, index)
    ids = cityscapes_ids(scene)[1]
    ids[ids < 1000] = 0
    return scene.image, scene.mask, ids


def street_colour(mask: np.ndarray) -> np.ndarray:
    """The Cityscapes colours of a train-ID mask (255: black)."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[: len(CLASS_COLORS)] = CLASS_COLORS
    return palette[mask]


__all__ = ["CLASS_COLORS", "CLASS_NAMES", "LABELS", "MIN_SIZE", "THINGS", "StreetScene", "cityscapes_ids", "generate_street", "street_colour", "street_sample", "street_shape"]
