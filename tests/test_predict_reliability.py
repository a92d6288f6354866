"""segdil predict on what a killed run, a bad checkpoint or a long name leaves (issue #30), and the overlay (#31)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import make_checkpoint
from PIL import Image

from segdil.checkpoint import load_checkpoint, save_checkpoint
from segdil.cli import cli
from segdil.data.io import class_palette, load_mask
from segdil.inference.overlay import OverlayStyle, blend, overlay_image


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "m.pt")


def images(folder: Path, names=("a", "b", "c"), size=(24, 20)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    return folder


def run(*args):
    return CliRunner().invoke(cli, ["predict", *[str(a) for a in args], "--device", "cpu"])


def test_skip_existing_continues_after_a_kill_between_an_images_files(ckpt, tmp_path):
    photos = images(tmp_path / "in")
    out = tmp_path / "out"
    assert run(ckpt, photos, "--out", out, "--probs").exit_code == 0
    done = (out / "a.png").stat().st_mtime_ns
    (out / "c.png").unlink()  # killed after c's probabilities, before its mask
    stale_probs = (out / "c_probs.npy").read_bytes()
    (out / "c_probs.npy").write_bytes(b"partial")
    result = run(ckpt, photos, "--out", out, "--probs", "--skip-existing")
    assert result.exit_code == 0, result.output
    assert "2 image(s) already predicted" in result.output
    assert (out / "a.png").stat().st_mtime_ns == done
    assert load_mask(out / "c.png").shape == (24, 20) and (out / "c_probs.npy").read_bytes() == stale_probs


def test_a_name_of_255_characters_is_predicted(ckpt, tmp_path):
    name = "n" * 251  # + ".png" = 255, the longest name the file system takes
    photos = images(tmp_path / "in", names=(name,))
    result = run(ckpt, photos, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / f"{name}.png").is_file()


def test_inconsistent_or_diverged_checkpoints_are_refused_before_writing(ckpt, tmp_path):
    photos = images(tmp_path / "in")
    loaded = load_checkpoint(ckpt)
    save_checkpoint({**loaded, "class_names": ["x", "y", "z", "w", "v"]}, tmp_path / "names.pt")
    weights = dict(loaded["model"])
    first = next(k for k, v in weights.items() if v.is_floating_point())
    weights[first] = torch.full_like(weights[first], float("nan"))
    save_checkpoint({**loaded, "model": weights}, tmp_path / "nan.pt")
    for bad, needle in (("names.pt", "5 class names"), ("nan.pt", "NaN or inf")):
        result = run(tmp_path / bad, photos, "--out", tmp_path / "out")
        assert result.exit_code == 2 and needle in result.output, result.output
        assert not (tmp_path / "out").exists()


def test_bad_pixel_limit_is_one_error_up_front(ckpt, tmp_path, monkeypatch):
    photos = images(tmp_path / "in")
    monkeypatch.setenv("SEGDIL_MAX_IMAGE_PIXELS", "abc")
    result = run(ckpt, photos, "--out", tmp_path / "out")
    assert result.exit_code == 2 and result.output.count("SEGDIL_MAX_IMAGE_PIXELS") == 1
    assert not (tmp_path / "out").exists()


def test_overlay_keeps_the_background_and_names_the_classes():
    image = np.full((30, 80, 3), 40, np.uint8)
    mask = np.zeros((30, 80), np.uint8)
    mask[10:20, 10:30] = 2
    style = OverlayStyle(class_palette([(0, 0, 0), (0, 255, 0), (255, 0, 0)]), ["bg", "grass", "car"], background=0)
    blended = blend(image, mask, style)
    assert (blended[mask == 0] == 40).all()  # background: the photo itself, not darkened
    assert (blended[mask == 2] == [148, 20, 20]).all()  # half photo, half the class colour
    picture = overlay_image(image, mask, style)
    assert picture.shape[0] > 30 and picture.shape[1] == 80
    legend = picture[30:]
    assert ((legend == [255, 0, 0]).all(-1)).any()  # the car's swatch
    assert not ((legend == [0, 255, 0]).all(-1)).any()  # grass is not in the picture: not in the legend
