"""Pretrained encoders offline (one line, at once) and from local files; warm starts with init_from."""

import pytest
import torch

from segdil.models import create_model
from segdil.models.smp import weights


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(weights, "online", lambda *a, **k: False)


def test_imagenet_offline_fails_at_once_with_one_line(offline, monkeypatch):
    import socket

    attempts = []  # "at once": no lookup or connection is tried (so no timeout or retry is waited for)

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network use in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    with pytest.raises(ValueError) as info:
        create_model("smp", encoder="resnet18", encoder_weights="imagenet")
    message = str(info.value)
    assert attempts == []
    assert "\n" not in message and "offline" in message
    assert "https://huggingface.co/smp-hub/resnet18.imagenet/" in message and "encoder_weights: /path/to/model.safetensors" in message


def test_unknown_weights_name_lists_the_known_ones(offline):
    with pytest.raises(ValueError, match="no such local weights file; names smp knows for resnet18: imagenet, ssl, swsl"):
        create_model("smp", encoder="resnet18", encoder_weights="imagenett")


def test_online_names_go_to_smp(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(weights, "online", lambda *a, **k: True)
    assert weights.resolve_encoder_weights("resnet18", "imagenet") == ("imagenet", None)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_weights_file(offline, tmp_path, suffix):
    source = create_model("smp", num_classes=2)
    path = tmp_path / f"encoder{suffix}"
    state = {k: v.contiguous() for k, v in source.net.encoder.state_dict().items()}
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    model = create_model("smp", num_classes=2, encoder_weights=str(path))
    for a, b in zip(source.net.encoder.parameters(), model.net.encoder.parameters()):
        assert torch.equal(a, b)


def test_hdc_init_from_another_run(tmp_path, capsys):
    from helpers import make_checkpoint

    from segdil.checkpoint import (
        load_checkpoint,
        model_from_checkpoint,
        save_checkpoint,
    )
    from segdil.errors import SegdilError

    source = make_checkpoint(tmp_path / "run" / "best.pt")  # hdc, 3 classes
    state = load_checkpoint(source)["model"]
    model = create_model("hdc", num_classes=5, widths=[8], rates=[1, 2, 5], blocks=1, init_from=str(source))
    err = capsys.readouterr().err
    assert err.startswith(f"init_from {source}: loaded ") and "2 with another shape" in err and "head.weight" in err
    own = model.state_dict()
    matched = [k for k in own if k in state and own[k].shape == state[k].shape]
    assert len(matched) == len(own) - 2 and all(torch.equal(own[k], state[k]) for k in matched)
    assert own["head.weight"].shape[0] == 5  # the head for another class count stays fresh
    # a checkpoint trained from init_from rebuilds without reading init_from again
    args = {"name": "hdc", "num_classes": 5, "widths": [8], "rates": [1, 2, 5], "blocks": 1, "init_from": str(tmp_path / "gone.pt")}
    save_checkpoint({"model_args": args, "model": model.state_dict()}, tmp_path / "ft.pt")
    rebuilt = model_from_checkpoint(tmp_path / "ft.pt")
    assert torch.equal(rebuilt.head.weight, model.head.weight)
    with pytest.raises(SegdilError, match="checkpoint not found"):
        create_model("hdc", num_classes=5, widths=[8], blocks=1, init_from=str(tmp_path / "gone.pt"))
    with pytest.raises(SegdilError, match="matches no parameter"):
        create_model("hdc", num_classes=5, widths=[16], blocks=1, rates=[1], stem_width=4, init_from=str(source))
