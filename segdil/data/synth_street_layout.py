"""The random layout of a street scene, in metres: drawn from one generator before anything is
rendered, so it does not depend on the image size (``segdil.data.synth_street``)."""

from __future__ import annotations

import math

import numpy as np

from segdil.data.synth_street_draw import hsv
from segdil.data.synth_street_stuff import ground_params, sky_params
from segdil.data.synth_street_things import person_look, sign_style


def log_uniform(g: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(g.uniform(math.log(low), math.log(high)))) if high > low else float(low)


def _seed(g: np.random.Generator) -> int:
    return int(g.integers(2**62))


def _windows(g: np.random.Generator) -> dict:
    spacing = g.uniform(2.2, 4.0)
    frame = hsv(g.uniform(0, 1), g.uniform(0, 0.2), g.uniform(0.6, 0.95)) if g.random() < 0.5 else None
    return {
        "floor": g.uniform(2.8, 3.6), "ground": g.uniform(0.8, 1.2), "height": g.uniform(1.1, 1.8), "spacing": spacing,
        "width": spacing * g.uniform(0.35, 0.65), "margin": g.uniform(0.3, 1.5), "shop": bool(g.random() < 0.5),
        "glass": hsv(g.uniform(0.5, 0.7), g.uniform(0.05, 0.4), g.uniform(0.08, 0.35)), "frame": frame,
    }


def _facade_decoys(g: np.random.Generator, z0: float, z1: float, height: float) -> list[dict]:
    """Persons painted on the wall above the ground, sign-like posters, drain pipes."""
    decoys = []
    for _ in range(int(g.poisson(0.45))):
        decoys.append({"kind": "person", "z": g.uniform(z0 + 0.5, z1 - 0.5), "y": g.uniform(1.5, max(1.6, height - 2.5)), "scale": g.uniform(0.6, 1.4), "look": person_look(g)})
    for _ in range(int(g.poisson(0.35))):
        decoys.append({"kind": "sign", "z": g.uniform(z0 + 0.5, z1 - 0.5), "y": g.uniform(1.2, max(1.3, height - 1.0)), "radius": g.uniform(0.25, 0.6), "style": sign_style(g)})
    for _ in range(int(g.poisson(0.5))):
        decoys.append({"kind": "pole", "z": g.uniform(z0 + 0.2, z1 - 0.2), "width": g.uniform(0.08, 0.18), "colour": hsv(g.uniform(0.2, 0.6), g.uniform(0, 0.15), g.uniform(0.25, 0.6))})
    return decoys


def _side(g: np.random.Generator, side: int, z_end: float) -> list[dict]:
    """The blocks along one side of the street, from behind the camera to the far end."""
    segments, z = [], -2.0
    while z < z_end:
        length = g.uniform(8, 35)
        seg = {"side": side, "z0": z, "z1": min(z + length, z_end), "seed": _seed(g)}
        if g.random() < 0.15:
            seg.update(kind="park", height=g.uniform(1.5, 5), colour=hsv(g.uniform(0.17, 0.33), g.uniform(0.3, 0.7), g.uniform(0.18, 0.45)))
            seg["crowns"] = [(g.uniform(0, length), g.uniform(5, 12), g.uniform(2, 4)) for _ in range(int(length / 5) + 1)]
        else:
            height = g.uniform(6, 28)
            brick = g.random() < 0.2
            colour = hsv(g.uniform(0.02, 0.08), g.uniform(0.35, 0.6), g.uniform(0.35, 0.6)) if brick else hsv(g.uniform(0, 1), g.uniform(0, 0.25), g.uniform(0.3, 0.85))
            seg.update(kind="building", height=height, colour=colour, tex=g.uniform(0.08, 0.2), windows=_windows(g), decoys=_facade_decoys(g, z, z + length, height))
        segments.append(seg)
        z += length
    return segments


