"""The flagship hdc_context: exact sizes, what the context stream adds, its switches."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segdil.models import create_model
from segdil.models.hdc_context.model import bilinear_window

# a small model with image pooling, no fuse_skip and random initialisation: each test switches on what it tests
TINY = dict(
    widths=[8], blocks=1, context_width=8, context_stages=2, context_rates=[1, 2], context_blocks=1, fuse_width=8,
    image_pool=True, fuse_skip=False, identity_init=False, zero_init_context=False,
)


def _tiny(**overrides):
    torch.manual_seed(0)
    return create_model("hdc_context", num_classes=3, **{**TINY, **overrides}).eval()


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (17, 4), (33, 31)])
@pytest.mark.parametrize("fusion", ["end", "every"])
def test_output_has_the_input_size(size, fusion):
    model = _tiny(fusion=fusion, blocks=2)
    assert tuple(model(torch.randn(1, 3, *size)).shape) == (1, 3, *size)


def test_context_reaches_pixels_the_full_resolution_stream_cannot_see():
    """A change 40 px away moves a pixel's logits only through the context stream: the
    full-resolution stream (one block of rates 1, 2: receptive field 7 px) cannot see it."""
    x = torch.randn(1, 3, 48, 48)
    far = x.clone()
    far[..., 40:, 40:] += 3.0
    for context_width, moves in ((0, False), (8, True)):
        model = _tiny(context_width=context_width, rates=[1, 2])
        with torch.no_grad():
            delta = (model(x) - model(far))[..., :4, :4].abs().max().item()
        assert (delta > 1e-4) == moves, (context_width, delta)


@pytest.mark.parametrize("low,size", [((3, 5), (17, 37)), ((51, 76), (203, 301)), ((7, 4), (53, 29)), ((1, 1), (5, 9)), ((20, 10), (7, 3))])
@pytest.mark.parametrize("channels_last", [False, True])
def test_bilinear_window_is_the_window_of_the_whole_upsampling(low, size, channels_last):
    torch.manual_seed(0)
    x = torch.randn(2, 4, *low)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    whole = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    (h, w) = size
    for top, left, height, width in [(0, 0, h, w), (h // 3, w // 5, h - h // 3, w // 2), (h - 1, 1, 1, w - 1), (1, 0, h - 2, 1)]:
        window = bilinear_window(x, size, (top, left), (height, width))
        torch.testing.assert_close(window, whole[..., top : top + height, left : left + width], atol=1e-6, rtol=1e-6)  # measured: 1-2 ulp


def test_bilinear_window_projects_only_the_pixels_it_reads():
    torch.manual_seed(0)
    x, project = torch.randn(1, 4, 20, 30), nn.Conv2d(4, 3, 1)
    seen = []
    whole = F.interpolate(project(x), size=(80, 120), mode="bilinear", align_corners=False)
    with torch.no_grad():
        window = bilinear_window(x, (80, 120), (10, 50), (16, 12), lambda c: seen.append(c.shape[-2:]) or project(c))
        torch.testing.assert_close(window, whole[..., 10:26, 50:62], atol=1e-6, rtol=1e-6)
    assert seen and seen[0][0] * seen[0][1] <= 6 * 5  # about a quarter of the rows and columns, not the 20×30 map


def test_receptive_field_radius_is_the_full_resolution_streams():
    """The context reaches the whole image through image_context; the radius is the HDC stack's,
    whatever the context path (a stream at stride 4 to 32 with image pooling, or an smp encoder)."""
    for overrides in ({}, {"stem_width": 4}, {"blocks": 2, "rates": [1, 2, 3]}):
        plain = create_model("hdc", num_classes=3, **{"widths": [8], "blocks": 1, **overrides})
        assert _tiny(**overrides).receptive_field_radius == plain.receptive_field_radius
    assert _tiny().receptive_field_radius == 8 and _tiny(stem_width=4).receptive_field_radius == 9
    assert _tiny(context_stages=5).receptive_field_radius == 8 and _tiny(context_encoder="resnet18").receptive_field_radius == 8


def test_switches_build_what_they_say():
    assert _tiny(context_width=0).context is None
    assert _tiny(image_pool=False).context.image_pool is None
    assert isinstance(_tiny().context.image_pool[0], nn.AdaptiveAvgPool2d)
    every = _tiny(fusion="every", blocks=3)
    assert len(every.inject) == 2 and _tiny(blocks=3).inject is None
    assert isinstance(_tiny(fuse_width=0).fuse, nn.Identity)
    dilations = [m.dilation[0] for m in _tiny(context_rates=[1, 2, 5, 9]).context.blocks.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert dilations == [1, 2, 5, 9]


def test_fuse_skip_gives_the_head_a_linear_path_past_dead_fusion_units():
    x = torch.randn(1, 3, 24, 20)
    with torch.no_grad():
        plain, skip = _tiny(), _tiny(fuse_skip=True)
        assert skip.head.in_channels == plain.head.in_channels + plain.fuse[0].in_channels
        for model in (plain, skip):
            model.fuse[1].bias.fill_(-1e3)  # every fusion unit dead: its ReLU outputs zero
        assert plain(x).std(dim=(2, 3)).max() < 1e-6  # only the head's bias is left: the same logits everywhere
        assert skip(x).std(dim=(2, 3)).min() > 1e-3  # the concatenation still reaches the head


def test_identity_init_passes_the_pooled_features_through():
    model = _tiny(identity_init=True, image_pool=False)
    for module in model.context.blocks.modules():
        if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
            x = torch.randn(1, module.in_channels, 9, 9)
            assert torch.allclose(module(x), x)


@pytest.mark.parametrize("overrides", [{}, {"fuse_skip": True}, {"fuse_width": 0}, {"fusion": "every", "blocks": 3}])
def test_zero_init_context_starts_as_the_full_resolution_net_and_the_context_then_learns(overrides):
    x, target = torch.randn(2, 3, 24, 20), torch.randint(0, 3, (2, 24, 20))
    for zero_init, starts_without_context in ((True, True), (False, False)):
        model = _tiny(zero_init_context=zero_init, **overrides)
        with torch.no_grad():
            with_context = model(x)
            silenced = model.context.forward
            model.context.forward = lambda images, strip_rows=0, run=silenced: torch.zeros_like(run(images))
            without_context = model(x)
            model.context.forward = silenced
        assert torch.allclose(with_context, without_context, atol=1e-6) == starts_without_context, (zero_init, overrides)
    model = _tiny(zero_init_context=True, **overrides).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # the first step moves the zeroed weights; the second reaches the context stream
        optimizer.zero_grad()
        F.cross_entropy(model(x), target).backward()
        optimizer.step()
    assert model.context.down[0][0].weight.grad.abs().sum() > 0


def test_memory_saver_gives_the_same_gradients():
    x = torch.randn(2, 3, 20, 24)
    grads = []
    for saver in ("none", "checkpoint"):
        model = _tiny(memory_saver=saver, blocks=2, fusion="every").train()
        model(x).square().mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-6)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="fusion='sometimes'"):
        create_model("hdc_context", fusion="sometimes")
    with pytest.raises(ValueError, match="context_stages=0"):
        create_model("hdc_context", context_stages=0)
    with pytest.raises(ValueError, match="fuse_skip=True needs"):
        create_model("hdc_context", fuse_skip=True, fuse_width=0)
    with pytest.raises(ValueError, match="widths has 2 values"):
        create_model("hdc_context", widths=[8, 8], blocks=3)
    with pytest.raises(ValueError, match="encoder_weights='imagenet' needs a context_encoder"):
        create_model("hdc_context", encoder_weights="imagenet")
    with pytest.raises(ValueError, match="context_encoder='resnet18' needs context_width > 0"):
        create_model("hdc_context", context_encoder="resnet18", context_width=0)
    with pytest.raises(ValueError, match="context_encoder='resnet0': not an smp encoder"):
        create_model("hdc_context", context_encoder="resnet0")


def test_hard_preset_and_ablation_configs_load_and_build():
    import warnings
    from pathlib import Path

    from segdil.compare.presets import preset_configs
    from segdil.config import load_config

    hard = preset_configs("small-objects-hard")
    assert [p.stem for p in hard][:2] == ["hdc-context_synth", "hdc_synth"] and "deeplabv3-r18_synth" in [p.stem for p in hard]
    for path in [*hard, *sorted(Path("configs/ablation").glob("*.yaml"))]:
        cfg = load_config(path)
        assert cfg.data.synth.scene == "hard", path
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            create_model(**cfg.model)
    assert "hdc-context_synth" in [p.stem for p in preset_configs("small-objects")]


@pytest.mark.parametrize("stages", [2, 3, 4, 5])
@pytest.mark.parametrize("height", [37, 64, 203])
def test_context_in_strips_equals_the_whole_image(stages, height):
    """image_context runs the pooling stages on strips; every strip height gives the whole-image values."""
    torch.manual_seed(0)
    model = _tiny(context_stages=stages).eval()
    x = torch.randn(1, 3, height, 45)
    with torch.no_grad():
        whole = model.context(x)
        for rows in (1, 8, 24, 50, height):
            torch.testing.assert_close(model.context(x, strip_rows=rows), whole, atol=1e-5, rtol=1e-5)


def _concatenated_reference(model, x):
    """The fusion and head as written down: on the concatenation of the full-resolution features
    and the whole upsampled context."""
    y = x
    for i, block in enumerate(model.blocks):
        if i > 0 and model.inject is not None:
            y = y + F.interpolate(model.inject[i - 1](model.context(x)), size=x.shape[-2:], mode="bilinear", align_corners=False)
        y = block(y)
    y = torch.cat([y, F.interpolate(model.context(x), size=x.shape[-2:], mode="bilinear", align_corners=False)], dim=1)
    return model.head(torch.cat([y, model.fuse(y)], dim=1) if model.fuse_skip else model.fuse(y))


@pytest.mark.parametrize(
    "overrides",
    [dict(fuse_skip=True), dict(fuse_skip=False), dict(fuse_width=0), dict(fuse_skip=True, norm="none"), dict(fuse_skip=True, norm="group"), dict(fuse_skip=True, fusion="every")],
)
def test_fusion_at_low_resolution_equals_the_concatenation(overrides):
    model = _tiny(**overrides)
    for module in model.modules():  # non-trivial statistics, so that the norm is not the identity
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1), module.running_var.uniform_(0.5, 2), module.weight.data.uniform_(0.5, 2), module.bias.data.uniform_(-1, 1)
    model.head.bias.data.uniform_(-1, 1)
    x = torch.randn(2, 3, 29, 22)
    with torch.no_grad():
        torch.testing.assert_close(model(x), _concatenated_reference(model, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("overrides", [dict(fuse_skip=True), dict(fuse_skip=False), dict(fuse_width=0), dict(fuse_skip=True, norm="group")])
def test_folding_the_fusion_norm_keeps_the_function(overrides):
    from segdil.inference.fuse import fold_batchnorm

    model = _tiny(**overrides)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1), module.running_var.uniform_(0.5, 2)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(1, 3, 21, 30)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-5)


# -- the context at street scale: stride 16-32 with image pooling, or an smp encoder ------------


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (33, 31), (97, 203)])
@pytest.mark.parametrize("stages", [4, 5])
def test_stride_16_and_32_contexts_with_image_pooling_keep_the_input_size(size, stages):
    model = _tiny(context_stages=stages, image_pool=True, blocks=2, fusion="every")
    assert model.context.stride == 2**stages and model.context.image_pool is not None
    assert tuple(model(torch.randn(1, 3, *size)).shape) == (1, 3, *size)


def _encoder(**overrides):
    return _tiny(context_encoder="resnet18", **overrides)


@pytest.mark.parametrize("size", [(1, 1), (37, 53), (64, 64)])
def test_encoder_context_runs_at_any_size_on_the_encoders_padded_input(size):
    """The full-resolution path sees the input as it is; only the encoder's input is padded to 32."""
    model = _encoder(image_pool=True)
    assert model.input_multiple == 1 and model.context.span(size) == tuple(-(-s // 32) * 32 for s in size)
    seen = []
    model.context.encoder.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[-2:])))
    with torch.no_grad():
        assert tuple(model(torch.randn(1, 3, *size)).shape) == (1, 3, *size)
    assert seen == [model.context.span(size)]


