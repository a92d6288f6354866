"""The receptive field of a configured model: the analytic stack (``segdil.rf``) and the
gradient ERF of the built model — the work behind ``segdil rf``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from segdil.errors import SegdilError
from segdil.memory_guard import check_fits
from segdil.models import create_model_quietly, model_class, rf_stack_args
from segdil.models.footprint import estimate_step_bytes
from segdil.rf import analyze_stack, comparison_stack, describe_stack
from segdil.rf.erf import default_size, effective_receptive_field, erf_summary
from segdil.rf.plot import MAX_DRAWN_RF, plot_erf, plot_stack
from segdil.rf.text import check_stack, erf_lines, format_report, parse_rates


def receptive_field_report(
    rates_text: str | None,
    repeat: int | None,
    kernel: int | None,
    model_args: dict[str, Any] | None,
    weights: dict[str, Any] | None,
    checkpoint_path: str | None,
    plot_path: str | None,
    erf_path: str | None,
    size: int | None,
    samples: int,
    seed: int,
    device: str,
) -> tuple[dict[str, Any], list[str], bool]:
    """The JSON result, the text lines, and whether the stack grids; writes the requested plots.
    ``weights``: the state dict of ``checkpoint_path`` for the ERF (None: random init from ``seed``)."""
    result: dict = {}
    lines: list[str] = []
    report = None
    if rates_text:
        rates = parse_rates(rates_text)
        repeat, kernel = (1 if repeat is None else repeat), (3 if kernel is None else kernel)
        check_stack(rates, repeat, kernel)
        report = analyze_stack(rates, repeat, kernel)
    else:
        result["model"] = model_args["name"]
        try:
            stack_args = rf_stack_args(model_args)
        except ValueError as exc:
            if not erf_path:
                raise SegdilError(f"model.name: {exc}; --erf OUT.png gives the gradient ERF of any segmentation model") from None
            lines.append(f"analytic RF      none: {exc}")
        else:
            check_stack(**stack_args, where="model.rates/model.blocks")
            report = analyze_stack(**stack_args)

    if report is not None:
        result.update(report.to_dict())
        lines = format_report(report) + lines
    if plot_path and report is None:
        raise SegdilError("--plot: there is no analytic stack to draw for this model; use --erf")
    if plot_path and report.receptive_field > MAX_DRAWN_RF:
        raise SegdilError(f"--plot: receptive field {report.receptive_field} is too large to draw (at most {MAX_DRAWN_RF}); drop --plot or use smaller rates")

    erf_map = None
    if erf_path:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise SegdilError(f"--device {device}: CUDA is not available here; use --device cpu")
        size = size or default_size(report)
        needed = estimate_step_bytes(model_args, "train", size, 1) if device == "cpu" else None
        if needed is not None:  # an upper bound, as for bench: refuse only where half of it does not fit
            check_fits(needed / 2, f"--erf at {size}x{size} for {model_args['name']}", "give a smaller --size (the ERF is one forward and backward at that side)")
        model = build_model(model_args, weights, seed)
        try:
            erf_map = effective_receptive_field(model, size, model_args.get("in_channels", 3), samples, seed, device)
        except ValueError as exc:
            raise SegdilError(f"--erf: {exc}") from None
        summary = erf_summary(erf_map, report)
        source = f"{model_args['name']}, weights from {checkpoint_path}" if weights is not None else f"{model_args['name']}, random init (seed {seed})"
        result["erf"] = {**summary, "source": source, "samples": samples}
        lines += erf_lines(summary, report, source, samples)

    if plot_path:
        comparison = comparison_stack(report)
        plot_stack(report, plot_path, comparison)
        lines.append(f"plot             {plot_path}" + (f" (beside {describe_stack(comparison[0])}: {comparison[1]})" if comparison else " (no stack with this RF has the other verdict)"))
        result["plot"] = {"path": str(plot_path), "comparison": list(comparison[0].stack) if comparison else None}
    if erf_path:
        plot_erf(erf_map, erf_path, f"gradient ERF: {result['erf']['source']}", report)
        lines.append(f"erf plot         {erf_path}")
        result["erf"]["path"] = str(erf_path)

    return result, lines, report is not None and report.gridding


def build_model(model_args: dict[str, Any], weights: dict[str, Any] | None = None, seed: int = 0) -> nn.Module:
    """The model ``model_args`` describes: random init from ``seed``, or ``weights`` (a checkpoint's
    state dict, ``segdil.checkpoint.checkpoint_state_dict``)."""
    if model_class(model_args.get("name")).is_classifier:
        raise SegdilError(f"model.name: {model_args['name']!r} is a classifier (one score per image); the ERF needs a segmentation model")
    torch.manual_seed(seed)
    model = create_model_quietly(**model_args)  # gridding warnings: the analytic report says it already
    if weights is not None:
        try:
            model.load_state_dict(weights)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise SegdilError(f"--checkpoint: its weights do not fit the model of --config ({first}); drop --config to use the checkpoint's own model_args") from None
    return model
