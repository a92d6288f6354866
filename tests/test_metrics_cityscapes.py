"""Cityscapes scores equal the official evaluator's; instance objects replace components."""

import numpy as np
import pytest
import torch
from dataset_fixtures import make_cityscapes, make_folder_with_instances
from PIL import Image

from segdil.data.cityscapes import CLASS_NAMES, LABELS, TRAIN_TO_LABEL_ID
from segdil.data.formats import open_dataset
from segdil.metrics.cityscapes import AVG_CLASS_SIZE, cityscapes_evaluator
from segdil.metrics.instances import (
    InstanceEvaluator,
    average_instance_sizes,
    instance_object_stats,
)


def imperfect(mask: np.ndarray, seed: int) -> np.ndarray:
    """A prediction with every kind of error: noise, shifted objects, predictions on void, a false-positive-only class."""
    rng = np.random.default_rng(seed)
    pred = mask.copy()
    pred[pred == 255] = rng.integers(0, 19, int((pred == 255).sum()))
    pred = np.roll(pred, 1 + seed % 2, axis=1)
    noise = rng.random(pred.shape) < 0.08
    pred[noise] = rng.integers(0, 19, int(noise.sum()))
    pred[:3, :4] = CLASS_NAMES.index("truck")  # truck has no ground truth: an iIoU of 0
    return pred.astype(np.uint8)


def official(pred_files, gt_files):
    cs = pytest.importorskip("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")
    if not hasattr(np, "in1d"):  # removed in numpy 2.4; the official code still calls it
        np.in1d = lambda a, b, invert=False: np.isin(np.ravel(a), b, invert=invert)
    cs.args.quiet = True
    cs.args.JSONOutput = False
    cs.args.evalInstLevelScore = True
    cs.args.evalPixelAccuracy = True
    return cs.evaluateImgLists([str(p) for p in pred_files], [str(p) for p in gt_files], cs.args)


def test_label_table_is_the_official_one():
    labels = pytest.importorskip("cityscapesscripts.helpers.labels")
    ours = [(name, lid, tid, inst, ignored, colour) for name, lid, tid, inst, ignored, colour in LABELS]
    theirs = [(lb.name, lb.id, lb.trainId, lb.hasInstances, lb.ignoreInEval, tuple(lb.color)) for lb in labels.labels if lb.id >= 0]
    assert ours == theirs
    cs = pytest.importorskip("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")
    assert AVG_CLASS_SIZE == cs.args.avgClassSize


def test_miou_and_iiou_equal_the_official_evaluator(tmp_path):
    make_cityscapes(tmp_path, h=48, w=96, splits=(("val", 4),))
    ds = open_dataset("cityscapes", tmp_path, "val")
    evaluator = cityscapes_evaluator()
    pred_files = []
    for i in range(len(ds)):
        _, mask = ds.load(i)
        pred = imperfect(mask, i)
        path = tmp_path / "pred" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(TRAIN_TO_LABEL_ID[pred]).save(path)  # the official evaluator reads label IDs
        pred_files.append(path)
        evaluator.update(torch.from_numpy(pred)[None].long(), torch.from_numpy(mask)[None].long(), [ds.load_instances(i, mask)])
    ours = evaluator.compute()
    theirs = official(pred_files, ds.masks)
    print(f"|mIoU diff| {abs(ours['mIoU'] - theirs['averageScoreClasses']):.2e}, |iIoU diff| {abs(ours['iIoU'] - theirs['averageScoreInstClasses']):.2e}; mIoU {ours['mIoU']:.9f} vs {theirs['averageScoreClasses']:.9f}; iIoU {ours['iIoU']:.9f} vs {theirs['averageScoreInstClasses']:.9f}")
    assert abs(ours['mIoU'] - theirs['averageScoreClasses']) < 1e-6
    assert abs(ours['iIoU'] - theirs['averageScoreInstClasses']) < 1e-6
    for c, name in enumerate(CLASS_NAMES):
        official_c = theirs["classScores"][name]
        assert (ours["per_class_iou"][c] is None) == np.isnan(official_c)
        official_i = theirs["classInstScores"][name]
        assert (ours["per_class_iiou"][c] is None) == np.isnan(official_i), name
        if not np.isnan(official_i):
            assert abs(ours["per_class_iiou"][c] - official_i) < 1e-6
    assert ours["per_class_iiou"][CLASS_NAMES.index("truck")] == 0.0
    assert ours["object_source"] == "instances" and "official" in ours["iiou_weights"]
    assert 0.2 < ours["mIoU"] < 0.95 and 0.05 < ours["iIoU"] < 0.95  # imperfect, not degenerate


def test_touching_instances_are_two_objects(tmp_path):
    root = make_folder_with_instances(tmp_path)
    ds = open_dataset("folder", root, "val")
    _, mask = ds.load(0)
    ids = ds.load_instances(0, mask)
    pred = mask.copy()
    pred[4:10, 7:10] = 0  # the second instance is missed entirely
    objects = instance_object_stats(pred, mask, ids, 2)
    assert objects["area"].tolist() == [18, 18, 4] and objects["tp"].tolist() == [18, 0, 4]
    assert objects["iou"].tolist() == [1.0, 0.0, 1.0]
    components = InstanceEvaluator(2)
    components.update(torch.from_numpy(pred)[None].long(), torch.from_numpy(mask)[None].long())
    instances = InstanceEvaluator(2)
    instances.update(torch.from_numpy(pred)[None].long(), torch.from_numpy(mask)[None].long(), [ids])
    a, b = components.compute(), instances.compute()
    assert a["num_objects"] == 2 and b["num_objects"] == 3
    assert a["object_source"] == "connected components" and b["object_source"] == "instances"
    assert b["object_recall"] == pytest.approx(2 / 3)


def test_training_split_average_sizes_weight_iiou(tmp_path):
    root = make_folder_with_instances(tmp_path)
    train = open_dataset("folder", root, "train")
    sizes = average_instance_sizes(train, 2)
    assert sizes == {1: pytest.approx((18 * 6 + 4 + 6 + 8) / 9)}
    val = open_dataset("folder", root, "val")
    evaluator = InstanceEvaluator(2, instance_sizes=sizes)
    _, mask = val.load(0)
    ids = val.load_instances(0, mask)
    pred = mask.copy()
    pred[4:10, 7:10] = 0
    pred[0, 0] = 1  # one false-positive pixel
    evaluator.update(torch.from_numpy(pred)[None].long(), torch.from_numpy(mask)[None].long(), [ids])
    s = sizes[1]
    itp, ifn = s / 18 * 18 + s / 4 * 4, s / 18 * 18
    assert evaluator.compute()["iIoU"] == pytest.approx(itp / (itp + ifn + 1))