def _car(g: np.random.Generator, x: float, z: float, oncoming: bool = False) -> dict:
    van = g.random() < 0.15
    return {
        "kind": "car", "x": x, "z": z, "length": g.uniform(4.6, 5.5) if van else g.uniform(3.8, 4.8), "width": g.uniform(1.7, 1.95),
        "roof": g.uniform(1.9, 2.1) if van else g.uniform(1.35, 1.6), "cabin": (g.uniform(0.1, 0.3), g.uniform(0.9, 1.3)) if van else (g.uniform(0.6, 1.2), g.uniform(0.9, 1.6)),
        "oncoming": oncoming, "seed": _seed(g),
    }


def _person(g: np.random.Generator, x: float, z: float) -> dict:
    return {"kind": "person", "x": x, "z": z, "look": person_look(g)}


def _kerbside(g: np.random.Generator, lay: dict, kind: str, z_stop: float) -> list[dict]:
    """Poles (street lights, some with a sign) or trees at a regular spacing along both kerbs."""
    out = []
    for side, kerb in ((-1, lay["road"][0]), (1, lay["road"][1])):
        if g.random() > (0.85 if kind == "pole" else 0.5):
            continue
        spacing = g.uniform(18, 40) if kind == "pole" else g.uniform(7, 18)
        z, stop = g.uniform(1, spacing), min(z_stop, g.uniform(120, 400) if kind == "pole" else g.uniform(80, 500))
        while z < stop:
            if kind == "pole":
                plate = {"radius": g.uniform(0.25, 0.4), "y": g.uniform(2.2, 3.2), "style": sign_style(g, 0.25)} if g.random() < 0.15 else None
                out.append({"kind": "pole", "x": kerb + side * g.uniform(0.3, 0.7), "z": z, "height": g.uniform(5, 9), "width": g.uniform(0.12, 0.25),
                            "lamp": bool(g.random() < 0.6), "arm": g.uniform(1.0, 2.2), "plate": plate, "seed": _seed(g)})  # fmt: skip
            else:
                out.append({"kind": "tree", "x": kerb + side * g.uniform(0.8, 1.6), "z": z, "trunk": g.uniform(1.8, 3.2), "trunk_width": g.uniform(0.2, 0.4), "crown": g.uniform(1.2, 3.2), "seed": _seed(g)})
            z += spacing * g.uniform(0.85, 1.15)
    return out


def _walk_x(g: np.random.Generator, lay: dict, side: int) -> float:
    kerb, facade = lay["road"][0 if side < 0 else 1], lay["facades"][0 if side < 0 else 1]
    return float(g.uniform(min(kerb, facade) + 0.4, max(kerb, facade) - 0.4))


def _traffic(g: np.random.Generator, lay: dict) -> list[dict]:
    """Parked rows along the kerbs, cars driving in the lanes, one car close ahead."""
    left, right = lay["road"]
    out = []
    for side, kerb in ((-1, left), (1, right)):
        if g.random() > 0.7:
            continue
        z, stop = g.uniform(2, 8), g.uniform(40, 200)
        while z < stop:
            car = _car(g, kerb - side * g.uniform(0.95, 1.25), z)
            out.append(car)
            z += car["length"] + (g.uniform(0.4, 2.0) if g.random() < 0.75 else g.uniform(5, 30))
    lo, hi = left + 2.4, right - 2.4
    for _ in range(int(g.poisson(2.5))):
        x = g.uniform(lo, hi) if hi > lo else (left + right) / 2
        out.append(_car(g, x, log_uniform(g, 7, 250), oncoming=bool(x < -1.5 and g.random() < 0.7)))
    if g.random() < 0.6:
        out.append(_car(g, g.uniform(-1.2, 1.2), g.uniform(5, 11)))
    return out


