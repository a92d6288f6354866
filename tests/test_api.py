"""The Python API: segdil.load(...).predict / predict_proba, segdil.evaluate == `segdil eval --json`."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import segdil
from segdil.cli import cli
from segdil.data.io import load_mask, save_mask
from segdil.inference.tta import TTA


def test_predict_equals_the_cli(tmp_path, tiny_checkpoint):
    ckpt = tiny_checkpoint()
    image = np.random.default_rng(0).integers(0, 255, (20, 28, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "in.png")
    model = segdil.load(ckpt, device="cpu")
    mask = model.predict(image)
    probs = model.predict_proba(image)
    assert mask.shape == (20, 28) and mask.dtype == np.uint8
    assert probs.shape == (3, 20, 28) and probs.dtype == np.float32 and np.allclose(probs.sum(0), 1, atol=1e-5)
    assert np.array_equal(probs.argmax(0), mask)
    assert np.array_equal(model.predict(str(tmp_path / "in.png")), mask)
    result = CliRunner().invoke(cli, ["predict", str(ckpt), str(tmp_path / "in.png"), "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert np.array_equal(load_mask(tmp_path / "out" / "in.png"), mask)
    tiled = model.predict(image, tile=16, overlap=8)
    assert tiled.shape == mask.shape
    assert model.class_names == ["bg", "a", "b"] and model.num_classes == 3


def test_predict_with_tta_equals_predict_tta_of_the_cli(tmp_path, tiny_checkpoint):
    ckpt = tiny_checkpoint()
    image = np.random.default_rng(1).integers(0, 255, (21, 30, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "in.png")
    model = segdil.load(ckpt, device="cpu")
    mask = model.predict(image, tta=["flip", "scales=0.5,1"])
    assert np.array_equal(model.predict(image, tta="flip"), model.predict(image, tta=TTA(flip=True)))
    probs = model.predict_proba(image, tta=TTA(flip=True, scales=(0.5, 1.0)))
    assert probs.shape == (3, 21, 30) and np.allclose(probs.sum(0), 1, atol=1e-5) and np.array_equal(probs.argmax(0), mask)
    result = CliRunner().invoke(cli, ["predict", str(ckpt), str(tmp_path / "in.png"), "--out", str(tmp_path / "out"), "--device", "cpu", "--tta", "flip", "--tta", "scales=0.5,1"])
    assert result.exit_code == 0, result.output
    assert np.array_equal(load_mask(tmp_path / "out" / "in.png"), mask)


def test_predict_refuses_wrong_arrays(tmp_path, tiny_checkpoint):
    model = segdil.load(tiny_checkpoint(), device="cpu")
    with pytest.raises(ValueError, match="uint8"):
        model.predict(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="H x W x 3"):
        model.predict(np.zeros((8, 8, 4), np.uint8))


def test_evaluate_returns_the_eval_json(tmp_path):
    rng = np.random.default_rng(1)
    gts, preds = [], []
    for i in range(3):
        gt = np.zeros((24, 24), np.uint8)
        gt[3:9, 3:9] = 1
        gt[14:16, 10 + i : 13 + i] = 2
        gt[0, :] = 255
        pred = gt.copy()
        pred[pred == 255] = 0
        pred[rng.random(gt.shape) < 0.1] = 1
        gts.append(gt)
        preds.append(pred)
        save_mask(tmp_path / "gt" / f"{i}.png", gt)
        save_mask(tmp_path / "pred" / f"{i}.png", pred)
    out = tmp_path / "m.json"
    result = CliRunner().invoke(cli, ["eval", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--num-classes", "3", "--json", str(out)])
    assert result.exit_code == 0, result.output
    expected = json.loads(out.read_text())
    got = json.loads(json.dumps(segdil.evaluate(preds, gts, 3)))
    assert got == expected
    assert 0 < got["mIoU"] < 1 and got["num_objects"] == 6
    with pytest.raises(ValueError, match="outside 0..2"):
        segdil.evaluate([np.full((4, 4), 3)], [np.zeros((4, 4))], 3)
