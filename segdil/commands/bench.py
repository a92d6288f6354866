"""``segdil bench``: training or inference speed and memory of a model, alone or as a matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from segdil.commands.options import precision_option


def resolve_model(model: str | None, overrides: tuple[str, ...]):
    """A YAML path loads that config; a registered name starts from the defaults with ``model.name``."""
    from segdil.config import load_config
    from segdil.errors import SegdilError
    from segdil.models import MODELS

    if model is None:
        return load_config(None, overrides)
    if Path(model).suffix in (".yaml", ".yml") or Path(model).is_file():
        return load_config(model, overrides)
    if model not in MODELS:
        raise SegdilError(f"--model {model!r}: neither a config file nor a model name; give a .yaml path or one of {', '.join(sorted(MODELS))}")
    return load_config(None, (f"model.name={model}", *overrides))


def model_label(model: str | None) -> str:
    """A config file's stem or the model name, as the sweep's rows name it."""
    if model is None:
        return "default"
    return Path(model).stem if Path(model).suffix in (".yaml", ".yml") or Path(model).is_file() else model


@click.command("bench")
@click.option("--model", "models", multiple=True, help="A YAML config path or a registered model name [default: the default config's model]; repeatable with --sizes.")
@click.option("--size", default="512", show_default=True, help="Input size: a side (512) or width x height (2048x1024).")
@click.option("--sizes", default=None, metavar="LIST", help="Instead: cost against image size, e.g. 256,512,1024x512: GFLOPs, peak memory (also with the memory saver when training a model that has one) and img/s of every --model at every size, and the largest image that fits in --max-memory-gb.")
@click.option("--max-memory-gb", type=float, default=None, help="With --sizes: sizes estimated over this peak memory are reported too large and not run [default: 24 on CPU, the device's memory on CUDA].")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, help="With --sizes: write GFLOPs per image, peak memory and img/s against megapixels (log axes) to this PNG.")
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
@click.option("--checkpoint", type=click.Path(dir_okay=False, exists=True), default=None, help="With --predict: this checkpoint instead of the model trained a few steps on synthetic data.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the figures to this JSON file.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value, e.g. --set model.blocks=2 (repeatable).")
@click.option("--overwrite", is_flag=True, help="Replace --json (and --plot) if it exists (never the --model config).")
def command(
    models: tuple[str, ...],
    size: str,
    sizes: Optional[str],
    max_memory_gb: Optional[float],
    plot_path: Optional[str],
    batch: int,
    train: bool,
    device: str,
    precision: str,
    channels_last: bool,
    compile_: bool,
    compile_backend: str,
    fuse: Optional[bool],
    memory_saver: bool,
    steps: Optional[int],
    warmup: Optional[int],
    matrix: bool,
    variants: Optional[str],
    isolate_memory: bool,
    with_data: bool,
    threads: Optional[int],
    conv_ceiling: bool,
    vs_ceiling: bool,
    conv_channels: Optional[int],
    predict: Optional[bool],
    predict_images: int,
    predict_rounds: int,
    checkpoint: Optional[str],
    json_path: Optional[str],
    overrides: tuple[str, ...],
    overwrite: bool,
) -> None:
    """Measure img/s, ms per step, peak memory, FLOPs and TFLOP/s of a model on random inputs.

    Without --matrix one variant is timed, built from the switches (defaults: channels_last, bf16
    where native, BatchNorm folded for --infer). With --matrix the naive baseline and each
    optimisation are timed in rounds in one process and compared. With --sizes one variant (and
    its memory saver, training) of every --model is measured at every size (segdil.bench.sizes).
    """
    from segdil.bench.run import bench_from_options
    from segdil.errors import SegdilError
    from segdil.output_paths import check_output

    check_output(json_path, "--json", models, overwrite)
    if sizes is not None:
        from segdil.bench.sizes import sweep_from_options

        check_output(plot_path, "--plot", [*models, json_path], overwrite)
        click.echo(
            sweep_from_options(
                [(model_label(m), resolve_model(m, overrides)) for m in models or (None,)], sizes=sizes, train=train, batch=batch,
                device=device, precision=precision, channels_last=channels_last, compile_=compile_, compile_backend=compile_backend, fuse=fuse,
                steps=steps, warmup=warmup, threads=threads, max_memory_gb=max_memory_gb, json_path=json_path, plot_path=plot_path,
                refused={"--matrix": matrix, "--variants": variants is not None, "--conv-ceiling": conv_ceiling, "--vs-ceiling": vs_ceiling, "--memory-saver": memory_saver},
            )
        )
        return
    if len(models) > 1 or max_memory_gb is not None or plot_path is not None:
        raise SegdilError("--model given more than once, --max-memory-gb and --plot: only with --sizes")
    model = models[0] if models else None
    cfg = None if conv_ceiling else resolve_model(model, overrides)
    click.echo(
        bench_from_options(
            cfg, size=size, batch=batch, train=train, device=device, precision=precision, channels_last=channels_last, compile_=compile_,
            compile_backend=compile_backend, fuse=fuse, memory_saver=memory_saver, steps=steps, warmup=warmup, matrix=matrix,
            variants=variants, isolate_memory=isolate_memory, with_data=with_data, threads=threads, conv_ceiling=conv_ceiling,
            conv_channels=conv_channels, json_path=json_path, predict=predict, predict_images=predict_images,
            predict_rounds=predict_rounds, checkpoint=checkpoint, vs_ceiling=vs_ceiling,
        )
    )
