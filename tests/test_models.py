import warnings

import pytest
import torch
from torch import nn

from segdil.models import MODELS, count_flops, count_params, create_model
from segdil.models.base import SegModel


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_states_its_capabilities(name):
    cls = MODELS[name]
    assert issubclass(cls, SegModel)
    model = create_model(name, num_classes=3, **cls.tiny_args())
    assert isinstance(model.input_multiple, int) and model.input_multiple >= 1
    import inspect

    params = inspect.signature(cls).parameters
    assert all(arg in params for arg in cls.width_args), f"{name}: width_args name unknown constructor arguments"
    assert cls.supports_memory_saver == ("memory_saver" in params)
    for attr in cls.full_resolution_path:
        assert isinstance(getattr(model, attr), nn.Module), f"{name}.{attr}"


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("size", [(37, 53), (64, 64)])
def test_forward_shape_backward_reaches_every_parameter(name, size):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, **MODELS[name].tiny_args())
    x = torch.randn(2, 3, *size)
    y = model(x)
    expected = (2, 3) if model.is_classifier else (2, 3, *size)
    assert tuple(y.shape) == expected
    assert torch.isfinite(y).all()
    y.float().square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all(), pname


def test_unknown_model_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown model 'nope'; valid names: " + ", ".join(sorted(MODELS))):
        create_model("nope")


def test_create_model_drops_none_kwargs():
    model = create_model("hdc", num_classes=2, widths=[8], blocks=1, norm=None, stem_width=None)
    assert isinstance(model.blocks[0].layers[0][1], nn.BatchNorm2d)


FULL_RESOLUTION = sorted(name for name, cls in MODELS.items() if cls.full_resolution_path)


@pytest.mark.parametrize("name", FULL_RESOLUTION)
def test_full_resolution_path_has_no_pooling_stride_or_interpolation(name):
    """Every submodule a family names in ``full_resolution_path`` keeps H×W: no pooling or
    resampling module, stride 1, size-keeping padding, and no pooling or interpolation call in its
    traced graph."""
    cls = MODELS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_model(name, num_classes=3, **cls.tiny_args())
    for attr in cls.full_resolution_path:
        part = getattr(model, attr)
        for module in part.modules():
            assert not isinstance(module, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Upsample, nn.ConvTranspose2d)), f"{name}.{attr}: {module}"
            if isinstance(module, nn.Conv2d):
                assert module.stride == (1, 1), f"{name}.{attr}: {module}"
                assert all(p == d * (k - 1) // 2 for p, d, k in zip(module.padding, module.dilation, module.kernel_size)), f"{name}.{attr}: {module}"
        # no functional pooling or interpolation either (a ModuleList is traced item by item)
        for traceable in part if isinstance(part, nn.ModuleList) else [part]:
            for node in torch.fx.symbolic_trace(traceable).graph.nodes:
                assert "interpolate" not in str(node.target) and "pool" not in str(node.target), f"{name}.{attr}: {node.target}"


def test_the_full_resolution_check_covers_hdc():
    assert "hdc" in FULL_RESOLUTION and MODELS["hdc"].full_resolution_path


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (5, 7), (17, 4)])
def test_hdc_keeps_size_for_tiny_and_odd_inputs(size):
    model = create_model("hdc", num_classes=3, widths=[4], blocks=2).eval()
    assert tuple(model(torch.randn(1, 3, *size)).shape) == (1, 3, *size)


