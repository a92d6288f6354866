"""One precision vocabulary (issue 27, item 7): ``train.precision``, ``segdil predict``, ``eval`` and
``bench --precision`` and ``segdil.load(..., precision=...)`` take the same values,
``segdil.device.PRECISIONS``, and refuse the same bad value with the same one-line error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import segdil
from segdil.cli import cli
from segdil.config import load_config
from segdil.data.io import save_image, save_mask
from segdil.device import PRECISIONS
from segdil.errors import SegdilError

BAD = "fp16"


def assert_refused(message: str, where: str) -> None:
    """One line naming the option or key and the bad value, listing every precision."""
    line = message.strip()
    assert "\n" not in line, message
    assert f"{where}: {BAD!r} is not a precision; use one of auto, bf16, fp32" in line, message


def test_the_vocabulary_is_auto_bf16_fp32():
    assert PRECISIONS == ("auto", "bf16", "fp32")


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    save_image(path, np.random.default_rng(0).integers(0, 256, (16, 20, 3), dtype=np.uint8))
    return path


def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    rng = np.random.default_rng(1)
    save_image(root / "val" / "images" / "a.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    save_mask(root / "val" / "masks" / "a.png", rng.integers(0, 3, (16, 16), dtype=np.uint8))
    (root / "classes.yaml").write_text("classes: [bg, a, b]\n")
    return root


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


CONV_CEILING = ["bench", "--conv-ceiling", "--device", "cpu", "--size", "8", "--batch", "1", "--steps", "1", "--warmup", "0", "--conv-channels", "2"]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_config_takes_every_precision(precision):
    assert load_config(None, [f"train.precision={precision}"]).train.precision == precision


def test_config_refuses_a_bad_precision():
    with pytest.raises(SegdilError) as info:
        load_config(None, [f"train.precision={BAD}"])
    assert_refused(info.value.message, "train.precision")
    result = invoke("train", "configs/hdc_synth.yaml", "--set", f"train.precision={BAD}", "--print-config")
    assert result.exit_code == 2
    assert_refused(result.output, "train.precision")


@pytest.mark.parametrize("precision", PRECISIONS)
def test_predict_eval_bench_and_the_api_take_every_precision(tmp_path, tiny_checkpoint, photo, precision):
    ckpt = tiny_checkpoint()
    predicted = invoke("predict", ckpt, photo, "--out", tmp_path / "out", "--device", "cpu", "--precision", precision)
    assert predicted.exit_code == 0, predicted.output
    assert (tmp_path / "out" / "photo.png").is_file()
    scored = invoke("eval", "--checkpoint", ckpt, "--data", dataset(tmp_path), "--device", "cpu", "--precision", precision)
    assert scored.exit_code == 0, scored.output
    benched = invoke(*CONV_CEILING, "--precision", precision)
    assert benched.exit_code == 0, benched.output
    mask = segdil.load(ckpt, device="cpu", precision=precision).predict(np.zeros((16, 20, 3), np.uint8))
    assert mask.shape == (16, 20)


def test_predict_eval_bench_and_the_api_refuse_a_bad_precision(tmp_path, tiny_checkpoint, photo):
    ckpt = tiny_checkpoint()
    for args in (
        ["predict", ckpt, photo, "--out", tmp_path / "out", "--device", "cpu"],
        ["eval", "--checkpoint", ckpt, "--data", dataset(tmp_path), "--device", "cpu"],
        CONV_CEILING,
    ):
        result = invoke(*args, "--precision", BAD)
        assert result.exit_code == 2, result.output
        assert_refused(result.output, "--precision")
    assert not (tmp_path / "out").exists()
    with pytest.raises(SegdilError) as info:
        segdil.load(ckpt, device="cpu", precision=BAD)
    assert_refused(info.value.message, "precision")


def test_the_old_words_are_gone():
    """``train.amp`` is told where it went, with the value mapping; bench has no --amp/--no-amp."""
    with pytest.raises(SegdilError) as info:
        load_config(None, ["train.amp=off"])
    assert info.value.message.startswith("train.amp: renamed to train.precision") and "off -> fp32" in info.value.message
    for flag in ("--amp", "--no-amp"):
        result = invoke(*CONV_CEILING, flag)
        assert result.exit_code == 2 and "No such option" in result.output and flag in result.output, result.output
