"""The building blocks of the compare report and the words in them.

A report is a list of blocks (headings, paragraphs, tables, figures, code, bullet lists) built from
``results.json`` by :mod:`segdil.compare.report_sections` and rendered to Markdown and HTML by
:mod:`segdil.compare.report_render`; here are the blocks, the main table's columns, the number
formats and the sentences that describe the machine, the data and the schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from segdil.compare.verdict import seed_words, verdict_lines
from segdil.config import config_from_dict
from segdil.data.transforms import resolve_crop_size

# --------------------------------------------------------------------------- blocks


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str  # `code` spans allowed


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    align: str = ""  # one letter per column, l or r (default: first column left, the rest right)


@dataclass
class Figure:
    path: Path
    caption: str


@dataclass
class Code:
    text: str


@dataclass
class Bullets:
    items: list[str]  # `code` spans and **bold** allowed


Block = Union[Heading, Para, Table, Figure, Code, Bullets]

# the main table: column title -> metric key (None for the cost columns)
METRIC_COLUMNS = {"mIoU": "mIoU", "small-object IoU": "small_object_iou", "iIoU": "iIoU", "boundary IoU": "boundary_iou", "worst-10% mIoU": "worst_miou_10pct"}
COST_COLUMNS = ["params", "GFLOPs/MP", "train img/s", "peak memory", "steps"]


# --------------------------------------------------------------------------- formatting


def fmt_stat(node: Any, digits: int = 3, seeds: int | None = None) -> str:
    """``0.512 ± 0.013`` (std over seeds), ``0.512`` for one seed, ``–`` where undefined;
    ``(n=2)`` when fewer seeds than run gave a value."""
    if not isinstance(node, dict) or node.get("mean") is None:
        return "–"
    text = f"{node['mean']:.{digits}f}"
    if node.get("std") is not None:
        text += f" ± {node['std']:.{digits}f}"
    if seeds is not None and node.get("n", seeds) < seeds:
        text += f" (n={node['n']})"
    return text


def fmt_steps(node: Any) -> str:
    """Steps per run: one number when every seed ran as many (always, unless ``--budget-s``)."""
    if not isinstance(node, dict) or node.get("mean") is None:
        return "–"
    return f"{node['mean']:.0f}" if not node.get("std") else fmt_stat(node, 0)


def fmt_count(value: float | int | None) -> str:
    if value is None:
        return "–"
    value = float(value)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.0f}"


def fmt_bytes(node: Any, seeds: int | None = None) -> str:
    if not isinstance(node, dict) or node.get("mean") is None:
        return "–"
    mib = {k: (v / 2**20 if isinstance(v, (int, float)) and k in ("mean", "std") else v) for k, v in node.items()}
    return fmt_stat(mib, 0, seeds) + " MiB"


# --------------------------------------------------------------------------- words for the report's content


def cpu_words(machine: dict[str, Any]) -> str:
    """``AMD EPYC, 2 cores, AVX512, native bf16`` (the class where results.json has it)."""
    return f"{machine['cpu']}, {machine['cores']} cores" + (f", {machine['cpu_class']}" if machine.get("cpu_class") else "")


def device_words(results: dict[str, Any]) -> str:
    names = sorted({f"{r.get('device_name', r.get('device'))}" for r in results["runs"]})
    threads = sorted({r.get("torch_threads") for r in results["runs"] if r.get("torch_threads")})
    machine = results["environment"]["machine"]
    words = ", ".join(n if n != "cpu" else f"CPU ({cpu_words(machine)})" for n in names)
    if names == ["cpu"] and threads:
        words += f", {'/'.join(map(str, threads))} torch thread(s)"
    return words


def _crop_words(data: dict[str, Any]) -> str:
    if data.get("crop_size") != "auto":
        return f"training crops {data['crop_size']} px"
    return f"training crops {resolve_crop_size(config_from_dict({'data': data}).data)} px (crop_size: auto)"


def data_words(settings: dict[str, Any]) -> str:
    data = settings["data"]
    if data.get("root") is None:
        s = data["synth"]
        if s.get("scene") == "street":
            return (
                f"the built-in street benchmark ({s['n_train']} training and {s['n_val']} validation scenes of {2 * s['size']}×{s['size']} px, "
                f"synth seed {s['seed']}), {_crop_words(data)}"
            )
        return (
            f"the built-in synthetic benchmark ({s['n_train']} training and {s['n_val']} validation images of {s['size']}×{s['size']} px, "
            f"objects {s['min_object']:g}–{s['max_object']:g} px, synth seed {s['seed']}), {_crop_words(data)}"
        )
    return f"the {data.get('format') or 'folder'} dataset `{data['root']}` (train split `{data['train_split']}`, validation split `{data['val_split']}`), {_crop_words(data)}"


def schedule_words(settings: dict[str, Any]) -> str:
    if settings.get("budget_s") is not None:
        steps = settings["max_steps"]
        limit = f", at most {steps} steps" if steps < 10**9 else " (the learning-rate schedule is computed for 10^9 steps, so it barely decays)"
        return f"the same wall-clock budget of {settings['budget_s']:g} s of training each{limit}"
    return f"{settings['max_steps']} steps each"


def verdict_blocks(results: dict[str, Any]) -> list[Block]:
    """The answer at a glance, generated from the numbers (``segdil.compare.verdict``)."""
    lines = verdict_lines(results)
    if not lines:
        return []
    seeds = results["settings"]["seeds"]
    noise = (
        "a lead is *within noise* when it is no larger than √(s₁² + s₂²), the seed spread of the difference (s: sample standard deviation over seeds)"
        if seeds > 1
        else "with one seed there is no seed spread, so no lead can be told from noise"
    )
    return [
        Bullets(lines),
        Para(
            f"Full resolution or pooling is each model's class's declaration (a full-resolution path from input to head that never pools, strides or "
            f"resamples); the first line compares the best of each on small-object IoU. Best = highest mean over {seed_words(seeds)}; {noise}. "
            "Cost ratios in the first line are the winner's over the other's (train time: seconds of training per run); below, against the model "
            "with the fewest GFLOPs/MP. Train time, img/s and peak memory were measured on a shared machine (see the last section)."
        ),
    ]
