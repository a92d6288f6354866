"""Speed and memory of one training or inference step: alone, or as a matrix of optimisations.

A *variant* is a set of switches on top of the naive form (fp32, NCHW, eager, unfused):
``channels_last``, ``amp`` (bf16 autocast), ``compile`` (``torch.compile``), ``fuse`` (BatchNorm
folded into the convolutions, inference only) and ``memory_saver`` (HDC activation checkpointing).

Timing: ``warmup`` untimed steps, then ``steps`` timed ones (``torch.cuda.synchronize`` around each
on CUDA); the figure is the median. A matrix builds every variant in one process and times them in
rounds (one step of each variant per round), so load from other processes falls on all variants
alike and the ratios to the naive baseline stay comparable on a shared machine.

Memory: on CUDA the peak of ``torch.cuda.max_memory_allocated`` during a step, less what other
variants hold, plus this variant's own parameters, buffers, optimizer state and inputs. On CPU the
peak resident set size (``VmHWM``), which is process-wide; a matrix therefore measures each
variant's memory in a fresh subprocess.

FLOPs come from ``torch.utils.flop_counter`` on the meta device: forward for inference, forward and
backward for training, always for the plain model (activation recomputation is not counted).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Optional, Sequence

import torch

from segdil.atomic import write_json
from segdil.bench.conv_ceiling import (
    DILATIONS,
    DTYPES,
    ceiling_from_options,
    ceiling_runner,
    ceiling_shares,
    format_conv_table,
)
from segdil.bench.memory import current_rss_mb, memory_in_subprocess, peak_rss_mb
from segdil.bench.options import BenchOptions
from segdil.bench.step_runner import Measurement, build_runner, count_step_flops, timed_step, warm_up
from segdil.bench.variants import Variant, check_variants, matrix_variants
from segdil.device import environment, inference_amp, resolve_device
from segdil.errors import SegdilError
from segdil.inference.engine import InferenceOptions
from segdil.memory_guard import check_fits
from segdil.models.footprint import estimate_step_bytes


def default_steps(device: torch.device) -> tuple[int, int]:
    """Timed steps and warm-up steps when none are given: 20/5 on CUDA, 5/2 on the CPU."""
    return (20, 5) if device.type == "cuda" else (5, 2)


MIN_SIDE = 8  # the smallest side a bench runs at, as training takes (data check: smaller than 8x8)


def parse_size(text: str | int) -> tuple[int, int]:
    """``--size``: ``512`` (square) or ``2048x1024`` (width x height) -> (height, width)."""
    value = str(text).strip().lower()
    try:
        if "x" in value:
            width, height = (int(v) for v in value.split("x", 1))
        else:
            width = height = int(value)
    except ValueError:
        raise SegdilError(f"--size {text!r}: give a side (512) or width x height (2048x1024)") from None
    if width < 1 or height < 1:
        raise SegdilError(f"--size {text!r}: both sides must be at least 1")
    return height, width


def size_text(size: int | tuple[int, int]) -> str:
    height, width = (size, size) if isinstance(size, int) else size
    return f"{width}x{height}"


def set_threads(threads: Optional[int]) -> None:
    if threads is not None:
        if threads < 1:
            raise SegdilError(f"--threads {threads}: use at least 1")
        torch.set_num_threads(threads)


def bench_loader(data_cfg: Any, size: int, batch: int, batches: int = 8, seed: int = 0) -> dict[str, Any]:
    """Images per second the training data pipeline delivers: synthetic images of ``size`` generated
    on the fly, augmented by the training transform with ``crop_size = size``, batched by the loader
    with ``data_cfg.num_workers`` workers (``auto``: as training would choose them, torch's threads
    left as they are). The first batch (worker start-up) is not timed."""
    from segdil.data.loader import build_loader
    from segdil.data.synth import SyntheticSegmentation
    from segdil.data.transforms import build_train_transform
    from segdil.threads import plan_threads

    synth = data_cfg.synth
    largest = min(synth.max_object, 0.7 * size)
    synth = replace(synth, size=size, max_object=largest, min_object=min(synth.min_object, largest), n_train=max(synth.n_train, batch * (batches + 1)))
    cfg = replace(data_cfg, synth=synth, crop_size=size)
    dataset = SyntheticSegmentation("train", synth, build_train_transform(cfg), mean=cfg.mean, std=cfg.std)
    workers = plan_threads(cfg.num_workers).workers
    loader = build_loader(dataset, batch, shuffle=True, num_workers=workers, drop_last=True, seed=seed, announce=False)
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    elapsed = time.perf_counter() - start
    del iterator
    return {"img_per_s": round(batch * batches / elapsed, 2), "batches": batches, "num_workers": workers, "source": "synthetic"}


def bench(
    model_args: dict[str, Any],
    *,
    mode: str = "train",
    size: int | tuple[int, int] = 512,
    batch: int = 16,
    device: str = "auto",
    variants: Sequence[Variant | str] = (),
    steps: Optional[int] = None,
    warmup: Optional[int] = None,
    compile_backend: str = "inductor",
    isolate_memory: bool = True,
    data_cfg: Any = None,
    data_batches: int = 8,
    threads: Optional[int] = None,
    ceiling_channels: Optional[int] = None,
) -> dict[str, Any]:
    """Measure each of ``variants`` on ``model_args`` (``create_model`` kwargs, ``name`` included).

    With more than one variant the first is the baseline and every entry gets ``speedup`` =
    baseline median ms per step / its median (and ``speedup_best``, the same for the fastest steps). ``steps``/``warmup`` default to 20/5 on CUDA, 5/2 on
    CPU. ``isolate_memory`` measures CPU memory of each variant of a matrix in a fresh subprocess.
    ``data_cfg`` (a ``DataConfig``) also measures the data loader. ``ceiling_channels`` also times
    the 3x3 conv ceiling at that width (fp32 and bf16, in the same rounds) and gives every variant
    its ``ceiling_share``. Returns a JSON-ready dict.
    """
    if isinstance(size, (tuple, list)) and size[0] == size[1]:
        size = int(size[0])
    if min((size,) if isinstance(size, int) else size) < 1 or batch < 1:
        raise SegdilError(f"--size {size} --batch {batch}: both must be at least 1")
    set_threads(threads)
    dev = resolve_device(device)
    default_timed, default_warmup = default_steps(dev)
    steps = default_timed if steps is None else steps
    warmup = default_warmup if warmup is None else warmup
    if steps < 1 or warmup < 0:
        raise SegdilError(f"--steps {steps} --warmup {warmup}: need at least one step and no negative warm-up")
    chosen = [v if isinstance(v, Variant) else Variant.parse(v) for v in variants] or [Variant()]
    check_variants(chosen, mode, model_args)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels

    result: dict[str, Any] = {"model": dict(model_args), "mode": mode, "size": size, "batch": batch, "steps": steps, "warmup": warmup, **environment(dev)}
    square = isinstance(size, int)
    result["data"] = bench_loader(data_cfg, size, batch, data_batches) if data_cfg is not None and square else None
    flops = count_step_flops(model_args, mode, size, batch)
    result["flops_per_step"] = flops
    result["gflops_per_image"] = round(flops / batch / 1e9, 3) if flops else None

    runners = [build_runner(model_args, v, mode, size, batch, dev, compile_backend) for v in chosen]
    measurements = [Measurement(v) for v in chosen]
    ceilings = {p: ceiling_runner(ceiling_channels, size, batch, dev, p) for p in DTYPES} if ceiling_channels else {}
    timed = [*zip(runners, measurements), *((runner, Measurement(runner.variant)) for runner, _ in ceilings.values())]
    start_rss = current_rss_mb() if dev.type == "cpu" else None
    for runner, measurement in timed:
        warm_up(runner, dev, warmup, measurement)
    for _ in range(steps):  # rounds: one step of every variant (and of the ceiling) each
        for runner, measurement in timed:
            timed_step(runner, dev, measurement)
    measure_memory(result, model_args, measurements, mode, size, batch, dev, compile_backend, isolate_memory, start_rss)

    rows = [m.summary(batch, flops) for m in measurements]
    if len(rows) > 1:
        base, base_best = rows[0]["ms_per_step"], rows[0]["ms_min"]
        for row in rows:
            row["speedup"] = round(base / row["ms_per_step"], 3)
            row["speedup_best"] = round(base_best / row["ms_min"], 3)  # fastest steps: less exposed to other load
    if ceilings:
        result["ceiling"] = {"channels": ceiling_channels, "dilations": list(DILATIONS), "pass": "forward+backward"}
        for (precision, (_, ceiling_flops)), (_, measurement) in zip(ceilings.items(), timed[len(runners):]):
            summary = measurement.summary(batch, ceiling_flops)
            result["ceiling"][precision] = {"ms": summary["ms_per_step"], "ms_min": summary["ms_min"], "tflops": summary["tflops"], "flops": ceiling_flops}
        ceiling_shares(rows, result["ceiling"])
    result["variants"] = rows
    return result


def measure_memory(result: dict[str, Any], model_args: dict[str, Any], measurements: list[Measurement], mode: str, size: int | tuple[int, int], batch: int, dev: torch.device, compile_backend: str, isolate_memory: bool, start_rss: Optional[float]) -> None:
    """Each variant's memory (see the module docstring) and how it was measured, into ``result``."""
    if dev.type == "cuda":
        result["memory_method"] = "torch.cuda.max_memory_allocated during a step, less other variants' tensors, plus own weights, optimizer state and inputs"
    elif len(measurements) == 1:
        measurements[0].peak_memory_mb, measurements[0].rss_before_mb = peak_rss_mb(), start_rss
        result["memory_method"] = "peak resident set size of this process (VmHWM); step_memory_mb: above the resident set before the first step"
    elif isolate_memory:
        for measurement in measurements:
            probe = memory_in_subprocess(model_args, measurement.variant, mode, size, batch, compile_backend, torch.get_num_threads())
            measurement.peak_memory_mb, measurement.rss_before_mb = probe.get("peak_rss_mb"), probe.get("rss_before_mb")
        result["memory_method"] = "peak resident set size of a fresh process running two steps of the variant alone (VmHWM); step_memory_mb: above its resident set before the first step"
    else:
        result["memory_method"] = "not measured per variant: CPU peak RSS is process-wide (see process_peak_rss_mb)"
    if dev.type == "cpu":
        result["process_peak_rss_mb"] = round(peak_rss_mb(), 1)


