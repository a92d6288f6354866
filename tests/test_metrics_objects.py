"""Object metrics: hand-computed tiny cases for every definition in docs/metrics.md."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from segdil.metrics import Evaluator, bin_labels, object_stats
from segdil.metrics.objects import window_margin


def evaluate(pred: np.ndarray, gt: np.ndarray, num_classes: int = 2, **kwargs) -> dict:
    evaluator = Evaluator(num_classes, **kwargs)
    evaluator.update(torch.from_numpy(pred).long()[None], torch.from_numpy(gt).long()[None])
    result = evaluator.compute()
    json.dumps(result, allow_nan=False)
    return result


def brute_force_objects(pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int = 255, background: int | None = 0):
    """The definition written out pixel by pixel (flood fill, explicit window, explicit sets)."""
    height, width = gt.shape
    out = []
    for c in range(num_classes):
        if c == background:
            continue
        seen = np.zeros(gt.shape, bool)
        labels = np.zeros(gt.shape, int)
        components = []
        for y in range(height):
            for x in range(width):
                if gt[y, x] != c or seen[y, x]:
                    continue
                stack, pixels = [(y, x)], []
                seen[y, x] = True
                while stack:
                    py, px = stack.pop()
                    pixels.append((py, px))
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            qy, qx = py + dy, px + dx
                            if 0 <= qy < height and 0 <= qx < width and gt[qy, qx] == c and not seen[qy, qx]:
                                seen[qy, qx] = True
                                stack.append((qy, qx))
                components.append(pixels)
                for p in pixels:
                    labels[p] = len(components)
        for k, pixels in enumerate(components, start=1):
            ys, xs = zip(*pixels)
            m = max(2, math.ceil(math.sqrt(len(pixels)) / 2))
            obj = set(pixels)
            q = {
                (y, x)
                for y in range(max(0, min(ys) - m), min(height, max(ys) + 1 + m))
                for x in range(max(0, min(xs) - m), min(width, max(xs) + 1 + m))
                if pred[y, x] == c and gt[y, x] != ignore_index and not (gt[y, x] == c and labels[y, x] != k)
            }
            tp = sum(pred[p] == c for p in pixels)
            out.append((c, len(pixels), len(obj & q) / len(obj | q), tp, len(pixels) - tp))
    return out


def test_window_margin():
    # s = 1, 4, 5, 6, 10 -> ceil(s / 2) = 1, 2, 3, 3, 5 -> at least 2
    assert window_margin(np.array([1, 16, 25, 36, 100])).tolist() == [2, 2, 3, 3, 5]


def test_object_touching_the_border():
    gt = np.zeros((8, 8), np.uint8)
    gt[0:2, 0:2] = 1  # area 4, s 2, m 2: window rows/cols [0, 4) after clipping
    pred = gt.copy()
    pred[1, 1] = 0  # one miss: tp 3
    pred[3, 3] = 1  # inside the clipped window
    pred[4, 4] = 1  # just outside it
    objects = object_stats(pred, gt, 2, 255, 0)
    assert objects.shape == (1,)
    assert objects[0]["area"] == 4 and objects[0]["tp"] == 3 and objects[0]["fn"] == 1
    assert objects[0]["iou"] == pytest.approx(3 / 5)


def test_object_at_bottom_right_border():
    gt = np.zeros((6, 7), np.uint8)
    gt[4:6, 5:7] = 1
    pred = np.zeros_like(gt)
    pred[2, 3] = 1  # row 4 - 2, col 5 - 2: the window's corner
    pred[4:6, 5:7] = 1
    assert object_stats(pred, gt, 2)[0]["iou"] == pytest.approx(4 / 5)


def test_margin_grows_with_size():
    gt = np.zeros((20, 20), np.uint8)
    gt[5:10, 5:10] = 1  # 5x5: s 5, m 3, window rows [2, 13)
    pred = gt.copy()
    pred[12, 7] = 1  # inside
    pred[13, 7] = 1  # outside
    assert object_stats(pred, gt, 2)[0]["iou"] == pytest.approx(25 / 26)


def test_diagonally_touching_pixels_are_one_object():
    gt = np.zeros((8, 8), np.uint8)
    gt[1:3, 1:3] = 1
    gt[3:5, 3:5] = 1  # touches the first square at one corner: 8-connected
    objects = object_stats(gt.copy(), gt, 2)
    assert objects.shape == (1,) and objects[0]["area"] == 8 and objects[0]["iou"] == 1.0


def test_neighbouring_objects_of_one_class_do_not_count_against_each_other():
    gt = np.zeros((10, 10), np.uint8)
    gt[2:4, 2:4] = 1  # A
    gt[2:4, 5:7] = 1  # B, one column apart: inside A's window and A inside B's
    pred = gt.copy()
    assert object_stats(pred, gt, 2)["iou"].tolist() == [1.0, 1.0]
    pred[2:4, 4] = 1  # fill the gap: 2 pixels of Q outside each object
    objects = object_stats(pred, gt, 2)
    assert objects["area"].tolist() == [4, 4]
    assert objects["iou"] == pytest.approx([4 / 6, 4 / 6])


def test_ignored_pixels_inside_the_window_are_not_counted():
    gt = np.zeros((8, 8), np.uint8)
    gt[3:5, 3:5] = 1
    gt[1, 1:3] = 255
    pred = gt.copy()
    pred[1, 1:4] = 1  # three spilled pixels, two of them ignored
    pred[pred == 255] = 1
    objects = object_stats(pred, gt, 2, ignore_index=255)
    assert objects[0]["iou"] == pytest.approx(4 / 5)


def test_pixels_of_other_classes_in_the_window_count_as_spill():
    gt = np.zeros((8, 8), np.uint8)
    gt[3:5, 3:5] = 1
    gt[3:5, 5] = 2  # another class touching: predicted 1 there is outside O
    pred = np.where(gt == 2, 1, gt).astype(np.uint8)
    objects = object_stats(pred, gt, 3)
    assert objects["class"].tolist() == [1, 2]
    assert objects["iou"] == pytest.approx([4 / 6, 0.0])


def test_matches_brute_force_definition_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(3):
        gt = (rng.random((24, 31)) < 0.3).astype(np.uint8) * rng.integers(1, 3, (24, 31)).astype(np.uint8)
        gt[rng.random(gt.shape) < 0.05] = 255
        pred = np.where(rng.random(gt.shape) < 0.8, np.where(gt == 255, 0, gt), rng.integers(0, 3, gt.shape)).astype(np.uint8)
        ours = object_stats(pred, gt, 3)
        expected = brute_force_objects(pred, gt, 3)
        assert len(ours) == len(expected) > 20
        ours = sorted((int(o["class"]), int(o["area"]), round(float(o["iou"]), 9), int(o["tp"]), int(o["fn"])) for o in ours)
        expected = sorted((c, a, round(float(i), 9), int(t), int(f)) for c, a, i, t, f in expected)
        assert ours == expected


def test_background_class_none_makes_every_class_an_object_class():
    gt = np.zeros((6, 6), np.uint8)
    gt[2:4, 2:4] = 1
    assert object_stats(gt, gt, 2, background_class=None)["class"].tolist() == [0, 1]
    assert object_stats(gt, gt, 2, background_class=1)["class"].tolist() == [0]


def scene() -> np.ndarray:
    """Class 1: a 2x2 and a 4x4 object; class 2: a 1x1 object; class 3 nowhere; a few ignored pixels."""
    gt = np.zeros((16, 16), np.uint8)
    gt[1:3, 1:3] = 1
    gt[8:12, 8:12] = 1
    gt[13, 2] = 2
    gt[15, 13:16] = 255
    return gt


def test_empty_prediction_scores_zero():
    gt = scene()
    result = evaluate(np.zeros_like(gt), gt, num_classes=4)
    assert result["num_objects"] == 3
    assert result["small_object_iou"] == 0.0
    assert result["iIoU"] == 0.0
    assert result["per_class_iiou"] == [None, 0.0, 0.0, None]
    assert result["bins"]["<8"] == {"count": 3, "iou": 0.0, "recall": 0.0}
    assert result["per_class_iou"][1:] == [0.0, 0.0, None]


def test_perfect_prediction_scores_one():
    gt = scene()
    pred = np.where(gt == 255, 1, gt)  # whatever is predicted on ignored pixels does not matter
    result = evaluate(pred, gt, num_classes=4)
    for key in ("mIoU", "pixel_acc", "mean_acc", "mDice", "small_object_iou", "iIoU", "object_iou", "object_recall"):
        assert result[key] == 1.0, key
    assert result["per_class_iou"] == [1.0, 1.0, 1.0, None]
    assert result["per_class_iiou"] == [None, 1.0, 1.0, None]
    assert result["bins"]["<8"] == {"count": 3, "iou": 1.0, "recall": 1.0}


def test_class_with_no_objects_is_left_out_of_iiou_and_bins():
    gt = scene()
    pred = np.where(gt == 255, 0, gt)
    pred[5, 5] = 3  # class 3 predicted but absent from the ground truth
    result = evaluate(pred, gt, num_classes=4)
    assert result["per_class_iou"][3] == 0.0
    assert result["per_class_iiou"][3] is None
    assert result["per_class_objects"] == [0, 2, 1, 0]
    assert result["iIoU"] == 1.0
    for label in ("8-16", "16-32", "32-64", ">=64"):
        assert result["bins"][label] == {"count": 0, "iou": None, "recall": None}


def test_iiou_weights_objects_by_mean_area():
    gt = np.zeros((16, 16), np.uint8)
    gt[1:3, 1:3] = 1  # area 4, weight 10 / 4
    gt[6:10, 6:10] = 1  # area 16, weight 10 / 16
    pred = gt.copy()
    pred[1, 1:3] = 0  # object 1: tp 2, fn 2
    pred[14, 0:3] = 1  # 3 false positives on background
    result = evaluate(pred, gt)
    itp, ifn, fp = 2.5 * 2 + 0.625 * 16, 2.5 * 2, 3
    assert result["per_class_iiou"][1] == pytest.approx(itp / (itp + ifn + fp))  # 15 / 23
    assert result["iIoU"] == pytest.approx(15 / 23)
    # plain IoU for comparison: 18 / (20 + 3)
    assert result["per_class_iou"][1] == pytest.approx(18 / 23)


def test_iiou_false_positives_skip_ignored_pixels():
    gt = np.zeros((8, 8), np.uint8)
    gt[1:3, 1:3] = 1
    gt[6, :] = 255
    pred = gt.copy()
    pred[6, :] = 1
    assert evaluate(pred, gt)["iIoU"] == 1.0


def test_size_bins_recall_and_small_object_iou():
    gt = np.zeros((40, 40), np.uint8)
    gt[1, 1] = 1  # s 1
    gt[1:3, 5:7] = 1  # s 2
    gt[10:14, 10:14] = 1  # s 4
    gt[20:26, 20:26] = 1  # s 6
    pred = gt.copy()
    pred[1, 1] = 0  # IoU 0
    pred[1, 5] = 0  # IoU 3/4
    pred[10:12, 10:14] = 0  # IoU 1/2: counts as recalled
    result = evaluate(pred, gt, size_bins=(2, 4), small_threshold=4)
    assert list(result["bins"]) == ["<2", "2-4", ">=4"]
    assert result["bins"]["<2"] == {"count": 1, "iou": 0.0, "recall": 0.0}
    assert result["bins"]["2-4"] == {"count": 1, "iou": 0.75, "recall": 1.0}
    assert result["bins"][">=4"] == {"count": 2, "iou": pytest.approx(0.75), "recall": 1.0}
    assert result["small_object_iou"] == pytest.approx(0.75 / 2)
    assert result["object_recall"] == pytest.approx(3 / 4)


def test_bin_edges_are_half_open():
    gt = np.zeros((24, 24), np.uint8)
    gt[0:8, 0:8] = 1  # s exactly 8: bin 8-16
    result = evaluate(gt.copy(), gt)
    assert result["bins"]["<8"]["count"] == 0 and result["bins"]["8-16"]["count"] == 1
    assert result["small_object_iou"] == 1.0


def test_bin_labels():
    assert bin_labels((8, 16, 32, 64)) == ["<8", "8-16", "16-32", "32-64", ">=64"]
    assert bin_labels([2.5, 10]) == ["<2.5", "2.5-10", ">=10"]


def test_no_objects_anywhere():
    gt = np.zeros((8, 8), np.uint8)
    result = evaluate(gt.copy(), gt)
    assert result["num_objects"] == 0 and result["iIoU"] is None and result["small_object_iou"] is None
    assert result["mIoU"] == 1.0


def test_evaluator_accumulates_and_resets():
    gt = scene()
    evaluator = Evaluator(4)
    pred = np.where(gt == 255, 0, gt)
    for _ in range(2):
        evaluator.update(torch.from_numpy(pred)[None], torch.from_numpy(gt)[None])
    assert evaluator.compute()["num_objects"] == 6
    evaluator.reset()
    assert evaluator.compute()["num_objects"] == 0 and evaluator.compute()["mIoU"] is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="size_bins"):
        Evaluator(3, size_bins=(16, 8))
    with pytest.raises(ValueError, match="background_class"):
        Evaluator(3, background_class=3)
    with pytest.raises(ValueError, match="shape"):
        Evaluator(3).update(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 5, dtype=torch.long))


def test_street_scale_bins_up_to_128_and_beyond():
    from segdil.metrics.tables import format_metrics

    gt = np.zeros((420, 420), np.uint8)
    gt[0:128, 200:328] = 1  # s exactly 128: bin >=128
    gt[200:264, 0:64] = 1  # s exactly 64: bin 64-128
    gt[200:300, 150:250] = 1  # s 100: bin 64-128
    gt[300:420, 300:420] = 2  # s 120: bin 64-128
    gt[400:410, 0:10] = 1  # s 10: bin 8-16
    pred = gt.copy()
    pred[0:64, 200:328] = 0  # the 128 px object half found: IoU 1/2, still recalled
    pred[300:420, 300:360] = 0  # the class-2 object half found
    pred[280:300, 300:420] = 2  # 20 rows of spill above it, inside its 60-px window: 7200 / (14400 + 2400)
    result = evaluate(pred, gt, num_classes=3, size_bins=(8, 16, 32, 64, 128), small_threshold=16)
    assert list(result["bins"]) == ["<8", "8-16", "16-32", "32-64", "64-128", ">=128"]
    assert result["bins"][">=128"] == {"count": 1, "iou": 0.5, "recall": 1.0}
    assert result["bins"]["64-128"]["count"] == 3
    assert result["bins"]["64-128"]["iou"] == pytest.approx((1 + 1 + 7200 / 16800) / 3)
    assert result["bins"]["64-128"]["recall"] == pytest.approx(2 / 3)
    assert result["bins"]["8-16"] == {"count": 1, "iou": 1.0, "recall": 1.0}
    assert result["small_object_iou"] == 1.0
    table = format_metrics(result)
    rows = {line.split()[0]: line.split()[1:] for line in table.split("size bin")[1].splitlines()[1:]}
    assert rows["64-128"][0] == "3" and rows[">=128"] == ["1", "0.5000", "1.0000"]
    assert rows["16-32"] == ["0", "-", "-"]
    # the default edges are unchanged: four, the last bin >=64
    assert list(evaluate(pred, gt, num_classes=3)["bins"]) == ["<8", "8-16", "16-32", "32-64", ">=64"]
