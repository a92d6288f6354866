"""The compare report built: its sections, top to bottom, each turning ``results.json`` into blocks
(:mod:`segdil.compare.report_blocks`); :func:`build_blocks` is the whole report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segdil.compare.cost_sizes import cost_sizes_section
from segdil.compare.plots import ACCURACY_AXES, COST_AXES, cost_points, shown_bins
from segdil.compare.report_blocks import (
    COST_COLUMNS,
    METRIC_COLUMNS,
    Block,
    Bullets,
    Code,
    Figure,
    Heading,
    Para,
    Table,
    cpu_words,
    data_words,
    device_words,
    fmt_bytes,
    fmt_count,
    fmt_stat,
    fmt_steps,
    schedule_words,
    verdict_blocks,
)
from segdil.compare.verdict import answer_line, pareto_front, seed_words, spread_words, tta_line


def _intro_section(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """The title and what was run."""
    settings = results["settings"]
    seeds = results["settings"]["seeds"]
    models = results["models"]
    labels = [m["label"] for m in results["models"]]
    # the answer first: the report's first line (report.md) and first paragraph (report.html)
    blocks: list[Block] = [Para(answer_line(results)), Heading(1, "segdil compare: " + ", ".join(labels))]
    blocks.extend(verdict_blocks(results))
    values = "Values are the mean ± sample standard deviation (n−1) over seeds." if seeds > 1 else "Values are those of the one seed (no spread)."
    blocks.append(
        Para(
            f"{len(models)} models × {seed_words(seeds)} (`train.seed` {'0…' + str(seeds - 1) if seeds > 1 else '0'}), {schedule_words(settings)}, batch size {settings['batch_size']}, "
            f"on {device_words(results)}. Every model saw {data_words(settings)}, with the same augmentation and the same seeds, and was evaluated with the "
            f"weights of its last step on the whole validation split. {values}"
        )
    )
    return blocks


def _results_section(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """The main table: cost beside accuracy, and what each column means."""
    seeds = results["settings"]["seeds"]
    models = results["models"]
    aggregate = results["aggregate"]
    small = results.get("small_threshold", 16)
    blocks: list[Block] = []
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
    blocks.append(
        Para(
            f"params and GFLOPs/MP (forward FLOPs of one 256×256 image per megapixel, a multiply-add counting 2, from `torch.utils.flop_counter`) "
            f"are those of the trained models. train img/s is training images per second over the whole run as the training loop measures it "
            f"(its validations and checkpoint writes included). Peak memory: {'; '.join(memory_words)}. mIoU is the mean over classes of the "
            f"pixel IoU; small-object IoU is the mean IoU of the ground-truth objects under {small:g} px (√area); iIoU weighs each object by the "
            f"inverse of its area; boundary IoU is the IoU of the bands within 2 % of the image diagonal of each class's contour (Cheng et al., 2021); "
            f"worst-10% mIoU is the mean over the 10 % of validation images with the lowest per-image mIoU (Wang et al., 2023; see docs/metrics.md)."
        )
    )
    return blocks


def _per_class_section(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """Pixel IoU per class."""
    seeds = results["settings"]["seeds"]
    models = results["models"]
    aggregate = results["aggregate"]
    blocks: list[Block] = []
    class_names = next((r.get("class_names") for r in results["runs"] if r.get("class_names")), None)
    if class_names:
        blocks.append(Heading(2, "Pixel IoU per class"))
        rows = []
        for m in models:
            per_class = (aggregate[m["label"]]["metrics"] or {}).get("per_class_iou") or []
            rows.append([m["label"]] + [fmt_stat(per_class[i] if i < len(per_class) else None, 3, seeds) for i in range(len(class_names))])
        blocks.append(Table(["model", *class_names], rows))
    return blocks


def _size_bins_section(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """Object IoU and recall against object size (bins without validation objects are left out)."""
    seeds = results["settings"]["seeds"]
    models = results["models"]
    aggregate = results["aggregate"]
    bins = _shown_bin_labels(results)
    blocks: list[Block] = []
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
            blocks.append(Figure(figures[name], f"{title}: one line per model, {spread_words(seeds)}; objects per bin in brackets; log size axis."))
        if empty and metric == "iou":
            blocks.append(Para(f"Size bins without validation objects are left out: {', '.join(empty)} px."))
    return blocks


def _pooling_sweep_section(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """The pooling sweep: small-object IoU against the number of pools P."""
    seeds = results["settings"]["seeds"]
    aggregate = results["aggregate"]
    bins = _shown_bin_labels(results)
    blocks: list[Block] = []
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
    return blocks


def _width_matching_section(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """How each model's widths were scaled by --match."""
    settings = results["settings"]
    models = results["models"]
    labels = [m["label"] for m in results["models"]]
    blocks: list[Block] = []
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
    return blocks