def format_table(result: dict[str, Any]) -> str:
    """The variants of a ``bench`` result as a fixed-width table, baseline ratios included."""
    head = f"{result['model'].get('name')} {result['mode']} {size_text(result['size'])} batch {result['batch']} on {result['device_name']} ({result['device']}, {result['threads']} threads, torch {result['torch']})"
    lines = [head]
    if result.get("gflops_per_image"):
        lines.append(f"{result['gflops_per_image']:.2f} GFLOP per image per step")
    lines.append(f"{'variant':<40} {'ms/step':>9} {'img/s':>9} {'TFLOP/s':>8} {'peak MB':>9} {'step MB':>8} {'speedup':>8} {'best':>6} {'warm-up s':>9}" + (f" {'ceiling':>8}" if result.get("ceiling") else ""))
    for row in result["variants"]:
        tflops = f"{row['tflops']:.3f}" if row["tflops"] is not None else "-"
        memory = f"{row['peak_memory_mb']:.0f}" if row["peak_memory_mb"] is not None else "-"
        step_memory = f"{row['step_memory_mb']:.0f}" if row["step_memory_mb"] is not None else "-"
        speedup = f"{row['speedup']:.2f}x" if "speedup" in row else ""
        best = f"{row['speedup_best']:.2f}x" if "speedup_best" in row else ""
        share = (f" {row['ceiling_share']:>8.1%}" if row.get("ceiling_share") is not None else f" {'-':>8}") if result.get("ceiling") else ""
        lines.append(f"{row['name']:<40} {row['ms_per_step']:>9.1f} {row['img_per_s']:>9.2f} {tflops:>8} {memory:>9} {step_memory:>8} {speedup:>8} {best:>6} {row['warmup_s']:>9.1f}{share}")
    if result.get("ceiling"):
        ceiling = result["ceiling"]
        figures = ", ".join(f"{p} {ceiling[p]['tflops'] * 1e3:.1f} GFLOP/s" for p in DTYPES if ceiling.get(p))
        lines.append(f"ceiling: 3x3 conv {ceiling['channels']}->{ceiling['channels']} forward+backward, dilations {', '.join(map(str, ceiling['dilations']))}, same rounds: {figures}")
    if result.get("predict"):
        from segdil.bench.predict_speed import format_predict

        lines.append(format_predict(result["predict"]))
    if result.get("data"):
        lines.append(f"data loader: {result['data']['img_per_s']:.1f} img/s ({result['data']['num_workers']} workers, {result['data']['source']})")
    lines.append(f"memory: {result['memory_method']}")
    return "\n".join(lines)


