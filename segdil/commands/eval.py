"""``segdil eval``: score a checkpoint on a folder split, or a folder of prediction PNGs."""

from __future__ import annotations

from pathlib import Path

import click

from segdil.commands.options import precision_option
from segdil.errors import SegdilError, shown
from segdil.output_paths import check_output
from segdil.path_names import PathType


@click.command("eval")
@click.option("--pred", "pred_dir", type=PathType(path_type=Path), help="Folder of prediction index PNGs, named like the ground truth.")
@click.option("--gt", "gt_dir", type=PathType(path_type=Path), help="Folder of ground-truth index PNGs (with --pred).")
@click.option("--num-classes", type=click.IntRange(min=1), help="Number of classes (with --pred).")
@click.option("--checkpoint", type=PathType(path_type=Path), help="A segdil checkpoint to evaluate.")
@click.option("--data", "data_root", type=PathType(path_type=Path), help="Dataset root holding SPLIT/images and SPLIT/masks (with --checkpoint).")
@click.option("--format", "fmt", type=click.Choice(["folder", "voc", "cityscapes", "ade20k"]), default=None, metavar="FMT", help="Layout of --data: folder, voc, cityscapes, ade20k [default: the checkpoint's data.format, else folder].")
@click.option("--split", default="val", show_default=True, help="Split folder under --data.")
@click.option("--batch-size", default=1, show_default=True, type=click.IntRange(min=1), help="Images per forward pass (consecutive images of one size share a pass).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ...")
@click.option("--ignore-index", default=255, show_default=True, help="Ground-truth value that is not scored.")
@click.option("--background-class", default=None, metavar="INT|none", help="Class without objects [default: the checkpoint's eval.background_class, else 0].")
@click.option("--size-bins", default=None, metavar="E1,E2,...", help="Object-size bin edges in pixels (sqrt of the area), increasing; street scale: 8,16,32,64,128 [default: the checkpoint's eval.size_bins, else 8,16,32,64].")
@click.option("--tta", "tta", multiple=True, metavar="flip|scales=S,...", help="Test-time augmentation, averaging softmax probabilities: flip (add the mirror image), scales=0.5,0.75,1,1.25 (resized views); repeat to combine.")
@precision_option("With --checkpoint: as segdil predict (auto: bf16 where native, near-tied images in fp32).")
@click.option("--fuse/--no-fuse", default=True, show_default=True, help="With --checkpoint: fold BatchNorm into the convolutions, as segdil predict.")
@click.option("--json", "json_out", type=PathType(dir_okay=False, path_type=Path), help="Also write the metrics as JSON here.")
@click.option("--confusion", "confusion_png", type=PathType(dir_okay=False, path_type=Path), help="Write the confusion matrix (rows: ground truth, normalised; class names) as a PNG here [default: with --json, JSON_confusion.png beside it].")
@click.option("--overwrite", is_flag=True, help="Replace --json and the confusion PNG if they exist (never an input).")
@click.option("--classes-by-index", is_flag=True, help="With --checkpoint: accept data whose class names differ from the model's (same count); scored under the data's names.")
def command(
    pred_dir: Path | None,
    gt_dir: Path | None,
    num_classes: int | None,
    checkpoint: Path | None,
    data_root: Path | None,
    fmt: str | None,
    split: str,
    batch_size: int,
    device: str,
    ignore_index: int,
    background_class: str | None,
    precision: str,
    fuse: bool,
    json_out: Path | None,
    confusion_png: Path | None,
    overwrite: bool,
    classes_by_index: bool,
    tta: tuple[str, ...],
    size_bins: str | None,
) -> None:
    """Print mIoU, per-class IoU, object IoU and recall by size, and iIoU (definitions: docs/metrics.md).

    \b
      segdil eval --checkpoint runs/hdc/best.pt --data data/mine --split val --json val.json
      (also writes val_confusion.png: the confusion matrix, rows normalised)
      segdil eval --pred preds/ --gt data/mine/val/masks --num-classes 4
    """
    # torch, the model stack and the file writer load when the command runs, not with its --help (segdil/cli.py)
    from segdil.atomic import write_json
    from segdil.evaluation import evaluate, parse_size_bins, write_confusion_png
    from segdil.inference.engine import InferenceOptions
    from segdil.inference.tta import parse_tta
    from segdil.metrics.tables import format_metrics

    inputs = [checkpoint, data_root, pred_dir, gt_dir]
    check_output(json_out, "--json", inputs, overwrite)
    confusion_png, flag = confusion_path(confusion_png, json_out)
    check_output(confusion_png, flag, [*inputs, json_out], overwrite)

    inference = InferenceOptions(precision=precision, fuse=fuse)
    bins = parse_size_bins(size_bins)
    result, class_names = evaluate(
        pred_dir, gt_dir, num_classes, checkpoint, data_root, split, batch_size, device, ignore_index, background_class, fmt, classes_by_index, parse_tta(tta), inference, bins
    )
    click.echo(format_metrics(result, class_names))
    if json_out is not None:
        write_json(json_out, {**result, "class_names": class_names})
        click.echo(f"wrote {json_out}")
    if confusion_png is not None:
        write_confusion_png(result["confusion_matrix"], class_names, confusion_png)
        click.echo(f"wrote {confusion_png} (the confusion matrix)")


def confusion_path(given: Path | None, json_out: Path | None) -> tuple[Path | None, str]:
    """Where the confusion PNG goes and the words naming it in errors: ``--confusion``, else beside ``--json``."""
    if given is not None:
        if given.suffix.lower() != ".png":
            raise SegdilError(f"--confusion {shown(str(given))}: the confusion matrix is written as a PNG; give a file name ending in .png")
        return given, "--confusion"
    if json_out is None:
        return None, "--confusion"
    return json_out.with_name(json_out.stem + "_confusion.png"), "the confusion PNG (beside --json; --confusion PATH chooses another)"
