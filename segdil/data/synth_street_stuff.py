"""The stuff of the street scene: sky, ground (road, sidewalks, markings), facades, parks, the far end.

Facades carry the look-alike decoys: persons painted on walls above the ground, sign-coloured
posters and drain pipes as thin as poles, all labelled building.
"""

from __future__ import annotations

import numpy as np

from segdil.data.synth_street_draw import Camera, Canvas, bar, disc, hsv, value_noise
from segdil.data.synth_street_things import draw_person, draw_plate, jitter

NEAR = 0.3  # metres: the nearest depth any surface is drawn from


def draw_sky(canvas: Canvas, sky: dict, rng: np.random.Generator) -> None:
    """A vertical gradient to the horizon with clouds; the canvas starts labelled sky."""
    cam = canvas.camera
    H, W = cam.H, cam.W
    t = np.clip(np.arange(H, dtype=np.float32) / max(cam.yh, 1.0), 0, 1)[:, None, None]
    gradient = sky["top"][None, None, :] * (1 - t) + sky["horizon"][None, None, :] * t
    cloud = np.clip(value_noise(rng, H, W, (4, 8)) * np.float32(sky["cloud_gain"]) + np.float32(sky["cloud_bias"]), 0, 1)
    np.multiply(sky["cloud"][None, None, :] - gradient, cloud, out=canvas.image)
    canvas.image += gradient


def draw_ground(canvas: Canvas, lay: dict) -> None:
    """Sidewalk everywhere below the horizon, the road, kerbs, lane marks and a crosswalk."""
    cam = canvas.camera
    labels, ground = lay["labels"], lay["ground"]
    far = lay["z_end"]
    canvas.fill(np.array([[-1, cam.yh], [cam.W + 1, cam.yh], [cam.W + 1, cam.H + 1], [-1, cam.H + 1]]), ground["walk"], labels["sidewalk"], tex=0.12)
    left, right = lay["road"]
    canvas.fill(cam.project([left, right, right, left], 0.0, [NEAR, NEAR, far, far]), ground["road"], labels["road"], tex=0.1)
    for edge, out in ((left, -1), (right, 1)):
        a, b = sorted((edge, edge + out * 0.22))
        canvas.fill(cam.project([a, b, b, a], 0.0, [NEAR, NEAR, far, far]), ground["kerb"], labels["sidewalk"], tex=0.08)
        a, b = sorted((edge + out * 0.22, lay["facades"][0 if out < 0 else 1]))
        z = np.arange(ground["joint_start"], min(far, 40.0), ground["joint"])[:, None]  # paving joints
        canvas.paint(_ground_quads(cam, [a, b, b, a], np.hstack([z, z, z + 0.04, z + 0.04])), ground["walk"] * 0.8)
    z = np.arange(ground["dash_start"], min(far, 150.0), 9.0)[:, None]
    for xl in ground["lanes"]:
        canvas.paint(_ground_quads(cam, [xl - 0.07, xl + 0.07, xl + 0.07, xl - 0.07], np.hstack([z, z, z + 3.0, z + 3.0])), ground["paint"])
    for x, z, w, d in ground["patches"]:
        canvas.paint(cam.project([x, x + w, x + w, x], 0.0, [z, z, z + d, z + d]), ground["road"] * 0.8)
    if ground["crosswalk"] is not None:
        z = ground["crosswalk"]
        x = np.arange(left + 0.4, right - 0.4, 1.0)[:, None]
        canvas.paint(_ground_quads(cam, np.hstack([x, x + 0.5, x + 0.5, x]), [z, z, z + 3.0, z + 3.0]), ground["paint"])


def _ground_quads(cam: Camera, xs, zs) -> np.ndarray:
    """(M, 4, 2) projected ground quads from broadcastable (M, 4) corner coordinates."""
    xs, zs = np.broadcast_arrays(np.atleast_2d(np.asarray(xs, np.float64)), np.atleast_2d(np.asarray(zs, np.float64)))
    return cam.project(xs, 0.0, zs).reshape(-1, 4, 2)


