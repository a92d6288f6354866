"""The fast inference path (segdil.inference.engine): exact tiles, per-image context, the memory
budget, and agreement of the fast defaults with the fp32 whole-image reference."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from segdil.config import Config
from segdil.data.transforms import to_tensor
from segdil.inference.engine import REFERENCE, InferenceOptions, Predictor, exact_tiles
from segdil.inference.live_memory import LiveTensorBytes
from segdil.models import MODELS, create_model
from segdil.models.base import SegModel

MEAN, STD = Config().data.mean, Config().data.std


def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("length,size,margin", [(100, 40, 8), (97, 33, 16), (64, 64, 8), (30, 64, 8), (3000, 512, 8), (1000, 200, 99)])
def test_exact_tile_cores_partition_the_side_with_margin_context(length, size, margin):
    tiles = exact_tiles(length, size, margin)
    covered = []
    for start, core0, core1 in tiles:
        assert 0 <= start and start + min(size, length) <= length
        assert start <= core0 < core1 <= start + size
        assert core0 - start >= margin or start == 0
        assert start + size - core1 >= margin or start + size >= length
        covered.extend(range(core0, core1))
    assert covered == list(range(length))


def test_tiled_logits_equal_whole_image_logits_on_3000x2000():
    torch.manual_seed(0)
    model = randomized(create_model("hdc", num_classes=2, widths=[2], rates=[1, 2, 5], blocks=1))
    assert model.receptive_field_radius == 8
    image = torch.randn(1, 3, 2000, 3000)
    whole = Predictor(model, "cpu", REFERENCE).logits(image)
    tiles = []
    tiled_predictor = Predictor(model, "cpu", InferenceOptions(precision="fp32", fuse=False, channels_last=False, memory_budget_mb=64))
    real_run = tiled_predictor._run
    tiled_predictor._run = lambda batch, *context, **kw: tiles.append(tuple(batch.shape)) or real_run(batch, *context, **kw)
    tiled = tiled_predictor.logits(image)
    assert len(tiles) > 1 and all(h < 2000 or w < 3000 for _, _, h, w in tiles)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)  # fp32 summation order only


def test_pooling_model_tiles_equal_the_whole_image_with_aligned_tiles():
    torch.manual_seed(0)
    model = randomized(create_model("fcn", num_classes=3, **MODELS["fcn"].tiny_args()))
    image = torch.randn(1, 3, 333, 250)  # not a multiple of the stride: padded once, as the model pads
    whole = Predictor(model, "cpu", REFERENCE).logits(image)
    tiled = Predictor(model, "cpu", InferenceOptions(precision="fp32", fuse=False, channels_last=False, tile=200)).logits(image)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)


class GlobalContextNet(SegModel):
    """A local 3x3 layer plus the image's mean colour: image-level context, given once per image."""

    def __init__(self):
        super().__init__()
        self.local = nn.Conv2d(3, 4, 3, padding=1)
        self.context = nn.Linear(3, 4)

    @property
    def receptive_field_radius(self) -> int:
        return 1  # the local stream only; the context comes from image_context

    def image_context(self, images):
        return self.context(images.mean((2, 3)))[..., None, None]

    def forward_with_context(self, x, context, offset, image_size):
        return torch.relu(self.local(x)) + context

    def forward(self, x):
        return self.forward_with_context(x, self.image_context(x), (0, 0), tuple(x.shape[-2:]))


def test_image_context_is_computed_once_per_image_and_given_to_every_tile():
    torch.manual_seed(0)
    model = GlobalContextNet().eval()
    image = torch.randn(2, 3, 120, 90) + torch.linspace(-2, 2, 120)[None, None, :, None]  # mean differs per region
    whole = Predictor(model, "cpu", REFERENCE).logits(image)
    tiled_predictor = Predictor(model, "cpu", InferenceOptions(precision="fp32", fuse=False, channels_last=False, tile=40))
    tiled_predictor.bytes_per_pixel()  # the memory probe runs forward once
    calls = []
    model.image_context = lambda images: calls.append(tuple(images.shape)) or GlobalContextNet.image_context(model, images)
    tiled = tiled_predictor.logits(image)
    assert calls == [(1, 3, 120, 90), (1, 3, 120, 90)]  # once per image, on the whole image
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)
    naive = torch.cat([GlobalContextNet.forward(model, image[..., :40, :40]), GlobalContextNet.forward(model, image[..., 80:, 50:])], -1)
    assert not torch.allclose(naive, torch.cat([whole[..., :40, :40], whole[..., 80:, 50:]], -1), atol=1e-3)  # per-tile context would differ


def flagship(**overrides) -> nn.Module:
    torch.manual_seed(0)
    return randomized(create_model("hdc_context", num_classes=3, **{**MODELS["hdc_context"].tiny_args(), **overrides}))


def test_the_engine_finds_the_flagships_image_context_hook():
    assert Predictor(flagship(), "cpu", REFERENCE).has_context
    assert not Predictor(create_model("hdc", num_classes=3, widths=[8], blocks=1), "cpu", REFERENCE).has_context


