"""``segdil models``: the registry with parameter counts and FLOPs."""

from __future__ import annotations

import click

from segdil.errors import SegdilError


@click.command("models")
@click.option("--num-classes", default=4, show_default=True, help="Classes of the head when counting.")
@click.option("--size", default=256, show_default=True, type=click.IntRange(min=1), help="Square input size for the FLOP count (at least every model's minimum input size).")
def command(num_classes: int, size: int) -> None:
    """List the registered models with default-argument parameters and GFLOPs per megapixel."""
    # torch and the model stack load when the command runs, not with its --help (segdil/cli.py)
    from segdil.models import MODELS, count_flops, count_params, create_model_quietly

    smallest = max(cls.min_input_size for cls in MODELS.values())
    if size < smallest:
        raise SegdilError(f"--size {size}: the FLOP count runs every model, and some need inputs of at least {smallest} px; use --size {smallest} or more")

    click.echo(f"{'name':<16} {'params':>12} {'GFLOPs/MP':>10}  description")
    for name, cls in MODELS.items():
        model = create_model_quietly(name=name, num_classes=num_classes)
        flops = count_flops(model, size, size)
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        click.echo(f"{name:<16} {count_params(model):>12,} {flops / size / size / 1e3:>10.2f}  {doc}")
