"""``segdil data``: write the synthetic benchmark, check a folder dataset."""

from __future__ import annotations

import click

from segdil.config import SynthConfig

DEFAULTS = SynthConfig()


@click.group("data")
def command() -> None:
    """Make the synthetic benchmark and check folder datasets."""


@command.command("synth", short_help="Write the synthetic benchmark to a folder.")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--n-train", default=DEFAULTS.n_train, show_default=True, help="Training images.")
@click.option("--n-val", default=DEFAULTS.n_val, show_default=True, help="Validation images.")
@click.option("--size", default=DEFAULTS.size, show_default=True, help="Square image size in pixels.")
@click.option("--seed", default=DEFAULTS.seed, show_default=True, help="Same seed, same bytes.")
@click.option("--min-object", default=DEFAULTS.min_object, show_default=True, help="Smallest object size sqrt(area), pixels.")
@click.option("--max-object", type=float, default=None, help=f"Largest object size sqrt(area), pixels [default: {DEFAULTS.max_object:g}, at most half of --size].")
@click.option("--objects-per-image", nargs=2, type=int, default=tuple(DEFAULTS.objects_per_image), show_default=True, metavar="MIN MAX", help="Objects per image, drawn uniformly.")
@click.option("--no-thin-lines", is_flag=True, help="Leave out the 'line' class (1-3 px wide lines).")
@click.option("--scene", type=click.Choice(["standard", "hard"]), default=DEFAULTS.scene, show_default=True, help="hard: objects count only inside fields; look-alikes outside, camouflage, class-hued texture.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it already holds files.")
def synth(out: str, n_train: int, n_val: int, size: int, seed: int, min_object: float, max_object: float | None, objects_per_image: tuple[int, int], no_thin_lines: bool, scene: str, overwrite: bool) -> None:
    """Write the synthetic small-object benchmark to OUT (folder format, objects.json, preview.png)."""
    import json
    import sys
    from pathlib import Path

    from segdil.data.synth_write import write_synthetic

    if max_object is None:  # the default adapts to small sizes; an explicit value is checked as given
        max_object = max(min_object, min(DEFAULTS.max_object, size / 2))
    cfg = SynthConfig(n_train=n_train, n_val=n_val, size=size, min_object=min_object, max_object=max_object, objects_per_image=list(objects_per_image), thin_lines=not no_thin_lines, seed=seed, scene=scene)
    total = n_train + n_val
    with click.progressbar(length=total, label="generating", file=sys.stderr) as bar:
        path = write_synthetic(out, cfg, overwrite=overwrite, progress=lambda done: bar.update(1))
    meta = json.loads((Path(path) / "objects.json").read_text())
    counts: dict[str, int] = {}
    for split in meta["objects"].values():
        for objects in split.values():
            for obj in objects:
                counts[obj["class"]] = counts.get(obj["class"], 0) + 1
    click.echo(f"wrote {n_train} train + {n_val} val images ({size}x{size}) to {path}")
    click.echo("objects: " + ", ".join(f"{name} {counts.get(name, 0)}" for name in meta["classes"][1:]))
    click.echo(f"preview: {Path(path) / 'preview.png'}")


@command.command("check", short_help="Summarise a folder dataset and list its problems.")
@click.argument("root", type=click.Path())
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
