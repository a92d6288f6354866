"""``segdil bench --infer --predict`` briefly trains every segmentation model before timing it."""

import pytest

from segdil.bench.predict_speed import briefly_trained
from segdil.models import MODELS, model_class

SEGMENTERS = [name for name in MODELS if not model_class(name).is_classifier]


@pytest.mark.parametrize("name", SEGMENTERS)
def test_every_segmentation_model_trains_briefly_without_a_class_count(name):
    # DeepLabV3's image pooling has one value per channel at batch 1: the class-count probe must not run at batch 1 in training mode
    args = {k: v for k, v in {"name": name, **model_class(name).tiny_args()}.items() if k != "num_classes"}
    model = briefly_trained(args, steps=1, size=32)
    assert not model.training


def test_deeplabv3_with_its_image_pooling_trains_briefly():
    model = briefly_trained({"name": "smp", "arch": "DeepLabV3", "encoder": "resnet18"}, steps=1, size=32)
    assert not model.training
