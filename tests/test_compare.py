import base64
import html
import json
import math
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch.utils
from click.testing import CliRunner
from helpers import TINY_SYNTH

from segdil.compare.aggregate import aggregate
from segdil.compare.crops import densest_window
from segdil.compare.execute import warm_imports
from segdil.compare.matching import match_models, model_cost, scale_model
from segdil.compare.plan import apply_match, plan_models, split_overrides
from segdil.compare.plots import (
    bin_centres,
    cost_figure,
    plot_cost_accuracy,
    plot_pool_sweep,
    plot_size_curves,
    use_log_scale,
)
from segdil.compare.presets import PRESETS, parse_pools, preset_configs, shipped_config
from segdil.compare.report import write_report
from segdil.compare.report_blocks import METRIC_COLUMNS
from segdil.config import config_from_dict
from segdil.errors import SegdilError

# tiny data and schedule shared by every model; widths per model via LABEL:key=value
TINY = [
    *TINY_SYNTH,
    "data.synth.max_object=16",
    "data.synth.n_train=16",
    "data.synth.n_val=4",
    "train.batch_size=2",
    "hdc_synth:model.widths=[4]",
    "hdc_synth:model.blocks=2",
    "fcn-pool*:model.width=4",
]
METRICS = ("mIoU", "per_class_iou", "pixel_acc", "mean_acc", "mDice", "bins", "small_object_iou", "iIoU")


def _table(markdown: str, first_header: str) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the first markdown table whose first header cell is ``first_header``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    cells = lambda line: [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]  # noqa: E731
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    return cells(lines[start]), rows