@pytest.mark.parametrize("overrides", [{"fusion": "every"}, {"fusion": "end"}, {"stem_width": 4, "image_pool": False}, {"context_width": 0}])
def test_flagship_tiles_equal_the_whole_image(overrides):
    """The context stream (image pooling: unbounded reach) runs once on the whole image and every
    tile resamples it at its own pixels; the full-resolution stream gets its receptive field as
    tile context. Sides 203 and 301 are not multiples of the context stride."""
    model = flagship(**overrides)
    image = torch.randn(1, 3, 203, 301)
    with torch.no_grad():
        whole = model(image)
    predictor = Predictor(model, "cpu", InferenceOptions(precision="fp32", tile=64))
    assert predictor.radius == model.receptive_field_radius
    tiles = []
    real_run = predictor._run
    predictor._run = lambda batch, *context, **kw: tiles.extend([tuple(batch.shape[-2:])] * len(batch)) or real_run(batch, *context, **kw)
    tiled = predictor.logits(image)
    assert len(tiles) > 20 and set(tiles) == {(64, 64)}
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)  # measured: at most 3e-7
    if overrides.get("context_width") != 0:
        with torch.no_grad():
            own_context = model(image[..., :64, :64])
        assert not torch.allclose(own_context[..., :32, :32], whole[..., :32, :32], atol=1e-3)  # a tile's own context differs


@pytest.mark.slow
def test_flagship_tiles_equal_the_whole_image_on_about_3000x2000():
    model = flagship()
    image = torch.randn(1, 3, 2003, 3001)
    with torch.no_grad():
        whole = model(image)
    tiled = Predictor(model, "cpu", InferenceOptions(precision="fp32", tile=512)).logits(image)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("height,width", [(700, 500), (40, 3000), (333, 333)])
@pytest.mark.parametrize("name", ["hdc", "hdc_context"])
def test_every_forward_stays_within_the_memory_budget(height, width, name):
    """Tiles of a model with image-level context run forward_with_context; the probe measures that path."""
    model = randomized(create_model(name, num_classes=3, **MODELS[name].tiny_args()))
    budget_mb = 4
    predictor = Predictor(model, "cpu", InferenceOptions(precision="fp32", memory_budget_mb=budget_mb))
    peaks = []
    real_run = predictor._run

    def measured(batch, *context, **kw):
        with LiveTensorBytes() as live:
            out = real_run(batch, *context, **kw)
        peaks.append(live.peak)
        return out

    predictor._run = measured
    logits = predictor.logits(torch.randn(1, 3, height, width))
    assert logits.shape == (1, 3, height, width)
    assert len(peaks) > 1 and max(peaks) <= budget_mb * 2**20


def test_whole_image_when_it_fits_the_budget():
    model = randomized(create_model("hdc", num_classes=3, widths=[8], blocks=1))
    predictor = Predictor(model, "cpu", InferenceOptions(precision="fp32"))
    seen = []
    real_run = predictor._run
    predictor._run = lambda batch, *context, **kw: seen.append(tuple(batch.shape)) or real_run(batch, *context, **kw)
    predictor.logits(torch.randn(3, 3, 1024, 2048))
    assert seen and all(shape[-2:] == (1024, 2048) for shape in seen) and sum(s[0] for s in seen) == 3


def photos() -> list[np.ndarray]:
    """Real photographs from matplotlib's sample data (scikit-image's are kept for held-out checks)."""
    import matplotlib.cbook as cbook

    out = []
    for name, size in (("grace_hopper.jpg", (117, 100)), ("Minduka_Present_Blue_Pack.png", (96, 96))):
        with cbook.get_sample_data(name) as f:
            out.append(np.asarray(Image.open(f).convert("RGB").resize(size, Image.BILINEAR)))
    return out


@pytest.mark.parametrize("name", [n for n, cls in MODELS.items() if not cls.is_classifier])
def test_fast_defaults_agree_with_the_fp32_whole_image_reference(name):
    from segdil.bench.predict_speed import briefly_trained

    model = briefly_trained({"name": name, "num_classes": 4, **MODELS[name].tiny_args()}, steps=3, size=64)
    fast = Predictor(model, "cpu", InferenceOptions())  # bf16 where native, guarded: near-tied images re-run in fp32
    reference = Predictor(model, "cpu", REFERENCE)
    for image in photos():
        x = to_tensor(image, MEAN, STD)[None]
        expected, got = reference.logits(x).argmax(1), fast.logits(x).argmax(1)
        assert len(expected.unique()) > 1  # a trained model, not a constant one
        assert (expected == got).float().mean() >= 0.999


def test_the_guard_passes_images_on_without_copying_them():
    """A copy of an 8000×6000 float image is 0.6 GB held through the forward: all of a batch or one
    image of it is a view."""
    from segdil.inference.engine import _subset

    images = torch.randn(3, 3, 8, 8)
    assert _subset(images, [0, 1, 2]) is images
    one = _subset(images, [1])
    assert one.shape == (1, 3, 8, 8) and one.data_ptr() == images[1].data_ptr()
    assert torch.equal(_subset(images, [0, 2]), images[[0, 2]])
