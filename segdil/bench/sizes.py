"""``segdil bench --sizes``: the cost of every model against image size, in one run.

For each model and each size (smallest first) one variant is measured, built from the switches
as ``segdil bench`` builds it (defaults: channels_last, bf16 where native, BatchNorm folded for
``--infer``), and in training also the same variant with the memory saver where the model has
one (``model_class(name).supports_memory_saver``; it recomputes activations in the backward, so
inference has nothing to save). Per (model, size):

* FLOPs of a step on the meta device (:func:`segdil.bench.step_runner.count_step_flops`);
* peak memory: on CPU the peak resident set of a fresh process running two steps of the variant
  alone (:func:`segdil.bench.memory.memory_probe_process`); on CUDA the per-variant peak bench
  measures;
* img/s: the variants timed in rounds in this process (:func:`segdil.bench.run.bench`).

Before a size runs, its peak memory is estimated from the sizes already measured (a straight
line in pixels, or proportional to the largest one when only one is measured: an upper bound);
an estimate over the memory limit (``--max-memory-gb``, and on CPU also 90 % of the memory
available now) is a row marked *too large* that is never run, as is a probe the system killed
or an out-of-memory error. From the line fitted over all measured sizes, the largest square and
2:1 images that fit in ``--max-memory-gb`` are stated per model and variant.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional, Sequence

import torch

from segdil.atomic import write_json
from segdil.bench.memory import memory_probe_process
from segdil.bench.options import BenchOptions
from segdil.bench.run import bench, default_steps, parse_size, set_threads, size_text
from segdil.bench.step_runner import count_step_flops
from segdil.bench.variants import Variant, check_variants
from segdil.device import environment, inference_amp, resolve_device
from segdil.errors import SegdilError, shown
from segdil.memory_guard import available_mb

ROUND_TO = 32  # the largest images are stated in multiples of 32 pixels
AVAILABLE_SHARE = 0.9  # on CPU never start a run estimated over this share of the memory available now


def parse_sizes(text: str, flag: str = "--sizes") -> list[tuple[int, int]]:
    """``--sizes 256,512,1024x512`` -> [(256, 256), (512, 512), (512, 1024)] as (height, width),
    duplicates dropped, smallest first (estimates come from the smaller sizes)."""
    sizes: list[tuple[int, int]] = []
    for part in (p.strip() for p in str(text).split(",")):
        try:
            size = parse_size(part)
        except SegdilError:
            raise SegdilError(f"{flag} {shown(str(text), 80)}: {shown(part, 40)} is not a size; give sides (512) or width x height (2048x1024), at least 1, comma-separated") from None
        if size not in sizes:
            sizes.append(size)
    return sorted(sizes, key=lambda s: (s[0] * s[1], s[1]))


@dataclass(frozen=True)
class MemoryFit:
    """Peak memory (MB) = ``intercept_mb`` + ``slope_mb_per_mpx`` x megapixels."""

    intercept_mb: float
    slope_mb_per_mpx: float
    method: str

    def at(self, pixels: float) -> float:
        return self.intercept_mb + self.slope_mb_per_mpx * pixels / 1e6

    def largest_pixels(self, limit_mb: float) -> float:
        return max(0.0, (limit_mb - self.intercept_mb) / self.slope_mb_per_mpx * 1e6)


def fit_memory(points: Sequence[tuple[float, float]]) -> Optional[MemoryFit]:
    """A least-squares line through (pixels, peak MB); with one size, or no growth measured, all of
    the largest size's memory taken as proportional to pixels (an upper bound). None without points."""
    if not points:
        return None
    xs = [p / 1e6 for p, _ in points]
    ys = [m for _, m in points]
    if len(set(xs)) >= 2:
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        if slope > 0:
            return MemoryFit(round(my - slope * mx, 1), round(slope, 1), f"least-squares line over {len(xs)} sizes")
    x, y = max(zip(xs, ys))
    return MemoryFit(0.0, round(y / x, 1), "proportional to pixels from the largest measured size (an upper bound)")