def draw_far_end(canvas: Canvas, lay: dict) -> None:
    """What closes the street at ``z_end``: a row of buildings or a band of trees across the view."""
    cam, end = canvas.camera, lay["far"]
    z = lay["z_end"]
    label = lay["labels"][end["kind"]]
    canvas.fill(cam.project([-400, 400, 400, -400], [0, 0, end["height"], end["height"]], z), end["colour"], label, tex=0.15)
    for x, h in end["bumps"]:
        (cx, cy), = cam.project(x, h, z)
        canvas.fill(disc(cx, cy, end["bump"] * cam.scale(z)), end["colour"] * 0.95, label, tex=0.15)


def _windows(canvas: Canvas, cam: Camera, seg: dict, xb: float, g: np.random.Generator) -> None:
    """The window grid of a facade (and its shop front), in five brightness levels."""
    z0, z1 = max(seg["z0"], NEAR), seg["z1"]
    w = seg["windows"]
    floors = np.arange(w["ground"], seg["height"] - w["height"] - 0.3, w["floor"])
    columns = np.arange(z0 + w["margin"], z1 - w["margin"] - w["width"], w["spacing"])
    if cam.scale(z1) * w["height"] < 1.2 or not len(floors) or not len(columns):  # too far for windows to show
        return
    y, z = np.meshgrid(floors, columns, indexing="ij")
    shop = (y == floors[0]) & w["shop"]
    wh, ww = np.where(shop, 2.0, w["height"]), np.where(shop, w["spacing"] * 0.85, w["width"])
    level = np.minimum((g.uniform(0, 1, y.shape) * 5).astype(int), 4).ravel()
    scale = cam.f / z.ravel()
    visible = scale * np.minimum(wh, ww).ravel() >= 0.7
    if w["frame"] is not None:
        m = 0.1
        frames = cam.project(xb, np.stack([y - m, y - m, y + wh + m, y + wh + m], -1), np.stack([z - m, z + ww + m, z + ww + m, z - m], -1)).reshape(-1, 4, 2)
        canvas.paint(frames[visible & (scale * 0.12 >= 1.0)], w["frame"])
    panes = cam.project(xb, np.stack([y, y, y + wh, y + wh], -1), np.stack([z, z + ww, z + ww, z], -1)).reshape(-1, 4, 2)
    for k in range(5):
        canvas.paint(panes[visible & (level == k)], np.clip(w["glass"] * np.float32(0.6 + 0.25 * k), 0, 1))


def _facade_decoys(canvas: Canvas, seg: dict, xb: float, labels: dict, decoys: list) -> None:
    """Look-alikes on the wall, labelled building (their ids are appended to ``decoys``)."""
    cam, building = canvas.camera, labels["building"]
    for d in seg["decoys"]:
        z = d["z"]
        if z < 1.0:
            continue
        s = cam.scale(z)
        decoy = len(decoys) + 1
        if d["kind"] == "person":
            (x, y), = cam.project(xb, d["y"], z)
            draw_person(canvas, x, y, d["look"]["height"] * d["scale"] * s, d["look"], building, decoy=decoy, only=building)
        elif d["kind"] == "sign":
            (x, y), = cam.project(xb, d["y"], z)
            draw_plate(canvas, x, y, d["radius"] * s, d["style"], building, decoy=decoy, only=building)
        else:
            (x, y), (_, y_top) = cam.project(xb, [0.0, seg["height"]], z)
            canvas.fill(bar(x, y, y_top, d["width"] * s), d["colour"], building, decoy=decoy, tex=0.08, only=building)
        decoys.append({"kind": d["kind"], "label": "building"})


