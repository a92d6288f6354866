"""``segdil rf``: receptive field, the HDC rule and exact gridding analysis of a dilation stack."""

from __future__ import annotations

import json
import re

import click

from segdil.commands.options import config_options
from segdil.errors import SegdilError

MAX_RF = 1_000_001


def parse_rates(text: str) -> tuple[int, ...]:
    """``"1,2,5"`` (commas or spaces) -> ``(1, 2, 5)``; anything else is a one-line error."""
    items = [t for t in re.split(r"[,\s]+", text.strip().strip("[]()")) if t]
    if not items or not all(t.isdigit() and int(t) >= 1 for t in items):
        raise SegdilError(f"--rates {text!r}: expected positive integers separated by commas, e.g. --rates 1,2,5")
    return tuple(int(t) for t in items)


def _check_stack(rates: tuple[int, ...], repeat: int, kernel: int, stem: int = 0, where: str = "--rates/--repeat") -> None:
    if repeat < 1:
        raise SegdilError(f"--repeat {repeat}: the group must appear at least once")
    if kernel < 3 or kernel % 2 == 0:
        raise SegdilError(f"--kernel {kernel}: use an odd kernel size >= 3, so that the centre output sits on a tap")
    rf = 1 + (kernel - 1) * (stem + sum(rates) * repeat)
    if rf > MAX_RF:
        raise SegdilError(f"{where}: receptive field {rf} is larger than {MAX_RF}; use smaller rates or fewer repeats")


def _signed(offsets: list[int], limit: int = 12) -> str:
    positive = [o for o in offsets if o > 0]
    shown = ", ".join(f"±{o}" for o in positive[:limit])
    return shown + (f", … ({len(offsets)} offsets)" if len(positive) > limit else "")


def _verdict(report) -> str:
    if not report.gridding:
        return "no gridding: every offset of the receptive field reaches the centre output"
    why = f"the group's rates share the factor {report.common_factor}" if report.common_factor > 1 else "the rates grow too fast for the layers below to fill the gaps"
    rule = "the M rule passes, yet coverage finds holes" if report.hdc_rule_ok else "the M rule fails too"
    return f"GRIDDING: {report.holes} holes ({rule}; {why})"


