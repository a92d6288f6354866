"""Test-time augmentation: flips are undone, scales keep the exact output size, tiling works;
every view goes through the Predictor."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from segdil.errors import SegdilError
from segdil.inference.engine import REFERENCE, Predictor
from segdil.inference.tta import TTA, parse_tta, predict_log_proba, predict_proba, tta_logits


def _net(symmetric: bool) -> nn.Module:
    """A small conv net; with ``symmetric`` every kernel is mirror-symmetric, so the net commutes with a horizontal flip."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=2, dilation=2), nn.ReLU(), nn.Conv2d(6, 4, 1))
    if symmetric:
        with torch.no_grad():
            for module in net:
                if isinstance(module, nn.Conv2d):
                    module.weight.copy_((module.weight + module.weight.flip(-1)) / 2)
    return net


def reference(net: nn.Module, **options) -> Predictor:
    """The plain fp32 eager forward of ``net`` (``REFERENCE``), with ``options`` changed."""
    return Predictor(net, "cpu", replace(REFERENCE, **options))


def test_flip_on_a_symmetric_input_equals_no_tta():
    torch.manual_seed(1)
    half = torch.randn(2, 3, 17, 10)
    image = torch.cat([half, half.flip(-1)], dim=-1)  # mirror-symmetric, 17×20
    net = reference(_net(symmetric=True))
    plain = torch.softmax(net.logits(image), 1)
    assert torch.allclose(predict_proba(net, image, TTA(flip=True)), plain, atol=1e-6)


def test_flip_is_undone_before_averaging():
    torch.manual_seed(2)
    image = torch.randn(1, 3, 15, 22)  # not symmetric
    net = reference(_net(symmetric=True))
    plain = torch.softmax(net.logits(image), 1)
    assert not torch.allclose(plain, plain.flip(-1), atol=1e-3), "the test needs an output that a missing un-flip would change"
    assert torch.allclose(predict_proba(net, image, TTA(flip=True)), plain, atol=1e-6)
    # an ordinary net does not commute with the flip: TTA then changes the probabilities
    other = reference(_net(symmetric=False))
    assert not torch.allclose(predict_proba(other, image, TTA(flip=True)), torch.softmax(other.logits(image), 1), atol=1e-4)


@pytest.mark.parametrize("size", [(37, 53), (8, 9), (64, 31)])
def test_scales_keep_the_exact_size_with_and_without_tiling(size):
    torch.manual_seed(3)
    image = torch.randn(2, 3, *size)
    net = reference(_net(symmetric=False))
    tta = parse_tta(["flip", "scales=0.5,0.75,1,1.25"])
    assert tta.views() == [(0.5, False), (0.5, True), (0.75, False), (0.75, True), (1.0, False), (1.0, True), (1.25, False), (1.25, True)]
    for tile in (None, 16):
        probs = predict_proba(reference(_net(symmetric=False), tile=tile, overlap=4), image, tta)
        assert probs.shape == (2, 4, *size)
        assert torch.allclose(probs.sum(1), torch.ones(2, *size), atol=1e-5)
    # scale 1 alone is the plain prediction; log-probabilities are a drop-in for logits
    plain = net.logits(image)
    assert torch.allclose(predict_proba(net, image, TTA(scales=(1.0,))), torch.softmax(plain, 1), atol=1e-6)
    log_p = predict_log_proba(net, image, tta)
    assert torch.allclose(torch.softmax(log_p, 1), predict_proba(net, image, tta), atol=1e-5)
    # what the commands take the argmax of: the logits without TTA, the log-probabilities with it
    assert torch.equal(tta_logits(net, image, None), plain) and torch.equal(tta_logits(net, image, tta), log_p)


def test_every_view_goes_through_the_predictor():
    image = torch.randn(1, 3, 20, 24)
    predictor = reference(_net(symmetric=False))
    seen = []
    real_logits = predictor.logits
    predictor.logits = lambda views: seen.append(tuple(views.shape)) or real_logits(views)
    predict_proba(predictor, image, parse_tta(["flip", "scales=0.5,1"]))
    assert seen == [(1, 3, 10, 12), (1, 3, 10, 12), (1, 3, 20, 24), (1, 3, 20, 24)]


def test_parse_tta():
    assert parse_tta(None) is None and parse_tta([]) is None
    assert parse_tta(["flip"]) == TTA(flip=True, scales=(1.0,))
    assert parse_tta(["scales=0.5,1,1,2"]) == TTA(flip=False, scales=(0.5, 1.0, 2.0))
    assert parse_tta(["flip", "scales=0.75,1"]).describe() == "flip, scales 0.75/1"
    for bad, message in (("mirror", "expected flip or scales"), ("scales=a", "must be numbers"), ("scales=0,1", r"in \(0, 8\]")):
        with pytest.raises(SegdilError, match=message):
            parse_tta([bad])


def test_predict_and_eval_with_tta_agree(tmp_path):
    """`segdil predict --tta` writes exactly the masks `segdil eval --tta` scores, of the input's size; TTA changes them."""
    import json

    from click.testing import CliRunner

    from segdil.checkpoint import save_checkpoint
    from segdil.cli import cli
    from segdil.config import Config, SynthConfig
    from segdil.data.io import load_mask
    from segdil.data.synth_write import write_synthetic
    from segdil.models import create_model

    root = tmp_path / "data"
    write_synthetic(root, SynthConfig(n_train=2, n_val=3, size=37, max_object=16))
    torch.manual_seed(0)
    args = {"name": "hdc", "num_classes": 5, "widths": [8], "blocks": 1}
    model = create_model(**args)
    with torch.no_grad():
        model.head.bias.copy_(torch.tensor([0.5, 0.0, 0.2, -0.1, 0.1]))
    ckpt = tmp_path / "model.pt"
    save_checkpoint({"model_args": args, "model": model.state_dict(), "config": Config().to_dict(), "class_names": ["background", "disc", "square", "triangle", "line"]}, ckpt)

    runner = CliRunner()
    tta = ["--tta", "flip", "--tta", "scales=0.5,0.75,1,1.25"]
    for name, extra in (("plain", []), ("tta", tta)):
        out = runner.invoke(cli, ["predict", str(ckpt), str(root / "val" / "images"), "--out", str(tmp_path / f"pred_{name}"), "--device", "cpu", "--tile", "24", "--overlap", "8", *extra])
        assert out.exit_code == 0, out.output
        scored = runner.invoke(cli, ["eval", "--checkpoint", str(ckpt), "--data", str(root), "--device", "cpu", "--json", str(tmp_path / f"{name}.json"), *extra])
        assert scored.exit_code == 0, scored.output
    masks = sorted((tmp_path / "pred_tta").glob("*.png"))
    assert len(masks) == 3 and all(load_mask(m).shape == (37, 37) for m in masks)
    plain, augmented = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("plain", "tta"))
    assert plain["mIoU"] != augmented["mIoU"]
    assert any((load_mask(m) != load_mask(tmp_path / "pred_plain" / m.name)).any() for m in masks)
    folders = runner.invoke(cli, ["eval", "--pred", str(tmp_path / "pred_tta"), "--gt", str(root / "val" / "masks"), "--num-classes", "5", "--json", str(tmp_path / "files.json"), "--tta", "flip"])
    assert folders.exit_code == 2 and "--tta: needs --checkpoint/--data" in folders.output
