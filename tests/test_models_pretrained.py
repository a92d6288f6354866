"""Pretrained encoders offline (one line, at once) and from local files; warm starts with init_from."""

import time

import pytest
import torch

from segdil.models import create_model
from segdil.models.smp import weights


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(weights, "online", lambda *a, **k: False)


def test_imagenet_offline_fails_at_once_with_one_line(offline):
    start = time.perf_counter()
    with pytest.raises(ValueError) as info:
        create_model("smp", encoder="resnet18", encoder_weights="imagenet")
    message = str(info.value)
    assert time.perf_counter() - start < 5
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
