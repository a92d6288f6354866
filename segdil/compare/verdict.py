"""The answer at a glance: which model wins each accuracy metric, by how much, and at what cost.

:func:`answer_line` answers the project's question in one sentence: the best full-resolution model
against the best pooling model on small objects, with the seeds' noise and the cost; it is the
first line of the report and of the verdict ``segdil compare`` prints. :func:`verdict_lines` turns
``results.json`` into the sentences after it; the report puts them above its tables and
``segdil compare`` prints them at the end. A win is called *within noise* when the
difference between the best and the runner-up mean is no larger than the seed spread of that
difference, √(s_best² + s_runner-up²) (s: the sample standard deviation over seeds); with one seed
there is no spread and the verdict says so. :func:`pareto_front` picks the models no other model
beats on both cost and accuracy.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

# (metric key, words), in the order the verdict gives them
VERDICT_METRICS = (("small_object_iou", "small-object IoU"), ("mIoU", "mIoU"), ("iIoU", "iIoU"))


def _stat(node: Any) -> tuple[float | None, float | None]:
    if not isinstance(node, dict) or node.get("mean") is None or (isinstance(node["mean"], float) and math.isnan(node["mean"])):
        return None, None
    return float(node["mean"]), (float(node["std"]) if node.get("std") is not None else None)


def ranking(results: dict[str, Any], key: str) -> list[tuple[str, float, float | None]]:
    """(label, mean, std) of every model with a value for ``key``, best first (ties keep the model order)."""
    rows = []
    for model in results["models"]:
        mean, std = _stat((results["aggregate"][model["label"]].get("metrics") or {}).get(key))
        if mean is not None:
            rows.append((model["label"], mean, std))
    return sorted(rows, key=lambda r: -r[1])


def metric_winner(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The best model on ``key``, the runner-up, the difference, its seed spread and whether it is within noise."""
    ranked = ranking(results, key)
    if not ranked:
        return None
    best = ranked[0]
    out: dict[str, Any] = {"metric": key, "best": best[0], "mean": best[1], "std": best[2], "runner_up": None}
    if len(ranked) > 1:
        runner = ranked[1]
        spread = math.sqrt(best[2] ** 2 + runner[2] ** 2) if best[2] is not None and runner[2] is not None else None
        diff = best[1] - runner[1]
        out.update(runner_up=runner[0], runner_mean=runner[1], runner_std=runner[2], difference=diff, spread=spread, within_noise=spread is not None and diff <= spread)
        # every model whose gap to the best is within the spread ties with it
        out["tied"] = [r[0] for r in ranked[1:] if spread is not None and best[1] - r[1] <= math.sqrt(best[2] ** 2 + (r[2] or 0.0) ** 2)]
    return out


def _cost(results: dict[str, Any], label: str) -> dict[str, float | None]:
    model = next(m for m in results["models"] if m["label"] == label)
    agg = results["aggregate"][label]
    return {
        "gflops_per_mp": model.get("gflops_per_mp"),
        "img_per_s": _stat(agg.get("img_per_s"))[0],
        "peak_memory_bytes": _stat(agg.get("peak_memory_bytes"))[0],
    }


def cheapest(results: dict[str, Any]) -> str:
    """The model with the fewest GFLOPs per megapixel."""
    return min(results["models"], key=lambda m: m.get("gflops_per_mp") or math.inf)["label"]


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2g}×" if a / b < 10 else f"{a / b:.0f}×"


def cost_words(results: dict[str, Any], label: str) -> str:
    """``3.1× the GFLOPs/MP, 0.45× the train img/s and 2.2× the peak memory of fcn-pool2 (the cheapest)``."""
    base = cheapest(results)
    if base == label:
        return f"{label} is also the cheapest model (fewest GFLOPs/MP)"
    mine, theirs = _cost(results, label), _cost(results, base)
    return (
        f"{label} costs {_ratio(mine['gflops_per_mp'], theirs['gflops_per_mp'])} the GFLOPs/MP, "
        f"{_ratio(mine['img_per_s'], theirs['img_per_s'])} the train img/s and {_ratio(mine['peak_memory_bytes'], theirs['peak_memory_bytes'])} "
        f"the peak memory of the cheapest model, {base}"
    )


def _pm(mean: float, std: float | None) -> str:
    return f"{mean:.3f}" + (f" ± {std:.3f}" if std is not None else "")