def _decodes(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0, "a blank figure"
    return image


@pytest.mark.slow
def test_tiny_compare_writes_a_complete_report(tmp_path):
    from segdil.commands.compare import command

    out = tmp_path / "cmp"
    config_dir = shipped_config("hdc_synth").parent
    args = [str(config_dir / "hdc_synth.yaml"), str(config_dir / "fcn-pool4_synth.yaml"), "--seeds", "1", "--steps", "3", "--sweep-pools", "1..2", "--out", str(out), "--device", "cpu", "--tta", "flip"]
    for item in TINY:
        args += ["--set", item]
    result = CliRunner().invoke(command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == f"report: {out / 'report.md'}"
    labels = ["hdc_synth", "fcn-pool4_synth", "fcn-pool1", "fcn-pool2"]

    # the main table: every model, every cost and metric column, numbers in the metric cells
    markdown = (out / "report.md").read_text()
    headers, rows = _table(markdown, "model")
    assert headers == ["model", "params", "GFLOPs/MP", "train img/s", "peak memory", "steps", *METRIC_COLUMNS]
    assert [r[0] for r in rows] == labels
    for row in rows:
        assert row[5] == "3"
        assert re.fullmatch(r"\d+\.\d{3}", row[headers.index("mIoU")]), row
        assert re.fullmatch(r"\d+ MiB", row[headers.index("peak memory")]), row
    class_headers, class_rows = _table(markdown, "model | background")
    assert class_headers == ["model", "background", "disc", "square", "triangle", "line"] and len(class_rows) == len(labels)
    sweep_headers, sweep_rows = _table(markdown, "model | P")
    assert [(r[0], r[1], r[2]) for r in sweep_rows] == [("fcn-pool1", "1", "2"), ("fcn-pool2", "2", "4")]
    assert "segdil" in markdown and "torch" in markdown and "--sweep-pools 1..2" in markdown

    # results.json: every metric per run and aggregated, costs and memory per model
    results = json.loads((out / "results.json").read_text())
    assert [m["label"] for m in results["models"]] == labels
    assert [s["pools"] for s in results["sweep"]] == [1, 2]
    for model in results["models"]:
        assert model["params"] > 0 and model["gflops_per_mp"] > 0
    for run in results["runs"]:
        assert set(METRICS) <= set(run["metrics"]), run["label"]
        assert run["memory"]["peak_bytes"] > 0 and run["img_per_s"] > 0 and run["step"] == 3
    for label in labels:
        agg = results["aggregate"][label]["metrics"]
        assert set(METRICS) <= set(agg)
        run = next(r for r in results["runs"] if r["label"] == label)
        assert agg["mIoU"] == {"mean": pytest.approx(run["metrics"]["mIoU"]), "std": None, "n": 1}
        assert set(agg["bins"]) == {"<8", "8-16", "16-32", "32-64", ">=64"}

    # figures exist, decode, are not blank; the HTML embeds them all and links no file
    figures = {name: out / path for name, path in results["figures"].items()}
    assert set(figures) == {"size_iou", "size_recall", "pool_sweep", "overlays", "cost_accuracy", "failures"}
    for path in figures.values():
        _decodes(path.read_bytes())
        assert f"({path.relative_to(out).as_posix()})" in markdown
    page = (out / "report.html").read_text()
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == len(figures)
    for data in embedded:
        _decodes(base64.b64decode(data))
    assert 'src="figures/' not in page and all(label in page for label in labels)

    # the verdict: above the tables and at the end of the console output; per-image recall in results.json
    assert markdown.index("**small-object IoU**:") < markdown.index("## Results")
    output = result.output.splitlines()
    verdict = output[output.index("verdict:") + 1 : -1]
    # first the question's answer: the full-resolution hdc_synth against the best of the pooling FCNs
    assert verdict[0].startswith("  full resolution vs pooling: ") and "hdc_synth" in verdict[0] and "on objects < 16 px" in verdict[0]
    assert markdown.splitlines()[0] == verdict[0].strip()
    assert [m["resolution_path"] for m in results["models"]] == ["full", "pooling", "pooling", "pooling"]
    assert verdict[1].startswith("  small-object IoU: ") and verdict[2].startswith("  mIoU: ")
    assert verdict[-2].startswith("  Cost: ") and verdict[-1].startswith("  Test-time augmentation (flip) changed")
    assert all(line.replace("*", "") == line for line in verdict), "no Markdown on the console"
    assert "Where the best model still fails" in markdown and "## Cost against accuracy" in markdown
    per_image = results["per_image"]["models"]
    assert set(per_image) == set(labels) and all(len(images) == 4 for images in per_image.values())
    assert all(0 <= r["small_found"] <= r["small_objects"] for images in per_image.values() for r in images)
    # --tta: a TTA row per model, scored from the same weights
    assert results["tta"] == {"flip": True, "scales": [1.0], "describe": "flip"}
    tta_headers, tta_rows = _table(markdown, "model | mIoU")
    assert [r[0] for r in tta_rows] == [x for label in labels for x in (label, f"{label} + TTA")]
    assert all(re.fullmatch(r"\d+\.\d{3}", r[1]) for r in tta_rows)
    assert all(set(METRICS) <= set(run["tta_metrics"]) for run in results["runs"])
    # the per-run logs are plain lines, not \r progress updates
    log = (out / "runs" / "hdc_synth" / "seed0.log").read_text()
    assert "\r" not in log and "step 3/3 (100%)" in log

    # the same command again reuses every finished run
    again = CliRunner().invoke(command, args, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert again.output.count("reused") == len(labels)


@pytest.mark.slow
def test_failed_run_is_a_one_line_error_naming_its_log(tmp_path):
    from segdil.commands.compare import command

    out = tmp_path / "cmp"
    args = [str(shipped_config("hdc_synth")), "--seeds", "1", "--steps", "1", "--out", str(out), "--set", "train.best_metric=nope"]
    for item in TINY:
        args += ["--set", item] if not item.startswith("fcn") else []
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 2
    log = out / "runs" / "hdc_synth" / "seed0.log"
    assert "hdc_synth seed 0: training failed (exit 2): Error: train.best_metric='nope' is not a validation metric" in result.output
    assert f"full log: {log}" in result.output and log.is_file()
    assert not (out / "report.md").exists() and not (out / "results.json").exists()


def test_match_scales_widths_to_within_ten_percent():
    models = [
        {"name": "hdc", "widths": [32], "rates": [1, 2, 5], "blocks": 4},
        {"name": "fcn", "pools": 4, "width": 32},
        {"name": "fcn", "pools": 3, "width": 16, "skips": "fcn8", "upsample": "deconv"},
        {"name": "smp", "arch": "Unet", "encoder": "resnet18"},
    ]
    for kind in ("params", "flops"):
        matches = match_models(models, kind)
        target = model_cost(models[0], kind)
        assert matches[0].model == models[0] and matches[0].factor == 1.0
        for original, match in zip(models[1:3], matches[1:3]):
            assert match.scalable and match.within
            assert abs(model_cost(match.model, kind) / target - 1) <= 0.1
            assert abs(model_cost(original, kind) / target - 1) > 0.1, "the test needs models that start unmatched"
            assert match.model["width"] != original["width"] and match.model["pools"] == original["pools"]
        smp = matches[3]
        assert not smp.scalable and smp.model == models[3] and smp.factor == 1.0
        assert "kept as is" in smp.note(kind, 0.1)


def test_scale_model_scales_every_width_key():
    assert scale_model({"name": "hdc", "widths": [16, 32], "stem_width": 8}, 1.5) == {"name": "hdc", "widths": [24, 48], "stem_width": 12}
    assert scale_model({"name": "hdc", "widths": [16]}, 0.01)["widths"] == [1]
    assert scale_model({"name": "fcn", "width": 32}, 0.5) == {"name": "fcn", "width": 16, "max_width": 128}
    with pytest.raises(ValueError, match="no width argument"):
        scale_model({"name": "smp"}, 2.0)


def test_plan_applies_match_to_configs():
    configs = [shipped_config("hdc_synth"), shipped_config("fcn-pool4_synth")]
    entries = plan_models(configs, ["data.num_workers=0"], steps=5)
    apply_match(entries, "params")
    assert entries[1].match.within and entries[1].cfg.model["width"] != 32
    assert abs(model_cost(entries[1].cfg.model, "params") / model_cost(entries[0].cfg.model, "params") - 1) <= 0.1
    assert all(e.cfg.train.max_steps == 5 for e in entries)


def test_plan_scoped_overrides_sweep_and_alikeness():
    hdc, fcn = shipped_config("hdc_synth"), shipped_config("fcn-pool4_synth")
    entries = plan_models([hdc, fcn], ["hdc_synth:model.widths=[8]", "train.batch_size=4"], sweep_pools=[2, 4])
    assert [e.label for e in entries] == ["hdc_synth", "fcn-pool4_synth", "fcn-pool2"]
    assert entries[0].cfg.model["widths"] == [8] and "widths" not in entries[1].cfg.model
    assert entries[1].pools == 4, "the sweep's P=4 model is the listed fcn-pool4_synth, not trained twice"
    assert entries[2].cfg.model["pools"] == 2 and all(e.cfg.train.batch_size == 4 for e in entries)

    budget = plan_models([hdc], budget_s=30)
    assert budget[0].cfg.train.budget_s == 30 and budget[0].cfg.train.max_steps >= 10**9
    with pytest.raises(SegdilError, match=r"nope:\.\.\.: matches no model label; the labels are hdc_synth, fcn-pool4_synth"):
        plan_models([hdc, fcn], ["nope:model.width=3"])
    with pytest.raises(SegdilError, match=r"fcn-pool4_synth: data.crop_size=32 but hdc_synth has 'auto'"):
        plan_models([hdc, fcn], ["fcn-pool4_synth:data.crop_size=32"])
    with pytest.raises(SegdilError, match=r"model.width: unknown key for model 'hdc'"):
        plan_models([hdc, fcn], ["model.width=8"])
    with pytest.raises(SegdilError, match="already in the comparison"):
        plan_models([hdc, hdc])
    assert split_overrides(["a.b=1", "x*:c.d=e:f", "data.root=C:/x"]) == (["a.b=1", "data.root=C:/x"], [("x*", "c.d=e:f")])


def test_presets_and_pool_ranges():
    assert [p.stem for p in preset_configs("small-objects")] == list(PRESETS["small-objects"])
    assert all(p.is_file() for p in preset_configs("small-objects"))
    assert parse_pools("1..5") == [1, 2, 3, 4, 5]
    assert parse_pools("4, 2,2") == [2, 4]
    for bad, message in (("0..2", "between 1 and 5"), ("3..1", "runs backwards"), ("x", "expected a range")):
        with pytest.raises(SegdilError, match=message):
            parse_pools(bad)
    with pytest.raises(SegdilError, match="unknown preset"):
        preset_configs("nope")


def test_aggregate_over_seeds():
    runs = [
        {"mIoU": 0.5, "per_class_iou": [1.0, None], "bins": {"<8": {"count": 3, "iou": 0.2}}, "name": "x", "iIoU": None},
        {"mIoU": 0.7, "per_class_iou": [0.0, 0.5], "bins": {"<8": {"count": 3, "iou": float("nan")}}, "name": "x", "iIoU": None},
    ]
    agg = aggregate(runs)
    assert agg["mIoU"]["mean"] == pytest.approx(0.6) and agg["mIoU"]["std"] == pytest.approx(math.sqrt(0.02)) and agg["mIoU"]["n"] == 2
    assert agg["per_class_iou"][0]["std"] == pytest.approx(math.sqrt(0.5))
    assert agg["per_class_iou"][1] == {"mean": 0.5, "std": None, "n": 1}
    assert agg["bins"]["<8"] == {"count": {"mean": 3.0, "std": 0.0, "n": 2}, "iou": {"mean": 0.2, "std": None, "n": 1}}
    assert agg["name"] == "x" and agg["iIoU"] is None


def _fake_results(tmp_path: Path) -> dict:
    bins = ["<8", "8-16", "16-32", "32-64", ">=64"]

    def stat(mean, std, n=3):
        return {"mean": mean, "std": std, "n": n}

    def metrics(base):
        return {
            "mIoU": stat(base, 0.01),
            "per_class_iou": [stat(0.9, 0.01), None],
            "small_object_iou": stat(base - 0.1, 0.02, n=2),
            "iIoU": None,
            "bins": {b: {"count": stat(10, 0.0), "iou": stat(base * (i + 1) / 5, 0.05), "recall": stat(base * i / 5, 0.05)} for i, b in enumerate(bins)},
        }

    labels = ["hdc", "fcn-pool1", "fcn-pool3"]
    run = {"class_names": ["background", "spot"], "memory": {"kind": "cpu_rss_increase", "peak_bytes": 3 * 2**20}, "device": "cpu", "device_name": "cpu", "torch_threads": 1, "step": 10, "train_s": 1.0, "img_per_s": 8.0}
    return {
        "settings": {"seeds": 3, "max_steps": 10, "budget_s": None, "batch_size": 2, "match": "params", "match_tolerance": 0.1, "data": {"root": "/data/x", "train_split": "train", "val_split": "val", "crop_size": 64}, "differing_train_settings": {"train.lr": {"hdc": 0.1, "fcn-pool1": 0.2, "fcn-pool3": 0.2}}},
        "environment": {"command": "segdil compare a.yaml", "cwd": str(tmp_path), "date": "2030-01-01T00:00:00", "machine": {"cpu": "Test CPU", "cores": 2, "gpu": None, "platform": "test", "load_average": [0.5, 0.5, 0.5]}, "versions": {"torch": "9.9"}},
        "size_bins": [8, 16, 32, 64],
        "bin_labels": bins,
        "bin_counts": {**{b: 10 for b in bins}, ">=64": 0},
        "small_threshold": 16.0,
        "models": [
            {"label": label, "params": 1234567, "gflops_per_mp": 2.5, "model_args": {"name": "fcn", "width": 8}, "resolution_path": "full" if label == "hdc" else "pooling", "match": {"factor": 1.0, "cost": 100, "ratio": 1.0, "within": True, "note": "reference"}}
            for label in labels
        ],
        "sweep": [{"label": "fcn-pool1", "pools": 1}, {"label": "fcn-pool3", "pools": 3}],
        "aggregate": {label: {"metrics": metrics(0.3 + 0.2 * i), "img_per_s": stat(8.0, 0.5), "peak_memory_bytes": stat(3 * 2**20, 0.0), "step": stat(10, 0.0), "train_s": stat(10.0 * (i + 1), 0.5)} for i, label in enumerate(labels)},
        "runs": [{**run, "label": label, "seed": 0, "work_dir": f"runs/{label}/seed0", "metrics": {"mIoU": 0.5, "small_object_iou": None, "iIoU": 0.25}} for label in labels],
    }


def test_report_renders_from_results(tmp_path):
    results = _fake_results(tmp_path)
    figures = {
        "size_iou": plot_size_curves(results, "iou", tmp_path / "figures" / "size_iou.png"),
        "pool_sweep": plot_pool_sweep(results, tmp_path / "figures" / "pool_sweep.png"),
    }
    for path in figures.values():
        _decodes(path.read_bytes())
    markdown = write_report(results, figures, tmp_path).read_text()
    headers, rows = _table(markdown, "model")
    assert rows[0] == ["hdc", "1.23 M", "2.50", "8.0 ± 0.5", "3 ± 0 MiB", "10", "0.300 ± 0.010", "0.200 ± 0.020 (n=2)", "–", "–", "–"]  # no boundary or worst-10% figures in these results
    assert _table(markdown, "model | background") == (["model", "background", "spot"], [[label, "0.900 ± 0.010", "–"] for label in ("hdc", "fcn-pool1", "fcn-pool3")])
    assert _table(markdown, "model | <8 px (10)")[0] == ["model", "<8 px (10)", "8-16 px (10)", "16-32 px (10)", "32-64 px (10)"]
    assert "Size bins without validation objects are left out: >=64 px." in markdown
    assert "the folder dataset `/data/x`" in markdown and "Width matching (params)" in markdown and "train.lr" in markdown
    assert "(figures/size_iou.png)" in markdown and "(figures/pool_sweep.png)" in markdown and "size_recall" not in markdown
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "<code>/data/x</code>" in page
    assert plot_pool_sweep({**results, "sweep": []}, tmp_path / "none.png") is None


def test_report_leads_with_the_verdict_and_shows_cost_tta_and_failures(tmp_path):
    results = _fake_results(tmp_path)
    for label, base in zip(["hdc", "fcn-pool1", "fcn-pool3"], (0.3, 0.5, 0.7)):
        agg = results["aggregate"][label]
        agg["metrics"]["iIoU"] = {"mean": base / 2, "std": 0.01, "n": 3}
        agg["tta_metrics"] = {**agg["metrics"], "mIoU": {"mean": base + 0.02, "std": 0.01, "n": 3}, "iIoU": {"mean": base / 2 - 0.03, "std": 0.01, "n": 3}}
    results["models"][0]["gflops_per_mp"] = 1.0
    results["tta"] = {"flip": True, "scales": [0.5, 1.0], "describe": "flip, scales 0.5/1"}
    results["per_image"] = {"seed": 0, "small_threshold": 16.0, "models": {"hdc": [{"index": i, "small_objects": 4, "small_found": i % 5, "small_recall": (i % 5) / 4 if i % 5 < 5 else None, "tiny_objects": 2, "tiny_found": 0} for i in range(4)]}}
    results["failure_crops"] = {"model": "fcn-pool3", "crops": []}
    figures = {"cost_accuracy": plot_cost_accuracy(results, tmp_path / "figures" / "cost_accuracy.png"), "failures": plot_size_curves(results, "iou", tmp_path / "figures" / "stand_in.png")}
    _decodes(figures["cost_accuracy"].read_bytes())
    markdown = write_report(results, figures, tmp_path).read_text()
    # the first line answers full resolution (hdc, 0.2 ± 0.02) against the best pooling model (fcn-pool3, 0.6 ± 0.02)
    answer = "full resolution vs pooling: fcn-pool3 beats hdc on objects < 16 px by 0.400 (± 0.028, the seeds' spread √(s₁² + s₂²) over 3 seeds; 0.600 against 0.200) at 2.5× the GFLOPs/MP and 3× the train time."
    assert markdown.splitlines()[0] == answer and markdown.splitlines()[2].startswith("# segdil compare: hdc")
    page = (tmp_path / "report.html").read_text()
    assert page[page.index("<body>") + len("<body>") :].lstrip().startswith(f"<p>{html.escape(answer)}</p>") and "<title>segdil compare: hdc" in page
    verdict_at = markdown.index("- **small-object IoU**: fcn-pool3 is best with 0.600 ± 0.020, +0.200 over the runner-up fcn-pool1")
    assert verdict_at < markdown.index("## Results") and markdown.index("- **mIoU**: fcn-pool3 is best") > verdict_at
    assert "- **Cost**: fcn-pool3 costs 2.5× the GFLOPs/MP" in markdown and "cheapest model, hdc" in markdown
    assert "- **Test-time augmentation** (flip, scales 0.5/1) changed, on average over the models: mIoU +0.020" in markdown and "iIoU -0.030" in markdown
    headers, rows = _table(markdown, "model | mIoU")
    assert [r[0] for r in rows] == ["hdc", "hdc + TTA", "fcn-pool1", "fcn-pool1 + TTA", "fcn-pool3", "fcn-pool3 + TTA"]
    assert rows[1][1] == "0.320 ± 0.010" and rows[1][3] == "0.120 ± 0.010"
    assert "Pareto front, small-object IoU against GFLOPs per megapixel: hdc, fcn-pool3" in markdown
    assert "Where the best model still fails" in markdown and _table(markdown, "model | median recall")[1][0][:2] == ["hdc", "0.50"]
    page = (tmp_path / "report.html").read_text()
    assert "<li><strong>small-object IoU</strong>: fcn-pool3 is best" in page and "**" not in page


def test_bin_centres_and_densest_window():
    assert bin_centres([8, 16, 32, 64]) == pytest.approx([8 / math.sqrt(2), math.sqrt(128), math.sqrt(512), math.sqrt(2048), 64 * math.sqrt(2)])
    points = np.array([[5.0, 5.0], [6.0, 7.0], [90.0, 90.0], [7.0, 4.0]])
    box, count = densest_window(points, (100, 120), 20)
    assert count == 3 and box[2:] == (20, 20) and box[0] <= 4 and box[1] <= 4
    assert densest_window(np.zeros((0, 2)), (10, 10), 32) == ((0, 0, 10, 10), 0)


def test_cost_panels_scale_legend_and_seed_words(tmp_path):
    results = _fake_results(tmp_path)
    for model, gflops in zip(results["models"], (110.0, 150.0, 205.0)):
        model["gflops_per_mp"] = gflops
    fig = cost_figure(results)
    gflops_axes = [ax for ax in fig.axes if ax.get_xlabel().startswith("GFLOPs")]
    assert len(gflops_axes) == 2 and all(ax.get_xscale() == "linear" and "log" not in ax.get_xlabel() for ax in gflops_axes)  # 110–205: no log axis
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["hdc", "fcn-pool1", "fcn-pool3", "Pareto front"] and legend.get_texts()[0].get_fontsize() >= 10
    assert all(ax.get_legend() is None for ax in fig.axes), "one legend for the four panels, outside them"
    assert "mean ± std over 3 seeds" in fig.axes[0].get_ylabel()
    # over 10× apart: log; one seed: "1 seed", no ± anywhere
    results["models"][0]["gflops_per_mp"] = 5.0
    results["settings"]["seeds"] = 1
    fig = cost_figure(results)
    assert [ax.get_xscale() for ax in fig.axes if ax.get_xlabel().startswith("GFLOPs")] == ["log", "log"]
    words = [fig.get_suptitle()] + [ax.get_ylabel() for ax in fig.axes] + [ax.get_xlabel() for ax in fig.axes]
    assert all("±" not in w and "seed(s)" not in w for w in words) and "1 seed" in fig.get_suptitle()
    assert use_log_scale([1.0, 11.0]) and not use_log_scale([1.0, 10.0, float("nan"), None]) and not use_log_scale([])


def test_warm_imports_works_without_tensorboard(monkeypatch):
    # tensorboard is an optional extra: compare's children warm their imports without it too
    monkeypatch.delattr(torch.utils, "tensorboard", raising=False)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # `import` of it raises ImportError
    warm_imports(config_from_dict({"model": {"name": "hdc", "widths": [4], "blocks": 1}}))
