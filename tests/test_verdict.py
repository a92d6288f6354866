"""The verdict names the right winner (or a tie within noise) and the Pareto front is right."""

import math

import pytest

from segdil.compare.aggregate import resolution_path
from segdil.compare.verdict import answer_line, cheapest, metric_winner, pareto_front, plain, verdict_lines
from segdil.models import MODELS as REGISTRY
from segdil.models.base import SegModel


def stat(mean, std, n=3):
    return {"mean": mean, "std": std, "n": n}


def results(models: dict[str, dict], seeds: int = 3, small_threshold: float = 16.0) -> dict:
    """A constructed results.json: per label its metrics (mean, std), GFLOPs/MP, img/s, peak memory,
    train seconds and whether its class is full resolution or pooling."""
    return {
        "settings": {"seeds": seeds},
        "small_threshold": small_threshold,
        "models": [{"label": label, "gflops_per_mp": m["gflops"], "resolution_path": m.get("path")} for label, m in models.items()],
        "aggregate": {
            label: {
                "metrics": {k: (stat(*v) if v is not None else None) for k, v in m["metrics"].items()},
                "img_per_s": stat(m["img_s"], 0.5),
                "peak_memory_bytes": stat(m["mem"], 0.0),
                "train_s": stat(m.get("train_s", 100.0), 1.0),
            }
            for label, m in models.items()
        },
    }


MODELS = {
    "hdc": {"path": "full", "train_s": 300.0, "gflops": 200.0, "img_s": 10.0, "mem": 400e6, "metrics": {"small_object_iou": (0.60, 0.01), "mIoU": (0.88, 0.01), "iIoU": (0.50, 0.02)}},
    "unet": {"path": "pooling", "train_s": 150.0, "gflops": 160.0, "img_s": 15.0, "mem": 300e6, "metrics": {"small_object_iou": (0.45, 0.05), "mIoU": (0.87, 0.02), "iIoU": (0.52, 0.02)}},
    "fcn": {"path": "pooling", "train_s": 50.0, "gflops": 100.0, "img_s": 40.0, "mem": 100e6, "metrics": {"small_object_iou": (0.06, 0.003), "mIoU": (0.60, 0.01), "iIoU": (0.20, 0.01)}},
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


def _with(base: dict, label: str, small: tuple) -> dict:
    """``base`` with ``label``'s small-object IoU (mean, std) replaced."""
    return {**base, label: {**base[label], "metrics": {**base[label]["metrics"], "small_object_iou": small}}}


def test_answer_line_best_full_resolution_against_best_pooling():
    # hdc (full resolution) 0.60 ± 0.01 against the best pooling model unet 0.45 ± 0.05 (fcn 0.06 is not the best)
    line = answer_line(results(MODELS))
    spread = math.sqrt(0.01**2 + 0.05**2)
    assert line == (
        f"full resolution vs pooling: hdc beats unet on objects < 16 px by 0.150 (± {spread:.3f}, the seeds' spread √(s₁² + s₂²) over 3 seeds; "
        "0.600 against 0.450) at 1.2× the GFLOPs/MP and 2× the train time."
    )
    # the pooling model ahead outside noise: it is the one that beats, its cost over the other's
    line = answer_line(results(_with(MODELS, "unet", (0.70, 0.02))))
    assert line.startswith("full resolution vs pooling: unet beats hdc on objects < 16 px by 0.100 (± 0.022") and line.endswith("at 0.8× the GFLOPs/MP and 0.5× the train time.")
    # inside the seed spread: no difference
    line = answer_line(results(_with(MODELS, "unet", (0.58, 0.05))))
    assert line.startswith("full resolution vs pooling: no difference beyond noise on objects < 16 px: hdc 0.600 against unet 0.580 (+0.020, ± 0.051")
    assert "hdc costs 1.2× the GFLOPs/MP and 2× the train time of unet" in line
    # the size limit is the results' small-object threshold
    assert "on objects < 12 px" in answer_line(results(MODELS, small_threshold=12.0))


def test_answer_line_with_one_seed_and_without_one_side():
    one = {label: {**m, "metrics": {k: (v[0], None) for k, v in m["metrics"].items()}} for label, m in MODELS.items()}
    line = answer_line(results(one, seeds=1))
    assert line.startswith("full resolution vs pooling: hdc beats unet on objects < 16 px by 0.150 (1 seed: no seed spread") and "±" not in line
    only_pooling = {k: MODELS[k] for k in ("unet", "fcn")}
    assert answer_line(results(only_pooling)) == "full resolution vs pooling: not answered: no full-resolution model with a small-object IoU in this comparison."
    no_value = _with(MODELS, "hdc", None)
    assert "no full-resolution model" in answer_line(results(no_value))


@pytest.mark.parametrize("declared, expected", [(("stem", "head"), "full"), ((), "pooling")])
def test_resolution_path_comes_from_the_class(monkeypatch, declared, expected):
    class Probe(SegModel):
        full_resolution_path = declared

    monkeypatch.setitem(REGISTRY, "probe_model", Probe)
    assert resolution_path({"name": "probe_model"}) == expected
    Probe.is_classifier = True
    assert resolution_path({"name": "probe_model"}) is None