def chosen_variants(mode: str, model_name: str, *, matrix: bool, variants: Optional[str], channels_last: bool, amp: bool, compile_: bool, fuse: Optional[bool], memory_saver: bool) -> list[Variant]:
    """The variants of ``segdil bench``: a matrix (the naive baseline first), or the one the switches make."""
    if matrix:
        names = [v for v in variants.split(",") if v.strip()] if variants else matrix_variants(mode, model_name)
        chosen = [Variant.parse(n) for n in names]
        if chosen and chosen[0] != Variant():  # the naive baseline first
            chosen = [Variant(), *[v for v in chosen if v != Variant()]]
        return chosen
    if variants:
        raise SegdilError("--variants: only with --matrix; for one variant use the switches (--precision, --compile, ...)")
    return [Variant(channels_last=channels_last, amp=amp, compile=compile_, fuse=(mode == "infer") if fuse is None else fuse, memory_saver=memory_saver)]


def check_bench_input(model_args: dict[str, Any], mode: str, size: tuple[int, int], batch: int, dev: torch.device) -> None:
    """--size and --batch the model can take and the machine can hold, before anything is built."""
    from segdil.models import model_class

    if batch < 1:
        raise SegdilError(f"--batch {batch}: use at least 1")
    smallest = max(MIN_SIDE, model_class(model_args["name"]).min_input_size)
    if min(size) < smallest:
        raise SegdilError(f"--size {size_text(size)}: this model takes images of at least {smallest}x{smallest}; give a larger --size")
    if dev.type == "cpu":
        needed = estimate_step_bytes(model_args, mode, size, batch)
        if needed is not None:  # a training estimate is an upper bound: refuse only where half of it does not fit
            check_fits(needed / 2 if mode == "train" else needed, f"--size {size_text(size)} --batch {batch} ({mode})", "give a smaller --size or --batch")


