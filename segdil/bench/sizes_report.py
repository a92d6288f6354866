"""The table, the largest-image lines and the plot of ``segdil bench --sizes``
(the ``result`` of :func:`segdil.bench.sizes.sweep_sizes`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segdil.atomic import save_figure

SAVER = "memory saver"


def cell_figures(entry: dict[str, Any] | None) -> tuple[str, str]:
    """(img/s, peak MB) of one variant at one size: figures, ``too large`` (with the estimate,
    ``~N``), ``failed``, or empty for a variant the model does not have."""
    if entry is None:
        return "", ""
    if entry["status"] == "ok":
        memory = f"{entry['peak_memory_mb']:.0f}" if entry.get("peak_memory_mb") is not None else "-"
        return f"{entry['img_per_s']:.3f}", memory
    if entry["status"] == "too large":
        estimate = entry.get("estimated_memory_mb")
        measured = entry.get("peak_memory_mb")
        return "too large", f"~{estimate:.0f}" if estimate is not None and measured is None else (f"{measured:.0f}" if measured is not None else "-")
    return "failed", "-"


def unfinished(result: dict[str, Any]):
    """(model, row, variant entry) of every variant at every size that was not run or failed."""
    for model in result["models"]:
        for row in model["rows"]:
            for entry in row["variants"]:
                if entry["status"] != "ok":
                    yield model, row, entry


def _largest_line(model: dict[str, Any]) -> str:
    parts = []
    for name, largest in model["largest_image"].items():
        tag = f"with the {SAVER}" if "memory_saver" in name else "plain"
        if largest is None:
            parts.append(f"{tag}: nothing measured")
            continue
        fit = model["memory_fit"][name]
        square, wide = largest["square"] or "under 32x32", largest["wide"] or "under 64x32"
        parts.append(f"{tag} {square} square, {wide} 2:1 ({largest['megapixels']:.1f} MP; {fit['intercept_mb']:.0f} MB + {fit['slope_mb_per_mpx']:.0f} MB/MP)")
    return f"  {model['label']}: " + "; ".join(parts)


def format_sizes(result: dict[str, Any]) -> str:
    """One table for every model and size, then per model the largest image that fits."""
    load = " ".join(f"{v:.2f}" for v in result["load_average"]["before"])
    lines = [
        f"cost against image size: {result['mode']}, batch {result['batch']}, {result['variant']} on {result['device_name']} "
        f"({result['device']}, {result['threads']} threads, torch {result['torch']}); load average {load} (1, 5, 15 min) at the start",
    ]
    saver = any(len(m["variants"]) > 1 for m in result["models"])
    width = max([len("model"), *(len(m["label"]) for m in result["models"])])
    head = f"{'model':<{width}} {'size':>10} {'MP':>6} {'GFLOP/img':>10} {'img/s':>10} {'peak MB':>9}"
    lines.append(head + (f" {'img/s saver':>12} {'MB saver':>9}" if saver else ""))
    for model in result["models"]:
        for row in model["rows"]:
            plain, *with_saver = row["variants"]
            gflops = f"{row['gflops_per_image']:.2f}" if row["gflops_per_image"] is not None else "-"
            speed, memory = cell_figures(plain)
            line = f"{model['label']:<{width}} {row['size_text']:>10} {row['megapixels']:>6.3f} {gflops:>10} {speed:>10} {memory:>9}"
            if saver:
                speed_saver, memory_saver = cell_figures(with_saver[0] if with_saver else None)
                line += f" {speed_saver:>12} {memory_saver:>9}"
            lines.append(line)
    notes = [f"{m['label']} {r['size_text']}{' (' + SAVER + ')' if e['memory_saver'] else ''}: {e['reason']}" for m, r, e in unfinished(result)]
    lines += [f"not run or failed: {note}" for note in notes]
    lines.append(f"largest image that {'trains' if result['mode'] == 'train' else 'runs inference'} whole within {result['max_memory_gb']:g} GB (batch {result['batch']}, peak memory as a line in pixels over the measured sizes):")
    lines += [_largest_line(model) for model in result["models"]]
    lines.append(f"memory: {result['memory_method']}; ~N: estimated, not run")
    return "\n".join(lines)


def plot_sizes(result: dict[str, Any], path: str | Path) -> Path:
    """GFLOPs per image, peak memory (GB) and img/s against megapixels, log axes, one colour per
    model; dashed: with the memory saver. Sizes not run are left out."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.4), layout="constrained")
    axes = fig.subplots(1, 3)
    cmap = colormaps["tab10"]
    for index, model in enumerate(result["models"]):
        color = cmap(index % 10)
        rows = [r for r in model["rows"] if r["gflops_per_image"]]
        axes[0].plot([r["megapixels"] for r in rows], [r["gflops_per_image"] for r in rows], "o-", color=color, label=model["label"])
        for slot, name in enumerate(model["variants"]):
            done = [(r["megapixels"], e) for r in model["rows"] for e in r["variants"] if e["name"] == name and e["status"] == "ok"]
            style = "s--" if slot else "o-"
            label = f"{model['label']}{' (' + SAVER + ')' if slot else ''}"
            axes[1].plot([mp for mp, e in done if e.get("peak_memory_mb")], [e["peak_memory_mb"] / 1024 for _, e in done if e.get("peak_memory_mb")], style, color=color, label=label)
            axes[2].plot([mp for mp, _ in done], [e["img_per_s"] for _, e in done], style, color=color, label=label)
    axes[1].axhline(result["max_memory_gb"], color="grey", linestyle=":", label=f"{result['max_memory_gb']:g} GB")
    titles = ("GFLOPs per image", "peak memory (GB)", "images per second")
    for ax, title in zip(axes, titles):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("megapixels")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{result['mode']}, batch {result['batch']}, {result['variant']} on {result['device_name']}", fontsize=10)
    return save_figure(fig, path)