def draw_segment(canvas: Canvas, seg: dict, lay: dict, decoys: list) -> None:
    """One block of the street side: a building (facade, end wall, windows, decoys) or a park."""
    cam, labels = canvas.camera, lay["labels"]
    side = seg["side"]
    xb = lay["facades"][0 if side < 0 else 1]
    z0, z1, h = max(seg["z0"], NEAR), seg["z1"], seg["height"]
    g = np.random.default_rng(seg["seed"])
    if seg["kind"] == "park":
        green = seg["colour"]
        canvas.fill(cam.project(xb, [0, 0, h, h], [z0, z1, z1, z0]), green, labels["vegetation"], tex=0.3)
        for dz, top, r in seg["crowns"]:
            z = z0 + dz
            if z > NEAR + r:
                (cx, cy), = cam.project(xb + side * r, top, z)
                canvas.fill(disc(cx, cy, r * cam.scale(z)), jitter(g, green, 0.04), labels["vegetation"], tex=0.3)
        return
    colour = seg["colour"] * np.float32(lay["light"][0 if side < 0 else 1])
    if seg["z0"] > NEAR:  # the end wall facing the camera shows where this block is taller than the one before
        canvas.fill(cam.project([xb, xb + side * 15, xb + side * 15, xb], [0, 0, h, h], z0), seg["colour"] * 0.9, labels["building"], tex=0.12)
    canvas.fill(cam.project(xb, [0, 0, h, h], [z0, z1, z1, z0]), colour, labels["building"], tex=seg["tex"])
    canvas.paint(cam.project(xb, [h - 0.5, h - 0.5, h, h], [z0, z1, z1, z0]), colour * 0.75)  # cornice
    _windows(canvas, cam, seg, xb, g)
    _facade_decoys(canvas, seg, xb, labels, decoys)


def sky_params(g: np.random.Generator) -> dict:
    overcast = g.random() < 0.35
    if overcast:
        v = g.uniform(0.55, 0.9)
        top = hsv(g.uniform(0.55, 0.62), g.uniform(0.0, 0.08), v)
        horizon = hsv(g.uniform(0.55, 0.62), g.uniform(0.0, 0.05), min(1.0, v * 1.1))
    else:
        top = hsv(g.uniform(0.55, 0.62), g.uniform(0.35, 0.7), g.uniform(0.6, 0.9))
        horizon = hsv(g.uniform(0.55, 0.6), g.uniform(0.08, 0.25), g.uniform(0.8, 0.98))
    return {"top": top, "horizon": horizon, "cloud": hsv(0.6, 0.02, g.uniform(0.75, 0.98)), "cloud_gain": float(g.uniform(0.5, 2.0)), "cloud_bias": float(g.uniform(-0.3, 0.3))}


def ground_params(g: np.random.Generator, road: tuple[float, float], z_end: float) -> dict:
    left, right = road
    lanes = list(np.arange(left + g.uniform(2.8, 3.5), right - 1.5, g.uniform(2.8, 3.5)))
    walk_hue = g.uniform(0.0, 0.12) if g.random() < 0.3 else g.uniform(0, 1)
    walk = hsv(walk_hue, g.uniform(0.0, 0.25), g.uniform(0.4, 0.7))
    n = int(g.integers(0, 5))
    patches = [(float(g.uniform(left, right - 1)), float(g.uniform(4, 60)), float(g.uniform(0.5, 3)), float(g.uniform(0.5, 5))) for _ in range(n)]
    return {
        "road": hsv(g.uniform(0, 1), g.uniform(0.0, 0.06), g.uniform(0.22, 0.42)), "walk": walk, "kerb": np.clip(walk * np.float32(g.uniform(0.85, 1.2)), 0, 1),
        "paint": hsv(0.13, g.uniform(0, 0.5) if g.random() < 0.2 else 0.02, g.uniform(0.7, 0.92)), "lanes": lanes, "patches": patches,
        "dash_start": float(g.uniform(0, 9)), "joint": float(g.uniform(1.2, 2.5)), "joint_start": float(g.uniform(1, 3)),
        "crosswalk": float(g.uniform(9, min(60.0, z_end * 0.3))) if g.random() < 0.35 else None,
    }
