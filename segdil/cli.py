"""The ``segdil`` command: a click group whose subcommands live one per module in segdil/commands.

Subcommands are imported only when used, so ``segdil --help`` does not pay for importing torch.
"""

from __future__ import annotations

import importlib

import click

from segdil import __version__

COMMANDS = {
    "models": ("segdil.commands.models", "List the registered models with parameters and GFLOPs."),
    "data": ("segdil.commands.data", "Make the synthetic benchmark and check folder datasets."),
    "train": ("segdil.commands.train", "Train a model from a YAML config."),
    "eval": ("segdil.commands.eval", "Score a checkpoint or a folder of prediction PNGs."),
    "predict": ("segdil.commands.predict", "Run a checkpoint over image files and folders."),
    "export": ("segdil.commands.export", "Export a checkpoint to ONNX (and fold BatchNorm)."),
    "rf": ("segdil.commands.rf", "Receptive field, HDC rule and exact gridding analysis."),
    "compare": ("segdil.commands.compare", "Train several models alike and report IoU against object size."),
    "bench": ("segdil.commands.bench", "Measure training and inference speed and memory."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        return importlib.import_module(COMMANDS[name][0]).command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, help_) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="segdil")
def cli() -> None:
    """segdil: full-resolution dilated (HDC) segmentation against pooling networks, measured on small objects."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