def largest_image(fit: Optional[MemoryFit], limit_gb: float) -> Optional[dict[str, Any]]:
    """The largest square and 2:1 (width = 2 x height) images whose estimated peak memory fits in
    ``limit_gb``, in multiples of 32 pixels (None in a field: not even 32 pixels fit)."""
    if fit is None:
        return None
    pixels = fit.largest_pixels(limit_gb * 1024)
    side = int(math.sqrt(pixels) // ROUND_TO) * ROUND_TO
    height = int(math.sqrt(pixels / 2) // ROUND_TO) * ROUND_TO
    return {
        "limit_gb": limit_gb,
        "megapixels": round(pixels / 1e6, 2),
        "square": size_text(side) if side else None,
        "wide": size_text((height, 2 * height)) if height else None,
    }


@dataclass
class Sweep:
    """What is the same for every (model, size) of one run."""

    mode: str
    batch: int
    device: torch.device
    variant: Variant
    steps: Optional[int]
    warmup: Optional[int]
    compile_backend: str
    limit_mb: float  # the stated limit (--max-memory-gb)
    run_limit_mb: float  # what may be started: the stated limit, on CPU also within the memory available


def is_out_of_memory(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text


def probe(model_args: dict[str, Any], variant: Variant, size: tuple[int, int], sweep: Sweep) -> dict[str, Any]:
    """Peak memory of ``variant`` at ``size`` in a fresh process: the figures, or why there are none."""
    proc = memory_probe_process(model_args, variant, sweep.mode, list(size), sweep.batch, sweep.compile_backend, torch.get_num_threads())
    if proc.returncode == 0:
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        return {"peak_memory_mb": round(figures["peak_rss_mb"], 1), "step_memory_mb": round(figures["peak_rss_mb"] - figures["rss_before_mb"], 1)}
    last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    if proc.returncode in (-9, 137) or is_out_of_memory(RuntimeError(last)):
        return {"status": "too large", "reason": f"out of memory ({last[:120]})"}
    return {"status": "failed", "reason": last[:200]}


def admit(entry: dict[str, Any], model_args: dict[str, Any], variant: Variant, size: tuple[int, int], points: list, sweep: Sweep) -> bool:
    """Estimate, then (CPU) probe ``variant`` at ``size``; fill ``entry``; True when it may be timed."""
    fit = fit_memory(points)
    if fit is not None:
        entry["estimated_memory_mb"] = round(fit.at(size[0] * size[1]), 1)
        if entry["estimated_memory_mb"] > sweep.run_limit_mb:
            entry.update(status="too large", reason=f"estimated {entry['estimated_memory_mb'] / 1024:.1f} GB > {sweep.run_limit_mb / 1024:.1f} GB; not run")
            return False
    if sweep.device.type != "cpu":
        return True
    entry.update(probe(model_args, variant, size, sweep))
    if entry["status"] is not None:
        return False
    points.append((size[0] * size[1], entry["peak_memory_mb"]))
    if entry["peak_memory_mb"] > sweep.limit_mb:
        entry.update(status="too large", reason=f"measured {entry['peak_memory_mb'] / 1024:.1f} GB > {sweep.limit_mb / 1024:.1f} GB")
        return False
    return True


def measure_size(model_args: dict[str, Any], variants: list[Variant], size: tuple[int, int], points: dict[str, list], sweep: Sweep) -> dict[str, Any]:
    """One row: FLOPs, and per variant memory and img/s, or why it was not run."""
    flops = count_step_flops(model_args, sweep.mode, size, sweep.batch)
    row: dict[str, Any] = {"size": list(size), "size_text": size_text(size), "megapixels": round(size[0] * size[1] / 1e6, 4), "flops_per_step": flops, "gflops_per_image": round(flops / sweep.batch / 1e9, 3) if flops else None}
    entries = {v.name: {"name": v.name, "memory_saver": v.memory_saver, "status": None} for v in variants}
    run = [v for v in variants if admit(entries[v.name], model_args, v, size, points[v.name], sweep)]
    if run:
        try:
            result = bench(model_args, mode=sweep.mode, size=size, batch=sweep.batch, device=str(sweep.device), variants=run, steps=sweep.steps, warmup=sweep.warmup, compile_backend=sweep.compile_backend, isolate_memory=False)
        except RuntimeError as error:
            if not is_out_of_memory(error):
                raise
            for v in run:
                entries[v.name].update(status="too large", reason="out of memory while timing")
        else:
            for v, timed in zip(run, result["variants"]):
                entries[v.name].update(status="ok", ms_per_step=timed["ms_per_step"], img_per_s=timed["img_per_s"], tflops=timed["tflops"])
                if sweep.device.type != "cpu":
                    entries[v.name].update(peak_memory_mb=timed["peak_memory_mb"])
                    points[v.name].append((size[0] * size[1], timed["peak_memory_mb"]))
        if sweep.device.type == "cuda":
            torch.cuda.empty_cache()
    row["variants"] = list(entries.values())
    return row


def sweep_model(label: str, model_args: dict[str, Any], sizes: list[tuple[int, int]], sweep: Sweep) -> dict[str, Any]:
    """Every size of one model, its memory line per variant and the largest image that fits."""
    from segdil.models import model_class

    saver = sweep.mode == "train" and model_class(model_args["name"]).supports_memory_saver
    variants = [sweep.variant, replace(sweep.variant, memory_saver=True)] if saver else [sweep.variant]
    check_variants(variants, sweep.mode, model_args)
    points: dict[str, list] = {v.name: [] for v in variants}
    rows = [measure_size(model_args, variants, size, points, sweep) for size in sizes]
    fits = {v.name: fit_memory(points[v.name]) for v in variants}
    limit_gb = round(sweep.limit_mb / 1024, 3)
    return {
        "label": label,
        "model": dict(model_args),
        "supports_memory_saver": model_class(model_args["name"]).supports_memory_saver,
        "variants": [v.name for v in variants],
        "rows": rows,
        "memory_fit": {name: None if fit is None else vars(fit) for name, fit in fits.items()},
        "largest_image": {name: largest_image(fit, limit_gb) for name, fit in fits.items()},
    }


def sweep_sizes(models: Sequence[tuple[str, dict[str, Any]]], sizes: list[tuple[int, int]], sweep: Sweep, on_model: Optional[Callable[[str], None]] = None) -> dict[str, Any]:
    """Every model at every size (see the module doc); a JSON-ready dict. ``on_model(label)`` is
    called as each model starts (progress)."""
    load_before = os.getloadavg()
    result: dict[str, Any] = {"mode": sweep.mode, "batch": sweep.batch, "variant": sweep.variant.name, "sizes": [size_text(s) for s in sizes], **environment(sweep.device)}
    result.update(max_memory_gb=round(sweep.limit_mb / 1024, 3), run_memory_limit_gb=round(sweep.run_limit_mb / 1024, 3))
    result["memory_method"] = (
        "peak resident set size of a fresh process running two steps of the variant alone (VmHWM)" if sweep.device.type == "cpu"
        else "torch.cuda.max_memory_allocated during a step plus own weights, optimizer state and inputs"
    )
    result["models"] = []
    for label, args in models:
        if on_model is not None:
            on_model(label)
        result["models"].append(sweep_model(label, args, sizes, sweep))
    result["load_average"] = {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in os.getloadavg()]}
    return result


def make_sweep(
    mode: str, batch: int, dev: torch.device, variant: Variant, steps: Optional[int] = None, warmup: Optional[int] = None,
    compile_backend: str = "inductor", max_memory_gb: Optional[float] = None,
) -> Sweep:
    """A sweep's settings; ``max_memory_gb`` defaults to the GPU's memory on CUDA, 24 GB on the CPU
    (where what may start is also bounded by the memory available now); steps to bench's defaults."""
    if max_memory_gb is None:
        max_memory_gb = torch.cuda.get_device_properties(dev).total_memory / 2**30 if dev.type == "cuda" else 24.0
    if not max_memory_gb > 0:
        raise SegdilError(f"--max-memory-gb {max_memory_gb}: give a positive number of GB")
    limit_mb = max_memory_gb * 1024
    free = available_mb() if dev.type == "cpu" else None
    timed, warm = default_steps(dev)
    return Sweep(mode, batch, dev, variant, timed if steps is None else steps, warm if warmup is None else warmup, compile_backend, limit_mb, min(limit_mb, AVAILABLE_SHARE * free) if free else limit_mb)


def sweep_from_options(models: Sequence[tuple[str, Any]], o: BenchOptions) -> str:
    """What ``segdil bench --sizes`` does with its options: ``models`` are (label, resolved
    ``Config``) pairs; the table and the largest-image lines are returned, the figures go to
    ``o.json_path`` and the plot to ``o.plot_path``. Options that time something else (a matrix,
    the conv ceiling, one memory-saver variant) are refused."""
    from segdil.bench.sizes_report import format_sizes, plot_sizes

    refused = {"--matrix": o.matrix, "--variants": o.variants is not None, "--conv-ceiling": o.conv_ceiling, "--vs-ceiling": o.vs_ceiling, "--memory-saver": o.memory_saver}
    given = [flag for flag, on in refused.items() if on]
    if given:
        raise SegdilError(f"--sizes: does not combine with {', '.join(given)}; a sweep times one variant (and its memory saver) per size")
    shape = parse_sizes(o.sizes)
    if o.batch < 1:
        raise SegdilError(f"--batch {o.batch}: use at least 1")
    set_threads(o.threads)
    dev = resolve_device(o.device)
    mode = o.mode
    if mode == "train" and o.threads is None and models:
        from segdil.threads import apply_thread_plan

        apply_thread_plan(models[0][1].data.num_workers, cuda=dev.type == "cuda", quiet=True)
    variant = Variant(channels_last=o.channels_last, amp=inference_amp(o.precision, dev), compile=o.compile_, fuse=(mode == "infer") if o.fuse is None else o.fuse)
    sweep = make_sweep(mode, o.batch, dev, variant, o.steps, o.warmup, o.compile_backend, o.max_memory_gb)
    result = sweep_sizes([(label, cfg.model) for label, cfg in models], shape, sweep)
    text = format_sizes(result)
    if o.json_path:
        write_json(o.json_path, result)
        text += f"\nwrote {o.json_path}"
    if o.plot_path:
        plot_sizes(result, o.plot_path)
        text += f"\nwrote {o.plot_path}"
    return text
