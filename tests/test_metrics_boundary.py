"""Boundary IoU and per-image mIoU: hand-computed cases, streaming, ignored pixels, a brute-force reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import run_two_ranks

from segdil.metrics import Evaluator
from segdil.metrics.boundary import boundary_band, boundary_stats, boundary_width, class_labels
from segdil.metrics.per_image import image_mious, worst_mean
from segdil.metrics.tables import format_metrics

NEW_KEYS = ("boundary_iou", "per_class_boundary_iou", "per_image_miou", "worst_miou_10pct", "min_image_miou")


def evaluate(preds, gts, num_classes: int = 2, **kwargs) -> dict:
    evaluator = Evaluator(num_classes, **kwargs)
    for pred, gt in zip(preds, gts):
        evaluator.update(torch.from_numpy(np.asarray(pred)).long()[None], torch.from_numpy(np.asarray(gt)).long()[None])
    result = evaluator.compute()
    json.dumps(result, allow_nan=False)
    return result


def shifted_square() -> tuple[np.ndarray, np.ndarray]:
    """A 10x10 square of class 1 in a 40x40 image, predicted one column to the right."""
    gt = np.zeros((40, 40), np.uint8)
    gt[10:20, 10:20] = 1
    pred = np.zeros_like(gt)
    pred[10:20, 11:21] = 1
    return pred, gt


# --- the slow reference: the paper's code written out pixel by pixel ------------------------------


def reference_boundary(mask: np.ndarray, d: int) -> np.ndarray:
    """Cheng et al.'s mask_to_boundary: pad with one ring of zeros, erode d times with a 3x3 square."""
    height, width = mask.shape
    padded = np.zeros((height + 2, width + 2), bool)
    padded[1:-1, 1:-1] = mask
    for _ in range(d):
        eroded = padded.copy()
        for y in range(height + 2):
            for x in range(width + 2):
                # pixels beyond the padding do not erode (OpenCV's default border)
                window = [padded[q, r] for q in range(y - 1, y + 2) for r in range(x - 1, x + 2) if 0 <= q < height + 2 and 0 <= r < width + 2]
                eroded[y, x] = all(window)
        padded = eroded
    return mask & ~padded[1:-1, 1:-1]


def reference_stats(pred, gt, num_classes, d, ignore_index=255) -> np.ndarray:
    valid = gt != ignore_index
    out = np.zeros((2, num_classes), np.int64)
    for c in range(num_classes):
        g = reference_boundary(gt == c, d)
        p = reference_boundary((pred == c) & valid, d)
        out[0, c] = int(sum(g[y, x] and p[y, x] for y in range(gt.shape[0]) for x in range(gt.shape[1])))
        out[1, c] = int(sum(g[y, x] or p[y, x] for y in range(gt.shape[0]) for x in range(gt.shape[1])))
    return out


def reference_image_miou(pred, gt, num_classes, ignore_index=255):
    scores = []
    for c in range(num_classes):
        tp = fp = fn = 0
        for y in range(gt.shape[0]):
            for x in range(gt.shape[1]):
                if gt[y, x] == ignore_index:
                    continue
                tp += gt[y, x] == c and pred[y, x] == c
                fp += gt[y, x] != c and pred[y, x] == c
                fn += gt[y, x] == c and pred[y, x] != c
        if tp + fn > 0:  # the class occurs in this image's ground truth
            scores.append(tp / (tp + fp + fn))
    return sum(scores) / len(scores) if scores else None


