from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from segdil.cli import cli
from segdil.config import Config, config_from_dict, load_config, parse_override, resume_changes
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


def test_base_chain_of_two_levels_and_no_more(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text("base: b.yaml\ntrain: {max_steps: 3}\n")
    (tmp_path / "b.yaml").write_text("base: sub/c.yaml\ntrain: {batch_size: 2}\nmodel: {name: hdc, blocks: 2}\n")
    (tmp_path / "sub" / "c.yaml").write_text("train: {max_steps: 9, batch_size: 5, lr: 0.1}\nmodel: {name: hdc, widths: [8]}\n")
    cfg = load_config(tmp_path / "a.yaml")
    assert (cfg.train.max_steps, cfg.train.batch_size, cfg.train.lr, cfg.model) == (3, 2, 0.1, {"name": "hdc", "widths": [8], "blocks": 2})
    assert cfg.name == "a"
    (tmp_path / "sub" / "c.yaml").write_text("base: ../d.yaml\n")  # a third level
    with pytest.raises(SegdilError, match="at most 2 levels of base files") as info:
        load_config(tmp_path / "a.yaml")
    assert all(name in info.value.message for name in ("a.yaml", "b.yaml", "c.yaml", "d.yaml"))
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")  # a loop is a chain without end
    with pytest.raises(SegdilError, match="at most 2 levels of base files"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(SegdilError, match=r"b\.yaml: base: 'nowhere\.yaml': config file not found"):
        load_config(tmp_path / "a.yaml")


@pytest.mark.parametrize(
    "extra, where, message",
    [
        ({"c": "train: {max_step: 5}"}, "c", "train.max_step: unknown key"),
        ({"b": "model: {name: hdc, widthz: 3}"}, "b", "model.widthz: unknown key for model 'hdc'"),
        ({"c": "model: {name: hdc}", "a": "model: {blocks: x}"}, "a", "model.blocks: expected int, got 'x'"),
        ({"c": "model: {name: hdcc}", "a": "model: {blocks: 2}"}, "c", "model.name: unknown model 'hdcc'"),
        ({"c": "train: {lr: 0}"}, "c", "train.lr: 0.0 is out of range"),
        ({"b": "model: {name: hdc, rates: [1, 0]}"}, "b", "model.rates=[1, 0]: model 'hdc' refuses it"),
        ({"c": "model: {name: hdc, init_from: run/last.pt}"}, "c", "model.init_from: no longer a model setting; use train.init_from"),
        ({"b": "train: {amp: bf16}"}, "b", "train.amp: renamed to train.precision"),
    ],
)
def test_an_error_about_a_key_names_the_file_that_set_it(tmp_path, extra, where, message):
    files = {"a": "base: b.yaml\n", "b": "base: c.yaml\n", "c": "eval: {small_threshold: 16}\n"}
    for stem, content in files.items():
        (tmp_path / f"{stem}.yaml").write_text(content + extra.get(stem, "") + "\n")
    with pytest.raises(SegdilError) as info:
        load_config(tmp_path / "a.yaml")
    path = tmp_path / "a.yaml" if where == "a" else (tmp_path / f"{where}.yaml").resolve()
    assert info.value.message.startswith(f"{path}: {message}"), info.value.message


def test_a_value_set_again_by_set_is_the_sets_own(tmp_path):
    (tmp_path / "a.yaml").write_text("train: {max_steps: 0, lr: 0.1}\nmodel: {name: hdc, widthz: 3}\n")
    with pytest.raises(SegdilError) as info:  # --set replaced the file's value: the error names no file
        load_config(tmp_path / "a.yaml", ["model.name=fcn", "train.max_steps=x"])
    assert info.value.message.startswith("train.max_steps: expected int, got 'x'"), info.value.message
    assert load_config(tmp_path / "a.yaml", ["model.name=fcn", "train.max_steps=2"]).train.max_steps == 2  # another model: widthz went with hdc


def test_round_trip_through_the_saved_dict():
    cfg = load_config("configs/fcn8s_synth.yaml", ["train.max_steps=3"])
    again = config_from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict())))
    assert again == cfg


