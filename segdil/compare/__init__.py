"""``segdil compare``: train several models alike and report object IoU against object size.

:func:`compare` reads top to bottom: plan the models (``plan.plan_models``), optionally match their
widths (``matching``), train every model × seed (``execute.run_models``), aggregate over seeds
(``aggregate.build_results``), draw the figures (``plots``) and write the report (``report``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

from segdil.atomic import write_json
from segdil.data.io import class_palette

MATCH_TOLERANCE = 0.1
OVERLAY_CROPS = 3
OVERLAY_SIZE = 48  # px: small enough that objects under 8 px are visible


def compare(
    config_paths: Sequence[str | Path],
    *,
    out: str | Path,
    overrides: Sequence[str] = (),
    seeds: int = 3,
    steps: int | None = None,
    budget_s: float | None = None,
    match: str = "none",
    sweep_pools: Sequence[int] = (),
    device: str | None = None,
    argv: Sequence[str] | None = None,
    echo: Callable[[str], None] = print,
) -> Path:
    """Run the comparison into ``out``; returns the path of ``out/report.md``."""
    from segdil.compare import aggregate, execute, plan, report
    from segdil.device import resolve_device
    from segdil.errors import SegdilError

    if seeds < 1:
        raise SegdilError(f"--seeds {seeds}: need at least 1")
    environment = report.environment(argv)
    started = time.perf_counter()
    entries = plan.plan_models([Path(p) for p in config_paths], list(overrides), steps=steps, budget_s=budget_s, device=device, sweep_pools=list(sweep_pools))
    resolve_device(entries[0].cfg.train.device)  # a missing GPU is an error now, not in the first run
    if match != "none":
        plan.apply_match(entries, match, MATCH_TOLERANCE)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    echo(f"comparing {len(entries)} models × {seeds} seed(s) into {out}: {', '.join(e.label for e in entries)}")
    for entry in entries:
        if entry.match is not None:
            echo(f"  {entry.label}: {entry.match.note(match, MATCH_TOLERANCE) if entry is not entries[0] else 'reference'}")

    records = execute.run_models(entries, seeds, out, echo)
    settings = {
        "seeds": seeds,
        "match": None if match == "none" else match,
        "match_tolerance": MATCH_TOLERANCE,
        "sweep_pools": list(sweep_pools),
        "overrides": list(overrides),
        "device": entries[0].cfg.train.device,
    }
    results = aggregate.build_results(entries, records, settings=settings, environment=environment, tolerance=MATCH_TOLERANCE)
    figures = draw_figures(results, entries, out)
    results["environment"]["duration_s"] = time.perf_counter() - started
    results["figures"] = {name: str(path.relative_to(out)) for name, path in figures.items()}
    write_json(out / "results.json", results, default=str)
    return report.write_report(results, figures, out)


def draw_figures(results: dict[str, Any], entries: list, out: Path) -> dict[str, Path]:
    """The size curves, the pooling sweep and the overlays, as PNGs under ``out/figures``."""
    from segdil.checkpoint import model_from_checkpoint
    from segdil.compare import plots
    from segdil.compare.execute import run_dir
    from segdil.data import build_datasets
    from segdil.device import resolve_device

    folder = Path(out) / "figures"
    figures = {
        "size_iou": plots.plot_size_curves(results, "iou", folder / "size_iou.png"),
        "size_recall": plots.plot_size_curves(results, "recall", folder / "size_recall.png"),
    }
    sweep = plots.plot_pool_sweep(results, folder / "pool_sweep.png")
    if sweep is not None:
        figures["pool_sweep"] = sweep

    cfg = entries[0].cfg
    _, val_ds, class_names = build_datasets(cfg.data)
    below = float(cfg.eval.size_bins[0]) if cfg.eval.size_bins else cfg.eval.small_threshold
    background = cfg.eval.background_class
    crops = plots.choose_crops(val_ds, len(class_names), below, count=OVERLAY_CROPS, size=OVERLAY_SIZE, background_class=background)
    torch_device = resolve_device(cfg.train.device)
    for entry in entries:
        model = model_from_checkpoint(run_dir(out, entry.label, 0) / "last.pt", device=torch_device)
        plots.add_predictions(crops, val_ds, entry.label, model, cfg.data.mean, cfg.data.std, len(class_names), below, device=torch_device, background_class=background)
    first_run = next(r for r in results["runs"] if r["label"] == entries[0].label)
    colors = class_palette(first_run.get("class_colors"), first_run.get("class_names") or class_names)
    overlays = plots.plot_overlays(crops, [e.label for e in entries], colors, folder / "overlays.png", below, background, class_names)
    if overlays is not None:
        figures["overlays"] = overlays
    results["overlay_crops"] = [{"index": c.index, "box": list(c.box), "tiny_objects": c.tiny, "found": c.found} for c in crops]
    return figures