def _people(g: np.random.Generator, lay: dict) -> list[dict]:
    """Persons on the sidewalks (some in groups), on the crosswalk, one crossing close by."""
    out = []
    for _ in range(int(g.poisson(10)) + 2):
        side = -1 if g.random() < 0.5 else 1
        z = g.uniform(4, 100) if g.random() < 0.5 else log_uniform(g, 4, min(250.0, lay["z_end"]))
        x = _walk_x(g, lay, side)
        out.append(_person(g, x, z))
        if g.random() < 0.3:
            for _ in range(int(g.integers(1, 4))):
                out.append(_person(g, x + g.choice([-1, 1]) * g.uniform(0.45, 0.8), z + g.uniform(-1.5, 1.5)))
    crosswalk = lay["ground"]["crosswalk"]
    if crosswalk is not None:
        left, right = lay["road"]
        out += [_person(g, g.uniform(left + 0.5, right - 0.5), crosswalk + g.uniform(0.3, 2.7)) for _ in range(int(g.integers(1, 6)))]
    if g.random() < 0.5:  # crossing close ahead, inside the view (about +-0.45 z wide)
        z = g.uniform(4.5, 10)
        out.append(_person(g, g.uniform(-0.3, 0.3) * z, z))
    return out


def _signs(g: np.random.Generator, lay: dict) -> list[dict]:
    out = []
    for _ in range(int(g.poisson(5))):
        side = -1 if g.random() < 0.5 else 1
        kerb = lay["road"][0 if side < 0 else 1]
        out.append({
            "kind": "sign", "x": kerb + side * g.uniform(0.3, 1.0), "z": log_uniform(g, 5, min(200.0, lay["z_end"])), "height": g.uniform(2.0, 3.0),
            "radius": g.uniform(0.28, 0.45), "width": g.uniform(0.06, 0.1), "pole_colour": hsv(g.uniform(0.2, 0.6), g.uniform(0, 0.1), g.uniform(0.3, 0.65)),
            "style": sign_style(g, 0.25),
        })  # fmt: skip
    return out


def layout(g: np.random.Generator) -> dict:
    """Every random choice of one scene (metres, colours, seeds of the details)."""
    left, right = -g.uniform(3.0, 7.5), g.uniform(3.0, 7.5)
    lay = {
        "camera": (g.uniform(0.38, 0.47), g.uniform(0.4, 0.6), g.uniform(1.3, 1.7)), "road": (left, right),
        "facades": (left - g.uniform(2.5, 6.0), right + g.uniform(2.5, 6.0)), "z_end": log_uniform(g, 250, 1100),
        "light": (g.uniform(0.75, 1.05), g.uniform(0.6, 0.95)), "sky": sky_params(g),
    }
    lay["ground"] = ground_params(g, lay["road"], lay["z_end"])
    vegetation = g.random() < 0.35
    colour = hsv(g.uniform(0.17, 0.33), g.uniform(0.2, 0.5), g.uniform(0.2, 0.45)) if vegetation else hsv(g.uniform(0, 1), g.uniform(0, 0.2), g.uniform(0.35, 0.75))
    bumps = [(g.uniform(-150, 150), g.uniform(5, 20)) for _ in range(12)] if vegetation else []
    lay["far"] = {"kind": "vegetation" if vegetation else "building", "height": g.uniform(5, 20) if vegetation else g.uniform(8, 40), "colour": colour, "bumps": bumps, "bump": g.uniform(8, 20)}
    lay["segments"] = _side(g, -1, lay["z_end"]) + _side(g, 1, lay["z_end"])
    lay["entities"] = _kerbside(g, lay, "pole", lay["z_end"]) + _kerbside(g, lay, "tree", lay["z_end"]) + _traffic(g, lay) + _people(g, lay) + _signs(g, lay)
    lay["sky_decoys"] = [
        {"u": g.uniform(-0.35, 0.35), "v": g.uniform(0.05, 0.85), "radius": log_uniform(g, 1.5, 24) / 512, "style": sign_style(g)} for _ in range(1 + int(g.poisson(2.5)))
    ]
    lay["post"] = {"texture": g.uniform(0.03, 0.08), "vignette": g.uniform(0, 0.4), "tint": (1 + g.uniform(-0.06, 0.06, 3)).astype(np.float32), "blur": g.uniform(0.5, 0.9), "noise": g.uniform(0.02, 0.06)}
    return lay
