"""Receptive field, HDC rule, exact coverage, comparison stacks, plots, gradient ERF and `segdil rf`."""

from __future__ import annotations

import itertools
import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from segdil.checkpoint import save_checkpoint
from segdil.commands.rf import command as rf_command
from segdil.model_rf import build_model
from segdil.models import create_model, rf_stack_args
from segdil.rf import analyze_stack, comparison_stack, covering_group, gridding_group, hdc_rule
from segdil.rf.erf import effective_receptive_field, erf_summary

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def brute_force_counts(stack: tuple[int, ...], kernel: int = 3) -> Counter:
    """Paths per 1-D offset by enumerating every choice of tap in every layer."""
    taps = [[(t - (kernel - 1) // 2) * r for t in range(kernel)] for r in stack]
    return Counter(sum(choice) for choice in itertools.product(*taps))


def run_rf(*args: str):
    return CliRunner().invoke(rf_command, list(args), catch_exceptions=False)


def write_config(tmp_path: Path, model: str) -> Path:
    path = tmp_path / "model.yaml"
    path.write_text("model:\n" + "".join(f"  {line}\n" for line in model.strip().splitlines()))
    return path


# --------------------------------------------------------------------------- known values


def test_rates_125():
    report = analyze_stack((1, 2, 5))
    assert report.receptive_field == 17
    assert report.coverage == 1.0 and report.holes == 0 and not report.gridding
    assert report.hdc_rule_ok and report.M2 == 2 and report.common_factor == 1


def test_rates_125_repeated_twice():
    report = analyze_stack((1, 2, 5), repeat=2)
    assert report.receptive_field == 33
    assert report.coverage == 1.0 and not report.gridding
    assert report.stack == (1, 2, 5, 1, 2, 5)


def test_rates_248_fails_rule_and_grids():
    report = analyze_stack((2, 4, 8))
    assert report.receptive_field == 29
    assert not report.hdc_rule_ok and report.M2 == 4
    assert report.reached == 225 and report.coverage == pytest.approx(225 / 841)
    assert report.holes == 841 - 225 and report.gridding and report.common_factor == 2


def test_rates_222_passes_rule_yet_grids():
    report = analyze_stack((2, 2, 2))
    assert report.M2 == 2 and report.hdc_rule_ok
    assert report.gridding and report.holes > 0 and report.coverage < 1


def test_hdc_rule_formula():
    # M_3 = 5; M_2 = max(5 - 4, 5 - 2·3, 2) = 2; M_1 = max(2 - 2, 2 - 2·1, 1) = 1
    assert hdc_rule((1, 2, 5)) == [1, 2, 5]
    assert hdc_rule((1, 2, 9))[1] == 5  # max(9 - 4, 9 - 14, 2)
    assert not analyze_stack((1, 2, 9)).hdc_rule_ok


@pytest.mark.parametrize("stack", [(1, 2, 5), (2, 2, 2), (2, 4, 8), (1, 3), (3, 1, 2, 2)])
def test_path_counts_match_enumeration(stack):
    report = analyze_stack(stack)
    radius = report.receptive_field // 2
    expected = brute_force_counts(stack)
    got = {i - radius: int(c) for i, c in enumerate(report.path_counts_1d) if c}
    assert got == dict(expected)
    assert report.path_counts().sum() == 9 ** len(stack)


def test_path_counts_match_convolution_2d():
    """Pushing a delta through all-ones dilated 3×3 convolutions gives the 2-D path-count map."""
    stack = (1, 2, 2)
    report = analyze_stack(stack)
    rf = report.receptive_field
    x = torch.zeros(1, 1, rf, rf, dtype=torch.float64)
    x[0, 0, rf // 2, rf // 2] = 1
    for r in stack:
        x = torch.nn.functional.conv2d(x, torch.ones(1, 1, 3, 3, dtype=torch.float64), padding=r, dilation=r)
    assert np.array_equal(x[0, 0].numpy().astype(np.int64), report.path_counts())


def test_holes_list_and_stem():
    report = analyze_stack((2, 2))
    assert report.hole_offsets_1d() == [-3, -1, 1, 3]
    assert len(report.hole_offsets()) == report.holes == 81 - 25  # 5 of 9 offsets per axis: 0, ±2, ±4
    assert (1, 0) in report.hole_offsets() and (2, 2) not in report.hole_offsets()
    with_stem = analyze_stack((2, 2), stem=1)  # an undilated 3×3 layer fills the odd offsets
    assert with_stem.receptive_field == 11 and not with_stem.gridding and with_stem.stack == (1, 2, 2)


def test_group_rule_stack_coverage():
    report = analyze_stack((1, 2, 3), repeat=3)
    assert report.receptive_field == 1 + 2 * 18 and not report.gridding
    assert report.M == hdc_rule((1, 2, 3))


def test_invalid_stacks_raise():
    for args in [((),), ((0, 1),), ((1, 2), 0)]:
        with pytest.raises(ValueError):
            analyze_stack(*args)


def test_large_stack_switches_to_float_counts():
    report = analyze_stack((1, 2, 5), repeat=20)
    assert report.path_counts_1d.dtype == np.float64 and report.coverage == 1.0


# --------------------------------------------------------------------------- comparison stacks


@pytest.mark.parametrize("rates,repeat", [((1, 2, 5), 1), ((1, 2, 5), 2), ((2, 4, 8), 1), ((2, 2, 2), 1), ((3,), 2), ((1, 2, 3), 3)])
def test_comparison_has_same_rf_and_other_verdict(rates, repeat):
    report = analyze_stack(rates, repeat)
    other, label = comparison_stack(report)
    assert other.receptive_field == report.receptive_field
    assert other.gridding != report.gridding and other.repeat == repeat
    if other.gridding:
        assert other.common_factor > 1 and len(other.rates) == len(rates)
    assert label


def test_comparison_groups():
    assert gridding_group(8, 3) == (2, 2, 4)
    assert gridding_group(7, 3) is None and gridding_group(7, 1) == (7,)
    assert covering_group(8, 3) == (1, 2, 5)
    assert covering_group(14, 3) is None  # three 3×3 layers cover at most 1 + 3 + 9 = 13 without holes
    assert comparison_stack(analyze_stack((1,))) is None


# --------------------------------------------------------------------------- the hdc model uses it


def test_hdc_model_warns_on_gridding_and_raises_when_strict():
    with pytest.warns(UserWarning, match="coverage"):
        create_model("hdc", widths=[4], rates=[2, 2, 2], blocks=1)
    with pytest.raises(ValueError, match="holes"):
        create_model("hdc", widths=[4], rates=[2, 2, 2], blocks=1, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create_model("hdc", widths=[4], rates=[1, 2, 5], blocks=1, strict=True)


def test_rf_stack_args():
    assert rf_stack_args({"name": "hdc", "rates": [1, 2, 3], "blocks": 2, "stem_width": 8}) == {"rates": (1, 2, 3), "repeat": 2, "kernel": 3, "stem": 1}
    assert rf_stack_args({"name": "hdc"})["rates"] == (1, 2, 5)
    with pytest.raises(ValueError, match="fcn"):
        rf_stack_args({"name": "fcn"})


# --------------------------------------------------------------------------- gradient ERF


@pytest.mark.parametrize("rates,stem_width", [((2, 2), 0), ((1, 2), 4)])
def test_erf_of_tiny_hdc_lies_inside_the_analytic_rf(rates, stem_width):
    args = {"name": "hdc", "widths": [4], "rates": list(rates), "blocks": 2, "stem_width": stem_width, "num_classes": 2}
    report = analyze_stack(**rf_stack_args(args))
    model = build_model(args, seed=0)
    size = 32
    erf = effective_receptive_field(model, size, samples=2, seed=0)
    c, r = size // 2, report.receptive_field // 2
    inside = np.zeros_like(erf, dtype=bool)
    inside[c - r : c + r + 1, c - r : c + r + 1] = True
    assert erf[c, c] > 0
    assert np.all(erf[~inside] == 0) and erf[inside].sum() > 0
    holes = report.path_counts() == 0
    assert np.all(erf[c - r : c + r + 1, c - r : c + r + 1][holes] == 0)
    summary = erf_summary(erf, report)
    assert summary["inside_rf"] == 1.0 and summary["nonzero_outside_rf"] == 0 and summary["holes_with_gradient"] == 0
    assert summary["extent"] <= report.receptive_field


def test_erf_rejects_classifiers():
    from segdil.errors import SegdilError

    with pytest.raises(SegdilError, match="classifier"):
        build_model({"name": "seed_classifier"})


# --------------------------------------------------------------------------- the command


def test_cli_json_known_values():
    result = run_rf("--rates", "2,4,8", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in ("receptive_field", "coverage", "holes", "gridding", "hdc_rule_ok", "M2", "common_factor", "rates", "repeat", "stack", "M"):
        assert key in data
    assert data["receptive_field"] == 29 and data["coverage"] == pytest.approx(225 / 841)
    assert data["gridding"] is True and data["hdc_rule_ok"] is False and data["common_factor"] == 2
    data = json.loads(run_rf("--rates", "1,2,5", "--repeat", "2", "--json").output)
    assert data["receptive_field"] == 33 and data["coverage"] == 1.0 and data["stack"] == [1, 2, 5, 1, 2, 5]


def test_cli_human_report_and_strict():
    result = run_rf("--rates", "2,2,2")
    assert result.exit_code == 0
    assert "GRIDDING" in result.output and "M2 = 2 ≤ 3, passes" in result.output
    assert run_rf("--rates", "2,2,2", "--strict").exit_code == 1
    ok = run_rf("--rates", "1 2 5", "--strict")
    assert ok.exit_code == 0 and "no gridding" in ok.output and "17×17" in ok.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["--rates", "1,x"], "--rates"),
        (["--rates", "0,2"], "--rates"),
        (["--rates", "1,2", "--kernel", "4"], "--kernel"),
        (["--rates", "1,2", "--repeat", "0"], "--repeat"),
        (["--rates", "1,2", "--erf", "x.png"], "--erf"),
        (["--rates", "1,2", "--config", "missing.yaml"], "--rates"),
        (["--rates", "600", "--plot", "x.png"], "--plot"),
        ([], "--rates"),
    ],
)
def test_cli_user_errors(args, message):
    result = run_rf(*args)
    assert result.exit_code == 2 and message in result.output


def test_cli_plot_writes_png(tmp_path):
    out = tmp_path / "figs" / "rf.png"
    result = run_rf("--rates", "1,2,5", "--plot", str(out))
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000 and out.read_bytes()[:8] == PNG_SIGNATURE
    assert "(2, 2, 4)" in result.output
    assert sorted(p.name for p in out.parent.iterdir()) == ["rf.png"]  # no temporary file left


def test_cli_config_erf_json(tmp_path):
    config = write_config(tmp_path, "name: hdc\nrates: [2, 2]\nwidths: [4]\nblocks: 1\nnum_classes: 2")
    out = tmp_path / "erf.png"
    result = run_rf("--config", str(config), "--erf", str(out), "--size", "24", "--samples", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["model"] == "hdc" and data["receptive_field"] == 9 and data["gridding"] is True
    assert data["erf"]["nonzero_outside_rf"] == 0 and data["erf"]["holes_with_gradient"] == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    override = json.loads(run_rf("--config", str(config), "--set", "model.rates=[1,2,5]", "--json").output)
    assert override["receptive_field"] == 17 and override["gridding"] is False


def test_cli_non_hdc_config(tmp_path):
    config = write_config(tmp_path, "name: fcn\npools: 1\nwidth: 4\nconvs_per_stage: 1\nhead_convs: 0\nnum_classes: 2")
    result = run_rf("--config", str(config))
    assert result.exit_code == 2 and "--erf" in result.output
    out = tmp_path / "erf.png"
    result = run_rf("--config", str(config), "--erf", str(out), "--size", "16", "--samples", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert "receptive_field" not in data and data["erf"]["extent"] > 1 and out.is_file()


def test_cli_checkpoint(tmp_path):
    args = {"name": "hdc", "widths": [4], "rates": [1, 2], "blocks": 1, "num_classes": 2}
    model = create_model(**args)
    ckpt = tmp_path / "model.pt"
    save_checkpoint({"model_args": args, "model": model.state_dict()}, ckpt)
    result = run_rf("--checkpoint", str(ckpt), "--erf", str(tmp_path / "erf.png"), "--size", "16", "--samples", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["receptive_field"] == 7 and "weights from" in data["erf"]["source"]
    wider = write_config(tmp_path, "name: hdc\nwidths: [6]\nrates: [1, 2]\nblocks: 1\nnum_classes: 2")
    mismatch = run_rf("--config", str(wider), "--checkpoint", str(ckpt), "--erf", str(tmp_path / "bad.png"))
    assert mismatch.exit_code == 2 and "--checkpoint" in mismatch.output
    assert not (tmp_path / "bad.png").exists()