def test_gradients_reach_every_encoder_parameter():
    model = _encoder(image_pool=True, fusion="every", blocks=2).train()
    model(torch.randn(2, 3, 37, 45)).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert all(p.grad.abs().sum() > 0 for p in model.context.encoder.parameters())


@pytest.mark.parametrize("overrides", [{}, {"fuse_skip": True}, {"fusion": "every", "blocks": 2}])
def test_zero_init_encoder_context_starts_as_the_model_without_its_context(overrides):
    """At initialisation the output does not depend on the encoder's context at all."""
    x = torch.randn(1, 3, 37, 45)
    for zero_init in (True, False):
        model = _encoder(zero_init_context=zero_init, image_pool=True, **overrides)
        with torch.no_grad():
            with_context = model(x)
            model.context.forward = lambda images, strip_rows=0, run=model.context.forward: torch.randn_like(run(images))
            other_context = model(x)
        assert torch.allclose(with_context, other_context, atol=1e-6) == zero_init, (zero_init, overrides)


def test_encoder_weights_from_a_local_file(tmp_path):
    source = _encoder()
    path = tmp_path / "encoder.pth"
    torch.save(source.context.encoder.state_dict(), path)
    torch.manual_seed(1)
    model = create_model("hdc_context", num_classes=3, context_encoder="resnet18", encoder_weights=str(path))
    for a, b in zip(source.context.encoder.parameters(), model.context.encoder.parameters()):
        assert torch.equal(a, b)


