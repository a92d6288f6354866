"""``segdil bench``: the figures it returns are consistent; no timing is asserted."""

import json
import warnings

import pytest
import torch
from click.testing import CliRunner

from segdil.bench.conv_ceiling import conv_ceiling
from segdil.bench.run import bench, bench_loader
from segdil.bench.step_runner import count_step_flops
from segdil.bench.variants import TRAIN_MATRIX, Variant, matrix_variants
from segdil.cli import cli
from segdil.config import DataConfig
from segdil.errors import SegdilError
from segdil.models import count_flops, create_model

TINY = {"name": "hdc", "widths": [8], "rates": [1, 2, 5], "blocks": 2, "num_classes": 3}
TINY_SET = ["--set", "model.widths=[8]", "--set", "model.blocks=2"]
FAST = dict(size=32, batch=2, steps=2, warmup=1, device="cpu")


def test_single_variant_fields_are_consistent():
    result = bench(TINY, variants=["channels_last+amp"], **FAST)
    assert result["mode"] == "train" and result["device"] == "cpu" and result["threads"] >= 1
    (row,) = result["variants"]
    assert row["name"] == "channels_last+amp" and row["channels_last"] and row["amp"] and not row["compile"]
    assert "speedup" not in row
    assert 0 < row["ms_min"] <= row["ms_per_step"] <= row["ms_max"]
    assert row["img_per_s"] == pytest.approx(2 / (row["ms_per_step"] / 1e3), rel=1e-3)
    assert row["tflops"] == pytest.approx(result["flops_per_step"] / (row["ms_per_step"] / 1e3) / 1e12, rel=1e-2, abs=1e-4)
    assert row["peak_memory_mb"] > 0 and row["step_memory_mb"] is not None


def test_flops_match_the_model_counter_and_training_costs_about_three_forwards():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_image = count_flops(create_model(**TINY), 32, 32)
    infer = count_step_flops(TINY, "infer", 32, 2)
    train = count_step_flops(TINY, "train", 32, 2)
    assert infer == 2 * per_image
    assert 2 * infer < train <= 3 * infer  # backward: input and weight gradients, none for the image
    assert count_step_flops({**TINY, "memory_saver": "checkpoint"}, "train", 32, 2) == train  # recomputation not counted


@pytest.mark.slow
def test_matrix_lists_every_variant_with_speedup_over_the_naive_baseline():
    names = matrix_variants("train", "hdc")
    assert names == list(TRAIN_MATRIX)
    result = bench(TINY, variants=names, compile_backend="aot_eager", isolate_memory=False, **FAST)
    rows = result["variants"]
    assert [r["name"] for r in rows] == names
    assert rows[0]["name"] == "naive" and rows[0]["speedup"] == 1.0 and rows[0]["speedup_best"] == 1.0
    for row in rows:
        assert row["speedup"] == pytest.approx(rows[0]["ms_per_step"] / row["ms_per_step"], rel=1e-2, abs=1e-3)
        assert row["ms_per_step"] > 0 and row["img_per_s"] > 0
    assert rows[-1]["compile"] and rows[-1]["memory_saver"]
    assert result["process_peak_rss_mb"] > 0


@pytest.mark.slow
def test_inference_matrix_with_folding_and_isolated_memory():
    result = bench(TINY, mode="infer", variants=["naive", "fuse", "channels_last+amp+fuse"], isolate_memory=True, **FAST)
    assert [r["speedup"] for r in result["variants"]][0] == 1.0
    for row in result["variants"]:
        assert row["peak_memory_mb"] > 0 and row["step_memory_mb"] is not None
    assert "fresh process" in result["memory_method"]


def test_matrix_variants_skip_the_memory_saver_for_other_models():
    assert not any("memory_saver" in n for n in matrix_variants("train", "fcn"))
    assert "fuse" in matrix_variants("infer", "fcn") and "fuse" not in matrix_variants("train", "fcn")


def test_variant_names_round_trip_and_bad_ones_fail():
    for name in TRAIN_MATRIX:
        assert Variant.parse(name).name == name
    assert Variant.parse("amp+channels_last").name == "channels_last+amp"
    with pytest.raises(SegdilError, match="unknown switch"):
        Variant.parse("channels_last+turbo")