def _differing_settings_section(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """Training settings that differ between models."""
    settings = results["settings"]
    labels = [m["label"] for m in results["models"]]
    blocks: list[Block] = []
    differing = settings.get("differing_train_settings") or {}
    if differing:
        blocks.append(Heading(2, "Training settings that differ between models"))
        rows = [[key] + [str(values.get(label)) for label in labels] for key, values in differing.items()]
        blocks.append(Table(["setting"] + labels, rows, "l" * (1 + len(labels))))
    return blocks


def _overlays_section(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """The validation crops full of tiny objects."""
    small = results.get("small_threshold", 16)
    blocks: list[Block] = []
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
    return blocks


def _runs_section(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """One row per run."""
    blocks: list[Block] = []
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
    blocks.append(Table(["model", "seed", "steps", "train s", "img/s", "peak memory", *METRIC_COLUMNS, "work dir"], rows, "l" + "r" * (5 + len(METRIC_COLUMNS)) + "l"))
    return blocks


def _reproduce_section(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """The command, the machine and the versions."""
    env = results["environment"]
    blocks: list[Block] = []
    blocks.append(Heading(2, "Command, machine, versions"))
    blocks.append(Code(env["command"]))
    machine = env["machine"]
    load = machine.get("load_average")
    blocks.append(
        Para(
            f"Run in `{env['cwd']}`, started {env['date']}"
            + (f"; the command took {env['duration_s'] / 60:.1f} min (runs it reused were not retrained)" if env.get("duration_s") is not None else "")
            + f". Machine: {cpu_words(machine)}"
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


def _cost_accuracy_section(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """Small-object IoU and mIoU against GFLOPs/MP and train img/s, with the Pareto front."""
    if "cost_accuracy" not in figures:
        return []
    blocks: list[Block] = [Heading(2, "Cost against accuracy")]
    blocks.append(
        Figure(
            figures["cost_accuracy"],
            "Small-object IoU (top) and mIoU (bottom) against forward GFLOPs per megapixel (left) and training images per second (right); one point per "
            f"model, {'error bars the standard deviation over seeds' if results['settings']['seeds'] > 1 else 'one seed, so no error bars'}; dashed: the Pareto front (no other model is both cheaper and more accurate); "
            "P = pools for the points of the pooling sweep.",
        )
    )
    fronts = []
    for metric, metric_words in ACCURACY_AXES:
        for cost, cost_words, lower in COST_AXES:
            points = cost_points(results, cost, metric)
            front = pareto_front([p["x"] for p in points], [p["y"] for p in points], lower_cost_is_better=lower)
            fronts.append(f"{metric_words} against {cost_words.split(' (')[0]}: {', '.join(points[i]['label'] for i in front) or '–'}")
    blocks.append(Bullets(["Pareto front, " + f for f in fronts]))
    return blocks


def _tta_section(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """Each model with and without test-time augmentation."""
    tta = results.get("tta")
    if not tta:
        return []
    seeds = results["settings"]["seeds"]
    aggregate = results["aggregate"]
    blocks: list[Block] = [Heading(2, f"Test-time augmentation ({tta['describe']})")]
    rows = []
    for m in results["models"]:
        agg = aggregate[m["label"]]
        for name, metrics in (("", agg.get("metrics")), (" + TTA", agg.get("tta_metrics"))):
            metrics = metrics or {}
            rows.append([m["label"] + name, *[fmt_stat(metrics.get(key), 3, seeds) for key in METRIC_COLUMNS.values()]])
    blocks.append(Table(["model", *METRIC_COLUMNS], rows))
    line = tta_line(results)
    blocks.append(
        Para(
            "Every run's last weights on the same validation images: the plain rows are the training's own validation (whole images), the TTA rows "
            "average the softmax probabilities of the views (each scale resized back to the image's exact size, each mirror image flipped back). "
            + (line.replace("**", "") if line else "")
        )
    )
    return blocks


def _failures_section(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """Where the best model still fails."""
    if "failures" not in figures:
        return []
    failures = results.get("failure_crops") or {}
    per_image = (results.get("per_image") or {}).get("models") or {}
    edge = results["size_bins"][0] if results["size_bins"] else results.get("small_threshold", 16)
    blocks: list[Block] = [Heading(2, "Where the best model still fails")]
    blocks.append(
        Figure(
            figures["failures"],
            f"The validation crops where {failures.get('model')} (best small-object IoU; seed 0, last step) misses the most objects under {edge:g} px; "
            f"ground truth and every model's prediction, tiny objects ringed; under each prediction how many of them it recovers with IoU ≥ 0.5.",
        )
    )
    rows = []
    small = (results.get("per_image") or {}).get("small_threshold", results.get("small_threshold", 16))
    for label, images in per_image.items():
        recalls = sorted(r["small_recall"] for r in images if r["small_recall"] is not None)
        if not recalls:
            continue
        worst = min((r for r in images if r["small_recall"] is not None), key=lambda r: (r["small_recall"], -r["small_objects"]))
        rows.append(
            [
                label,
                f"{recalls[len(recalls) // 2]:.2f}",
                f"{recalls[max(0, len(recalls) // 10)]:.2f}",
                f"{sum(1 for r in recalls if r == 0)}",
                f"#{worst['index']} ({worst['small_found']}/{worst['small_objects']})",
            ]
        )
    if rows:
        blocks.append(Para(f"Per validation image (seed 0): the share of its objects under {small:g} px found with IoU ≥ 0.5; every image's counts are in `results.json` (`per_image`)."))
        blocks.append(Table(["model", "median recall", "10th percentile", "images with none found", "worst image (found/objects)"], rows, "lrrrl"))
    return blocks


SECTIONS = (
    _intro_section,
    _results_section,
    _cost_accuracy_section,
    cost_sizes_section,
    _tta_section,
    _per_class_section,
    _size_bins_section,
    _pooling_sweep_section,
    _width_matching_section,
    _differing_settings_section,
    _overlays_section,
    _failures_section,
    _runs_section,
    _reproduce_section,
)


def _shown_bin_labels(results: dict[str, Any]) -> list[str]:
    return [results["bin_labels"][i] for i in shown_bins(results)]


def build_blocks(results: dict[str, Any], figures: dict[str, Path]) -> list[Block]:
    """The report, top to bottom."""
    return [block for section in SECTIONS for block in section(results, figures)]
