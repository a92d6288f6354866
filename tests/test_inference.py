"""Blended tiles (models without a receptive-field bound) and the Predictor's general contract:
batching within the budget, training flag, precision, refusals."""

import warnings
from dataclasses import replace

import pytest
import torch
from torch import nn

import segdil.inference.engine as engine
from segdil.device import resolve_device
from segdil.errors import SegdilError
from segdil.inference.engine import REFERENCE, InferenceOptions, Predictor
from segdil.inference.tiling import edge_weights, tile_starts
from segdil.models import create_model
from segdil.rf import analyze_stack


def tiny_hdc(seed: int = 0) -> torch.nn.Module:
    """Rates (1, 2, 5) once: receptive field 17, radius 8 = overlap 32 // 4."""
    torch.manual_seed(seed)
    model = create_model("hdc", num_classes=3, widths=[8], blocks=1)
    randomize_bn(model)
    return model.eval()


def randomize_bn(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)


def unbounded(model: nn.Module) -> nn.Module:
    """The model without its ``receptive_field_radius``: the Predictor blends its tiles, with
    ``engine.UNKNOWN_RF_OVERLAP`` shared pixels (an explicit ``overlap`` gives exact cores instead)."""
    return nn.Sequential(model).eval()


def reference(model: nn.Module, **options) -> Predictor:
    """The plain fp32 eager forward (``REFERENCE``), with ``options`` changed."""
    return Predictor(model, "cpu", replace(REFERENCE, **options))


def record_inputs(model: torch.nn.Module) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    model.register_forward_pre_hook(lambda _module, args: shapes.append(tuple(args[0].shape)))
    return shapes


def test_tiny_hdc_receptive_field_is_within_a_quarter_of_the_default_overlap():
    assert analyze_stack((1, 2, 5), repeat=1, kernel=3).receptive_field == 17 <= 2 * (32 // 4) + 1


@pytest.mark.parametrize("length,size,overlap", [(100, 40, 10), (97, 32, 31), (64, 64, 8), (30, 64, 8), (2000, 512, 32), (65, 33, 32)])
def test_tile_starts_cover_everything_with_at_least_the_overlap(length, size, overlap):
    starts = tile_starts(length, size, overlap)
    assert starts[0] == 0 and starts == sorted(set(starts))
    assert min(starts[-1] + size, length) == length
    for a, b in zip(starts, starts[1:]):
        assert a + size - b >= overlap  # shared pixels
        assert b + size <= length


def test_edge_weights_of_neighbours_sum_to_one_across_the_overlap():
    size, overlap = 40, 16
    first, second = edge_weights(size, overlap, False, True), edge_weights(size, overlap, True, False)
    total = torch.zeros(2 * size - overlap)
    total[:size] += first
    total[size - overlap :] += second
    torch.testing.assert_close(total, torch.ones_like(total))
    margin = overlap // 4
    assert (second[:margin] == 0).all() and (second[margin:] > 0).all()
    assert (first[-margin:] == 0).all() and (first[: size - margin] > 0).all()
    assert (edge_weights(size, overlap, False, False) == 1).all()


@pytest.mark.parametrize("tile,overlap", [(64, 32), (50, 32), (41, 32), (100, 40)])
def test_blended_tiles_equal_the_whole_image_when_receptive_field_fits_the_overlap(tile, overlap, monkeypatch):
    model = unbounded(tiny_hdc())
    images = torch.randn(2, 3, 150, 203)
    whole = reference(model).logits(images)
    monkeypatch.setattr(engine, "UNKNOWN_RF_OVERLAP", overlap)
    predictor = reference(model, tile=tile)
    blended = []
    real_blend = engine.blend_tiles
    monkeypatch.setattr(engine, "blend_tiles", lambda *args: blended.append(args[2:4]) or real_blend(*args))
    tiled = predictor.logits(images)
    assert blended == [(tile, overlap)] * 2
    assert tiled.shape == whole.shape == (2, 3, 150, 203)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)


