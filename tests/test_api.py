"""The Python API: segdil.load(...).predict / predict_proba, segdil.evaluate == `segdil eval --json`."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import segdil
from segdil.cli import cli
from segdil.data.io import load_mask, save_mask
from segdil.errors import SegdilError
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


def test_predict_takes_a_list_an_array_batch_and_a_folder(tmp_path, tiny_checkpoint, monkeypatch):
    from segdil.inference.engine import Predictor

    model = segdil.load(tiny_checkpoint(), device="cpu")
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 255, shape, dtype=np.uint8) for shape in ((20, 28, 3), (20, 28, 3), (20, 28, 3), (17, 23, 3))]
    one_by_one = [model.predict(image) for image in images]
    batches = []
    real = Predictor.logits
    monkeypatch.setattr(Predictor, "logits", lambda self, x: batches.append(len(x)) or real(self, x))
    masks = model.predict(images, batch_size=2)
    assert batches == [2, 1, 1]  # consecutive images of one size share a forward, at most batch_size
    assert isinstance(masks, list) and len(masks) == 4
    assert all(np.array_equal(a, b) for a, b in zip(masks, one_by_one))
    probs = model.predict_proba(images[:2])
    assert [p.shape for p in probs] == [(3, 20, 28)] * 2 and np.array_equal(probs[1].argmax(0), one_by_one[1])
    stacked = model.predict(np.stack(images[:3]))
    assert stacked.shape == (3, 20, 28) and np.array_equal(stacked[2], one_by_one[2])
    for name, image in zip(("b.png", "a.png", "c.png"), images[1:]):
        Image.fromarray(image).save(tmp_path / name)
    by_path = model.predict(tmp_path)
    assert [p.name for p in by_path] == ["a.png", "b.png", "c.png"]
    assert np.array_equal(by_path[tmp_path / "b.png"], one_by_one[1]) and np.array_equal(by_path[tmp_path / "c.png"], one_by_one[3])
    assert len(model._predictors) == 1  # one Predictor for all of it


def test_load_refuses_bad_keywords_and_options(tiny_checkpoint):
    ckpt = tiny_checkpoint()
    with pytest.raises(TypeError, match="bogus.*valid: device, precision, fuse, channels_last, compile, memory_budget_mb"):
        segdil.load(ckpt, bogus=1)
    with pytest.raises(SegdilError, match="precision: 'fp8' is not a precision"):
        segdil.load(ckpt, precision="fp8")
    with pytest.raises(ValueError, match="memory_budget_mb=-5"):
        segdil.load(ckpt, memory_budget_mb=-5)
    with pytest.raises(ValueError, match="fuse='no'"):
        segdil.load(ckpt, fuse="no")


def test_predict_refuses_empty_images_and_advises_the_right_conversion(tiny_checkpoint):
    model = segdil.load(tiny_checkpoint(), device="cpu")
    with pytest.raises(ValueError, match=r"empty image of shape \(0, 0, 3\)"):
        model.predict(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(ValueError) as caught:
        model.predict(np.zeros((8, 8, 3), np.uint16))
    assert "image // 257" in str(caught.value) and "* 255" not in str(caught.value)
    with pytest.raises(ValueError, match=r"images\[1\].*uint8"):
        model.predict([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ValueError, match="batch_size"):
        model.predict([np.zeros((8, 8, 3), np.uint8)], batch_size=0)


def test_evaluate_refuses_float_masks_and_wrong_class_names():
    gt = np.zeros((4, 4), np.uint8)
    gt[1:3, 1:3] = 1
    with pytest.raises(ValueError, match=r"pred_masks\[0\] holds float64 values such as 0.7"):
        segdil.evaluate([np.where(gt == 1, 0.7, 0.0)], [gt], 2)
    with pytest.raises(ValueError, match=r"gt_masks\[0\]"):
        segdil.evaluate([gt], [gt * 0.5], 2)
    whole = segdil.evaluate([gt.astype(np.float32)], [gt], 2)  # floats holding class indices are class indices
    assert whole["mIoU"] == segdil.evaluate([gt], [gt], 2)["mIoU"]
    with pytest.raises(ValueError, match="class_names holds 3 names for num_classes=2"):
        segdil.evaluate([gt], [gt], 2, class_names=["bg", "a", "b"])
    with pytest.raises(ValueError, match="num_classes"):
        segdil.evaluate([gt], [gt], 0)
