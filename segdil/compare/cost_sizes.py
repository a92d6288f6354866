"""``segdil compare --cost-sizes``: every compared model's cost against image size, in the report.

The models are those trained (seed 0's model arguments, widths as matched), swept as
``segdil bench --sizes`` sweeps them (:mod:`segdil.bench.sizes`), with bench's fast defaults: a
training step at batch 2, plain and with the memory saver where the model has one (batch 2 is the
smallest every model's BatchNorm trains on: DeepLabV3's image pooling leaves one value per channel
at batch 1), and an inference forward at batch 1. Per size: GFLOPs, peak memory, img/s, and the
largest whole image within the memory limit (24 GB on the CPU, the GPU's memory on CUDA).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from segdil.compare.report_blocks import Block, Bullets, Figure, Heading, Para, Table

MODES = ("train", "infer")
BATCH = {"train": 2, "infer": 1}


def measure_cost_sizes(entries: list, out: Path, sizes: list[tuple[int, int]], device: str, echo: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, Path]]:
    """The sweep of every model in both modes (``results.json``'s ``cost_sizes``) and its plots."""
    from segdil.bench.sizes import make_sweep, sweep_sizes
    from segdil.bench.sizes_report import plot_sizes
    from segdil.bench.variants import Variant
    from segdil.checkpoint import checked_model_args, load_checkpoint
    from segdil.compare.execute import run_dir
    from segdil.device import inference_amp, resolve_device

    dev = resolve_device(device)
    models = [(e.label, checked_model_args(load_checkpoint(run_dir(out, e.label, 0) / "last.pt"))) for e in entries]
    results: dict[str, Any] = {}
    figures: dict[str, Path] = {}
    for mode in MODES:
        variant = Variant(channels_last=True, amp=inference_amp("auto", dev), fuse=mode == "infer")
        on_model = lambda label, mode=mode: echo(f"cost against image size ({mode}, batch {BATCH[mode]}): {label} at {len(sizes)} size(s)")  # noqa: E731
        results[mode] = sweep_sizes(models, sizes, make_sweep(mode, BATCH[mode], dev, variant), on_model=on_model)
        figures[f"cost_sizes_{mode}"] = plot_sizes(results[mode], out / "figures" / f"cost_sizes_{mode}.png")
    return results, figures


def table_rows(cost: dict[str, Any]) -> list[list[str]]:
    """One row per (model, size): GFLOPs, img/s and peak memory of the training step (and with the
    memory saver) and of the inference forward; a cell the sweep did not run says why in one word."""
    from segdil.bench.sizes_report import cell_figures

    rows = []
    infer = {m["label"]: m for m in cost["infer"]["models"]}
    for model in cost["train"]["models"]:
        for index, row in enumerate(model["rows"]):
            plain, *saver = row["variants"]
            other = infer[model["label"]]["rows"][index]
            train_speed, train_mb = cell_figures(plain)
            saver_mb = cell_figures(saver[0])[1] if saver else "–"
            infer_speed, infer_mb = cell_figures(other["variants"][0])
            gflops = f"{row['gflops_per_image']:.4g}" if row["gflops_per_image"] else "–"
            infer_gflops = f"{other['gflops_per_image']:.4g}" if other["gflops_per_image"] else "–"
            rows.append([model["label"], row["size_text"], gflops, train_speed, train_mb, saver_mb, infer_gflops, infer_speed, infer_mb])
    return rows


def problem_lines(cost: dict[str, Any]) -> list[str]:
    """Why a cell holds no figure: each (mode, model, size, variant) not run or failed, with the reason."""
    from segdil.bench.sizes_report import unfinished

    return [
        f"{mode} {model['label']} {row['size_text']}{', memory saver' if entry['memory_saver'] else ''}: {entry['status']}: {entry.get('reason') or 'no reason given'}"
        for mode in MODES
        for model, row, entry in unfinished(cost[mode])
    ]


def largest_lines(cost: dict[str, Any]) -> list[str]:
    """Per model, the largest 2:1 image that trains whole (plain, with the memory saver) and runs
    inference whole within the sweep's memory limit."""
    lines = []
    infer = {m["label"]: m for m in cost["infer"]["models"]}
    for model in cost["train"]["models"]:
        parts = []
        for name, largest in model["largest_image"].items():
            tag = "trains" + (" with the memory saver" if "memory_saver" in name else "")
            parts.append(f"{tag} {_wide(largest)}")
        for largest in infer[model["label"]]["largest_image"].values():
            parts.append(f"runs inference on {_wide(largest)}")
        lines.append(f"{model['label']}: " + ", ".join(parts))
    return lines


def _wide(largest: dict[str, Any] | None) -> str:
    """The largest whole 2:1 image; ``under 64x32`` when a memory line was fitted but not even that fits."""
    if largest is None:
        return "nothing measured"
    return largest.get("wide") or "under 64x32"


def cost_sizes_section(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """Every model's GFLOPs, img/s and peak memory against image size (``--cost-sizes``)."""
    cost = results.get("cost_sizes")
    if not cost:
        return []
    train, infer = cost["train"], cost["infer"]
    blocks: list[Block] = [Heading(2, "Cost against image size")]
    columns = ["model", "size", "train GFLOP/img", "train img/s", "train peak MB", "peak MB, memory saver", "infer GFLOP/img", "infer img/s", "infer peak MB"]
    blocks.append(Table(columns, table_rows(cost), "llrrrrrrr"))
    problems = problem_lines(cost)
    if problems:
        blocks.append(Para("Not run or failed:"))
        blocks.append(Bullets(problems))
    blocks.append(
        Para(
            f"The largest whole 2:1 image within {train['max_memory_gb']:g} GB (training at batch {train['batch']}, inference at batch {infer['batch']}; "
            "peak memory as a line in pixels over the measured sizes, extrapolated):"
        )
    )
    blocks.append(Bullets(largest_lines(cost)))
    for mode in ("train", "infer"):
        name = f"cost_sizes_{mode}"
        if name in figures:
            words = "a training step (forward, backward, AdamW; dashed: with the memory saver)" if mode == "train" else "an inference forward (BatchNorm folded)"
            blocks.append(Figure(figures[name], f"GFLOPs per image, peak memory and images per second against megapixels for {words}, batch {cost[mode]['batch']}, log axes."))
    load = " / ".join(f"{v:.2f}" for v in train["load_average"]["before"])
    blocks.append(
        Para(
            f"Measured after training with `segdil bench --sizes`'s sweep: {train['variant']} (training) on {train['device_name']}, {train['threads']} thread(s), "
            f"load average {load} at the start. Peak memory: {train['memory_method']}; ~N: estimated, not run; too large: over the limit, not run."
        )
    )
    return blocks
