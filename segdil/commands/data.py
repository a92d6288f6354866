"""``segdil data``: write the synthetic benchmark, check a folder dataset."""

from __future__ import annotations

import click

from segdil.config import SynthConfig
from segdil.path_names import PathType

DEFAULTS = SynthConfig()


@click.group("data")
def command() -> None:
    """Make the synthetic benchmark and check folder datasets."""


def _size(text: str | None, scene: str) -> int:
    """``--size``: N or WxH -> the short side (square scenes: W = H; street: W = 2H)."""
    from segdil.errors import SegdilError

    street = scene == "street"
    if text is None:
        return 512 if street else DEFAULTS.size
    try:
        w, _, h = text.lower().partition("x")
        width, height = int(w), int(h or w)
    except ValueError:
        raise SegdilError(f"--size {text}: expected N or WxH in pixels, e.g. {'1024x512' if street else '96'}") from None
    if street and h and width != 2 * height:
        raise SegdilError(f"--size {text}: street scenes are twice as wide as high, e.g. 1024x512 or 2048x1024")
    if not street and width != height:
        raise SegdilError(f"--size {text}: the {scene} scene is square; give one number, e.g. --size {height}")
    return height


@command.command("synth", short_help="Write the synthetic benchmark to a folder.")
@click.argument("out", type=PathType(file_okay=False))
@click.option("--n-train", default=DEFAULTS.n_train, show_default=True, help="Training images.")
@click.option("--n-val", default=DEFAULTS.n_val, show_default=True, help="Validation images.")
@click.option("--size", default=None, metavar="N|WxH", help=f"Image size in pixels: square side; street: WxH (2:1) or the short side [default: {DEFAULTS.size}; street: 1024x512].")
@click.option("--seed", default=DEFAULTS.seed, show_default=True, help="Same seed, same bytes.")
@click.option("--min-object", default=DEFAULTS.min_object, show_default=True, help="Smallest object size sqrt(area), pixels.")
@click.option("--max-object", type=float, default=None, help=f"Largest object size sqrt(area), pixels [default: {DEFAULTS.max_object:g}, at most half of --size].")
@click.option("--objects-per-image", nargs=2, type=int, default=tuple(DEFAULTS.objects_per_image), show_default=True, metavar="MIN MAX", help="Objects per image, drawn uniformly.")
@click.option("--no-thin-lines", is_flag=True, help="Leave out the 'line' class (1-3 px wide lines).")
@click.option(
    "--scene", type=click.Choice(["standard", "hard", "street"]), default=DEFAULTS.scene, show_default=True,
    help="hard: objects count only inside fields; look-alikes outside, camouflage, class-hued texture. street: street scenes in perspective, "
    "Cityscapes classes, written in the Cityscapes layout (the object options do not apply).",
)  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace OUT when it holds an earlier data synth output and nothing else (its .segdil-synth.json lists what it wrote).")
def synth(out: str, n_train: int, n_val: int, size: str | None, seed: int, min_object: float, max_object: float | None, objects_per_image: tuple[int, int], no_thin_lines: bool, scene: str, overwrite: bool) -> None:
    """Write the synthetic small-object benchmark to OUT (folder format, objects.json, preview.png;
    --scene street: the Cityscapes layout, leftImg8bit/ and gtFine/ with instance maps)."""
    import json
    import sys
    from pathlib import Path

    from segdil.data.synth_write import write_synthetic

    side = _size(size, scene)
    if max_object is None:  # the default adapts to small sizes; an explicit value is checked as given
        max_object = max(min_object, min(DEFAULTS.max_object, side / 2))
    cfg = SynthConfig(n_train=n_train, n_val=n_val, size=side, min_object=min_object, max_object=max_object, objects_per_image=list(objects_per_image), thin_lines=not no_thin_lines, seed=seed, scene=scene)
    total = n_train + n_val
    with click.progressbar(length=total, label="generating", file=sys.stderr) as bar:
        path = write_synthetic(out, cfg, overwrite=overwrite, progress=lambda done: bar.update(1))
    meta = json.loads((Path(path) / "objects.json").read_text())
    counts: dict[str, int] = {}
    for split in meta["objects"].values():
        for objects in split.values():
            for obj in objects:
                counts[obj["class"]] = counts.get(obj["class"], 0) + 1
    shape = f"{2 * side}x{side}, Cityscapes layout" if scene == "street" else f"{side}x{side}"
    click.echo(f"wrote {n_train} train + {n_val} val images ({shape}) to {path}")
    names = [n for n in meta["classes"] if n in counts] if scene == "street" else meta["classes"][1:]
    click.echo("objects: " + ", ".join(f"{name} {counts.get(name, 0)}" for name in names))
    if "decoys" in meta:
        click.echo(f"decoys: {sum(len(d) for split in meta['decoys'].values() for d in split.values())} (look-alikes labelled as the stuff under them)")
    click.echo(f"preview: {Path(path) / 'preview.png'}")


@command.command("check", short_help="Summarise a folder dataset and list its problems.")
@click.argument("root", type=PathType())
@click.option("--split", "splits", multiple=True, help="A split that must exist (repeatable); default: every ROOT/<split>/images.")
@click.option("--format", "fmt", type=click.Choice(["folder", "voc", "cityscapes", "ade20k"]), default="folder", show_default=True, metavar="FMT", help="Layout of ROOT, read in place: folder, voc, cityscapes, ade20k (docs/data.md).")
def check(root: str, splits: tuple[str, ...], fmt: str) -> None:
    """Summarise a folder dataset and list every problem with its file; exit code 2 if any."""
    from segdil.data.check import format_summary
    from segdil.data.formats import check_format
    from segdil.errors import SegdilError

    result = check_format(fmt, root, list(splits) or None)
    click.echo(format_summary(result))
    if result.problems:
        click.echo(f"\n{len(result.problems)} problem(s):")
        for line in result.problems:
            click.echo(f"  {line}")
        raise SegdilError(f"{root}: {len(result.problems)} problem(s) found; fix them before training")
    click.echo("\nno problems found")
