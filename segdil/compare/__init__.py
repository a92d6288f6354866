"""``segdil compare``: train several models alike and report object IoU against object size.

:func:`compare` reads top to bottom: plan the models (``plan.plan_models``), optionally match their
widths (``matching``), train every model × seed (``execute.run_models``), optionally score every
run with test-time augmentation (``tta_eval``), aggregate over seeds (``aggregate.build_results``),
draw the figures (``plots``), write the report (``report``) and print the verdict (``verdict``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

from segdil.atomic import write_json
from segdil.errors import SegdilError

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
    tta: Sequence[str] = (),
    cost_sizes: str | None = None,
    argv: Sequence[str] | None = None,
    echo: Callable[[str], None] = print,
    live: bool | None = None,
) -> Path:
    """Run the comparison into ``out``; returns the path of ``out/report.md``.

    ``tta`` (``--tta`` values, e.g. ``["flip", "scales=0.5,1,1.5"]``) adds a test-time-augmented score of
    every run; ``cost_sizes`` (``--cost-sizes``, e.g. ``"256,512,1024x512"``) adds every model's cost
    against image size (:mod:`segdil.compare.cost_sizes`); ``live`` shows one overwritten progress line
    (default: when standard output is a terminal).
    """
    # lazy, here and below: they load torch, and `segdil compare --help` imports this package
    from segdil.compare import execute, plan, report
    from segdil.compare.estimate import estimate
    from segdil.device import resolve_device
    from segdil.inference.tta import parse_tta

    if seeds < 1:
        raise SegdilError(f"--seeds {seeds}: need at least 1")
    tta_spec = parse_tta(list(tta))
    sizes = _parse_cost_sizes(cost_sizes)
    environment = report.provenance(argv)
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

    echo(estimate(entries, execute.runs_left(entries, seeds, out)).line())

    records = execute.run_models(entries, seeds, out, echo, live=live)
    try:
        return _score_and_report(entries, records, out, seeds=seeds, match=match, sweep_pools=sweep_pools, overrides=overrides, tta_spec=tta_spec, sizes=sizes, environment=environment, started=started, echo=echo)
    except KeyboardInterrupt:
        raise execute.Interrupted(f"interrupted while scoring: all {len(records)} runs finished in {out / 'runs'}. Run the same command again to write the report: finished runs are reused.") from None


def _parse_cost_sizes(text: str | None) -> list[tuple[int, int]] | None:
    if text is None:
        return None
    from segdil.bench.sizes import parse_sizes

    return parse_sizes(text, "--cost-sizes")


def _score_and_report(
    entries: list, records: list[dict[str, Any]], out: Path, *, seeds: int, match: str, sweep_pools: Sequence[int], overrides: Sequence[str], tta_spec,
    sizes: list[tuple[int, int]] | None, environment: dict[str, Any], started: float, echo: Callable[[str], None],
) -> Path:
    """TTA scores (optional), aggregation over seeds, figures, cost against image size (optional),
    ``results.json``, the report and the verdict."""
    from segdil.compare import aggregate, report, verdict  # lazy: torch (see compare())

    if tta_spec is not None:
        from segdil.compare.tta_eval import add_tta_metrics  # lazy: torch, and only with --tta

        add_tta_metrics(entries, records, tta_spec, out, echo)
    settings = {
        "seeds": seeds,
        "match": None if match == "none" else match,
        "match_tolerance": MATCH_TOLERANCE,
        "sweep_pools": list(sweep_pools),
        "overrides": list(overrides),
        "device": entries[0].cfg.train.device,
    }
    results = aggregate.build_results(entries, records, settings=settings, environment=environment, tolerance=MATCH_TOLERANCE)
    if tta_spec is not None:
        results["tta"] = {**tta_spec.to_dict(), "describe": tta_spec.describe()}
    figures = draw_figures(results, entries, out)
    if sizes is not None:
        from segdil.compare.cost_sizes import measure_cost_sizes  # lazy: only with --cost-sizes

        results["cost_sizes"], cost_figures = measure_cost_sizes(entries, out, sizes, entries[0].cfg.train.device, echo)
        figures.update(cost_figures)
    results["environment"]["duration_s"] = time.perf_counter() - started
    results["figures"] = {name: str(path.relative_to(out)) for name, path in figures.items()}
    write_json(out / "results.json", results, default=str)
    path = report.write_report(results, figures, out)
    echo("verdict:")
    for line in [verdict.answer_line(results), *verdict.verdict_lines(results)]:  # the question's answer first
        echo("  " + verdict.plain(line))
    return path


def draw_figures(results: dict[str, Any], entries: list, out: Path) -> dict[str, Path]:
    """The size curves, cost against accuracy, the pooling sweep, the overlays and the failure gallery,
    as PNGs under ``out/figures``; adds ``per_image`` (seed 0's small-object recall of every validation
    image, per model) and the crops shown to ``results``."""
    # lazy: torch and matplotlib (see compare())
    from segdil.checkpoint import model_from_checkpoint
    from segdil.compare import crops, plots
    from segdil.compare.execute import run_dir
    from segdil.compare.verdict import metric_winner
    from segdil.data import build_datasets
    from segdil.data.io import class_palette
    from segdil.device import resolve_device
    from segdil.train.validate import with_instance_maps

    folder = Path(out) / "figures"
    figures = {
        "size_iou": plots.plot_size_curves(results, "iou", folder / "size_iou.png"),
        "size_recall": plots.plot_size_curves(results, "recall", folder / "size_recall.png"),
        "cost_accuracy": plots.plot_cost_accuracy(results, folder / "cost_accuracy.png"),
    }
    sweep = plots.plot_pool_sweep(results, folder / "pool_sweep.png")
    if sweep is not None:
        figures["pool_sweep"] = sweep

    cfg = entries[0].cfg
    _, val_ds, class_names = build_datasets(cfg.data)
    val_ds = with_instance_maps(cfg, val_ds)  # the objects validation counted: instances where there are maps
    num_classes = len(class_names)
    below = float(cfg.eval.size_bins[0]) if cfg.eval.size_bins else cfg.eval.small_threshold
    background = cfg.eval.background_class
    tiny_crops = crops.choose_crops(val_ds, num_classes, below, count=OVERLAY_CROPS, size=OVERLAY_SIZE, background_class=background)
    torch_device = resolve_device(cfg.train.device)
    labels = [e.label for e in entries]
    winner = metric_winner(results, "small_object_iou")
    best = winner["best"] if winner else labels[0]
    models, per_image, missed = {}, {}, {}
    for entry in entries:
        model = models[entry.label] = model_from_checkpoint(run_dir(out, entry.label, 0) / "last.pt", device=torch_device)
        crops.add_predictions(tiny_crops, val_ds, entry.label, model, cfg.data.mean, cfg.data.std, num_classes, below, device=torch_device, background_class=background)
        per_image[entry.label], missed[entry.label] = crops.per_image_recall(
            model, val_ds, cfg.data.mean, cfg.data.std, num_classes, below, cfg.eval.small_threshold, device=torch_device, background_class=background
        )
    first_run = next(r for r in results["runs"] if r["label"] == entries[0].label)
    colors = class_palette(first_run.get("class_colors"), first_run.get("class_names") or class_names)
    overlays = crops.plot_overlays(tiny_crops, labels, colors, folder / "overlays.png", below, background, class_names)
    if overlays is not None:
        figures["overlays"] = overlays
    results["overlay_crops"] = [{"index": c.index, "box": list(c.box), "tiny_objects": c.tiny, "found": c.found} for c in tiny_crops]

    failures = crops.choose_failure_crops(val_ds, missed[best], num_classes, below, count=OVERLAY_CROPS, size=OVERLAY_SIZE, background_class=background)
    for label, model in models.items():
        crops.add_predictions(failures, val_ds, label, model, cfg.data.mean, cfg.data.std, num_classes, below, device=torch_device, background_class=background)
    gallery = crops.plot_overlays(failures, labels, colors, folder / "failures.png", below, background, class_names)
    if gallery is not None:
        figures["failures"] = gallery
    results["failure_crops"] = {"model": best, "crops": [{"index": c.index, "box": list(c.box), "tiny_objects": c.tiny, "found": c.found} for c in failures]}
    results["per_image"] = {"seed": 0, "small_threshold": cfg.eval.small_threshold, "tiny_below": below, "models": per_image}
    return figures
