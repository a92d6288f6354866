"""``segdil train``: identical to ``python tools/train.py``."""

from __future__ import annotations

import click

from segdil.commands.options import config_options, resolve_config
from segdil.path_names import PathType


@click.command("train")
@click.argument("config", type=PathType(dir_okay=False))
@config_options
@click.option("--work-dir", default=None, type=PathType(file_okay=False), help="Run folder (default runs/<config name>/<timestamp>).")
@click.option("--resume", is_flag=True, help="Continue from last.pt in --work-dir (or the newest run of this config).")
def command(config: str, overrides: tuple[str, ...], print_config: bool, work_dir: str | None, resume: bool) -> None:
    """Train a model from a YAML CONFIG on one CPU, one GPU, or many GPUs under torchrun."""
    from segdil.train.main import train  # torch: not with --help (segdil/cli.py)

    cfg = resolve_config(config, overrides, print_config)
    result = train(cfg, work_dir=work_dir, resume=resume)
    click.echo(f"done: {result['step']} steps; checkpoints in {result['work_dir']}")
