"""``segdil rf``: receptive field, the HDC rule and exact gridding analysis of a dilation stack."""

from __future__ import annotations

import json

import click

from segdil.commands.options import config_options, resolve_config
from segdil.errors import SegdilError
from segdil.output_paths import check_output
from segdil.path_names import PathType


@click.command("rf")
@click.option("--rates", "rates_text", metavar="R1,R2,...", help="Dilation rates of one group, e.g. 1,2,5.")
@click.option("--repeat", type=int, default=None, help="How many times the group is stacked [default: 1].")
@click.option("--kernel", type=int, default=None, help="Kernel size k of every layer [default: 3].")
@click.option("--config", "config_path", type=PathType(dir_okay=False), help="Analyse the model of this YAML config (hdc: its rates, blocks and stem).")
@click.option("--checkpoint", "checkpoint_path", type=PathType(dir_okay=False), help="Model weights (and, without --config, the model) for --erf.")
@config_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--plot", "plot_path", type=PathType(dir_okay=False), help="Write the path-count heatmap beside a stack with the same RF and the other verdict (PNG).")
@click.option("--erf", "erf_path", type=PathType(dir_okay=False), help="Write the gradient ERF of the configured model (PNG); any segmentation model.")
@click.option("--size", type=int, default=None, help="Input side for --erf [default: hdc RF + margin, rounded up to 32; else 128].")
@click.option("--samples", type=int, default=4, show_default=True, help="Random inputs averaged for --erf.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random init and the random inputs for --erf.")
@click.option("--device", default="cpu", show_default=True, help="Device for --erf.")
@click.option("--overwrite", is_flag=True, help="Replace --plot/--erf files that exist (never an input).")
@click.option("--strict", is_flag=True, help="Exit with status 1 when the stack grids.")
def command(rates_text, repeat, kernel, config_path, checkpoint_path, overrides, print_config, as_json, plot_path, erf_path, size, samples, seed, device, strict, overwrite) -> None:
    """Receptive field, HDC rule and exact coverage of a dilation stack.

    \b
    segdil rf --rates 1,2,5 --repeat 2 --plot rf.png
    segdil rf --config run.yaml --erf erf.png
    """
    model_mode = bool(config_path or checkpoint_path or overrides or print_config)
    if rates_text and model_mode:
        raise SegdilError("--rates: give either --rates or a model (--config/--checkpoint/--set), not both")
    if not rates_text and not model_mode:
        raise SegdilError("segdil rf: give --rates 1,2,5 (optionally --repeat, --kernel) or --config CONFIG")
    if erf_path and not model_mode:
        raise SegdilError("--erf: the gradient ERF needs a model; give --config CONFIG or --checkpoint CKPT")
    if model_mode and (repeat is not None or kernel is not None):
        raise SegdilError("--repeat/--kernel: with a model they come from its config (hdc: blocks; 3×3 kernels); drop them")
    if samples < 1 or (size is not None and size < 1):
        raise SegdilError("--samples/--size: must be at least 1")

    from segdil.model_rf import receptive_field_report  # torch: not with --help (segdil/cli.py)

    check_output(plot_path, "--plot", [config_path, checkpoint_path], overwrite)
    check_output(erf_path, "--erf", [config_path, checkpoint_path, plot_path], overwrite)

    model_args, weights = _model_args(config_path, checkpoint_path, overrides, print_config) if model_mode else (None, None)
    result, lines, grids = receptive_field_report(rates_text, repeat, kernel, model_args, weights, checkpoint_path, plot_path, erf_path, size, samples, seed, device)
    click.echo(json.dumps(result, indent=2) if as_json else "\n".join(lines))
    if strict and grids:
        raise SystemExit(1)


def _model_args(config_path, checkpoint_path, overrides, print_config) -> tuple[dict, dict | None]:
    """The model section (from --config/--set, else from the checkpoint) and the checkpoint's weights if any."""
    from segdil.checkpoint import checkpoint_state_dict, load_checkpoint  # torch: not with --help (segdil/cli.py)

    ckpt = load_checkpoint(checkpoint_path) if checkpoint_path else None
    weights = checkpoint_state_dict(ckpt) if ckpt is not None else None
    if config_path or overrides or print_config or ckpt is None:
        return dict(resolve_config(config_path, overrides, print_config).model), weights
    return dict(ckpt["model_args"]), weights
