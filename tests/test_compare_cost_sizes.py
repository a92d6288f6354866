"""``segdil compare --cost-sizes``: every model's cost against image size in the report."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers import TINY_SYNTH

from segdil.compare.presets import shipped_config

TINY = [*TINY_SYNTH, "data.synth.max_object=16", "data.synth.n_train=4", "data.synth.n_val=2", "train.batch_size=2", "hdc_synth:model.widths=[4]", "hdc_synth:model.blocks=1", "fcn-pool*:model.width=4"]


@pytest.mark.slow
def test_cost_sizes_puts_every_model_at_every_size_in_the_report(tmp_path):
    from segdil.commands.compare import command

    out = tmp_path / "cmp"
    config_dir = shipped_config("hdc_synth").parent
    args = [str(config_dir / "hdc_synth.yaml"), str(config_dir / "fcn-pool4_synth.yaml"), "--seeds", "1", "--steps", "2", "--out", str(out), "--device", "cpu", "--cost-sizes", "64x32,32"]
    for item in TINY:
        args += ["--set", item]
    result = CliRunner().invoke(command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output

    cost = json.loads((out / "results.json").read_text())["cost_sizes"]
    assert set(cost) == {"train", "infer"}
    for mode in ("train", "infer"):
        assert cost[mode]["sizes"] == ["32x32", "64x32"]  # smallest first
        assert [m["label"] for m in cost[mode]["models"]] == ["hdc_synth", "fcn-pool4_synth"]
        for model in cost[mode]["models"]:
            flops = [row["flops_per_step"] for row in model["rows"]]
            assert flops[1] == pytest.approx(2 * flops[0], rel=0.05)  # fully convolutional: twice the pixels
            assert all(v["status"] == "ok" and v["img_per_s"] > 0 and v["peak_memory_mb"] > 0 for row in model["rows"] for v in row["variants"])
    assert cost["train"]["batch"] == 2 and cost["infer"]["batch"] == 1
    hdc_train = cost["train"]["models"][0]
    assert hdc_train["model"]["widths"] == [4]  # the trained model, not the config's default
    assert len(hdc_train["variants"]) == 2 and len(cost["train"]["models"][1]["variants"]) == 1  # the memory saver only where the model has one
    assert (out / "figures" / "cost_sizes_train.png").stat().st_size > 0 and (out / "figures" / "cost_sizes_infer.png").stat().st_size > 0

    markdown = (out / "report.md").read_text()
    section = markdown.split("## Cost against image size", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| hdc_synth") or line.startswith("| fcn-pool4_synth")]
    assert len(rows) == 4  # 2 models x 2 sizes
    assert "| fcn-pool4_synth | 64x32 |" in section and "figures/cost_sizes_train.png" in section
    assert "hdc_synth: trains " in section and "with the memory saver" in section and "runs inference on" in section
    assert "Not run or failed" not in section
    assert "(training at batch 2, inference at batch 1;" in section


def _entry(status, reason=None, saver=False):
    figures = {"img_per_s": 2.0, "peak_memory_mb": 900.0} if status == "ok" else {"reason": reason}
    return {"name": "v" + ("+memory_saver" if saver else ""), "memory_saver": saver, "status": status, **figures}


def test_the_section_says_why_a_cell_has_no_figure():
    from segdil.compare.cost_sizes import cost_sizes_section

    def model(label, variants):
        return {"label": label, "variants": [v["name"] for v in variants], "rows": [{"size_text": "64x32", "gflops_per_image": 1.5, "variants": variants}], "memory_fit": {}, "largest_image": {v["name"]: None for v in variants}}

    sweep = {"max_memory_gb": 24, "variant": "v", "device_name": "cpu", "threads": 2, "load_average": {"before": [0.0, 0.0, 0.0]}, "memory_method": "RSS"}
    cost = {
        "train": {**sweep, "batch": 2, "models": [model("a", [_entry("failed", "ValueError: Expected more than 1 value per channel"), _entry("too large", "estimated 30.0 GB > 24.0 GB; not run", saver=True)])]},
        "infer": {**sweep, "batch": 1, "models": [model("a", [_entry("ok")])]},
    }
    text = "\n".join(str(getattr(b, "items", "")) + str(getattr(b, "text", "")) + str(getattr(b, "rows", "")) for b in cost_sizes_section({"cost_sizes": cost}, {}))
    assert "train a 64x32: failed: ValueError: Expected more than 1 value per channel" in text
    assert "train a 64x32, memory saver: too large: estimated 30.0 GB > 24.0 GB; not run" in text
    assert "a: trains nothing measured" in text and "'failed'" in text and "'2.000'" in text


def test_a_fitted_line_with_no_2to1_image_that_fits_says_under_the_smallest():
    from segdil.compare.cost_sizes import largest_lines

    fitted = {"square": None, "wide": None, "megapixels": 0.0}
    cost = {
        "train": {"models": [{"label": "a", "largest_image": {"v": fitted, "v+memory_saver": {"square": "512x512", "wide": "640x320", "megapixels": 0.2}}}]},
        "infer": {"models": [{"label": "a", "largest_image": {"v": None}}]},
    }
    assert largest_lines(cost) == ["a: trains under 64x32, trains with the memory saver 640x320, runs inference on nothing measured"]


def test_a_bad_cost_size_is_refused_before_anything_runs(tmp_path):
    from segdil.commands.compare import command

    out = tmp_path / "cmp"
    config = shipped_config("hdc_synth")
    result = CliRunner().invoke(command, [str(config), "--seeds", "1", "--steps", "1", "--out", str(out), "--cost-sizes", "64," + "x" * 5000])
    assert result.exit_code == 2
    line = result.output.strip()
    assert line.startswith("Error: --cost-sizes") and "is not a size" in line and len(line) < 300 and "\n" not in line
    assert not (out / "runs").exists()
