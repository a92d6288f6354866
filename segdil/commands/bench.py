"""``segdil bench``: training or inference speed and memory of a model, alone or as a matrix."""

from __future__ import annotations

import click

from segdil.commands.options import precision_option
from segdil.path_names import PathType


@click.command("bench")
@click.option("--model", "models", multiple=True, help="A YAML config path or a registered model name [default: the default config's model]; repeatable with --sizes.")
@click.option("--size", default="512", show_default=True, help="Input size: a side (512) or width x height (2048x1024).")
@click.option("--sizes", default=None, metavar="LIST", help="Instead: cost against image size, e.g. 256,512,1024x512: GFLOPs, peak memory (also with the memory saver when training a model that has one) and img/s of every --model at every size, and the largest image that fits in --max-memory-gb.")
@click.option("--max-memory-gb", type=float, default=None, help="With --sizes: sizes estimated over this peak memory are reported too large and not run [default: 24 on CPU, the device's memory on CUDA].")
@click.option("--plot", "plot_path", type=PathType(dir_okay=False), default=None, help="With --sizes: write GFLOPs per image, peak memory and img/s against megapixels (log axes) to this PNG.")
@click.option("--batch", default=16, show_default=True, help="Images per step.")
@click.option("--train/--infer", "train", default=True, show_default=True, help="Time a training step (forward, backward, AdamW) or an inference forward.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@precision_option("bf16 autocast (bf16) or none (fp32); auto: bf16 on CUDA and on CPUs with native bf16 (AVX512-BF16, AMX).")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True, help="NHWC memory format for weights and inputs.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (warm-up includes compilation).")
@click.option("--compile-backend", default="inductor", show_default=True, help="torch.compile backend.")
@click.option("--fuse/--no-fuse", default=None, help="Fold BatchNorm into the convolutions (inference only). Default: on with --infer.")
@click.option("--memory-saver", is_flag=True, help="HDC activation checkpointing per block (hdc only).")
@click.option("--steps", type=int, default=None, help="Timed steps; the median is reported. Default: 20 on CUDA, 5 on CPU.")
@click.option("--warmup", type=int, default=None, help="Untimed steps first. Default: 5 on CUDA, 2 on CPU.")
@click.option("--matrix", is_flag=True, help="Time the naive baseline (fp32, NCHW, eager) and each optimisation in one process and print ratios; the single-variant switches are then ignored.")
@click.option("--variants", default=None, help="With --matrix: comma-separated variants instead of the default list, e.g. naive,channels_last+amp.")
@click.option("--isolate-memory/--no-isolate-memory", default=True, show_default=True, help="With --matrix on CPU: measure each variant's peak RSS in a fresh process.")
@click.option("--data/--no-data", "with_data", default=True, show_default=True, help="Also measure the data loader's img/s (synthetic images of --size).")
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--conv-ceiling", is_flag=True, help="Instead: GFLOP/s of one 3x3 conv at --size/--batch (dilations 1, 2, 5); in the --precision (auto: bf16 where native).")
@click.option("--vs-ceiling", is_flag=True, help="Also time the 3x3 conv ceiling (--conv-channels wide, fp32 and bf16, forward+backward) in the same rounds as the model and report each variant's share of it.")
@click.option("--conv-channels", type=int, default=None, help="Channels of the ceiling's convolution [default: 64 with --conv-ceiling, the model's width with --vs-ceiling].")
@click.option("--predict/--no-predict", "predict", default=None, help="With --infer: also time `segdil predict` end to end (JPEG photos decoded -> mask PNGs on disk) against one naive fp32 NCHW whole-image forward per image, in rounds. Default: on with --infer.")
@click.option("--predict-images", default=3, show_default=True, help="Photos per predict round.")
@click.option("--predict-rounds", default=3, show_default=True, help="Rounds of naive forward + predict.")
@click.option("--checkpoint", type=PathType(dir_okay=False, exists=True), default=None, help="With --predict: this checkpoint instead of the model trained a few steps on synthetic data.")
@click.option("--json", "json_path", type=PathType(dir_okay=False), default=None, help="Write the figures to this JSON file.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value, e.g. --set model.blocks=2 (repeatable).")
@click.option("--overwrite", is_flag=True, help="Replace --json (and --plot) if it exists (never the --model config).")
def command(**options) -> None:
    """Measure img/s, ms per step, peak memory, FLOPs and TFLOP/s of a model on random inputs.

    Without --matrix one variant is timed, built from the switches (defaults: channels_last, bf16
    where native, BatchNorm folded for --infer). With --matrix the naive baseline and each
    optimisation are timed in rounds in one process and compared. With --sizes one variant (and
    its memory saver, training) of every --model is measured at every size (segdil.bench.sizes).
    """
    from segdil.bench.options import BenchOptions, run_bench

    click.echo(run_bench(BenchOptions(**options)))
