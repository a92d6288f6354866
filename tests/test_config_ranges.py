"""Every numeric config key with 0, -1 and a huge value (issue #30): each is accepted by design (listed
below with the reason) or refused in one line naming the key, before anything is created. The keys
come from the schema's dataclasses (introspection), not from a list; a few rows go through the CLI."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from bad_input_kit import CONFIG, TINY, assert_one_line_error, invoke, snapshot, train_args

from segdil.config import SHAPES, Config, check_model_args, check_training_memory, load_config
from segdil.data.synth import validate_synth_config
from segdil.errors import SegdilError

HUGE = 10**12
VALUES = {"0": 0, "-1": -1, "huge": HUGE}


def _numeric(hint) -> bool:
    if hint in (int, float):
        return True
    return any(_numeric(arg) for arg in typing.get_args(hint) if arg is not type(None) and typing.get_origin(arg) is not typing.Literal)


def numeric_keys(cls=Config, prefix: str = "") -> dict[str, typing.Any]:
    """Dotted key -> default of every field of the schema whose type holds a number (lists of numbers too)."""
    keys = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint, key = hints[f.name], f"{prefix}{f.name}"
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(hint):
            keys.update(numeric_keys(hint, key + "."))
        elif _numeric(hint):  # int, float, lists of them, Optional or "auto" alternatives; not bool, not model's dict[str, Any]
            keys[key] = default
    return keys


KEYS = numeric_keys()


def typed(key: str, value: int) -> str:
    """``value`` as the key's YAML: a list key gets as many values as its shape asks for (one otherwise)."""
    default = KEYS[key]
    hint_is_list = isinstance(default, list) or key.endswith("class_weights")
    if not hint_is_list:
        return str(value)
    count = SHAPES[key][0] if key in SHAPES and SHAPES[key][0] else 1
    return "[" + ",".join([str(value)] * count) + "]"


def refusal(key: str, value: int) -> str | None:
    """The one-line refusal of ``key=value`` from the config checks training runs before its work dir; None: accepted."""
    try:
        cfg = load_config(CONFIG, [*TINY, f"{key}={typed(key, value)}"])
        check_training_memory(cfg, check_model_args(cfg.model))
        if cfg.data.root is None:
            validate_synth_config(cfg.data.synth)
    except SegdilError as exc:
        return exc.message
    return None


# (key, value) pairs accepted by design, each with why; every other pair of the table must be refused
ACCEPTED = {
    ("data.synth.objects_per_image", "0"): "images with no objects are valid (background only)",
    **{("data.synth.seed", v): "any integer seeds the generator (taken modulo 2**63)" for v in VALUES},
    ("data.color_jitter", "0"): "no colour jitter",
    ("data.color_jitter", "huge"): "the jitter saturates: brightness and contrast are clipped to the uint8 range, hue is capped at 0.5",
    ("data.noise", "0"): "no noise",
    **{("data.mean", v): "a normalisation constant: any value is a valid shift" for v in VALUES},
    ("data.std", "huge"): "a normalisation constant: a large one only shrinks the inputs",
    ("data.num_workers", "0"): "load in the main process",
    ("train.max_steps", "huge"): "a long run: its ETA is shown, train.budget_s or Ctrl-C ends it, --resume continues it",
    ("train.lr", "huge"): "not bounded by design: a diverging run stops at its first non-finite loss with one line",
    ("train.momentum", "0"): "plain SGD",
    ("train.weight_decay", "0"): "no weight decay",
    ("train.weight_decay", "huge"): "not bounded by design: the weights decay towards 0, as asked",
    ("train.warmup_steps", "0"): "no warm-up",
    ("train.warmup_steps", "huge"): "the learning rate stays in warm-up: training says so once at start (schedule_notes)",
    ("train.poly_power", "huge"): "the rate drops to ~0 after the first step: a valid, if odd, schedule",
    ("train.grad_clip", "huge"): "clipping that never triggers",
    **{(f"train.loss.{term}", v): "a loss weight: 0 turns the term off, a large one scales the loss" for term in ("ce", "dice", "focal", "lovasz") for v in ("0", "huge")},
    ("train.loss.class_weights", "0"): "a class weight of 0 ignores that class in the loss",
    ("train.loss.class_weights", "huge"): "class weights are relative",
    ("train.seed", "0"): "seed 0",
    ("train.val_every", "huge"): "validation at the last step only: training says so once at start (schedule_notes)",
    ("train.ckpt_every", "huge"): "a checkpoint at the last step (and on Ctrl-C / SIGTERM)",
    ("train.log_every", "huge"): "a log line at the last step",
    ("train.budget_s", "huge"): "a clock that never ends the run: max_steps does",
    ("eval.size_bins", "huge"): "one size bin holding every object",
    ("eval.small_threshold", "huge"): "every object counts as small",
    ("eval.background_class", "0"): "class 0 is the background (the default)",
}
TABLE = [(key, label) for key in KEYS for label in VALUES]