def metric_line(results: dict[str, Any], key: str, words: str) -> str | None:
    """One sentence: the winner of ``key``, its margin over the runner-up, and whether that is noise."""
    win = metric_winner(results, key)
    if win is None:
        return None
    head = f"**{words}**: "
    if win["runner_up"] is None:
        return head + f"{win['best']} {_pm(win['mean'], win['std'])} (the only model with a value)."
    margin = f"{win['difference']:+.3f}"
    if win["spread"] is None:
        return head + (
            f"{win['best']} is best with {_pm(win['mean'], win['std'])}, {margin} over the runner-up {win['runner_up']} "
            f"({_pm(win['runner_mean'], win['runner_std'])}); one seed, so no seed spread to tell noise from a difference."
        )
    if win["within_noise"]:
        tied = ", ".join([win["best"], *win["tied"]])
        return head + (
            f"{tied} tie within noise: {win['best']} {_pm(win['mean'], win['std'])} against {win['runner_up']} "
            f"{_pm(win['runner_mean'], win['runner_std'])}, a difference of {margin} inside the seed spread ±{win['spread']:.3f}."
        )
    return head + (
        f"{win['best']} is best with {_pm(win['mean'], win['std'])}, {margin} over the runner-up {win['runner_up']} "
        f"({_pm(win['runner_mean'], win['runner_std'])}; seed spread of the difference ±{win['spread']:.3f})."
    )


def last_place_line(results: dict[str, Any], key: str, words: str) -> str | None:
    """With three models or more: which models lead the last one on ``key`` outside noise, and which do not."""
    ranked = ranking(results, key)
    if len(ranked) < 3:
        return None
    last, mean, std = ranked[-1]
    outside, inside = [], []
    for label, other, other_std in ranked[:-1]:
        spread = math.sqrt(other_std**2 + std**2) if other_std is not None and std is not None else None
        (outside if spread is not None and other - mean > spread else inside).append(f"{label} {other - mean:+.3f}")
    text = f"**{words}, against the last**: {last} is last with {_pm(mean, std)}; "
    if std is None:
        return text + f"ahead of it: {', '.join(outside + inside)} (one seed, so no seed spread)."
    parts = [f"{', '.join(outside)} lead it outside noise"] if outside else []
    parts += [f"{', '.join(inside)} within noise"] if inside else []
    return text + "; ".join(parts) + "."


def _group_best(results: dict[str, Any], kind: str, key: str) -> tuple[str, float, float | None] | None:
    """(label, mean, std) of the best model on ``key`` whose ``resolution_path`` is ``kind``."""
    kinds = {m["label"]: m.get("resolution_path") for m in results["models"]}
    return next((row for row in ranking(results, key) if kinds.get(row[0]) == kind), None)


def _train_s(results: dict[str, Any], label: str) -> float | None:
    return _stat(results["aggregate"][label].get("train_s"))[0]


def answer_line(results: dict[str, Any]) -> str:
    """``full resolution vs pooling: X beats Y on objects < 16 px by Δ (± noise) at k× the GFLOPs/MP
    and m× the train time`` (or ``Y beats X``, or no difference beyond noise).

    X is the full-resolution model (``resolution_path`` ``full``, from the model's class) with the
    best mean small-object IoU, Y the best pooling model. Noise is the seed spread of Δ,
    √(s_X² + s_Y²) (s: the sample standard deviation over seeds); a |Δ| no larger is no difference.
    The size limit is the report's small-object threshold; the ratios are the winner's over the other's.
    """
    head = "full resolution vs pooling: "
    small = f"objects < {results.get('small_threshold', 16):g} px"
    full, pool = _group_best(results, "full", "small_object_iou"), _group_best(results, "pooling", "small_object_iou")
    if full is None or pool is None:
        missing = [words for words, best in (("full-resolution", full), ("pooling", pool)) if best is None]
        return head + f"not answered: no {' and no '.join(missing)} model with a small-object IoU in this comparison."
    diff = full[1] - pool[1]
    spread = math.sqrt(full[2] ** 2 + pool[2] ** 2) if full[2] is not None and pool[2] is not None else None
    seeds = results["settings"].get("seeds")
    if spread is not None:
        noise = f"± {spread:.3f}, the seeds' spread √(s₁² + s₂²) over {seeds} seeds"
    else:
        noise = "1 seed: no seed spread to tell noise from a difference" if seeds == 1 else "noise unknown: one of them has a single seed's value"
    if spread is not None and abs(diff) <= spread:
        cost = _cost_ratios(results, full[0], pool[0])
        return head + f"no difference beyond noise on {small}: {full[0]} {full[1]:.3f} against {pool[0]} {pool[1]:.3f} ({diff:+.3f}, {noise}); {full[0]} costs {cost} of {pool[0]}."
    winner, loser = (full, pool) if diff > 0 else (pool, full)
    return head + f"{winner[0]} beats {loser[0]} on {small} by {abs(diff):.3f} ({noise}; {winner[1]:.3f} against {loser[1]:.3f}) at {_cost_ratios(results, winner[0], loser[0])}."