def test_blended_tiles_with_too_small_an_overlap_differ(monkeypatch):
    # radius 8 > 16 // 4: pixels near the cuts see the tiles' zero padding
    model = unbounded(tiny_hdc())
    images = torch.randn(1, 3, 120, 120)
    whole = reference(model).logits(images)
    monkeypatch.setattr(engine, "UNKNOWN_RF_OVERLAP", 16)
    assert (reference(model, tile=48).logits(images) - whole).abs().max() > 1e-3
    # an explicit overlap gives exact cores with overlap // 2 = 8 pixels of context: the radius
    torch.testing.assert_close(reference(model, tile=48, overlap=16).logits(images), whole, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_large_image_is_blended_automatically_within_the_memory_budget():
    model = unbounded(tiny_hdc())
    image = torch.randn(1, 3, 2000, 3000)
    predictor = reference(model, memory_budget_mb=64)
    shapes = record_inputs(model)
    logits = predictor.logits(image)
    assert logits.shape == (1, 3, 2000, 3000) and logits.dtype == torch.float32
    capacity = predictor.pixel_capacity()
    assert len(shapes) > 1 and capacity < 2000 * 3000
    assert all(n * h * w <= capacity for n, _, h, w in shapes)
    # the model only looks 8 pixels around each pixel: a window run whole matches the tiled result
    for y, x in [(440, 440), (1000, 2450), (1840, 2840)]:
        window = image[..., y - 8 : y + 158, x - 8 : x + 158]
        expected = reference(model).logits(window)[..., 8:-8, 8:-8]
        torch.testing.assert_close(logits[..., y : y + 150, x : x + 150], expected, atol=1e-5, rtol=1e-5)


def test_whole_images_are_batched_within_the_memory_budget():
    model = tiny_hdc()
    images = torch.randn(5, 3, 24, 20)
    expected = reference(model).logits(images)
    predictor = reference(model)
    predictor.pixel_capacity = lambda: 2 * 24 * 20
    shapes = record_inputs(model)
    got = predictor.logits(images)
    assert [s[0] for s in shapes] == [2, 2, 1]
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("blended", [False, True])
def test_pooling_model_tiles_of_any_size_give_full_size_output(blended, monkeypatch):
    torch.manual_seed(0)
    model = create_model("fcn", num_classes=4, pools=3, width=8).eval()
    images = torch.randn(1, 3, 77, 91)
    monkeypatch.setattr(engine, "UNKNOWN_RF_OVERLAP", 12)
    tiled = (reference(unbounded(model), tile=37) if blended else reference(model, tile=37, overlap=12)).logits(images)
    assert tiled.shape == (1, 4, 77, 91) and torch.isfinite(tiled).all()


@pytest.mark.parametrize("options", [REFERENCE, InferenceOptions(precision="fp32")], ids=["unfused", "fused"])
def test_training_flag_is_restored_and_no_gradients_are_kept(options):
    model = tiny_hdc().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    predictor = Predictor(model, "cpu", options)
    logits = predictor.logits(torch.randn(2, 3, 16, 16))
    predictor.release()
    assert model.training and not logits.requires_grad
    # eval mode was used: BatchNorm running statistics did not move
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_bf16_on_cpu_returns_float32_close_to_full_precision():
    model = tiny_hdc()
    images = torch.randn(1, 3, 32, 32)
    full, mixed = reference(model).logits(images), reference(model, precision="bf16").logits(images)
    assert mixed.dtype == torch.float32
    assert (mixed - full).abs().max() < 0.1


def test_classifier_model_is_refused():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_model("seed_classifier", num_classes=3)
    with pytest.raises(SegdilError, match="classifies whole images"):
        Predictor(model, "cpu", REFERENCE)
    pooled = nn.Sequential(nn.Conv2d(3, 3, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (N, C) from a plain module
    with pytest.raises(SegdilError, match=r"returned shape \(1, 3\).*\(N, C, H, W\)"):
        reference(pooled).logits(torch.randn(1, 3, 40, 40))


@pytest.mark.parametrize("tile,overlap", [(32, 32), (16, 32), (None, -1)])
def test_bad_tiling_arguments_are_user_errors(tile, overlap):
    with pytest.raises(SegdilError):
        reference(tiny_hdc(), tile=tile, overlap=overlap)


def test_resolve_device(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(SegdilError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(SegdilError, match="valid values are auto, cpu, cuda"):
        resolve_device("tpu")