def test_the_table_covers_every_numeric_key_of_the_schema():
    assert {"data.crop_size", "train.batch_size", "data.synth.size", "eval.size_bins", "train.loss.class_weights", "train.budget_s"} <= set(KEYS)
    assert not any(key.endswith(("name", "device", "precision", "optimizer", "schedule", "hflip")) for key in KEYS)
    assert {key for key, _ in ACCEPTED} <= set(KEYS), "an ACCEPTED row names a key the schema no longer has"


@pytest.mark.parametrize(("key", "label"), TABLE, ids=[f"{k}={v}" for k, v in TABLE])
def test_every_numeric_key_is_accepted_by_design_or_refused_by_name(key, label, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = refusal(key, VALUES[label])
    if (key, label) in ACCEPTED:
        assert message is None, (ACCEPTED[key, label], message)
    else:
        assert message is not None, f"{key}={label} accepted; refuse it or list it in ACCEPTED with the reason"
        assert key in message and "\n" not in message and len(message) < 700, message
    assert not any(tmp_path.iterdir())  # config checks create nothing


@pytest.mark.parametrize(
    ("setting", "needle"),
    [("data.crop_size=0", "data.crop_size"), ("train.seed=-1", "train.seed"), ("data.val_pad_multiple=1000000000000", "data.val_pad_multiple"), ("data.synth.size=1000000000000", "data.synth.size")],
)
def test_refused_values_through_the_cli_leave_nothing(setting, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert_one_line_error(invoke(train_args(tmp_path / "run", setting)), 2, needle)
    assert snapshot(tmp_path) == before


def test_accepted_huge_values_train_through_the_cli(tmp_path, monkeypatch):
    """Values the table accepts by design do train: saturating jitter, a never-ending budget, huge log/ckpt intervals."""
    monkeypatch.chdir(tmp_path)
    extra = ["data.color_jitter=1000000000000", "train.budget_s=1000000000000", "train.log_every=1000000000000", "train.ckpt_every=1000000000000", "train.max_steps=1"]
    result = invoke(train_args(tmp_path / "run", *extra))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "last.pt").is_file()


def test_imagenet_offline_is_one_line_before_the_work_dir(tmp_path, monkeypatch):
    from helpers import refuse_network

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    attempts = refuse_network(monkeypatch)
    before = snapshot(tmp_path)
    line = assert_one_line_error(invoke(train_args(tmp_path / "run", "model.name=smp", "model.encoder_weights=imagenet")), 2, "model.encoder_weights='imagenet'", "offline")
    assert "https://huggingface.co/smp-hub/resnet18.imagenet/" in line and "encoder_weights: /path/to/model.safetensors" in line  # the good text, kept
    assert snapshot(tmp_path) == before and len(attempts) <= 1


def test_a_state_dict_for_another_encoder_is_refused_by_name(tmp_path):
    import torch

    torch.save({"conv1.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(SegdilError, match=r"^model\.encoder_weights=.*other\.pt.*state_dict"):
        check_model_args({"name": "smp", "encoder_weights": str(tmp_path / "other.pt")}, weights=True)
    check_model_args({"name": "smp", "encoder_weights": str(tmp_path / "other.pt")})  # without weights=True the file is not read


def test_memory_refusal_names_the_cause_with_the_estimate():
    cfg = load_config(CONFIG, [*TINY, "data.crop_size=4096"])
    check_training_memory(cfg, have=2**40)  # fits a 1 TB machine
    with pytest.raises(SegdilError, match=r"^data\.crop_size=4096, train\.batch_size=4: one training batch .* needs at least 1\.2 GB .* this machine has 1\.0 GB"):
        check_training_memory(cfg, have=2**30)
