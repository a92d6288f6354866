"""Confusion matrix and pixel metrics: brute force, segmentation_models_pytorch, hand-computed cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch
from helpers import run_two_ranks

from segdil.metrics import ConfusionMatrix, Evaluator, pixel_metrics


def random_masks(seed: int, num_classes: int, shape=(3, 17, 23), ignore_fraction=0.1):
    gen = torch.Generator().manual_seed(seed)
    pred = torch.randint(0, num_classes, shape, generator=gen)
    gt = torch.randint(0, num_classes, shape, generator=gen)
    gt[torch.rand(shape, generator=gen) < ignore_fraction] = 255
    return pred, gt


def brute_force(pred: torch.Tensor, gt: torch.Tensor, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), np.int64)
    for p, t in zip(pred.flatten().tolist(), gt.flatten().tolist()):
        if t != ignore_index:
            matrix[t, p] += 1
    return matrix


@pytest.mark.parametrize("seed,num_classes", [(0, 2), (1, 5), (2, 7)])
def test_matches_brute_force_over_batches(seed, num_classes):
    cm = ConfusionMatrix(num_classes)
    expected = np.zeros((num_classes, num_classes), np.int64)
    for step in range(3):
        pred, gt = random_masks(seed * 10 + step, num_classes)
        cm.update(pred, gt)
        expected += brute_force(pred, gt, num_classes)
    assert np.array_equal(cm.matrix.numpy(), expected)


@pytest.mark.parametrize("ignore_index", [0, 2, -1])
def test_ignore_index_inside_or_below_class_range(ignore_index):
    num_classes = 4
    pred, gt = random_masks(5, num_classes, ignore_fraction=0.0)
    gt[:, :3] = ignore_index
    cm = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    cm.update(pred, gt)
    assert np.array_equal(cm.matrix.numpy(), brute_force(pred, gt, num_classes, ignore_index))


def test_matches_smp_metrics():
    num_classes = 6
    pred, gt = random_masks(3, num_classes, shape=(4, 32, 32))
    gt[gt == 5] = 0  # class 5 only in the prediction: present, IoU 0
    cm = ConfusionMatrix(num_classes)
    cm.update(pred, gt)
    ours = pixel_metrics(cm.matrix)
    tp, fp, fn, tn = smp.metrics.get_stats(pred, gt, mode="multiclass", num_classes=num_classes, ignore_index=255)
    tp, fp, fn = tp.sum(0), fp.sum(0), fn.sum(0)
    assert torch.equal(tp, cm.matrix.diagonal())
    assert torch.equal(fp, cm.matrix.sum(0) - cm.matrix.diagonal())
    assert torch.equal(fn, cm.matrix.sum(1) - cm.matrix.diagonal())
    iou = smp.metrics.iou_score(tp, fp, fn, torch.zeros_like(tp)).tolist()
    assert ours["per_class_iou"] == pytest.approx(iou)
    assert ours["per_class_iou"][5] == 0.0
    assert ours["mIoU"] == pytest.approx(sum(iou) / num_classes)
    dice = smp.metrics.f1_score(tp, fp, fn, torch.zeros_like(tp)).tolist()
    assert ours["per_class_dice"] == pytest.approx(dice)


def test_hand_computed_pixel_metrics_and_absent_class():
    # 3 classes; class 2 appears nowhere; one ignored pixel
    gt = torch.tensor([[0, 0, 1, 1, 255]])
    pred = torch.tensor([[0, 1, 1, 0, 1]])
    result = pixel_metrics(_matrix(pred, gt, 3))
    # class 0: tp 1, fp 1, fn 1 -> IoU 1/3, Dice 2/4; class 1 likewise; class 2 absent
    assert result["per_class_iou"][:2] == pytest.approx([1 / 3, 1 / 3])
    assert result["per_class_iou"][2] is None
    assert result["per_class_dice"][2] is None
    assert result["mIoU"] == pytest.approx(1 / 3)
    assert result["mDice"] == pytest.approx(0.5)
    assert result["pixel_acc"] == pytest.approx(2 / 4)
    assert result["mean_acc"] == pytest.approx(0.5)
    assert result["num_pixels"] == 4


def test_mean_accuracy_averages_ground_truth_classes_only():
    gt = torch.tensor([[0, 0, 0, 1]])
    pred = torch.tensor([[0, 0, 2, 1]])
    result = pixel_metrics(_matrix(pred, gt, 3))
    assert result["per_class_acc"] == [pytest.approx(2 / 3), 1.0, None]
    assert result["mean_acc"] == pytest.approx((2 / 3 + 1) / 2)
    # class 2 is predicted, so it is present for mIoU with IoU 0
    assert result["per_class_iou"] == [pytest.approx(2 / 3), 1.0, 0.0]
    assert result["mIoU"] == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_everything_ignored_gives_none():
    gt = torch.full((1, 4, 4), 255)
    result = pixel_metrics(_matrix(torch.zeros_like(gt), gt, 2))
    assert result["mIoU"] is None and result["pixel_acc"] is None and result["per_class_iou"] == [None, None]
    json.dumps(result, allow_nan=False)


@pytest.mark.parametrize(
    "pred,gt,message",
    [
        (torch.tensor([[3]]), torch.tensor([[0]]), "pred values"),
        (torch.tensor([[-1]]), torch.tensor([[0]]), "pred values"),
        (torch.tensor([[0]]), torch.tensor([[7]]), "gt pixels"),
        (torch.tensor([[0]]), torch.tensor([[-2]]), "negative"),
    ],
)
def test_out_of_range_values_are_rejected(pred, gt, message):
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match=message):
        cm.update(pred, gt)
    assert cm.matrix.sum() == 0


def test_uint8_inputs_and_reset():
    pred, gt = random_masks(9, 4)
    cm = ConfusionMatrix(4)
    cm.update(pred.to(torch.uint8), gt.to(torch.uint8))
    assert np.array_equal(cm.matrix.numpy(), brute_force(pred, gt, 4))
    cm.reset()
    assert cm.matrix.sum() == 0


def _run_distributed(rank: int, world_size: int, init_file: str, queue) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        pred, gt = random_masks(100 + rank, 3, shape=(1, 16, 16))
        evaluator = Evaluator(3)
        evaluator.update(pred, gt)
        evaluator.all_reduce()
        evaluator.all_reduce()  # a second call must not count twice
        result = evaluator.compute()
        queue.put((rank, evaluator.confusion.all_reduce().tolist(), result["num_objects"], result["mIoU"]))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_all_reduce_sums_matrix_and_gathers_objects(tmp_path):
    results = dict((r[0], r[1:]) for r in run_two_ranks(_run_distributed, tmp_path))

    everything = Evaluator(3)
    for rank in range(2):
        everything.update(*random_masks(100 + rank, 3, shape=(1, 16, 16)))
    expected = everything.compute()
    for rank in range(2):
        matrix, num_objects, miou = results[rank]
        assert matrix == everything.confusion.matrix.tolist()
        assert num_objects == expected["num_objects"]
        assert miou == pytest.approx(expected["mIoU"])


def _matrix(pred: torch.Tensor, gt: torch.Tensor, num_classes: int) -> torch.Tensor:
    cm = ConfusionMatrix(num_classes)
    cm.update(pred, gt)
    return cm.matrix
