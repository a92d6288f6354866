"""Pretrained encoders offline (one line, at once) and from local files; warm starts of every model with train.init_from."""

import inspect

import pytest
import torch
from helpers import TINY_SYNTH, make_checkpoint, refuse_network

from segdil.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from segdil.config import load_config
from segdil.errors import SegdilError
from segdil.models import MODELS, create_model
from segdil.models.smp import weights
from segdil.train.warm_start import read_init_from, warm_start


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(weights, "online", lambda *a, **k: False)


def test_imagenet_offline_fails_at_once_with_one_line(offline, monkeypatch):
    attempts = refuse_network(monkeypatch)  # "at once": no lookup or connection is tried (so no timeout or retry is waited for)
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


def test_warm_start_copies_what_matches_and_keeps_another_head_fresh(tmp_path):
    source = make_checkpoint(tmp_path / "run" / "best.pt")  # hdc, 3 classes
    state = load_checkpoint(source)["model"]
    args = {"name": "hdc", "num_classes": 5, "widths": [8], "rates": [1, 2, 5], "blocks": 1}
    model, lines = create_model(**args), []
    report = warm_start(model, read_init_from(source, args), echo=lines.append)
    assert len(lines) == 1 and lines[0].startswith(f"train.init_from {source}: loaded ") and "2 with another shape" in lines[0] and "head.weight" in lines[0]
    own = model.state_dict()
    assert report["shape_mismatch"] == ["head.weight", "head.bias"] and report["loaded"] == [k for k in own if not k.startswith("head.")]
    assert all(torch.equal(own[k], state[k]) for k in report["loaded"])
    assert own["head.weight"].shape[0] == 5  # the head for another class count stays fresh
    with pytest.raises(SegdilError, match=r"^train\.init_from: .*gone\.pt: checkpoint not found"):
        read_init_from(tmp_path / "gone.pt", args)
    with pytest.raises(SegdilError, match="matches no parameter"):
        read_init_from(source, {**args, "widths": [16], "rates": [1], "stem_width": 4})


@pytest.mark.parametrize("name", sorted(MODELS))
def test_warm_start_from_the_same_model_loads_every_tensor(name, tmp_path):
    source = make_checkpoint(tmp_path / "source.pt", name, seed=0)
    ckpt = load_checkpoint(source)
    torch.manual_seed(1)  # other initial weights than the source's
    model = create_model(**ckpt["model_args"])
    report = warm_start(model, read_init_from(source, ckpt["model_args"]), echo=lambda line: None)
    own = model.state_dict()
    assert report["loaded"] == list(own) and not (report["shape_mismatch"] or report["not_in_checkpoint"] or report["unused"])
    assert all(torch.equal(own[k], ckpt["model"][k]) for k in own)


def test_training_starts_from_init_from_and_resumes_without_it(tmp_path, capsys):
    from segdil.train.main import train

    source = make_checkpoint(tmp_path / "source.pt")  # hdc tiny_args, 3 classes
    overrides = [*TINY_SYNTH, "data.synth.n_train=4", "data.synth.max_object=12", "train.batch_size=2", "train.warmup_steps=0", "train.max_steps=1", "model.widths=[8]", "model.blocks=1"]
    cfg = load_config("configs/hdc_synth.yaml", [*overrides, f"train.init_from={tmp_path / 'gone.pt'}"])
    with pytest.raises(SegdilError, match="train.init_from: .*checkpoint not found"):
        train(cfg, work_dir=str(tmp_path / "never"))
    assert not (tmp_path / "never").exists()  # checked before anything is written

    cfg = load_config("configs/hdc_synth.yaml", [*overrides, f"train.init_from={source}"])
    train(cfg, work_dir=str(tmp_path / "run"))
    assert f"train.init_from {source}: loaded " in capsys.readouterr().err  # the run's log, beside its config
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["config"]["train"]["init_from"] == str(source) and "init_from" not in ckpt["model_args"]
    # every constructor argument is saved, defaults included: a later change of a default does not change what rebuilds
    defaults = {n for n, p in inspect.signature(MODELS["hdc"]).parameters.items() if p.default is not inspect.Parameter.empty}
    assert defaults <= set(ckpt["model_args"]) and ckpt["model_args"]["blocks"] == 1
    source.unlink()  # neither a resumed run nor the checkpoint itself reads init_from again
    model_from_checkpoint(tmp_path / "run" / "last.pt")
    with pytest.raises(SegdilError, match=r"on resume only .* may change.*--set train\.init_from=.*last\.pt starts it from these weights"):
        train(load_config("configs/hdc_synth.yaml", [*overrides, f"train.init_from={source}", "model.blocks=2"]), work_dir=str(tmp_path / "run"), resume=True)
    result = train(load_config("configs/hdc_synth.yaml", [*overrides, f"train.init_from={source}", "train.max_steps=2"]), work_dir=str(tmp_path / "run"), resume=True)
    assert result["step"] == 2 and "train.init_from /" not in capsys.readouterr().err


def test_a_checkpoint_of_an_earlier_version_with_model_init_from_still_loads(tmp_path):
    path = make_checkpoint(tmp_path / "old.pt")
    ckpt = load_checkpoint(path)
    ckpt["model_args"] = {**ckpt["model_args"], "init_from": str(tmp_path / "gone.pt")}  # as warm-started HDC runs saved it
    save_checkpoint(ckpt, path)
    model = model_from_checkpoint(path)
    assert not hasattr(model, "init_from")
