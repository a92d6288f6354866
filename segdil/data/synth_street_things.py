"""The things of the street scene and their look-alikes: cars, persons, poles, signs, trees.

Each ``draw_*`` takes the canvas, the entity's parameters (metres, drawn by the layout) and the
ids to write: a real thing writes its class and object id; the same drawing with a stuff label, a
decoy id and ``only=`` that stuff class is a decoy (a person painted on a facade, a sign-coloured
patch in the sky), identical in look and labelled as what it is drawn on.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from segdil.data.synth_street_draw import Camera, Canvas, bar, disc, hsv, regular

# sign plates: (shape, rim, inner, symbol); "back" is a plate seen from behind (grey, still a sign)
SIGN_STYLES = (
    ("circle", (0.78, 0.08, 0.08), (0.92, 0.92, 0.9), (0.1, 0.1, 0.1)),
    ("circle", (0.08, 0.25, 0.65), (0.08, 0.25, 0.65), (0.92, 0.92, 0.92)),
    ("triangle", (0.8, 0.1, 0.08), (0.95, 0.93, 0.9), (0.08, 0.08, 0.08)),
    ("yield", (0.8, 0.1, 0.08), (0.95, 0.95, 0.95), (0.95, 0.95, 0.95)),
    ("diamond", (0.95, 0.95, 0.92), (0.95, 0.78, 0.08), (0.95, 0.78, 0.08)),
    ("square", (0.1, 0.3, 0.7), (0.1, 0.3, 0.7), (0.95, 0.95, 0.95)),
    ("octagon", (0.78, 0.06, 0.06), (0.78, 0.06, 0.06), (0.95, 0.95, 0.95)),
    ("rect", (0.95, 0.95, 0.92), (0.1, 0.35, 0.2), (0.95, 0.95, 0.95)),
)
_CLOTHES = ((0.75, 0.1, 0.1), (0.1, 0.2, 0.6), (0.9, 0.8, 0.15), (0.9, 0.9, 0.88), (0.08, 0.08, 0.09), (0.35, 0.35, 0.37), (0.2, 0.35, 0.2), (0.4, 0.27, 0.15), (0.55, 0.1, 0.4))
_CAR_COLOURS = ((0.85, 0.85, 0.85), (0.06, 0.06, 0.07), (0.45, 0.46, 0.48), (0.65, 0.66, 0.68), (0.6, 0.08, 0.08), (0.1, 0.18, 0.45), (0.12, 0.25, 0.15), (0.85, 0.75, 0.2), (0.3, 0.2, 0.12))


def jitter(g: np.random.Generator, colour, amount: float = 0.06) -> np.ndarray:
    return np.clip(np.asarray(colour, dtype=np.float32) * np.float32(g.uniform(1 - 2 * amount, 1 + amount)) + g.uniform(-amount, amount, 3).astype(np.float32), 0, 1)


def sign_style(g: np.random.Generator, back_share: float = 0.0) -> dict:
    """A plate: shape and colours (``back_share`` of the plates are seen from behind)."""
    shape, rim, inner, symbol = SIGN_STYLES[int(g.integers(len(SIGN_STYLES)))]
    if g.random() < back_share:
        grey = g.uniform(0.35, 0.7)
        rim = inner = symbol = (grey, grey, grey * 1.02)
    return {"shape": shape, "rim": jitter(g, rim), "inner": jitter(g, inner), "symbol": jitter(g, symbol), "symbol_kind": int(g.integers(3))}


def _plate(cx: float, cy: float, r: float, shape: str, k: float = 1.0) -> np.ndarray:
    r = r * k
    if shape == "circle":
        return disc(cx, cy, r)
    if shape == "triangle":
        return regular(cx, cy + 0.2 * r, 1.15 * r, 3)
    if shape == "yield":
        return regular(cx, cy - 0.2 * r, 1.15 * r, 3, math.pi)
    if shape == "diamond":
        return regular(cx, cy, 1.1 * r, 4)
    if shape == "square":
        return regular(cx, cy, 1.2 * r, 4, math.pi / 4)
    if shape == "octagon":
        return regular(cx, cy, r, 8, math.pi / 8)
    return np.array([[cx - 1.6 * r, cy - 0.7 * r], [cx + 1.6 * r, cy - 0.7 * r], [cx + 1.6 * r, cy + 0.7 * r], [cx - 1.6 * r, cy + 0.7 * r]])


def draw_plate(canvas: Canvas, cx: float, cy: float, r: float, style: dict, label: int, *, obj: int = 0, decoy: int = 0, only: Optional[int] = None) -> int:
    """A sign plate of radius ``r`` pixels centred at (cx, cy): rim, inner field, symbol."""
    shape = style["shape"]
    ids = dict(obj=obj, decoy=decoy, only=only)
    painted = canvas.fill(_plate(cx, cy, r, shape), style["rim"], label, tex=0.04, **ids)
    if r >= 2.5:
        canvas.fill(_plate(cx, cy, r, shape, 0.72), style["inner"], label, tex=0.03, **ids)
    if r >= 4:
        kind, s = style["symbol_kind"], 0.32 * r
        if kind == 0:
            poly = np.array([[cx - 1.3 * s, cy - 0.3 * s], [cx + 1.3 * s, cy - 0.3 * s], [cx + 1.3 * s, cy + 0.3 * s], [cx - 1.3 * s, cy + 0.3 * s]])
        elif kind == 1:
            poly = regular(cx, cy + 0.1 * s, 1.1 * s, 3)
        else:
            poly = disc(cx, cy, 0.7 * s)
        canvas.fill(poly, style["symbol"], label, **ids)
    return painted


def person_look(g: np.random.Generator) -> dict:
    skin = hsv(g.uniform(0.03, 0.09), g.uniform(0.25, 0.6), g.uniform(0.35, 0.9))
    top = jitter(g, _CLOTHES[int(g.integers(len(_CLOTHES)))], 0.1)
    legs = jitter(g, _CLOTHES[int(g.integers(len(_CLOTHES)))] if g.random() < 0.5 else (0.12, 0.15, 0.3), 0.1)
    return {
        "skin": skin, "hair": jitter(g, (0.12, 0.08, 0.05), 0.1), "top": top, "legs": legs, "height": float(g.uniform(1.5, 1.95)),
        "stride": float(g.uniform(-0.12, 0.12)), "coat": bool(g.random() < 0.3), "width": float(g.uniform(0.85, 1.2)), "bag": bool(g.random() < 0.2),
    }


def draw_person(canvas: Canvas, x: float, y: float, h: float, look: dict, label: int, *, obj: int = 0, decoy: int = 0, only: Optional[int] = None) -> None:
    """A person ``h`` pixels tall standing at (x, y) (the feet)."""
    ids = dict(obj=obj, decoy=decoy, only=only)
    w, stride = look["width"] * h, look["stride"] * h
    hip, shoulder = y - 0.47 * h, y - 0.82 * h
    for side in (-1, 1):
        canvas.fill(bar(x + side * (0.045 * w + stride / 2), y, hip + 0.02 * h, 0.085 * w, -side * stride / 2), look["legs"], label, tex=0.1, **ids)
    low = y - 0.3 * h if look["coat"] else hip + 0.03 * h
    torso = np.array([[x - 0.1 * w, low], [x + 0.1 * w, low], [x + 0.13 * w, shoulder], [x - 0.13 * w, shoulder]])
    canvas.fill(torso, look["top"], label, tex=0.12, **ids)
    for side in (-1, 1):
        canvas.fill(bar(x + side * 0.15 * w, hip + 0.04 * h, shoulder + 0.02 * h, 0.06 * w, -side * 0.02 * w), look["top"] * 0.85, label, tex=0.1, **ids)
    if look["bag"]:
        canvas.fill(disc(x + 0.17 * w, hip, 0.07 * w, 0.08 * h), look["legs"] * 0.6, label, **ids)
    canvas.fill(disc(x, y - 0.895 * h, 0.06 * h, 0.07 * h), look["skin"], label, tex=0.05, **ids)
    canvas.fill(disc(x, y - 0.925 * h, 0.062 * h, 0.045 * h), look["hair"], label, **ids)


def _box_faces(cam: Camera, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> dict[str, np.ndarray]:
    """The faces of an axis-aligned box that face the camera, projected (rear, side, top)."""
    faces = {"rear": cam.project([x0, x1, x1, x0], [y0, y0, y1, y1], z0)}
    if x0 > 0:
        faces["side"] = cam.project(x0, [y0, y0, y1, y1], [z0, z1, z1, z0])
    elif x1 < 0:
        faces["side"] = cam.project(x1, [y0, y0, y1, y1], [z0, z1, z1, z0])
    if cam.hc > y1:
        faces["top"] = cam.project([x0, x1, x1, x0], y1, [z0, z0, z1, z1])
    return faces


def draw_car(canvas: Canvas, e: dict, label: int, obj: int) -> None:
    """A car seen from behind (or from the front, ``oncoming``), lit by one sun."""
    cam, g = canvas.camera, np.random.default_rng(e["seed"])
    xc, z0, length, half = e["x"], e["z"], e["length"], e["width"] / 2
    z1 = z0 + length
    canvas.shade(cam.project([xc - half - 0.2, xc + half + 0.2, xc + half + 0.2, xc - half - 0.2], 0, [z0 - 0.2, z0 - 0.2, z1 + 0.3, z1 + 0.3]), 0.55)
    body = jitter(g, _CAR_COLOURS[int(g.integers(len(_CAR_COLOURS)))], 0.05)
    glass = hsv(g.uniform(0.5, 0.65), g.uniform(0.1, 0.35), g.uniform(0.08, 0.3))
    tyres = np.float32(g.uniform(0.03, 0.08)) * np.ones(3, np.float32)
    shading = {"rear": 1.0, "side": float(g.uniform(0.65, 0.85)), "top": float(g.uniform(1.05, 1.25))}
    roof = e["roof"]
    for poly in _box_faces(cam, xc - half + 0.1, xc + half - 0.1, 0.0, 0.4, z0 + 0.4, z1 - 0.4).values():
        canvas.fill(poly, tyres, label, obj=obj, tex=0.1)
    for face, poly in _box_faces(cam, xc - half, xc + half, 0.28, 0.95, z0, z1).items():
        canvas.fill(poly, np.clip(body * shading[face], 0, 1), label, obj=obj, tex=0.06)
    c0, c1 = z0 + e["cabin"][0], z1 - e["cabin"][1]
    xa, xb = xc - half + 0.15, xc + half - 0.15
    for face, poly in _box_faces(cam, xa, xb, 0.95, roof, c0, c1).items():
        canvas.fill(poly, np.clip(body * shading[face], 0, 1), label, obj=obj, tex=0.06)
    canvas.fill(cam.project([xa + 0.12, xb - 0.12, xb - 0.12, xa + 0.12], [0.99, 0.99, roof - 0.07, roof - 0.07], c0), glass, label, obj=obj, tex=0.08)
    if xa > 0 or xb < 0:  # the side windows of the side the camera sees
        xs = xa if xa > 0 else xb
        canvas.fill(cam.project(xs, [0.99, 0.99, roof - 0.07, roof - 0.07], [c0 + 0.15, c1 - 0.15, c1 - 0.15, c0 + 0.15]), glass * 0.8, label, obj=obj, tex=0.08)
    lights = (0.95, 0.95, 0.85) if e["oncoming"] else (0.75, 0.05, 0.05)
    for side in (-1, 1):
        xa, xb = sorted((xc + side * (half - 0.05), xc + side * (half - 0.35)))
        canvas.fill(cam.project([xa, xb, xb, xa], [0.72, 0.72, 0.86, 0.86], z0), lights, label, obj=obj)
    canvas.fill(cam.project([xc - 0.26, xc + 0.26, xc + 0.26, xc - 0.26], [0.42, 0.42, 0.54, 0.54], z0), (0.9, 0.9, 0.85), label, obj=obj)


def draw_pole(canvas: Canvas, e: dict, label: int, obj: int) -> None:
    """A pole (plain or a street light with its arm and lamp) standing at (x, 0, z)."""
    cam, g = canvas.camera, np.random.default_rng(e["seed"])
    (x, y), (_, y_top) = cam.project(e["x"], [0.0, e["height"]], e["z"])
    s = cam.scale(e["z"])
    colour = hsv(g.uniform(0.2, 0.6), g.uniform(0.0, 0.15), g.uniform(0.25, 0.6))
    canvas.fill(bar(x, y, y_top, e["width"] * s), colour, label, obj=obj, tex=0.08)
    if e["lamp"]:
        reach = -math.copysign(e["arm"], e["x"]) * s
        thick = max(1.0, 0.1 * s)
        arm = np.array([[x, y_top], [x + reach, y_top], [x + reach, y_top + thick], [x, y_top + thick]])
        canvas.fill(arm, colour, label, obj=obj)
        canvas.fill(disc(x + reach, y_top + thick, max(0.6, 0.35 * s), max(0.5, 0.15 * s)), hsv(0.12, 0.15, g.uniform(0.6, 0.9)), label, obj=obj)


def draw_sign(canvas: Canvas, e: dict, pole_label: int, sign_label: int, pole_obj: int, sign_obj: int) -> None:
    """A sign: a short pole and its plate on top."""
    cam = canvas.camera
    (x, y), (_, y_top), (_, y_plate) = cam.project(e["x"], [0.0, e["height"], e["height"] + e["radius"]], e["z"])
    s = cam.scale(e["z"])
    canvas.fill(bar(x, y, y_top, e["width"] * s), e["pole_colour"], pole_label, obj=pole_obj, tex=0.06)
    draw_plate(canvas, x, y_plate, e["radius"] * s, e["style"], sign_label, obj=sign_obj)


def draw_tree(canvas: Canvas, e: dict, label: int) -> None:
    """A trunk and a crown of overlapping green discs (vegetation, no object)."""
    cam, g = canvas.camera, np.random.default_rng(e["seed"])
    s = cam.scale(e["z"])
    (x, y), (_, y_top) = cam.project(e["x"], [0.0, e["trunk"]], e["z"])
    canvas.fill(bar(x, y, y_top, e["trunk_width"] * s), hsv(g.uniform(0.05, 0.1), g.uniform(0.2, 0.5), g.uniform(0.15, 0.35)), label, tex=0.15)
    base = hsv(g.uniform(0.17, 0.33), g.uniform(0.3, 0.7), g.uniform(0.18, 0.45))
    r = e["crown"] * s
    cx, cy = x, y_top - 0.6 * r
    for k in range(int(g.integers(8, 16))):
        dx, dy = g.uniform(-0.65, 0.65) * r, g.uniform(-0.55, 0.45) * r
        size = g.uniform(0.45, 0.75) if k < 5 else g.uniform(0.15, 0.35)
        canvas.fill(disc(cx + dx, cy + dy, r * size), jitter(g, base, 0.03) * np.float32(g.uniform(0.75, 1.2)), label, tex=0.35)
