"""The compare report's crops and per-image recall count the objects its metrics count: the
validation set's instances where it has instance maps (the street scenes), the connected
components of each class elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segdil.compare import crops
from segdil.config import SynthConfig
from segdil.data.synth import SyntheticSegmentation
from segdil.metrics.cityscapes import cityscapes_evaluator
from segdil.metrics.objects import object_stats
from segdil.models import create_model

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def street_val():
    return SyntheticSegmentation("val", SynthConfig(scene="street", size=128, n_train=1, n_val=3))


def test_street_objects_are_the_instances_the_evaluator_scores(street_val):
    num_classes = len(street_val.class_names)
    evaluator = cityscapes_evaluator((8, 16, 32, 64, 128), 16.0)
    components = counted = 0
    for index in range(len(street_val)):
        _, mask, ids = crops.ground_truth(street_val, index)
        assert ids is not None
        gt = torch.from_numpy(mask.astype(np.int64))
        evaluator.update(gt, gt, [ids])
        objects = crops.image_objects(mask, mask, ids, num_classes, None)
        assert (objects["iou"] == 1).all()
        points, areas = crops.object_centroids(mask, ids, num_classes, None)
        assert np.array_equal(areas, objects["area"])  # one centroid per object, in the objects' order
        instances = {int(i): np.argwhere(ids == i) for i in np.unique(ids) if i}
        for point, area in zip(points, areas):
            assert any(len(px) == area and np.allclose(px.mean(0), point) for px in instances.values())
        counted += len(objects)
        components += len(object_stats(mask, mask, num_classes, background_class=None))
    assert counted == len(evaluator.objects()) > 0
    assert components != counted  # components would be other objects: the test tells them apart


def test_per_image_recall_on_street_scenes_counts_the_evaluators_small_objects(street_val):
    torch.manual_seed(0)
    num_classes = len(street_val.class_names)
    model = create_model("hdc", num_classes=num_classes, widths=[4], blocks=1).eval()
    records, missed = crops.per_image_recall(model, street_val, MEAN, STD, num_classes, 8.0, 16.0, background_class=None)
    sizes = []
    for index in range(len(street_val)):
        _, mask, ids = crops.ground_truth(street_val, index)
        sizes.append(np.sqrt(crops.image_objects(mask, mask, ids, num_classes, None)["area"]))
    assert [r["small_objects"] for r in records] == [int((s < 16).sum()) for s in sizes]
    assert [r["tiny_objects"] for r in records] == [int((s < 8).sum()) for s in sizes]
    assert sum(r["small_objects"] for r in records) > 0
    assert sorted(missed) == list(range(len(street_val)))  # every image's missed centroids matched its objects
    assert [len(missed[i]) for i in range(len(street_val))] == [r["tiny_objects"] - r["tiny_found"] for r in records]


def test_without_instance_maps_objects_stay_connected_components():
    val = SyntheticSegmentation("val", SynthConfig(size=96, n_train=1, n_val=2))
    num_classes = len(val.class_names)
    for index in range(len(val)):
        _, mask, ids = crops.ground_truth(val, index)
        assert ids is None
        objects = crops.image_objects(mask, mask, None, num_classes, 0)
        assert np.array_equal(objects, object_stats(mask, mask, num_classes, background_class=0))
        points, areas = crops.object_centroids(mask, None, num_classes, 0)
        assert np.array_equal(areas, objects["area"])
        assert len(crops.tiny_objects(mask, None, num_classes, 8.0, 0)) == int((np.sqrt(areas) < 8).sum())