def random_pair(rng, shape=(23, 31), num_classes=3):
    small = rng.integers(0, num_classes, (shape[0] // 4 + 1, shape[1] // 4 + 1))
    gt = np.kron(small, np.ones((4, 4), np.int64))[: shape[0], : shape[1]].astype(np.uint8)
    noise = rng.random(shape) < 0.15
    gt[noise] = rng.integers(0, num_classes, int(noise.sum()))
    gt[rng.random(shape) < 0.05] = 255
    pred = np.where(rng.random(shape) < 0.85, np.where(gt == 255, 0, gt), rng.integers(0, num_classes, shape)).astype(np.uint8)
    pred[gt == 255] = rng.integers(0, num_classes, int((gt == 255).sum()))
    return pred, gt


# --- Boundary IoU -------------------------------------------------------------------------------


def test_boundary_width_is_two_percent_of_the_diagonal_by_default():
    assert boundary_width(1024, 2048) == 46  # round(0.02 * 2289.7)
    assert boundary_width(96, 96) == 3  # round(2.72)
    assert boundary_width(10, 10) == 1  # round(0.28) -> at least 1
    assert boundary_width(512, 512, ratio=0.01) == 7
    assert boundary_width(1024, 2048, pixels=5) == 5


def test_band_of_a_square_and_of_the_image_border():
    gt = np.zeros((40, 40), np.uint8)
    gt[10:20, 10:20] = 1
    band = boundary_band(class_labels(gt, gt != 255, 2), 2)
    inside = band[10:20, 10:20]
    assert inside.sum() == 100 - 36 and not inside[2:8, 2:8].any()  # the inner 6x6 is more than 2 px from the contour
    # background: the 2-px ring of the image and the 2-px ring around the square
    assert band.sum() - inside.sum() == (40 * 40 - 36 * 36) + (14 * 14 - 100)
    whole = boundary_band(np.ones((1, 10, 10), np.uint8), 2)[0]  # a class filling the image: the border is its contour
    assert whole.sum() == 100 - 36


def test_perfect_prediction_scores_one_whatever_is_predicted_on_ignored_pixels():
    gt = np.zeros((32, 32), np.uint8)
    gt[4:12, 4:12] = 1
    gt[20:30, 3:25] = 2
    gt[0:3, :] = 255
    pred = np.where(gt == 255, 2, gt)
    result = evaluate([pred], [gt], num_classes=4)
    assert result["boundary_iou"] == 1.0
    assert result["per_class_boundary_iou"] == [1.0, 1.0, 1.0, None]
    assert result["per_image_miou"] == result["worst_miou_10pct"] == result["min_image_miou"] == 1.0


def test_shifted_square_by_hand():
    pred, gt = shifted_square()
    result = evaluate([pred], [gt], boundary_pixels=2)
    # class 1, d = 2: each band is the 10x10 square minus its inner 6x6 (64 px); both squares overlap
    # in 10x9 px, of which the union of the two inner regions (6x7) is in no band: I = 90 - 42 = 48,
    # U = 64 + 64 - 48 = 80
    assert result["per_class_boundary_iou"][1] == pytest.approx(48 / 80)
    # class 0: the image's 2-px ring (304 px, in both) plus the 2-px rings around the squares
    # (96 px each, 72 px in common): I = 376, U = 400 + 400 - 376
    assert result["per_class_boundary_iou"][0] == pytest.approx(376 / 424)
    assert result["boundary_iou"] == pytest.approx((48 / 80 + 376 / 424) / 2)
    assert result["boundary_width"] == "2 px"


def test_wider_bands_approach_the_mask_iou():
    pred, gt = shifted_square()
    square = {d: evaluate([pred], [gt], boundary_pixels=d)["per_class_boundary_iou"][1] for d in range(1, 8)}
    assert square[1] == pytest.approx(18 / 54)  # inner 8x8 regions: I = 90 - 72, U = 36 + 36 - 18
    assert square[2] == pytest.approx(0.6)
    assert all(square[d] < square[d + 1] for d in range(1, 5))
    mask_iou = evaluate([pred], [gt])["per_class_iou"][1]
    assert mask_iou == pytest.approx(90 / 110)
    assert square[5] == square[6] == square[7] == pytest.approx(mask_iou)  # a 10-px square is all boundary from d = 5
    # the default width on 40x40 is round(0.02 * 56.6) = 1 px
    assert evaluate([pred], [gt])["per_class_boundary_iou"][1] == pytest.approx(square[1])


def test_ignored_pixels_are_neither_counted_nor_predicted():
    gt = np.ones((8, 8), np.uint8)
    gt[:, 4] = 255  # an ignored column splits class 1 in two
    pred = np.ones_like(gt)  # predicted 1 on the ignored column too: that must not matter
    stats = boundary_stats(pred, gt, 2, pixels=1)
    # class-1 band, d = 1: columns 0, 3, 5, 7 and rows 0, 7 of the 56 scored pixels; not cols 1, 2, 6 of rows 1-6
    assert stats[:, 1].tolist() == [56 - 18, 56 - 18]
    assert stats[:, 0].tolist() == [0, 0]
    flipped = np.where(gt == 255, 0, pred)
    assert np.array_equal(boundary_stats(flipped, gt, 2, pixels=1), stats)


def test_matches_the_papers_erosion_on_random_masks():
    rng = np.random.default_rng(0)
    for d in (1, 2, 3):
        pred, gt = random_pair(rng)
        assert np.array_equal(boundary_stats(pred, gt, 3, pixels=d), reference_stats(pred, gt, 3, d)), d
    pred, gt = random_pair(rng, shape=(40, 75))  # default width: round(0.02 * 85) = 2
    assert np.array_equal(boundary_stats(pred, gt, 3), reference_stats(pred, gt, 3, 2))


def test_a_batch_is_the_sum_of_its_images():
    rng = np.random.default_rng(1)
    pairs = [random_pair(rng, shape=(16, 12)) for _ in range(5)]
    preds, gts = np.stack([p for p, _ in pairs]), np.stack([g for _, g in pairs])
    one_by_one = sum(boundary_stats(p, g, 3, pixels=3) for p, g in pairs)
    assert np.array_equal(boundary_stats(preds, gts, 3, pixels=3), one_by_one)


# --- per-image mIoU and the worst case ----------------------------------------------------------


def test_per_image_miou_by_hand():
    gt = np.zeros((4, 4), np.uint8)
    half = gt.copy()
    half[:, 2:] = 1
    spill = gt.copy()
    spill[0, :3] = 1  # class 1 only predicted: not averaged, but it lowers class 0's IoU to 13/16
    pred_half = np.zeros_like(gt)  # class 0: 8/16; class 1: 0
    result = evaluate([gt, spill, pred_half], [gt, gt, half])
    assert result["per_image_miou"] == pytest.approx((1 + 13 / 16 + 0.25) / 3)
    assert result["min_image_miou"] == pytest.approx(0.25)
    assert result["worst_miou_10pct"] == pytest.approx(0.25)  # max(1, floor(3 / 10)) = 1 image
    assert result["mIoU"] == pytest.approx((37 / 48 + 0) / 2)  # the dataset mIoU is another number


def test_worst_ten_percent_is_the_mean_of_the_lowest_tenth():
    gts, preds = [], []
    for k in range(25):  # 5x5 images of class 0, k pixels predicted 1: score (25 - k) / 25
        pred = np.zeros(25, np.uint8)
        pred[:k] = 1
        gts.append(np.zeros((5, 5), np.uint8))
        preds.append(pred.reshape(5, 5))
    result = evaluate(preds, gts)
    assert result["per_image_miou"] == pytest.approx(np.mean([(25 - k) / 25 for k in range(25)]))
    assert result["worst_miou_10pct"] == pytest.approx((1 / 25 + 2 / 25) / 2)  # floor(25 / 10) = 2 images
    assert result["min_image_miou"] == pytest.approx(1 / 25)
    assert worst_mean([0.5] * 9 + [0.1]) == pytest.approx(0.1)
    assert worst_mean([]) is None


def test_images_without_scored_pixels_have_no_score():
    gt = np.full((6, 6), 255, np.uint8)
    ok = np.zeros((6, 6), np.uint8)
    result = evaluate([ok, ok], [gt, ok])
    assert result["per_image_miou"] == result["min_image_miou"] == 1.0
    assert evaluate([ok], [gt])["per_image_miou"] is None and evaluate([ok], [gt])["boundary_iou"] is None


def test_per_image_miou_matches_brute_force():
    rng = np.random.default_rng(2)
    pairs = [random_pair(rng, shape=(11, 13), num_classes=4) for _ in range(6)]
    preds, gts = np.stack([p for p, _ in pairs]), np.stack([g for _, g in pairs])
    valid = gts != 255
    ours = image_mious(class_labels(preds, valid, 4), class_labels(gts, valid, 4), 4)
    assert ours == pytest.approx([reference_image_miou(p, g, 4) for p, g in pairs])


# --- the Evaluator: streaming, switches, report -------------------------------------------------


def test_streaming_equals_one_shot():
    rng = np.random.default_rng(3)
    pairs = [random_pair(rng, shape=(20, 24)) for _ in range(6)] + [random_pair(rng, shape=(60, 70)) for _ in range(2)]
    streamed = evaluate([p for p, _ in pairs], [g for _, g in pairs], num_classes=3)
    batched = Evaluator(3)
    for group in (pairs[:4], pairs[4:6], pairs[6:]):  # batches of one image size each
        batched.update(torch.from_numpy(np.stack([p for p, _ in group])), torch.from_numpy(np.stack([g for _, g in group])))
    batched.all_reduce()  # without torch.distributed: the local numbers
    once = batched.compute()
    for key in NEW_KEYS:
        assert once[key] == pytest.approx(streamed[key]), key
    expected = sum(boundary_stats(p, g, 3) for p, g in pairs)
    assert once["per_class_boundary_iou"] == pytest.approx((expected[0] / expected[1]).tolist())
    assert once["per_image_miou"] == pytest.approx(np.mean([reference_image_miou(p, g, 3) for p, g in pairs]))


def test_boundary_can_be_switched_off_and_settings_are_checked():
    pred, gt = shifted_square()
    result = evaluate([pred], [gt], boundary=False)
    assert result["boundary_iou"] is None and result["per_class_boundary_iou"] == [None, None]
    assert result["per_image_miou"] is not None
    for bad in (dict(boundary_ratio=0.0), dict(boundary_ratio=1.5), dict(boundary_pixels=0), dict(boundary_pixels=1.5)):
        with pytest.raises(ValueError, match="boundary"):
            Evaluator(2, **bad)


def test_images_that_skip_the_per_image_statistics_make_them_undefined():
    pred, gt = shifted_square()
    evaluator = Evaluator(2)
    evaluator.update(torch.from_numpy(pred)[None], torch.from_numpy(gt)[None])
    evaluator.confusion.update(torch.from_numpy(pred)[None], torch.from_numpy(gt)[None])  # as a subclass might
    result = evaluator.compute()
    assert all(result[key] in (None, [None, None]) for key in NEW_KEYS)
    assert result["mIoU"] is not None


def test_reset_clears_the_new_statistics():
    pred, gt = shifted_square()
    evaluator = Evaluator(2)
    evaluator.update(torch.from_numpy(pred)[None], torch.from_numpy(gt)[None])
    evaluator.reset()
    assert all(evaluator.compute()[key] in (None, [None, None]) for key in NEW_KEYS)


def test_report_shows_the_new_metrics():
    pred, gt = shifted_square()
    text = format_metrics(evaluate([pred], [gt], boundary_pixels=2), ["bg", "square"])
    for row in ("boundary IoU", "per-image mIoU", "worst 10% of images mIoU", "worst image mIoU", "bIoU", "d = 2 px"):
        assert row in text, row
    square = next(line for line in text.splitlines() if line.startswith("1 square"))
    assert "0.6000" in square.split()


def _run_distributed(rank: int, world_size: int, init_file: str, queue) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        rng = np.random.default_rng(10 + rank)
        evaluator = Evaluator(3)
        for _ in range(3 + rank):
            pred, gt = random_pair(rng)
            evaluator.update(torch.from_numpy(pred)[None], torch.from_numpy(gt)[None])
        evaluator.all_reduce()
        queue.put((rank, {key: evaluator.compute()[key] for key in NEW_KEYS}))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_all_reduce_gathers_boundary_and_per_image_statistics(tmp_path):
    results = dict(run_two_ranks(_run_distributed, tmp_path))
    pairs = []
    for rank in range(2):
        rng = np.random.default_rng(10 + rank)
        pairs += [random_pair(rng) for _ in range(3 + rank)]
    expected = evaluate([p for p, _ in pairs], [g for _, g in pairs], num_classes=3)
    for rank in range(2):
        for key in NEW_KEYS:
            assert results[rank][key] == pytest.approx(expected[key]), (rank, key)
