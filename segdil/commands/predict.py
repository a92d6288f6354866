"""``segdil predict``: run a checkpoint over image files and folders."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("predict")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output folder (created; must not be inside an input folder).")
@click.option("--overlay", is_flag=True, help="Also write <stem>_overlay.png: the image blended with the mask colours.")
@click.option("--probs", is_flag=True, help="Also write <stem>_probs.npy: float16 class probabilities, C x H x W.")
@click.option("--tile", type=click.IntRange(min=1), default=None, help="Predict in overlapping tiles of this side (default: only images above 1 megapixel, in 512 px tiles).")
@click.option("--overlap", type=click.IntRange(min=0), default=32, show_default=True, help="Pixels shared by neighbouring tiles; logits are blended across them (tiled equals whole-image prediction when the receptive-field radius is at most overlap/4).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True, help="Images of the same size per forward pass.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--recursive", is_flag=True, help="Include images in subfolders of input folders (the folder layout is kept under --out).")
@click.option("--ext", "ext", default=None, metavar="EXTS", help="Comma-separated extensions taken from folders [default: png,jpg,jpeg,tif,tiff,bmp].")
@click.option("--overwrite", is_flag=True, help="Replace outputs that already exist.")
@click.option("--tta", "tta", multiple=True, metavar="flip|scales=S,...", help="Test-time augmentation, averaging softmax probabilities: flip (add the mirror image), scales=0.5,0.75,1,1.25 (resized views); repeat to combine.")
@click.option("--fuse", is_flag=True, help="Fold BatchNorm into the preceding convolutions first (logits equal within 1e-5, slightly faster).")
def command(
    checkpoint: Path,
    inputs: tuple[Path, ...],
    out: Path,
    overlay: bool,
    probs: bool,
    tile: int | None,
    overlap: int,
    batch_size: int,
    device: str,
    recursive: bool,
    ext: str | None,
    overwrite: bool,
    fuse: bool,
    tta: tuple[str, ...],
) -> None:
    """Predict every image of INPUTS (files or folders) with CHECKPOINT.

    Writes OUT/<relative path>/<stem>.png, an index mask of the input's size as a palette PNG in
    the class colours. Grayscale, RGBA, 16-bit, JPEG and TIFF inputs are read as in training (a multi-page TIFF: its first page).

    All outputs are checked before any is written: if one already exists the command stops with
    nothing written, unless --overwrite is given. Unreadable files are reported and skipped; the
    summary lists them and the exit code is then 1.
    """
    from segdil.inference.predict import predict_files
    from segdil.inference.tta import parse_tta

    summary = predict_files(
        checkpoint,
        list(inputs),
        out,
        overlay=overlay,
        probs=probs,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        device=device,
        recursive=recursive,
        exts=ext.split(",") if ext is not None else None,
        overwrite=overwrite,
        fuse=fuse,
        tta=parse_tta(tta),
    )
    click.echo(f"{len(summary.written)} image(s) predicted into {out}")
    if summary.failed:
        click.echo(f"{len(summary.failed)} file(s) skipped:", err=True)
        for _, message in summary.failed:
            click.echo(f"  {message}", err=True)
        sys.exit(1)
