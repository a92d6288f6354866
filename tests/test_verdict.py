"""The verdict names the right winner (or a tie within noise) and the Pareto front is right."""

import math

from segdil.compare.verdict import cheapest, metric_winner, pareto_front, plain, verdict_lines


def stat(mean, std, n=3):
    return {"mean": mean, "std": std, "n": n}


def results(models: dict[str, dict], seeds: int = 3) -> dict:
    """A constructed results.json: per label its metrics (mean, std), GFLOPs/MP, img/s and peak memory."""
    return {
        "settings": {"seeds": seeds},
        "models": [{"label": label, "gflops_per_mp": m["gflops"]} for label, m in models.items()],
        "aggregate": {
            label: {
                "metrics": {k: (stat(*v) if v is not None else None) for k, v in m["metrics"].items()},
                "img_per_s": stat(m["img_s"], 0.5),
                "peak_memory_bytes": stat(m["mem"], 0.0),
            }
            for label, m in models.items()
        },
    }


MODELS = {
    "hdc": {"gflops": 200.0, "img_s": 10.0, "mem": 400e6, "metrics": {"small_object_iou": (0.60, 0.01), "mIoU": (0.88, 0.01), "iIoU": (0.50, 0.02)}},
    "unet": {"gflops": 160.0, "img_s": 15.0, "mem": 300e6, "metrics": {"small_object_iou": (0.45, 0.05), "mIoU": (0.87, 0.02), "iIoU": (0.52, 0.02)}},
    "fcn": {"gflops": 100.0, "img_s": 40.0, "mem": 100e6, "metrics": {"small_object_iou": (0.06, 0.003), "mIoU": (0.60, 0.01), "iIoU": (0.20, 0.01)}},
}


def test_verdict_names_the_winner_and_ties_within_noise():
    r = results(MODELS)
    small = metric_winner(r, "small_object_iou")
    assert small["best"] == "hdc" and small["runner_up"] == "unet" and not small["within_noise"]
    assert math.isclose(small["difference"], 0.15) and math.isclose(small["spread"], math.sqrt(0.01**2 + 0.05**2))
    miou = metric_winner(r, "mIoU")  # 0.01 apart, spread 0.022: a tie
    assert miou["best"] == "hdc" and miou["within_noise"] and miou["tied"] == ["unet"]
    iiou = metric_winner(r, "iIoU")  # unet leads by 0.02, spread 0.028: a tie the other way round
    assert iiou["best"] == "unet" and iiou["within_noise"]

    lines = verdict_lines(r)
    assert lines[0] == "**small-object IoU**: hdc is best with 0.600 ± 0.010, +0.150 over the runner-up unet (0.450 ± 0.050; seed spread of the difference ±0.051)."
    assert lines[1].startswith("**mIoU**: hdc, unet tie within noise: hdc 0.880 ± 0.010 against unet 0.870 ± 0.020, a difference of +0.010 inside the seed spread ±0.022")
    assert lines[2].startswith("**iIoU**: unet, hdc tie within noise")
    # which models lead the last on small objects outside noise: hdc by 0.54 (spread 0.010), unet by 0.39 (spread 0.050)
    assert lines[3] == "**small-object IoU, against the last**: fcn is last with 0.060 ± 0.003; hdc +0.540, unet +0.390 lead it outside noise."
    assert cheapest(r) == "fcn"
    assert plain(lines[4]) == (
        "Cost: hdc costs 2× the GFLOPs/MP, 0.25× the train img/s and 4× the peak memory of the cheapest model, fcn; "
        "unet costs 1.6× the GFLOPs/MP, 0.38× the train img/s and 3× the peak memory of the cheapest model, fcn."
    )
    assert len(lines) == 5
    # a lead inside the spread is said so
    close = {**MODELS, "unet": {**MODELS["unet"], "metrics": {**MODELS["unet"]["metrics"], "small_object_iou": (0.08, 0.05)}}}
    assert verdict_lines(results(close))[3].endswith("hdc +0.540 lead it outside noise; unet +0.020 within noise.")
    # two models: no such line
    assert not any("against the last" in line for line in verdict_lines(results({k: MODELS[k] for k in ("hdc", "fcn")})))


def test_verdict_with_one_seed_and_missing_values():
    models = {label: {**m, "metrics": {k: (v[0], None) for k, v in m["metrics"].items()}} for label, m in MODELS.items()}
    models["fcn"]["metrics"]["iIoU"] = None
    models["hdc"]["metrics"]["iIoU"] = None
    lines = verdict_lines(results(models, seeds=1))
    assert "one seed, so no seed spread" in lines[0] and "within noise" not in " ".join(lines)
    assert lines[3] == "**small-object IoU, against the last**: fcn is last with 0.060; ahead of it: hdc +0.540, unet +0.390 (one seed, so no seed spread)."
    assert lines[2] == "**iIoU**: unet 0.520 (the only model with a value)."
    # the winner being the cheapest model is said so
    models["fcn"]["metrics"]["small_object_iou"] = (0.99, None)
    assert "fcn is also the cheapest model" in verdict_lines(results(models, seeds=1))[-1]


def test_pareto_front_hand_cases():
    # cost lower is better (GFLOPs): (1, .2) (2, .5) (3, .4 dominated by 2) (4, .9) (4, .8 dominated) (5, .9 dominated by 4)
    assert pareto_front([1, 2, 3, 4, 4, 5], [0.2, 0.5, 0.4, 0.9, 0.8, 0.9]) == [0, 1, 3]
    # higher is better (img/s): the fastest first
    assert pareto_front([10, 40, 20, 40], [0.6, 0.1, 0.5, 0.05], lower_cost_is_better=False) == [1, 2, 0]
    # identical points are both kept; NaN and None never on the front; one point is its own front
    assert pareto_front([1, 1, float("nan"), None], [0.5, 0.5, 0.9, 0.9]) == [0, 1]
    assert pareto_front([3], [0.1]) == [0] and pareto_front([], []) == []
    # equal cost, lower score: dominated
    assert pareto_front([2, 2], [0.3, 0.4]) == [1]
