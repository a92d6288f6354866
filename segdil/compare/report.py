"""The comparison report: ``report.md`` (figures beside it) and a self-contained ``report.html``.

Both are rendered from one list of blocks (headings, paragraphs, tables, figures, code), so they
always say the same thing; the HTML embeds every PNG as base64 and needs no other file.
"""

from __future__ import annotations

import base64
import datetime
import html
import os
import platform
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Union

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


Block = Union[Heading, Para, Table, Figure, Code]

# the main table: column title -> metric key (None for the cost columns)
METRIC_COLUMNS = {"mIoU": "mIoU", "small-object IoU": "small_object_iou", "iIoU": "iIoU"}
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


# --------------------------------------------------------------------------- environment


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def environment(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The command line, the machine, the versions and the date, taken when the comparison starts."""
    import torch

    import segdil

    argv = list(sys.argv if argv is None else argv)
    if argv and Path(argv[0]).name in ("segdil", "__main__.py"):
        argv[0] = "segdil"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "command": shlex.join(argv),
        "cwd": str(Path.cwd()),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "gpu": gpu,
            "gpu_count": torch.cuda.device_count() if gpu else 0,
            "platform": platform.platform(),
            "load_average": load,
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "segmentation-models-pytorch": _version("segmentation-models-pytorch"),
            "segdil": segdil.__version__,
            "numpy": _version("numpy"),
            "albumentations": _version("albumentations"),
            "opencv-python-headless": _version("opencv-python-headless"),
        },
    }


# --------------------------------------------------------------------------- the report's content


def _device_words(results: dict[str, Any]) -> str:
    names = sorted({f"{r.get('device_name', r.get('device'))}" for r in results["runs"]})
    threads = sorted({r.get("torch_threads") for r in results["runs"] if r.get("torch_threads")})
    machine = results["environment"]["machine"]
    words = ", ".join(n if n != "cpu" else f"CPU ({machine['cpu']}, {machine['cores']} cores)" for n in names)
    if names == ["cpu"] and threads:
        words += f", {'/'.join(map(str, threads))} torch thread(s)"
    return words


def _data_words(settings: dict[str, Any]) -> str:
    data = settings["data"]
    if data.get("root") is None:
        s = data["synth"]
        return (
            f"the built-in synthetic benchmark ({s['n_train']} training and {s['n_val']} validation images of {s['size']}×{s['size']} px, "
            f"objects {s['min_object']:g}–{s['max_object']:g} px, synth seed {s['seed']}), training crops {data['crop_size']} px"
        )
    return f"the {data.get('format') or 'folder'} dataset `{data['root']}` (train split `{data['train_split']}`, validation split `{data['val_split']}`), training crops {data['crop_size']} px"


def _schedule_words(settings: dict[str, Any]) -> str:
    if settings.get("budget_s") is not None:
        steps = settings["max_steps"]
        limit = f", at most {steps} steps" if steps < 10**9 else " (the learning-rate schedule is computed for 10^9 steps, so it barely decays)"
        return f"the same wall-clock budget of {settings['budget_s']:g} s of training each{limit}"
    return f"{settings['max_steps']} steps each"


def build_blocks(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """The report, top to bottom."""
    settings = results["settings"]
    seeds = settings["seeds"]
    models = results["models"]
    aggregate = results["aggregate"]
    labels = [m["label"] for m in models]
    env = results["environment"]
    blocks: list[Block] = [Heading(1, "segdil compare: " + ", ".join(labels))]
    blocks.append(
        Para(
            f"{len(models)} models × {seeds} seed(s) (`train.seed` 0…{seeds - 1}), {_schedule_words(settings)}, batch size {settings['batch_size']}, "
            f"on {_device_words(results)}. Every model saw {_data_words(settings)}, with the same augmentation and the same seeds, and was evaluated with the "
            f"weights of its last step on the whole validation split. Values are the mean ± sample standard deviation (n−1) over seeds."
        )
    )

    # ---- the main table
    blocks.append(Heading(2, "Results"))
    headers = ["model", *COST_COLUMNS, *METRIC_COLUMNS]
    rows = []
    for m in models:
        agg = aggregate[m["label"]]
        metrics = agg["metrics"] or {}
        rows.append(
            [
                m["label"],
                fmt_count(m["params"]),
                f"{m['gflops_per_mp']:.2f}",
                fmt_stat(agg["img_per_s"], 1, seeds),
                fmt_bytes(agg["peak_memory_bytes"], seeds),
                fmt_steps(agg["step"]),
                *[fmt_stat(metrics.get(key), 3, seeds) for key in METRIC_COLUMNS.values()],
            ]
        )
    blocks.append(Table(headers, rows))
    memory_kinds = {r["memory"]["kind"] for r in results["runs"]}
    memory_words = []
    if "cuda_max_allocated" in memory_kinds:
        memory_words.append("on CUDA, `torch.cuda.max_memory_allocated` over the run (tensors only; the caching allocator reserves more)")
    if "cpu_rss_increase" in memory_kinds:
        memory_words.append(
            "on the CPU, how far the training process's peak resident set size rose during training above its size just before "
            "(each run is a fresh process, the libraries training needs already imported): model, gradients, optimizer state, activations, "
            "allocator caches and data buffers, plus a few tens of MiB of first-use costs (code and buffers the first training and "
            "validation steps touch) that every model pays; DataLoader worker processes are not counted"
        )
    small = results.get("small_threshold", 16)
    blocks.append(
        Para(
            f"params and GFLOPs/MP (forward FLOPs of one 256×256 image per megapixel, a multiply-add counting 2, from `torch.utils.flop_counter`) "
            f"are those of the trained models. train img/s is training images per second over the whole run as the training loop measures it "
            f"(its validations and checkpoint writes included). Peak memory: {'; '.join(memory_words)}. mIoU is the mean over classes of the "
            f"pixel IoU; small-object IoU is the mean IoU of the ground-truth objects under {small:g} px (√area); iIoU weighs each object by the "
            f"inverse of its area (see docs/metrics.md)."
        )
    )

    # ---- per class
    class_names = next((r.get("class_names") for r in results["runs"] if r.get("class_names")), None)
    if class_names:
        blocks.append(Heading(2, "Pixel IoU per class"))
        rows = []
        for m in models:
            per_class = (aggregate[m["label"]]["metrics"] or {}).get("per_class_iou") or []
            rows.append([m["label"]] + [fmt_stat(per_class[i] if i < len(per_class) else None, 3, seeds) for i in range(len(class_names))])
        blocks.append(Table(["model", *class_names], rows))

    # ---- size bins (those without validation objects are left out)
    from segdil.compare.plots import shown_bins

    bins = [results["bin_labels"][i] for i in shown_bins(results)]
    counts = results.get("bin_counts") or {}
    empty = [b for b in results["bin_labels"] if b not in bins]
    for metric, title, name in (("iou", "Object IoU against object size", "size_iou"), ("recall", "Object recall against object size (IoU ≥ 0.5)", "size_recall")):
        blocks.append(Heading(2, title))
        headers = ["model"] + [f"{b} px ({fmt_count(counts.get(b))})" for b in bins]
        rows = []
        for m in models:
            per_bin = (aggregate[m["label"]]["metrics"] or {}).get("bins") or {}
            rows.append([m["label"]] + [fmt_stat((per_bin.get(b) or {}).get(metric), 3, seeds) for b in bins])
        blocks.append(Table(headers, rows))
        if name in figures:
            blocks.append(Figure(figures[name], f"{title}: one line per model, mean ± std over seeds; objects per bin in brackets; log size axis."))
        if empty and metric == "iou":
            blocks.append(Para(f"Size bins without validation objects are left out: {', '.join(empty)} px."))

    # ---- pooling sweep
    if results.get("sweep"):
        blocks.append(Heading(2, "Pooling sweep"))
        headers = ["model", "P", "stride 2^P", "small-object IoU"] + [f"IoU {b} px" for b in bins]
        rows = []
        for point in results["sweep"]:
            metrics = aggregate[point["label"]]["metrics"] or {}
            per_bin = metrics.get("bins") or {}
            rows.append(
                [point["label"], str(point["pools"]), str(2 ** point["pools"]), fmt_stat(metrics.get("small_object_iou"), 3, seeds)]
                + [fmt_stat((per_bin.get(b) or {}).get("iou"), 3, seeds) for b in bins]
            )
        blocks.append(Table(headers, rows))
        if "pool_sweep" in figures:
            blocks.append(
                Figure(
                    figures["pool_sweep"],
                    "Left: small-object IoU of an FCN with P max-pools (bilinear upsampling, no skips) against P; dashed: the other models. "
                    "Right: object IoU against size for each P, the stride 2^P dotted on the size axis.",
                )
            )

    # ---- width matching
    if any(m.get("match") for m in models):
        kind = settings.get("match")
        blocks.append(Heading(2, f"Width matching ({kind})"))
        blocks.append(
            Para(
                f"Every model's widths were scaled by one factor so that its {kind} come within ±{settings.get('match_tolerance', 0.1):.0%} of the "
                f"reference, {labels[0]}. smp models have no width argument and keep their size."
            )
        )
        rows = []
        for m in models:
            match = m["match"]
            widths = ", ".join(f"{k}={m['model_args'][k]}" for k in ("widths", "stem_width", "width", "max_width") if k in m["model_args"])
            rows.append([m["label"], f"{match['factor']:.3f}", widths or "–", fmt_count(match["cost"]), f"{match['ratio']:.3f}", "yes" if match["within"] else "no", match["note"]])
        blocks.append(Table(["model", "factor", "widths", kind, "ratio", f"within ±{settings.get('match_tolerance', 0.1):.0%}", "note"], rows, "lrlrrll"))

    # ---- differing settings
    differing = settings.get("differing_train_settings") or {}
    if differing:
        blocks.append(Heading(2, "Training settings that differ between models"))
        rows = [[key] + [str(values.get(label)) for label in labels] for key, values in differing.items()]
        blocks.append(Table(["setting"] + labels, rows, "l" * (1 + len(labels))))

    # ---- overlays
    if "overlays" in figures:
        blocks.append(Heading(2, "Validation crops full of tiny objects"))
        edge = results["size_bins"][0] if results["size_bins"] else small
        blocks.append(
            Figure(
                figures["overlays"],
                f"The validation crops with the most objects under {edge:g} px; ground truth and each model's prediction (seed 0, last step) "
                f"painted over the image; under each prediction, how many of those tiny objects it recovers with IoU ≥ 0.5.",
            )
        )

    # ---- the runs
    blocks.append(Heading(2, "Runs"))
    rows = []
    for r in results["runs"]:
        m = r["metrics"]
        rows.append(
            [
                r["label"],
                str(r["seed"]),
                str(r["step"]),
                f"{r['train_s']:.1f}",
                f"{r['img_per_s']:.1f}",
                fmt_bytes({"mean": r["memory"]["peak_bytes"]}),
                *[f"{m[k]:.3f}" if isinstance(m.get(k), (int, float)) else "–" for k in METRIC_COLUMNS.values()],
                f"`{r['work_dir']}`",
            ]
        )
    blocks.append(Table(["model", "seed", "steps", "train s", "img/s", "peak memory", *METRIC_COLUMNS, "work dir"], rows, "lrrrrrrrrl"))

    # ---- reproduce
    blocks.append(Heading(2, "Command, machine, versions"))
    blocks.append(Code(env["command"]))
    machine = env["machine"]
    load = machine.get("load_average")
    blocks.append(
        Para(
            f"Run in `{env['cwd']}`, started {env['date']}"
            + (f"; the command took {env['duration_s'] / 60:.1f} min (runs it reused were not retrained)" if env.get("duration_s") is not None else "")
            + f". Machine: {machine['cpu']}, {machine['cores']} cores"
            + (f", GPU {machine['gpu']} (×{machine['gpu_count']})" if machine.get("gpu") else ", no GPU")
            + f", {machine['platform']}"
            + (f"; load average {load[0]:g} / {load[1]:g} / {load[2]:g} at the start (well above 0: other work shared the CPUs and slowed the timings)" if load else "")
            + ". Versions: "
            + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
            + "."
        )
    )
    blocks.append(Para("Every number above is in `results.json` (per run and aggregated); each run's config, checkpoints and metrics are in its work dir."))
    return blocks


# --------------------------------------------------------------------------- rendering


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _alignment(table: Table) -> str:
    return table.align or "l" + "r" * (len(table.headers) - 1)


def render_markdown(blocks: list[Block], base: Path) -> str:
    """Markdown with figures linked relative to ``base`` (the report's folder)."""
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append("#" * block.level + " " + block.text)
        elif isinstance(block, Para):
            out.append(block.text)
        elif isinstance(block, Table):
            align = _alignment(block)
            out.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
            out.append("|" + "|".join(" ---: " if a == "r" else " --- " for a in align) + "|")
            out.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows)
        elif isinstance(block, Figure):
            rel = os.path.relpath(block.path, base).replace(os.sep, "/")
            out.append(f"![{block.caption}]({rel})\n\n*{block.caption}*")
        elif isinstance(block, Code):
            out.append("```\n" + block.text + "\n```")
        out.append("")
    return "\n".join(out)


def _inline_html(text: str) -> str:
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(f"<code>{html.escape(p[1:-1])}</code>" if p.startswith("`") and p.endswith("`") and len(p) > 1 else html.escape(p) for p in parts)


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; }
th { background: #f3f3f3; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
code { background: #f3f3f3; padding: 0 0.2em; }
"""


def render_html(blocks: list[Block], title: str) -> str:
    """One self-contained HTML page: every figure embedded as a base64 PNG."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>", f"<style>{STYLE}</style></head><body>"]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            out.append(f"<p>{_inline_html(block.text)}</p>")
        elif isinstance(block, Table):
            align = _alignment(block)
            out.append("<table><thead><tr>" + "".join(f'<th class="{a}">{html.escape(h)}</th>' for h, a in zip(block.headers, align)) + "</tr></thead><tbody>")
            out.extend("<tr>" + "".join(f'<td class="{a}">{_inline_html(c)}</td>' for c, a in zip(row, align)) + "</tr>" for row in block.rows)
            out.append("</tbody></table>")
        elif isinstance(block, Figure):
            data = base64.b64encode(Path(block.path).read_bytes()).decode("ascii")
            out.append(f'<figure><img alt="{html.escape(block.caption)}" src="data:image/png;base64,{data}"><figcaption>{_inline_html(block.caption)}</figcaption></figure>')
        elif isinstance(block, Code):
            out.append(f"<pre><code>{html.escape(block.text)}</code></pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(results: dict[str, Any], figures: dict[str, Path], out: Path) -> Path:
    """Write ``out/report.md`` and ``out/report.html``; returns the path of report.md."""
    out = Path(out)
    blocks = build_blocks(results, figures)
    title = blocks[0].text if blocks and isinstance(blocks[0], Heading) else "segdil compare"
    _write_text(out / "report.html", render_html(blocks, title))
    _write_text(out / "report.md", render_markdown(blocks, out))
    return out / "report.md"