def test_user_errors():
    with pytest.raises(SegdilError, match="memory saver"):
        bench({"name": "fcn", "pools": 2, "width": 8}, variants=["memory_saver"], **FAST)
    with pytest.raises(SegdilError, match="inference only"):
        bench(TINY, variants=["fuse"], **FAST)
    with pytest.raises(SegdilError, match="at least 1"):
        bench(TINY, size=0, batch=2, device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(SegdilError, match="CUDA is not available"):
            bench(TINY, size=32, batch=2, device="cuda")


def test_data_loader_throughput():
    out = bench_loader(DataConfig(num_workers=0), size=32, batch=2, batches=2)
    assert out["img_per_s"] > 0 and out["batches"] == 2


def test_conv_ceiling_rows():
    result = conv_ceiling(channels=4, size=16, batch=1, dilations=(1, 2), device="cpu", dtype=torch.float32, steps=1, warmup=0)
    assert [(r["dilation"], r["pass"]) for r in result["rows"]] == [(1, "forward"), (1, "forward+backward"), (2, "forward"), (2, "forward+backward")]
    # one 3x3 conv 4->4 on 16x16: 2 * 9 * 4 * 4 * 256 FLOPs forward, twice that more for the backward
    forward = 2 * 9 * 4 * 4 * 16 * 16
    assert [r["flops"] for r in result["rows"]] == [forward, 3 * forward] * 2
    assert all(r["ms"] > 0 and r["tflops"] > 0 for r in result["rows"])


@pytest.mark.slow
def test_cli_matrix_json_puts_the_naive_baseline_first(tmp_path):
    out = tmp_path / "bench.json"
    args = ["bench", "--model", "hdc", "--size", "32", "--batch", "2", "--steps", "1", "--warmup", "1", "--device", "cpu", *TINY_SET]
    result = CliRunner().invoke(cli, [*args, "--matrix", "--variants", "channels_last,amp", "--no-isolate-memory", "--no-data", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [v["name"] for v in data["variants"]] == ["naive", "channels_last", "amp"]
    assert data["variants"][0]["speedup"] == 1.0 and all("speedup" in v for v in data["variants"])
    assert "speedup" in result.output and "naive" in result.output


def test_cli_single_run_from_a_config_file_with_data(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text("model:\n  name: hdc\n  widths: [8]\n  blocks: 2\ndata:\n  num_workers: 0\n")
    out = tmp_path / "one.json"
    result = CliRunner().invoke(cli, ["bench", "--model", str(config), "--size", "32", "--batch", "2", "--steps", "1", "--warmup", "0", "--device", "cpu", "--infer", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    (row,) = data["variants"]
    assert row["fuse"] and row["channels_last"]  # the inference defaults
    assert data["data"]["img_per_s"] > 0 and data["model"]["widths"] == [8]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "nosuchnet"], "neither a config file nor a model name"),
        (["--model", "fcn", "--memory-saver", "--set", "model.width=8"], "only hdc"),
        (["--model", "hdc", "--fuse", *TINY_SET], "inference only"),
        (["--model", "hdc", "--variants", "amp", *TINY_SET], "only with --matrix"),
        (["--model", "hdc", "--matrix", "--variants", "naive,turbo", *TINY_SET], "unknown switch"),
    ],
)
def test_cli_errors_exit_2(args, message):
    result = CliRunner().invoke(cli, ["bench", *args, "--size", "16", "--batch", "1", "--device", "cpu", "--no-data"])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_cli_infer_non_square_reports_predict_end_to_end_beside_the_model(tmp_path):
    out = tmp_path / "predict.json"
    result = CliRunner().invoke(cli, [
        "bench", "--model", "hdc", "--set", "model.widths=[8]", "--set", "model.blocks=1", "--size", "48x32", "--batch", "1", "--steps", "1",
        "--warmup", "0", "--device", "cpu", "--infer", "--no-data", "--predict-images", "1", "--predict-rounds", "1", "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["size"] == [32, 48] and "48x32" in result.output
    predict = data["predict"]
    assert predict["size"] == "48x32" and predict["predict_img_per_s"] > 0 and predict["naive_img_per_s"] > 0
    assert 0.999 <= predict["pixel_agreement_min"] <= 1.0 and "predict end to end" in result.output


def test_train_speed_tool_times_each_config_against_the_first():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    configs = [str(root / "configs" / "hdc_synth.yaml"), str(root / "configs" / "hdc-context_synth.yaml")]
    out = subprocess.run([sys.executable, str(root / "lab" / "train_speed.py"), *configs, "--crop", "32", "--batch", "2", "--rounds", "1", "--threads", "1"], capture_output=True, text=True, check=True).stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert set(rows) == {"hdc_synth", "hdc-context_synth"}
    assert rows["hdc_synth"][-1] == "1.00" and float(rows["hdc-context_synth"][-1]) > 0
    from segdil.config import load_config

    model = create_model(**dict(load_config(configs[0]).model, num_classes=5))
    assert float(rows["hdc_synth"][2]) == pytest.approx(count_flops(model, 256, 256) / 65536 / 1e3, abs=0.06)


PRECISION_FLAGS = {"auto": [], "bf16": ["--precision", "bf16"], "fp32": ["--precision", "fp32"]}
CEILING_ARGS = ["bench", "--conv-ceiling", "--size", "8", "--batch", "1", "--steps", "1", "--warmup", "0", "--device", "cpu"]


@pytest.mark.parametrize("channels", [None, 1, 32])
@pytest.mark.parametrize("precision", sorted(PRECISION_FLAGS))
def test_cli_conv_ceiling_every_precision_and_width_to_json(tmp_path, precision, channels):
    """No --model (the crash of issue 28: ``Path(None)`` before the ceiling ran), every precision, any width."""
    from segdil.device import native_bf16

    out = tmp_path / "ceiling.json"
    width = [] if channels is None else ["--conv-channels", str(channels)]
    result = CliRunner().invoke(cli, [*CEILING_ARGS, *PRECISION_FLAGS[precision], *width, "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    bf16 = precision == "bf16" or (precision == "auto" and native_bf16(torch.device("cpu")))
    c = 64 if channels is None else channels
    assert data["dtype"] == ("bfloat16" if bf16 else "float32") and data["channels"] == c and data["size"] == 8
    assert [(r["dilation"], r["pass"]) for r in data["rows"]] == [(d, p) for d in (1, 2, 5) for p in ("forward", "forward+backward")]
    assert [r["flops"] for r in data["rows"]] == [2 * 9 * c * c * 64, 3 * 2 * 9 * c * c * 64] * 3
    assert f"3x3 conv {c}->{c} 8x8 batch 1 {data['dtype']}" in result.output and f"wrote {out}" in result.output


def test_cli_conv_ceiling_json_is_refused_when_it_exists_unless_overwrite(tmp_path):
    out = tmp_path / "ceiling.json"
    out.write_text("keep\n")
    refused = CliRunner().invoke(cli, [*CEILING_ARGS, "--precision", "fp32", "--conv-channels", "2", "--json", str(out)])
    assert refused.exit_code == 2 and "already exists" in refused.output and out.read_text() == "keep\n"
    replaced = CliRunner().invoke(cli, [*CEILING_ARGS, "--precision", "fp32", "--conv-channels", "2", "--json", str(out), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert json.loads(out.read_text())["channels"] == 2
    assert not list(tmp_path.glob(".*.tmp"))  # written through segdil.atomic: no temporary left


def test_cli_conv_ceiling_non_square(tmp_path):
    out = tmp_path / "ceiling.json"
    result = CliRunner().invoke(cli, ["bench", "--conv-ceiling", "--size", "12x8", "--batch", "1", "--steps", "1", "--warmup", "0", "--device", "cpu", "--precision", "fp32", "--conv-channels", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["size"] == [8, 12] and data["rows"][0]["flops"] == 2 * 9 * 2 * 2 * 96


@pytest.mark.parametrize(
    "args, message",
    [
        (["--conv-channels", "0"], "--conv-channels 0: use at least 1"),
        (["--steps", "0"], "--steps 0: use at least 1"),
        (["--warmup", "-1"], "--warmup -1: use at least 0"),
        (["--batch", "0"], "--batch 0: use at least 1"),
        (["--size", "0"], "--size '0'"),
    ],
)
def test_cli_conv_ceiling_bad_values_are_one_line_errors(args, message):
    result = CliRunner().invoke(cli, ["bench", "--conv-ceiling", "--device", "cpu", "--precision", "fp32", "--size", "8", "--batch", "1", "--steps", "1", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_vs_ceiling_times_the_conv_in_the_same_rounds_and_gives_shares(tmp_path):
    result = bench(TINY, variants=["channels_last"], ceiling_channels=8, **FAST)
    ceiling = result["ceiling"]
    assert ceiling["channels"] == 8 and ceiling["dilations"] == [1, 2, 5]
    assert ceiling["fp32"]["flops"] == 3 * 3 * 2 * 9 * 8 * 8 * 32 * 32 * 2  # 3 dilations, forward+backward, batch 2 of 32x32
    assert ceiling["fp32"]["tflops"] > 0 and ceiling["bf16"]["tflops"] > 0
    (row,) = result["variants"]
    assert row["ceiling_share"] == pytest.approx(row["tflops"] / ceiling["fp32"]["tflops"], rel=1e-2, abs=1e-3)
    out = tmp_path / "vs.json"
    cli_result = CliRunner().invoke(cli, ["bench", "--model", "hdc", *TINY_SET, "--size", "16", "--batch", "1", "--steps", "1", "--warmup", "0", "--device", "cpu", "--no-data", "--precision", "fp32", "--vs-ceiling", "--json", str(out)])
    assert cli_result.exit_code == 0, cli_result.output
    assert json.loads(out.read_text())["ceiling"]["channels"] == 8  # the model's width
    assert "ceiling: 3x3 conv 8->8" in cli_result.output


def test_bf16_is_not_native_when_the_instruction_set_is_capped(monkeypatch):
    """AVX2 emulated on an AVX512-BF16 CPU (ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2): auto is fp32."""
    from segdil.device import cpu_isa_allows_bf16, native_bf16

    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert cpu_isa_allows_bf16()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not cpu_isa_allows_bf16() and not native_bf16(cpu)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not cpu_isa_allows_bf16() and not native_bf16(cpu)


# --------------------------------------------------------------------------- --sizes (issue 29)

SWEEP_ARGS = ["bench", "--model", "hdc", *TINY_SET, "--batch", "1", "--steps", "1", "--warmup", "0", "--device", "cpu", "--precision", "fp32"]


@pytest.mark.parametrize("mode", ["--train", "--infer"])
def test_cli_sizes_sweep_table_json_largest_image_and_plot(tmp_path, mode):
    from PIL import Image

    from segdil.bench.sizes import MemoryFit, largest_image

    out, plot = tmp_path / "sizes.json", tmp_path / "sizes.png"
    result = CliRunner().invoke(cli, [*SWEEP_ARGS, mode, "--sizes", "48x32,32", "--json", str(out), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if line.startswith("hdc ")]
    assert [r[1] for r in rows] == ["32x32", "48x32"]  # one row per size, smallest first
    data = json.loads(out.read_text())
    (model,) = data["models"]
    assert data["mode"] == mode[2:] and data["sizes"] == ["32x32", "48x32"] and len(data["load_average"]["before"]) == 3
    small, large = model["rows"]
    assert large["flops_per_step"] / small["flops_per_step"] == pytest.approx(1.5, rel=0.02)  # fully convolutional: FLOPs ~ pixels
    expected = ["channels_last", "channels_last+memory_saver"] if mode == "--train" else ["channels_last+fuse"]
    assert model["variants"] == expected and [e["name"] for e in small["variants"]] == expected
    for row in model["rows"]:
        assert all(e["status"] == "ok" and e["img_per_s"] > 0 and e["peak_memory_mb"] > 0 for e in row["variants"])
    assert "largest image that" in result.output and f"  hdc: plain {model['largest_image'][expected[0]]['square']} square" in result.output
    for name in expected:
        fit = MemoryFit(**model["memory_fit"][name])
        assert fit.slope_mb_per_mpx > 0 and model["largest_image"][name]["limit_gb"] == 24
        pixels = [largest_image(fit, gb)["megapixels"] for gb in (1, 2, 4, 24, 100)]
        assert pixels == sorted(pixels) and pixels[-1] > pixels[0]  # more memory, a larger image
    with Image.open(plot) as image:
        image.load()
        assert image.format == "PNG" and image.width > 400
    again = CliRunner().invoke(cli, [*SWEEP_ARGS, mode, "--sizes", "32", "--json", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output and json.loads(out.read_text()) == data


def test_cli_sizes_estimated_over_the_limit_are_too_large_and_never_run(tmp_path, monkeypatch):
    import subprocess

    import segdil.bench.sizes as sizes

    probed, timed = [], []

    def fake_probe(model_args, variant, mode, size, batch, backend, threads):
        probed.append(tuple(size))
        peak = 300 + size[0] * size[1] * 1e-3  # MB: 300 MB, plus 1 GB per megapixel
        return subprocess.CompletedProcess([], 0, stdout=json.dumps({"peak_rss_mb": peak, "rss_before_mb": 290}), stderr="")

    def spy_bench(model_args, *, size, **kwargs):
        timed.append(tuple(size))
        return bench(model_args, size=size, **kwargs)

    monkeypatch.setattr(sizes, "memory_probe_process", fake_probe)
    monkeypatch.setattr(sizes, "bench", spy_bench)
    out = tmp_path / "limit.json"
    result = CliRunner().invoke(cli, [*SWEEP_ARGS, "--infer", "--sizes", "32,64,4096", "--max-memory-gb", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert probed == [(32, 32), (64, 64)] and timed == probed  # 4096x4096 neither probed nor timed
    row = next(line for line in result.output.splitlines() if line.startswith("hdc ") and "4096x4096" in line)
    assert "too large" in row
    (entry,) = json.loads(out.read_text())["models"][0]["rows"][-1]["variants"]
    assert entry["status"] == "too large" and entry["estimated_memory_mb"] > 2 * 1024 and "not run" in entry["reason"]
    largest = json.loads(out.read_text())["models"][0]["largest_image"]["channels_last+fuse"]
    assert largest["square"] == "1312x1312"  # (2048 - 300) MB at 1000 MB/MP: 1.75 MP, 1322 px, down to a multiple of 32


def test_memory_fit_line_and_its_upper_bound():
    from segdil.bench.sizes import fit_memory, largest_image

    line = fit_memory([(1e6, 1100.0), (2e6, 2100.0), (4e6, 4100.0)])
    assert (line.intercept_mb, line.slope_mb_per_mpx) == (100.0, 1000.0) and "least-squares" in line.method
    single = fit_memory([(1e6, 1100.0)])
    assert (single.intercept_mb, single.slope_mb_per_mpx) == (0.0, 1100.0) and "upper bound" in single.method
    flat = fit_memory([(1e6, 500.0), (2e6, 499.0)])  # no growth measured: the upper bound, never a negative slope
    assert flat.slope_mb_per_mpx == 249.5  # 499 MB at 2 MP
    assert fit_memory([]) is None and largest_image(None, 24) is None
    assert largest_image(line, 0.05) == {"limit_gb": 0.05, "megapixels": 0.0, "square": None, "wide": None}
    assert largest_image(line, 4.0)["wide"] == "2816x1408"  # (4096 - 100) / 1000 MP = 4.0 MP


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sizes", "256,abc"], "--sizes '256,abc': 'abc' is not a size"),
        (["--sizes", "0x16"], "is not a size"),
        (["--sizes", ""], "is not a size"),
        (["--sizes", "32", "--matrix"], "--sizes: does not combine with --matrix"),
        (["--sizes", "32", "--max-memory-gb", "0"], "--max-memory-gb 0.0: give a positive"),
        (["--plot", "x.png"], "only with --sizes"),
        (["--model", "fcn"], "only with --sizes"),
    ],
)
def test_cli_sizes_bad_options_are_one_line_errors(args, message):
    result = CliRunner().invoke(cli, [*SWEEP_ARGS, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
