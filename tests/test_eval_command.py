"""``segdil eval`` in both modes, its errors, and the printed table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import segdil.config
from segdil.checkpoint import save_checkpoint
from segdil.cli import cli
from segdil.data.io import save_image, save_mask
from segdil.metrics import Evaluator
from segdil.metrics.tables import format_metrics
from segdil.models import create_model


def gt_mask(size: int = 24, shift: int = 0) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[2 + shift : 5 + shift, 2:5] = 1
    mask[10:18, 9:17] = 2
    mask[0, :] = 255
    return mask


def write_folders(tmp_path: Path, count: int = 3) -> tuple[Path, Path, list[np.ndarray], list[np.ndarray]]:
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gts, preds = [], []
    for i in range(count):
        gt = gt_mask(shift=i)
        pred = np.where(gt == 255, 0, gt).astype(np.uint8)
        pred[10:18, 9:11] = 0  # part of the big object missed
        pred[20, 20] = 1  # a false positive
        save_mask(gt_dir / f"img{i}.png", gt)
        save_mask(pred_dir / f"img{i}.png", pred)
        gts.append(gt)
        preds.append(pred)
    return pred_dir, gt_dir, preds, gts


def run(*args: str):
    return CliRunner().invoke(cli, ["eval", *map(str, args)])


def test_pred_folder_mode_matches_the_evaluator(tmp_path):
    pred_dir, gt_dir, preds, gts = write_folders(tmp_path)
    out = tmp_path / "out" / "metrics.json"
    result = run("--pred", pred_dir, "--gt", gt_dir, "--num-classes", 3, "--json", out)
    assert result.exit_code == 0, result.output
    for heading in ("overall", "mIoU", "class", "size bin", "<8", ">=64", "iIoU"):
        assert heading in result.output
    saved = json.loads(out.read_text())
    evaluator = Evaluator(3)
    for pred, gt in zip(preds, gts):
        evaluator.update(torch.from_numpy(pred)[None], torch.from_numpy(gt)[None])
    expected = evaluator.compute()
    for key in ("mIoU", "per_class_iou", "pixel_acc", "mean_acc", "mDice", "small_object_iou", "iIoU", "per_class_iiou", "num_objects", "bins"):
        assert saved[key] == pytest.approx(expected[key]) if not isinstance(expected[key], dict) else saved[key] == expected[key], key
    assert saved["num_images"] == 3 and saved["num_objects"] == 6
    assert 0 < saved["mIoU"] < 1 and saved["bins"]["<8"]["count"] == 3


def test_pred_values_under_ignored_ground_truth_are_not_scored(tmp_path):
    pred_dir, gt_dir, preds, _ = write_folders(tmp_path, count=1)
    pred = preds[0].copy()
    pred[0, :] = 255  # the ground truth ignores row 0
    save_mask(pred_dir / "img0.png", pred)
    base = run("--pred", pred_dir, "--gt", gt_dir, "--num-classes", 3, "--json", tmp_path / "a.json")
    assert base.exit_code == 0, base.output
    pred[0, :] = 2
    save_mask(pred_dir / "img0.png", pred)
    again = run("--pred", pred_dir, "--gt", gt_dir, "--num-classes", 3, "--json", tmp_path / "b.json")
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "a.json").read_text()) == json.loads((tmp_path / "b.json").read_text())


def test_missing_prediction_names_the_file(tmp_path):
    pred_dir, gt_dir, _, _ = write_folders(tmp_path)
    (pred_dir / "img1.png").rename(pred_dir / "img1_pred.png")
    out = tmp_path / "m.json"
    result = run("--pred", pred_dir, "--gt", gt_dir, "--num-classes", 3, "--json", out)
    assert result.exit_code == 2
    assert "img1.png: missing prediction" in result.output and "img1_pred.png" in result.output
    assert not out.exists()


def test_prediction_with_another_extension_names_the_file(tmp_path):
    pred_dir, gt_dir, preds, _ = write_folders(tmp_path)
    (pred_dir / "img2.png").unlink()
    Image.fromarray(preds[2]).save(pred_dir / "img2.bmp")
    result = run("--pred", pred_dir, "--gt", gt_dir, "--num-classes", 3)
    assert result.exit_code == 2
    assert "img2.bmp" in result.output and "img2.png" in result.output


def test_size_mismatch_names_the_prediction(tmp_path):
    pred_dir, gt_dir, _, _ = write_folders(tmp_path)
    save_mask(pred_dir / "img0.png", np.zeros((24, 23), np.uint8))
    result = run("--pred", pred_dir, "--gt", gt_dir, "--num-classes", 3)
    assert result.exit_code == 2
    assert str(pred_dir / "img0.png") in result.output and "23x24" in result.output


def test_rgb_prediction_names_the_file(tmp_path):
    pred_dir, gt_dir, _, _ = write_folders(tmp_path)
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(pred_dir / "img1.png")
    result = run("--pred", pred_dir, "--gt", gt_dir, "--num-classes", 3)
    assert result.exit_code == 2
    assert str(pred_dir / "img1.png") in result.output and "RGB" in result.output


def test_class_index_out_of_range(tmp_path):
    pred_dir, gt_dir, _, _ = write_folders(tmp_path)
    result = run("--pred", pred_dir, "--gt", gt_dir, "--num-classes", 2)
    assert result.exit_code == 2
    assert "img0.png" in result.output and "outside 0..1" in result.output
    bad = np.zeros((24, 24), np.uint8)
    bad[3, 3] = 7
    save_mask(pred_dir / "img0.png", bad)
    result = run("--pred", pred_dir, "--gt", gt_dir, "--num-classes", 3)
    assert result.exit_code == 2
    assert str(pred_dir / "img0.png") in result.output and "class index 7" in result.output


@pytest.mark.parametrize(
    "args,message",
    [
        ((), "nothing to evaluate"),
        (("--pred", "p", "--gt", "g"), "--num-classes: required"),
        (("--pred", "p", "--checkpoint", "c"), "two different modes"),
        (("--checkpoint", "c"), "--data: required"),
        (("--pred", "nowhere", "--gt", "g", "--num-classes", "3"), "nowhere: --pred folder not found"),
        (("--checkpoint", "missing.pt", "--data", "."), "missing.pt: checkpoint not found"),
    ],
)
def test_usage_errors(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output


def test_background_class_option(tmp_path):
    pred_dir, gt_dir, _, _ = write_folders(tmp_path, count=1)
    result = run("--pred", pred_dir, "--gt", gt_dir, "--num-classes", 3, "--background-class", "none", "--json", tmp_path / "o.json")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "o.json").read_text())
    assert saved["per_class_objects"][0] == 1  # the background is one object too
    assert run("--pred", pred_dir, "--gt", gt_dir, "--num-classes", 3, "--background-class", "5").exit_code == 2


def write_checkpoint_and_dataset(tmp_path: Path) -> tuple[Path, Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = create_model("hdc", num_classes=3, widths=[8], blocks=1)
    ckpt = tmp_path / "model.pt"
    names = ["background", "dot", "box"]
    save_checkpoint({"model_args": {"name": "hdc", "num_classes": 3, "widths": [8], "blocks": 1}, "model": model.state_dict(), "config": segdil.config.Config().to_dict(), "class_names": names, "step": 0, "metrics": {}}, ckpt)
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for i, size in enumerate((24, 24, 20)):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        image[gt_mask(size) == 2] = 250  # something the model can respond to
        save_image(root / "val" / "images" / f"s{i}.png", image)
        save_mask(root / "val" / "masks" / f"s{i}.png", gt_mask(size, shift=i))
    (root / "classes.yaml").write_text("classes: [background, dot, box]\n")
    return ckpt, root, model


@pytest.mark.parametrize("batch_size", [1, 2])
def test_checkpoint_mode_matches_direct_prediction(tmp_path, batch_size):
    from segdil.data.io import load_image, load_mask
    from segdil.data.transforms import to_tensor
    from segdil.inference.engine import REFERENCE, Predictor

    ckpt, root, model = write_checkpoint_and_dataset(tmp_path)
    out = tmp_path / "eval.json"
    # fp32: an untrained model is near-tied everywhere, and the comparison is with the fp32 forward
    result = run("--checkpoint", ckpt, "--data", root, "--split", "val", "--batch-size", batch_size, "--device", "cpu", "--precision", "fp32", "--json", out)
    assert result.exit_code == 0, result.output
    assert "1 dot" in result.output and "2 box" in result.output
    saved = json.loads(out.read_text())
    assert saved["class_names"] == ["background", "dot", "box"] and saved["num_images"] == 3

    data = segdil.config.DataConfig()
    evaluator = Evaluator(3)
    predictor = Predictor(model, "cpu", REFERENCE)  # the plain fp32 forward: folding must not change the scores
    for i in range(3):
        image = to_tensor(np.array(load_image(root / "val" / "images" / f"s{i}.png")), data.mean, data.std)
        gt = torch.from_numpy(load_mask(root / "val" / "masks" / f"s{i}.png").copy())
        evaluator.update(predictor.logits(image[None]).argmax(1), gt[None])
    expected = evaluator.compute()
    assert saved["per_class_iou"] == pytest.approx(expected["per_class_iou"])
    assert saved["num_objects"] == expected["num_objects"] == 6
    assert saved["bins"] == expected["bins"]


def test_checkpoint_mode_missing_split(tmp_path):
    ckpt, root, _ = write_checkpoint_and_dataset(tmp_path)
    result = run("--checkpoint", ckpt, "--data", root, "--split", "test", "--device", "cpu")
    assert result.exit_code == 2
    assert "test" in result.output and "not found" in result.output


def test_format_metrics_shows_undefined_values_as_dashes():
    evaluator = Evaluator(3)
    gt = torch.zeros(1, 8, 8, dtype=torch.long)
    gt[0, 2:4, 2:4] = 1
    evaluator.update(gt.clone(), gt)
    text = format_metrics(evaluator.compute(), ["bg", "car", "person"])
    lines = text.splitlines()
    person = next(line for line in lines if line.startswith("2 person"))
    assert person.split()[2:6] == ["-", "-", "-", "-"]
    assert next(line for line in lines if line.startswith("<8")).split() == ["<8", "1", "1.0000", "1.0000"]
    assert next(line for line in lines if line.startswith(">=64")).split() == [">=64", "0", "-", "-"]
    assert "small-object IoU (s < 16)" in text


def test_json_holds_the_confusion_matrix_and_a_png_is_written_beside_it(tmp_path):
    pred_dir, gt_dir, preds, gts = write_folders(tmp_path)
    out = tmp_path / "out" / "metrics.json"
    result = run("--pred", pred_dir, "--gt", gt_dir, "--num-classes", 3, "--json", out)
    assert result.exit_code == 0, result.output
    matrix = np.array(json.loads(out.read_text())["confusion_matrix"])
    expected = np.zeros((3, 3), np.int64)
    for pred, gt in zip(preds, gts):
        scored = gt != 255
        np.add.at(expected, (gt[scored], pred[scored]), 1)
    assert (matrix == expected).all() and matrix[2, 0] == 3 * 16  # the missed part of the box, rows = ground truth
    png = tmp_path / "out" / "metrics_confusion.png"
    image = np.array(Image.open(png))
    assert image.ndim == 3 and image.shape[0] > 200 and image.std() > 0
    assert f"wrote {png}" in result.output

    # an existing PNG is refused (nothing written) unless --overwrite
    out.unlink()
    before = png.read_bytes()
    again = run("--pred", pred_dir, "--gt", gt_dir, "--num-classes", 3, "--json", out)
    assert again.exit_code == 2 and f"{png}: already exists; pass --overwrite" in again.output and "Traceback" not in again.output
    assert not out.exists() and png.read_bytes() == before
    assert run("--pred", pred_dir, "--gt", gt_dir, "--num-classes", 3, "--json", out, "--overwrite").exit_code == 0


def test_confusion_option_names_the_png(tmp_path):
    ckpt, root, _ = write_checkpoint_and_dataset(tmp_path)
    png = tmp_path / "figs" / "cm.png"
    result = run("--checkpoint", ckpt, "--data", root, "--device", "cpu", "--precision", "fp32", "--confusion", png)
    assert result.exit_code == 0, result.output
    assert png.is_file() and not list(tmp_path.glob("*.json"))
    existing = run("--checkpoint", ckpt, "--data", root, "--device", "cpu", "--confusion", png)
    assert existing.exit_code == 2 and f"--confusion {png}: already exists" in existing.output
    wrong = run("--checkpoint", ckpt, "--data", root, "--device", "cpu", "--confusion", tmp_path / "cm.jpg")
    assert wrong.exit_code == 2 and "ending in .png" in wrong.output and not (tmp_path / "cm.jpg").exists()


def test_confusion_png_is_row_normalised_with_class_names():
    from segdil.evaluation import confusion_figure

    ax = confusion_figure([[6, 2], [0, 0]], ["road", "car"]).axes[0]
    shares = np.asarray(ax.images[0].get_array())
    assert shares.tolist() == [[0.75, 0.25], [0.0, 0.0]]  # each ground-truth row sums to 1; a row without pixels stays 0
    assert [t.get_text() for t in ax.get_xticklabels()] == ["road", "car"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["road (8 px)", "car (0 px)"]
    assert [t.get_text() for t in ax.texts] == ["0.75", "0.25", "0.00", "0.00"]


def test_size_bins_option_rebins_objects_in_both_modes(tmp_path):
    pred_dir, gt_dir, _, _ = write_folders(tmp_path)
    result = run("--pred", pred_dir, "--gt", gt_dir, "--num-classes", 3, "--size-bins", "4,6", "--json", tmp_path / "f.json")
    assert result.exit_code == 0, result.output
    bins = json.loads((tmp_path / "f.json").read_text())["bins"]
    assert list(bins) == ["<4", "4-6", ">=6"]
    assert [bins[k]["count"] for k in bins] == [3, 0, 3]  # 3x3 dots (s = 3) and 8x8 boxes (s = 8)

    ckpt, root, _ = write_checkpoint_and_dataset(tmp_path)
    result = run("--checkpoint", ckpt, "--data", root, "--device", "cpu", "--size-bins", "8,16,32,64,128", "--json", tmp_path / "c.json")
    assert result.exit_code == 0, result.output
    assert list(json.loads((tmp_path / "c.json").read_text())["bins"]) == ["<8", "8-16", "16-32", "32-64", "64-128", ">=128"]
    assert "64-128" in result.output


@pytest.mark.parametrize("value", ["16,8", "0,8", "8,x", "", "8,8", "inf"])
def test_size_bins_option_refuses_edges_that_are_not_increasing_sizes(tmp_path, value):
    pred_dir, gt_dir, _, _ = write_folders(tmp_path, count=1)
    result = run("--pred", pred_dir, "--gt", gt_dir, "--num-classes", 3, "--size-bins", value, "--json", tmp_path / "o.json")
    assert result.exit_code == 2
    assert "--size-bins" in result.output and "increasing" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "o.json").exists()