def bench_from_options(model_cfg: Any, o: BenchOptions) -> str:
    """What ``segdil bench`` does without ``--sizes``: the variants to time (the switches, or a
    matrix), the run, the table; the figures also go to ``o.json_path``. ``model_cfg`` is a
    resolved ``Config`` (unused for ``o.conv_ceiling``). With ``--infer``, ``o.predict`` (default on)
    also times ``segdil predict`` end to end against the naive forward (``segdil.bench.predict_speed``).
    A training bench without ``o.threads`` runs with the torch threads training would use
    (``data.num_workers: auto`` lowers them to fit its workers, ``segdil.threads``)."""
    height, width = parse_size(o.size)
    conv_channels = o.conv_channels
    set_threads(o.threads)
    dev = resolve_device(o.device)
    amp = inference_amp(o.precision, dev)  # the variants' autocast; predict gets the word (auto keeps its bf16 guard)
    if o.conv_ceiling:
        result = ceiling_from_options(conv_channels, height, width, o.batch, dev, amp, o.channels_last, o.steps, o.warmup, default_steps(dev))
        text = format_conv_table(result)
    else:
        mode = o.mode
        check_bench_input(model_cfg.model, mode, (height, width), o.batch, dev)
        if mode == "train" and o.threads is None:
            from segdil.threads import apply_thread_plan

            apply_thread_plan(model_cfg.data.num_workers, cuda=dev.type == "cuda", quiet=True)
        chosen = chosen_variants(mode, model_cfg.model["name"], matrix=o.matrix, variants=o.variants, channels_last=o.channels_last, amp=amp, compile_=o.compile_, fuse=o.fuse, memory_saver=o.memory_saver)
        if o.vs_ceiling:
            from segdil.bench.conv_ceiling import model_width

            conv_channels = model_width(model_cfg.model) if conv_channels is None else conv_channels
        result = bench(
            model_cfg.model, mode=mode, size=(height, width), batch=o.batch, device=str(dev), variants=chosen, steps=o.steps, warmup=o.warmup,
            compile_backend=o.compile_backend, isolate_memory=o.isolate_memory, data_cfg=model_cfg.data if o.with_data else None,
            ceiling_channels=conv_channels if o.vs_ceiling else None,
        )
        if mode == "infer" and (o.predict is None or o.predict):
            from segdil.bench.predict_speed import bench_predict

            result["predict"] = bench_predict(
                model_cfg.model, height, width, images=o.predict_images, rounds=o.predict_rounds, device=str(dev), checkpoint=o.checkpoint,
                predict_options=InferenceOptions(precision=o.precision, fuse=True if o.fuse is None else o.fuse, channels_last=o.channels_last, compile=o.compile_),
            )
        text = format_table(result)
    if o.json_path:
        write_json(o.json_path, result)
        text += f"\nwrote {o.json_path}"
    return text