def test_hdc_rates_and_blocks_build_the_stack():
    model = create_model("hdc", num_classes=3, widths=[8, 16], rates=[1, 2, 5, 9], blocks=2)
    dilations = [m.dilation[0] for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert dilations == [1, 2, 5, 9, 1, 2, 5, 9]
    assert isinstance(model.blocks[1].project, nn.Conv2d)  # 8 -> 16 needs a projection


def test_hdc_gridding_warns_and_strict_raises():
    with pytest.warns(UserWarning, match="coverage"):
        create_model("hdc", num_classes=2, widths=[4], rates=[2, 4, 8], blocks=1)
    with pytest.raises(ValueError, match="holes"):
        create_model("hdc", num_classes=2, widths=[4], rates=[2, 2, 2], blocks=1, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create_model("hdc", num_classes=2, widths=[4], rates=[1, 2, 5], blocks=2, strict=True)


@pytest.mark.parametrize("pools", [1, 2, 3, 4, 5])
def test_fcn_works_at_stride_2_to_the_p_and_returns_full_size(pools):
    model = create_model("fcn", num_classes=3, pools=pools, width=4, max_width=8).eval()
    seen = {}
    model.pools[-1].register_forward_hook(lambda m, i, o: seen.update(deepest=tuple(o.shape[-2:])))
    x = torch.randn(1, 3, 45, 70)
    y = model(x)
    stride = 2**pools
    padded = (-(-45 // stride) * stride, -(-70 // stride) * stride)
    assert seen["deepest"] == (padded[0] // stride, padded[1] // stride)
    assert tuple(y.shape) == (1, 3, 45, 70)


def test_fcn_rejects_skips_deeper_than_its_pools():
    with pytest.raises(ValueError, match="needs pools > 2"):
        create_model("fcn", pools=2, skips="fcn8")


def test_fcn_deconv_starts_as_bilinear():
    bilinear = create_model("fcn", num_classes=2, pools=2, width=4, upsample="bilinear").eval()
    deconv = create_model("fcn", num_classes=2, pools=2, width=4, upsample="deconv").eval()
    deconv.load_state_dict(bilinear.state_dict(), strict=False)
    x = torch.randn(1, 3, 32, 32)
    inner_b = bilinear.final_up(torch.ones(1, 2, 8, 8))
    inner_d = deconv.final_up(torch.ones(1, 2, 8, 8))
    # away from the border a bilinear transposed conv of a constant is that constant
    assert torch.allclose(inner_d[..., 2:-2, 2:-2], inner_b[..., 2:-2, 2:-2], atol=1e-6)
    assert deconv(x).shape == bilinear(x).shape


def test_seed_classifier_layer_sizes_are_as_published():
    model = create_model("seed_classifier", num_classes=5).eval()
    widths = []
    for layer in model.features:
        layer.register_forward_hook(lambda m, i, o: widths.append(o.shape[-1]) and None)
    out = model(torch.randn(1, 3, 64, 64))
    assert widths == [62, 58, 48, 46, 42, 32]
    assert tuple(out.shape) == (1, 5)
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]
    assert [c.dilation[0] for c in convs] == [1, 2, 5, 1, 2, 5]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64, 64, 128]
    assert all(c.padding == (0, 0) for c in convs)


def test_seed_classifier_states_minimum_size():
    model = create_model("seed_classifier").eval()
    model(torch.randn(1, 3, 33, 33))
    with pytest.raises(ValueError, match="at least 33x33"):
        model(torch.randn(1, 3, 32, 40))


def test_smp_refuses_downloads_and_unknown_names(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never reach the network in tests
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="local weights file"):
        create_model("smp", encoder_weights="imagenet")
    with pytest.raises(ValueError, match="arch 'Nope' is unknown; valid: .*Unet"):
        create_model("smp", arch="Nope")
    with pytest.raises(ValueError, match="encoder 'nope' is unknown"):
        create_model("smp", encoder="nope")


def test_smp_loads_a_local_encoder_weights_file(tmp_path):
    source = create_model("smp", num_classes=2)
    path = tmp_path / "encoder.pt"
    torch.save(source.net.encoder.state_dict(), path)
    model = create_model("smp", num_classes=2, encoder_weights=str(path))
    for a, b in zip(source.net.encoder.parameters(), model.net.encoder.parameters()):
        assert torch.equal(a, b)


def test_params_and_flops_are_counted():
    model = create_model("hdc", num_classes=2, widths=[8], rates=[1], blocks=1, residual=False, norm="none")
    # one 3x3 conv 3->8 with bias, one 1x1 head 8->2 with bias
    assert count_params(model) == 3 * 8 * 9 + 8 + 8 * 2 + 2
    flops = count_flops(model, 10, 10)
    assert flops == 2 * 100 * (3 * 8 * 9 + 8 * 2)


def test_hdc_widths_per_layer_reproduce_the_classic_stack():
    model = create_model("hdc", num_classes=3, widths=[32, 32, 64, 64, 64, 128], rates=[1, 2, 5], blocks=2, residual=False)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64, 64, 128]
    assert [c.dilation[0] for c in convs] == [1, 2, 5, 1, 2, 5]
    assert [c.padding[0] for c in convs] == [1, 2, 5, 1, 2, 5]
    assert tuple(model(torch.randn(1, 3, 20, 30)).shape) == (1, 3, 20, 30)
    with pytest.raises(ValueError, match="give one width, one per block or one per layer"):
        create_model("hdc", widths=[8, 8, 8], blocks=2)