def test_imagenet_encoder_offline_fails_at_once_with_one_line(monkeypatch, tmp_path):
    from helpers import refuse_network

    from segdil.errors import SegdilError
    from segdil.models.smp import weights

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(weights, "online", lambda *a, **k: False)
    attempts = refuse_network(monkeypatch)  # "at once": no lookup or connection is tried
    with pytest.raises(SegdilError) as info:
        create_model("hdc_context", context_encoder="resnet18", encoder_weights="imagenet")
    message = info.value.message
    assert attempts == [] and "\n" not in message and "offline" in message
    assert "https://huggingface.co/smp-hub/resnet18.imagenet/" in message and "encoder_weights: /path/to/model.safetensors" in message


@pytest.mark.parametrize("overrides", [dict(context_encoder="resnet18", image_pool=True), dict(context_encoder="resnet18", fusion="every", blocks=2), dict(context_stages=5, image_pool=True)])
def test_street_context_tiles_equal_the_whole_image(overrides):
    """Through the Predictor: the context (an smp encoder on the padded image, or the stride-32
    stream) runs once on the whole image, each tile samples it at its own pixels, and tiles with
    the full-resolution stream's radius of context give the whole-image logits."""
    from segdil.inference.engine import InferenceOptions, Predictor

    model = _tiny(**overrides)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5), module.running_var.uniform_(0.5, 2.0)
    image = torch.randn(1, 3, 203, 301)  # not multiples of 32
    with torch.no_grad():
        whole = model(image)
    predictor = Predictor(model, "cpu", InferenceOptions(precision="fp32", tile=64))
    assert predictor.has_context and predictor.radius == model.receptive_field_radius == 8 * len(model.blocks)
    tiles = []
    real_run = predictor._run
    predictor._run = lambda batch, *context, **kw: tiles.extend([tuple(batch.shape[-2:])] * len(batch)) or real_run(batch, *context, **kw)
    tiled = predictor.logits(image)
    assert len(tiles) > 20 and set(tiles) == {(64, 64)}
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        own_context = model(image[..., :64, :64])
    assert not torch.allclose(own_context[..., :32, :32], whole[..., :32, :32], atol=1e-3)  # a tile's own context differs