@pytest.mark.parametrize("amp, precision", [("auto", "auto"), ("bf16", "bf16"), ("off", "fp32")])
def test_a_saved_config_with_train_amp_reads_as_train_precision(amp, precision):
    """Checkpoints and runs written before train.precision stay readable (a user's config is told instead)."""
    saved = Config().to_dict()
    saved["train"] = {k: v for k, v in saved["train"].items() if k != "precision"} | {"amp": amp}
    assert config_from_dict(saved).train.precision == precision
    new = Config().to_dict()
    new["train"]["precision"] = precision
    assert "train.precision" not in resume_changes(saved, new) and "train.amp" not in resume_changes(saved, new)


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
        ("train.precision=fp8", "Error: train.precision: 'fp8' is not a precision; use one of auto, bf16, fp32"),
        ("train.amp=off", "Error: train.amp: renamed to train.precision; use train.precision (auto, bf16 or fp32: amp auto -> precision auto, bf16 -> bf16, off -> fp32)"),
        ("model.name=resnet", "Error: model.name: unknown model 'resnet'; valid names: fcn, hdc, hdc_context, seed_classifier, smp"),
        ("model.widthz=3", "Error: model.widthz: unknown key for model 'hdc'; valid keys: in_channels, num_classes, widths,"),
        ("model.blocks=x", "Error: model.blocks: expected int, got 'x'"),
        ("model.init_from=run/last.pt", "Error: model.init_from: no longer a model setting; use train.init_from"),
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


# configs/hdc-context_synth.yaml and configs/hard/hdc-context_synth.yaml resolved to this model
# before HDCContextNet's defaults became the flagship's (both, constructor defaults filled in)
FLAGSHIP_MODEL = {
    "name": "hdc_context",
    "in_channels": 3,
    "num_classes": 4,
    "widths": [32],
    "rates": [1, 2, 5],
    "blocks": 3,
    "norm": "batch",
    "stem_width": 0,
    "context_width": 32,
    "context_stages": 2,
    "context_rates": [1, 2, 5, 9],
    "context_blocks": 2,
    "image_pool": False,
    "fusion": "end",
    "fuse_width": 16,
    "fuse_skip": True,
    "identity_init": True,
    "zero_init_context": True,
    "memory_saver": "none",
    "context_encoder": None,
    "encoder_weights": None,
}
HARD_FLAGSHIP = Path("configs/hard/hdc-context_synth.yaml")
ABLATIONS = sorted(Path("configs/ablation").glob("*.yaml"))


def resolved_model(cfg: Config) -> dict:
    """The arguments the model is built with: the model section over the constructor's defaults."""
    import inspect

    from segdil.config.coerce import plain
    from segdil.models import model_class

    parameters = inspect.signature(model_class(cfg.model["name"])).parameters.values()
    return plain({**{p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}, **cfg.model})


@pytest.mark.parametrize("path", ["configs/hdc-context_synth.yaml", str(HARD_FLAGSHIP)])
def test_the_flagship_is_the_model_classes_defaults(path):
    cfg = load_config(path)
    assert cfg.model == {"name": "hdc_context"}
    assert resolved_model(cfg) == FLAGSHIP_MODEL


@pytest.mark.parametrize("path", ABLATIONS, ids=lambda p: p.stem)
def test_each_ablation_is_the_flagship_with_one_component_changed(path):
    """An ablation config is ``base:`` the hard flagship plus the keys it changes: it resolves to
    the flagship's model but for those keys, each of which changes the model, and trains alike."""
    own = yaml.safe_load(path.read_text())
    assert set(own) == {"base", "model"} and (path.parent / own["base"]).resolve() == HARD_FLAGSHIP.resolve()
    flagship, cfg = load_config(HARD_FLAGSHIP), load_config(path)
    mine, theirs = resolved_model(cfg), resolved_model(flagship)
    changed = {key for key in {*mine, *theirs} if mine.get(key) != theirs.get(key)}
    assert changed == set(own["model"]), (path.name, changed)
    # without a fusion layer there is nothing for fuse_skip to skip; the context stream's
    # stride and its width change together (each stage doubles the width)
    assert len(changed) == 1 or changed in ({"fuse_width", "fuse_skip"}, {"context_width", "context_stages"}), (path.name, changed)
    for section in ("data", "train", "eval"):
        assert cfg.to_dict()[section] == flagship.to_dict()[section], (path.name, section)


def test_resume_compares_models_with_their_defaults():
    from segdil.config import resume_changes

    full = {"model": {k: v for k, v in FLAGSHIP_MODEL.items() if k not in ("in_channels", "num_classes")}}
    assert resume_changes(full, {"model": {"name": "hdc_context"}}) == []
    assert resume_changes(full, {"model": {"name": "hdc_context", "blocks": 2}}) == ["model.blocks"]
    assert resume_changes(full, {"model": {"name": "hdc"}})[:1] == ["model.blocks"]