def _cost_ratios(results: dict[str, Any], label: str, other: str) -> str:
    """``1.3× the GFLOPs/MP and 2.1× the train time`` of ``label`` over ``other``."""
    flops = {m["label"]: m.get("gflops_per_mp") for m in results["models"]}
    return f"{_ratio(flops[label], flops[other])} the GFLOPs/MP and {_ratio(_train_s(results, label), _train_s(results, other))} the train time"


def verdict_lines(results: dict[str, Any]) -> list[str]:
    """The verdict after :func:`answer_line`: one line per accuracy metric, then the cost of each
    winner against the cheapest model.

    Lines may hold ``**bold**`` (Markdown); :func:`plain` strips it for the console.
    """
    lines = [line for key, words in VERDICT_METRICS if (line := metric_line(results, key, words))]
    last = last_place_line(results, *VERDICT_METRICS[0])
    if last:
        lines.append(last)
    winners = []
    for key, _ in VERDICT_METRICS:
        win = metric_winner(results, key)
        if win is not None and win["best"] not in winners:
            winners.append(win["best"])
    if winners and len(results["models"]) > 1:
        lines.append("**Cost**: " + "; ".join(cost_words(results, label) for label in winners) + ".")
    tta = tta_line(results)
    if tta:
        lines.append(tta)
    return lines


def tta_line(results: dict[str, Any]) -> str | None:
    """How test-time augmentation moved mIoU and iIoU, averaged over the models (when the comparison ran it)."""
    tta = results.get("tta")
    if not tta:
        return None
    parts = []
    for key, words in (("mIoU", "mIoU"), ("iIoU", "iIoU"), ("small_object_iou", "small-object IoU")):
        deltas = []
        for model in results["models"]:
            agg = results["aggregate"][model["label"]]
            plain, _ = _stat((agg.get("metrics") or {}).get(key))
            augmented, _ = _stat((agg.get("tta_metrics") or {}).get(key))
            if plain is not None and augmented is not None:
                deltas.append(augmented - plain)
        if deltas:
            parts.append(f"{words} {sum(deltas) / len(deltas):+.3f} (from {min(deltas):+.3f} to {max(deltas):+.3f})")
    if not parts:
        return None
    return f"**Test-time augmentation** ({tta['describe']}) changed, on average over the models: " + ", ".join(parts) + "."


def seed_words(seeds: int) -> str:
    """``1 seed`` or ``3 seeds``."""
    return "1 seed" if seeds == 1 else f"{seeds} seeds"


def spread_words(seeds: int) -> str:
    """What a figure's value and error bar are: ``mean ± std over 3 seeds``, or ``1 seed (no spread)``."""
    return "1 seed (no spread)" if seeds == 1 else f"mean ± std over {seeds} seeds"


def plain(line: str) -> str:
    """A verdict line without Markdown emphasis, for the console."""
    return line.replace("**", "")


def pareto_front(costs: Sequence[float], scores: Sequence[float], lower_cost_is_better: bool = True) -> list[int]:
    """Indices of the points no other point beats: none has a cost at least as good and a score at
    least as high with one of them strictly better. NaN/None points are never on the front. Sorted by
    cost, best cost first; duplicates of a front point are all kept."""
    points = [
        (i, float(c) if lower_cost_is_better else -float(c), float(s))
        for i, (c, s) in enumerate(zip(costs, scores))
        if c is not None and s is not None and not math.isnan(float(c)) and not math.isnan(float(s))
    ]
    front = []
    for i, c, s in points:
        dominated = any(c2 <= c and s2 >= s and (c2 < c or s2 > s) for j, c2, s2 in points if j != i)
        if not dominated:
            front.append((c, -s, i))
    return [i for _, _, i in sorted(front)]