def format_report(report) -> list[str]:
    """The human-readable report, one line per fact."""
    from segdil.rf import describe_stack

    k, rf = report.kernel, report.receptive_field
    rule = f"M = {report.M}: M2 = {report.M2} {'≤' if report.hdc_rule_ok else '>'} {k}, {'passes' if report.hdc_rule_ok else 'fails'}"
    lines = [
        f"stack            {describe_stack(report)} = {' '.join(map(str, report.stack))}, {k}×{k} kernels",
        f"receptive field  {rf}×{rf} = 1 + ({k}−1)·{sum(report.stack)}",
        f"HDC rule         {rule} (group {tuple(report.rates)})",
        f"common factor    {report.common_factor}",
        f"coverage         {report.coverage:.3f} ({report.reached} of {rf * rf} offsets reach the centre output; {report.holes} holes)",
    ]
    if report.gridding:
        lines.append(f"holes (1-D)      {_signed(report.hole_offsets_1d())}; a 2-D offset (dy, dx) is a hole when dy or dx is one")
    if rf <= 41:
        counts = report.path_counts_1d[rf // 2 :]
        lines.append(f"paths (1-D)      offsets 0…{rf // 2}: {' '.join(str(int(c)) for c in counts)}; 2-D map = outer product")
    lines.append(f"verdict          {_verdict(report)}")
    return lines


def _erf_lines(summary: dict, report, source: str, samples: int) -> list[str]:
    size = summary["size"]
    lines = [
        f"ERF              {source}; |∂ centre output/∂ input| over {samples} random {size}×{size} input{'s' if samples > 1 else ''}",
        f"  extent         nonzero over {summary['extent']}×{summary['extent']}{' (the whole input)' if summary['extent'] >= size else ''}; "
        f"95% of |grad| within the centred {summary['side_95']}×{summary['side_95']}",
    ]
    if report is not None:
        lines.append(
            f"  vs analytic    {summary['inside_rf']:.1%} of |grad| inside the {report.receptive_field}×{report.receptive_field} RF; "
            f"{summary['nonzero_outside_rf']} pixels outside it and {summary['holes_with_gradient']} holes carry gradient"
        )
    return lines


@click.command("rf")
@click.option("--rates", "rates_text", metavar="R1,R2,...", help="Dilation rates of one group, e.g. 1,2,5.")
@click.option("--repeat", type=int, default=None, help="How many times the group is stacked [default: 1].")
@click.option("--kernel", type=int, default=None, help="Kernel size k of every layer [default: 3].")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Analyse the model of this YAML config (hdc: its rates, blocks and stem).")
@click.option("--checkpoint", "checkpoint_path", type=click.Path(dir_okay=False), help="Model weights (and, without --config, the model) for --erf.")
@config_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write the path-count heatmap beside a stack with the same RF and the other verdict (PNG).")
@click.option("--erf", "erf_path", type=click.Path(dir_okay=False), help="Write the gradient ERF of the configured model (PNG); any segmentation model.")
@click.option("--size", type=int, default=None, help="Input side for --erf [default: hdc RF + margin, rounded up to 32; else 128].")
@click.option("--samples", type=int, default=4, show_default=True, help="Random inputs averaged for --erf.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random init and the random inputs for --erf.")
@click.option("--device", default="cpu", show_default=True, help="Device for --erf.")
@click.option("--strict", is_flag=True, help="Exit with status 1 when the stack grids.")
def command(rates_text, repeat, kernel, config_path, checkpoint_path, overrides, print_config, as_json, plot_path, erf_path, size, samples, seed, device, strict) -> None:
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

    from segdil.models import rf_stack_args
    from segdil.rf import analyze_stack, comparison_stack, describe_stack

    result: dict = {}
    lines: list[str] = []
    report, model_args, ckpt = None, None, None
    if rates_text:
        rates = parse_rates(rates_text)
        repeat, kernel = (1 if repeat is None else repeat), (3 if kernel is None else kernel)
        _check_stack(rates, repeat, kernel)
        report = analyze_stack(rates, repeat, kernel)
    else:
        model_args, ckpt = _model_args(config_path, checkpoint_path, overrides, print_config)
        result["model"] = model_args["name"]
        try:
            stack_args = rf_stack_args(model_args)
        except ValueError as exc:
            if not erf_path:
                raise SegdilError(f"model.name: {exc}; --erf OUT.png gives the gradient ERF of any segmentation model") from None
            lines.append(f"analytic RF      none: {exc}")
        else:
            _check_stack(**stack_args, where="model.rates/model.blocks")
            report = analyze_stack(**stack_args)

    if report is not None:
        result.update(report.to_dict())
        lines = format_report(report) + lines
    if plot_path and report is None:
        raise SegdilError("--plot: there is no analytic stack to draw for this model; use --erf")
    from segdil.rf_plot import MAX_DRAWN_RF

    if plot_path and report.receptive_field > MAX_DRAWN_RF:
        raise SegdilError(f"--plot: receptive field {report.receptive_field} is too large to draw (at most {MAX_DRAWN_RF}); drop --plot or use smaller rates")

    erf_map = None
    if erf_path:
        from segdil.erf import build_model, default_size, effective_receptive_field, erf_summary

        import torch

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise SegdilError(f"--device {device}: CUDA is not available here; use --device cpu")
        size = size or default_size(report)
        model = build_model(model_args, ckpt, seed)
        try:
            erf_map = effective_receptive_field(model, size, model_args.get("in_channels", 3), samples, seed, device)
        except ValueError as exc:
            raise SegdilError(f"--erf: {exc}") from None
        summary = erf_summary(erf_map, report)
        source = f"{model_args['name']}, weights from {checkpoint_path}" if ckpt else f"{model_args['name']}, random init (seed {seed})"
        result["erf"] = {**summary, "source": source, "samples": samples}
        lines += _erf_lines(summary, report, source, samples)

    from segdil.rf_plot import plot_erf, plot_stack

    if plot_path:
        comparison = comparison_stack(report)
        plot_stack(report, plot_path, comparison)
        lines.append(f"plot             {plot_path}" + (f" (beside {describe_stack(comparison[0])}: {comparison[1]})" if comparison else " (no stack with this RF has the other verdict)"))
        result["plot"] = {"path": str(plot_path), "comparison": list(comparison[0].stack) if comparison else None}
    if erf_path:
        plot_erf(erf_map, erf_path, f"gradient ERF: {result['erf']['source']}", report)
        lines.append(f"erf plot         {erf_path}")
        result["erf"]["path"] = str(erf_path)

    click.echo(json.dumps(result, indent=2) if as_json else "\n".join(lines))
    if strict and report is not None and report.gridding:
        raise SystemExit(1)


def _model_args(config_path, checkpoint_path, overrides, print_config) -> tuple[dict, dict | None]:
    """The model section (from --config/--set, else from the checkpoint) and the checkpoint if any."""
    from segdil.checkpoint import load_checkpoint
    from segdil.commands.options import resolve_config

    ckpt = load_checkpoint(checkpoint_path) if checkpoint_path else None
    if config_path or overrides or print_config or ckpt is None:
        return dict(resolve_config(config_path, overrides, print_config).model), ckpt
    return dict(ckpt["model_args"]), ckpt
