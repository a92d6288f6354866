"""``segdil predict``: run a checkpoint over image files and folders."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from segdil.commands.options import precision_option
from segdil.path_names import PathType

SHOWN_FAILURES = 20  # skipped files listed one per line; the rest counted


@click.command("predict")
@click.argument("checkpoint", type=PathType(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=PathType(path_type=Path))
@click.option("--out", "out", required=True, type=PathType(path_type=Path), help="Output folder (created; must not be inside an input folder).")
@click.option("--overlay", is_flag=True, help="Also write <stem>_overlay.png: the image blended with the mask colours.")
@click.option("--probs", is_flag=True, help="Also write <stem>_probs.npy: float16 class probabilities, C x H x W.")
@click.option("--tile", type=click.IntRange(min=1), default=None, help="Force tiles of this side (default: whole images within --memory-budget, else the largest tiles that fit).")
@click.option("--overlap", type=click.IntRange(min=0), default=None, help="Pixels shared by neighbouring tiles (default: twice the model's receptive-field radius, so tiles equal the whole image; 128, blended, for models without one).")
@click.option("--memory-budget", "memory_budget_mb", type=click.FloatRange(min=1), default=None, help="MB one forward pass may use; sets whole image vs tile size [default: 4096].")
@precision_option("auto: bf16 autocast on CUDA and on CPUs with native bf16, fp32 elsewhere.")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True, help="NHWC memory format.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (pays off on many images).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True, help="Images of the same size per forward pass.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--recursive", is_flag=True, help="Include images in subfolders of input folders (the folder layout is kept under --out).")
@click.option("--ext", "ext", default=None, metavar="EXTS", help="Comma-separated extensions taken from folders [default: png,jpg,jpeg,tif,tiff,bmp].")
@click.option("--overwrite", is_flag=True, help="Replace outputs that already exist.")
@click.option("--tta", "tta", multiple=True, metavar="flip|scales=S,...", help="Test-time augmentation, averaging softmax probabilities: flip (add the mirror image), scales=0.5,0.75,1,1.25 (resized views); repeat to combine.")
@click.option("--skip-existing", is_flag=True, help="Leave images whose outputs all exist and predict the rest, redoing an image that has only some of its outputs (continue an interrupted run).")
@click.option("--fuse/--no-fuse", default=True, show_default=True, help="Fold BatchNorm into the preceding convolutions (logits equal within 1e-5, faster).")
def command(
    checkpoint: Path,
    inputs: tuple[Path, ...],
    out: Path,
    overlay: bool,
    probs: bool,
    tile: int | None,
    overlap: int | None,
    memory_budget_mb: float | None,
    precision: str,
    channels_last: bool,
    compile_: bool,
    batch_size: int,
    device: str,
    recursive: bool,
    ext: str | None,
    overwrite: bool,
    skip_existing: bool,
    fuse: bool,
    tta: tuple[str, ...],
) -> None:
    """Predict every image of INPUTS (files or folders) with CHECKPOINT.

    Writes OUT/<relative path>/<stem>.png, an index mask of the input's size as a palette PNG in
    the class colours. Grayscale, RGBA, 16-bit, JPEG and TIFF inputs are read as in training (a multi-page TIFF: its first page).

    All outputs are checked before any is written: if one already exists the command stops with
    nothing written, unless --overwrite is given; --skip-existing continues an interrupted run.
    Temporaries a killed run left beside the outputs are removed on start. Unreadable files are reported and skipped; the
    summary lists them and the exit code is then 1.
    """
    # torch and the model stack load when the command runs, not with its --help (segdil/cli.py)
    from segdil.inference.engine import DEFAULT_MEMORY_BUDGET_MB, InferenceOptions
    from segdil.inference.predict_files import predict_files
    from segdil.inference.tta import parse_tta

    options = InferenceOptions(
        precision=precision, fuse=fuse, channels_last=channels_last, compile=compile_, tile=tile, overlap=overlap,
        memory_budget_mb=DEFAULT_MEMORY_BUDGET_MB if memory_budget_mb is None else memory_budget_mb,
    )
    summary = predict_files(
        checkpoint, list(inputs), out, options, overlay=overlay, probs=probs, batch_size=batch_size, device=device, recursive=recursive,
        exts=ext.split(",") if ext is not None else None, overwrite=overwrite, skip_existing=skip_existing, tta=parse_tta(tta),
    )
    if summary.stale_temporaries:
        click.echo(f"removed {len(summary.stale_temporaries)} temporary file(s) left by an interrupted run", err=True)
    if summary.skipped_existing:
        click.echo(f"{len(summary.skipped_existing)} image(s) already predicted, skipped (--skip-existing)")
    if summary.fp32_fallbacks:
        click.echo(f"{summary.fp32_fallbacks} image(s) ran in fp32: too many near-tied classes for bf16, or most images before them had (--precision bf16 keeps bf16)", err=True)
    click.echo(f"{len(summary.written)} image(s) predicted into {out}")
    if summary.failed:
        click.echo(f"{len(summary.failed)} file(s) skipped:", err=True)
        for _, message in summary.failed[:SHOWN_FAILURES]:
            click.echo(f"  {message}", err=True)
        if len(summary.failed) > SHOWN_FAILURES:
            click.echo(f"  ... and {len(summary.failed) - SHOWN_FAILURES} more", err=True)
        sys.exit(1)
