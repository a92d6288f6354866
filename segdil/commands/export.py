"""``segdil export``: a checkpoint to ONNX, checked with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import click

from segdil.path_names import PathType


@click.command("export")
@click.argument("checkpoint", type=PathType(path_type=Path))
@click.option("--onnx", "onnx_path", required=True, type=PathType(path_type=Path), help="Output .onnx file.")
@click.option("--dynamic", is_flag=True, help="Free batch, height and width (checked at a second size).")
@click.option("--fuse", is_flag=True, help="Fold BatchNorm into the preceding convolutions first.")
@click.option("--opset", type=click.IntRange(min=17), default=17, show_default=True, help="ONNX opset version.")
@click.option("--height", type=click.IntRange(min=1), default=256, show_default=True, help="Height of the example input (the fixed height without --dynamic).")
@click.option("--width", type=click.IntRange(min=1), default=256, show_default=True, help="Width of the example input (the fixed width without --dynamic).")
@click.option("--overwrite", is_flag=True, help="Replace --onnx if it exists (never the checkpoint itself).")
@click.option("--atol", type=float, default=1e-4, show_default=True, help="Largest accepted difference between onnxruntime and PyTorch.")
def command(checkpoint: Path, onnx_path: Path, dynamic: bool, fuse: bool, opset: int, height: int, width: int, atol: float, overwrite: bool) -> None:
    """Export CHECKPOINT to ONNX: input 'image' (N x 3 x H x W, normalised as in training),
    output 'logits' (N x C x H x W).

    The file is run with onnxruntime on random inputs and compared with PyTorch; the max abs
    difference is printed, and the file is written only when it is at most --atol.
    """
    from segdil.inference.export import export_checkpoint  # torch: not with --help (segdil/cli.py)

    results = export_checkpoint(checkpoint, onnx_path, dynamic=dynamic, fuse=fuse, opset=opset, height=height, width=width, atol=atol, overwrite=overwrite)
    size_mb = onnx_path.stat().st_size / 1e6
    channels = results[0][0][1]
    dims = f"batch x {channels} x height x width" if dynamic else f"1 x {channels} x {height} x {width}"
    click.echo(f"wrote {onnx_path} ({size_mb:.2f} MB, opset {opset}, input 'image' {dims}{', BatchNorm folded' if fuse else ''})")
    for shape, diff in results:
        click.echo(f"onnxruntime check {'x'.join(map(str, shape))}: max abs diff {diff:.3g}")
