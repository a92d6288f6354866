from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from segdil.cli import cli
from segdil.config import Config, config_from_dict, load_config, parse_override
from segdil.errors import SegdilError

CONFIGS = sorted(p for p in Path("configs").glob("*.yaml") if not p.name.startswith("_"))


def run(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_load_and_build(path):
    cfg = load_config(path)
    assert cfg.name == path.stem
    assert cfg.data.root is None  # every shipped config trains on the built-in benchmark
    from segdil.models import create_model

    create_model(**cfg.model, num_classes=4)


def test_public_keys_are_settable():
    cfg = load_config(
        "configs/hdc_synth.yaml",
        ["model.name=fcn", "data.root=/some/where", "train.max_steps=7", "train.batch_size=3", "train.seed=5", "train.val_every=2", "train.ckpt_every=4", "data.scale_range=[0.5, 2]"],
    )
    assert cfg.model == {"name": "fcn"}  # another model starts from its own defaults
    assert cfg.data.root == "/some/where"
    assert (cfg.train.max_steps, cfg.train.batch_size, cfg.train.seed, cfg.train.val_every, cfg.train.ckpt_every) == (7, 3, 5, 2, 4)
    assert cfg.data.scale_range == [0.5, 2.0]


def test_base_is_merged_one_level_only(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\ntrain: {max_steps: 3}\n")
    (tmp_path / "b.yaml").write_text("train: {max_steps: 9, batch_size: 2}\nmodel: {name: hdc, blocks: 2}\n")
    cfg = load_config(tmp_path / "a.yaml")
    assert (cfg.train.max_steps, cfg.train.batch_size, cfg.model["blocks"]) == (3, 2, 2)
    (tmp_path / "b.yaml").write_text("base: c.yaml\n")
    with pytest.raises(SegdilError, match="one level of inheritance"):
        load_config(tmp_path / "a.yaml")


def test_round_trip_through_the_saved_dict():
    cfg = load_config("configs/fcn8s_synth.yaml", ["train.max_steps=3"])
    again = config_from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict())))
    assert again == cfg


def test_override_values_are_yaml():
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_override("a=null") == ("a", None)
    assert parse_override("a=true") == ("a", True)
    with pytest.raises(SegdilError, match="expected key.sub=value"):
        parse_override("novalue")


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.max_step=5", "Error: train.max_step: unknown key; valid keys in train: max_steps, batch_size,"),
        ("train.max_steps=abc", "Error: train.max_steps: expected int, got 'abc'"),
        ("train.amp=fp8", "Error: train.amp: expected one of 'auto', 'bf16', 'off', got 'fp8'"),
        ("model.name=resnet", "Error: model.name: unknown model 'resnet'; valid names: fcn, hdc, hdc_context, seed_classifier, smp"),
        ("model.widthz=3", "Error: model.widthz: unknown key for model 'hdc'; valid keys: in_channels, num_classes, widths,"),
        ("model.blocks=x", "Error: model.blocks: expected int, got 'x'"),
        ("nosuch.key=1", "Error: nosuch: unknown key; valid keys: model, data, train, eval, name"),
    ],
)
def test_config_errors_are_one_line_with_exit_code_2(override, message):
    result = run("train", "configs/hdc_synth.yaml", "--set", override, "--print-config")
    assert result.exit_code == 2, result.output
    assert result.output.startswith(message), result.output
    assert result.output.count("\n") == 1


def test_missing_config_file_and_bad_yaml(tmp_path):
    result = run("train", str(tmp_path / "missing.yaml"), "--print-config")
    assert result.exit_code == 2 and "config file not found" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    result = run("train", str(bad), "--print-config")
    assert result.exit_code == 2 and "bad.yaml: line" in result.output and "is not valid YAML" in result.output


def test_print_config_shows_the_resolved_config():
    result = run("train", "configs/hdc_synth.yaml", "--set", "train.max_steps=11", "--print-config")
    assert result.exit_code == 0
    printed = yaml.safe_load(result.output)
    assert printed["train"]["max_steps"] == 11
    assert printed["model"]["rates"] == [1, 2, 5]
    assert config_from_dict(printed) == load_config("configs/hdc_synth.yaml", ["train.max_steps=11"])


def test_defaults_are_a_valid_config():
    assert isinstance(config_from_dict({}), Config)


def test_models_command_lists_every_model():
    result = run("models", "--size", "48")
    assert result.exit_code == 0, result.output
    for name in ("hdc", "fcn", "seed_classifier", "smp"):
        assert f"\n{name} " in result.output
