"""The street study on one machine in one command, ending in one table (made for a lent GPU: about
10 minutes of device time with the defaults).

    python lab/street_study.py --device cuda --out /tmp/street            # the study
    python lab/street_study.py --device cpu --smoke --out /tmp/street     # a minute-long check of the script

Trains every model of configs/street/ alike (``segdil compare``, 3 seeds, an equal wall-clock budget
each, validated on whole scenes through the exact tiled predictor), then per model times a
training step against the conv ceiling (``segdil bench --train --vs-ceiling``) and ``segdil predict``
end to end at 2048x1024 (``segdil bench --infer --predict``), and prints per model: mIoU,
small-object IoU, iIoU, Boundary IoU, train img/s, predict img/s, peak memory, % of the conv ceiling.
Everything it ran is under OUT (``compare/`` with its report, ``bench/*.json``, ``table.md``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("hdc-context", "hdc", "fcn-pool4", "fcn8s", "unet-r18", "deeplabv3-r18")
# --smoke: tiny scenes and steps, so the whole script runs on a CPU in a minute or two
SMOKE_SET = ["data.synth.size=64", "data.synth.n_train=4", "data.synth.n_val=2", "data.crop_size=64", "train.batch_size=2"]


def run(args: list[str], log: Path) -> int:
    print("$", " ".join(args), flush=True)
    with open(log, "a") as f:
        return subprocess.run(args, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT).returncode


def stat(node) -> str:
    return "–" if not isinstance(node, dict) or node.get("mean") is None else f"{node['mean']:.3f}" + (f" ± {node['std']:.3f}" if node.get("std") else "")


def bench_figures(path: Path) -> dict:
    if not path.is_file():
        return {}
    result = json.loads(path.read_text())
    variant = (result.get("variants") or [{}])[0]
    return {"img_per_s": variant.get("img_per_s"), "peak_mb": variant.get("peak_memory_mb"), "ceiling": variant.get("ceiling_share"), "predict": (result.get("predict") or {}).get("predict_img_per_s")}


def fmt(value, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=Path("runs/street-study"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=20.0, help="training seconds per run (6 models x 3 seeds x 20 s = 6 min)")
    parser.add_argument("--train-size", default="512", help="crop side for the training-step benchmark")
    parser.add_argument("--predict-size", default="2048x1024")
    parser.add_argument("--smoke", action="store_true", help="tiny scenes and steps: check the script, not the models")
    opts = parser.parse_args()
    out = opts.out.resolve()
    (out / "bench").mkdir(parents=True, exist_ok=True)
    log = out / "log.txt"
    py = [sys.executable, "-m", "segdil"]
    configs = [str(ROOT / "configs" / "street" / f"{m}.yaml") for m in MODELS]
    # equal wall-clock: no validation or checkpoint inside the budget (the last step still does both)
    quiet = ["train.val_every=1000000000", "train.ckpt_every=1000000000"]
    overrides = [x for item in (SMOKE_SET if opts.smoke else []) + quiet for x in ("--set", item)]
    budget = 2.0 if opts.smoke else opts.budget_s
    seeds = 1 if opts.smoke else opts.seeds
    code = run([*py, "compare", *configs, "--seeds", str(seeds), "--budget-s", str(budget), "--device", opts.device, "--out", str(out / "compare"), *overrides], log)
    if code != 0:
        raise SystemExit(f"segdil compare failed (exit {code}); see {log}")
    train_size, predict_size = ("64", "128x64") if opts.smoke else (opts.train_size, opts.predict_size)
    failed = []  # a failed bench leaves its cells empty (not an earlier run's JSON) and is named below the table
    for model, config in zip(MODELS, configs):
        common = ["--model", config, "--device", opts.device, "--no-data", "--overwrite", "--steps", "2" if opts.smoke else "10", "--warmup", "1" if opts.smoke else "3"]
        for kind in ("train", "predict"):
            (out / "bench" / f"{model}-{kind}.json").unlink(missing_ok=True)
        code = run([*py, "bench", *common, "--train", "--size", train_size, "--batch", "2" if opts.smoke else "8", "--vs-ceiling", "--conv-channels", "32", "--json", str(out / "bench" / f"{model}-train.json")], log)
        failed += [f"{model} train bench (exit {code})"] if code else []
        trained = out / "compare" / "runs" / model / "seed0" / "last.pt"  # its bf16 guard acts on trained logits
        weights = ["--checkpoint", str(trained)] if trained.is_file() else []
        code = run([*py, "bench", *common, "--infer", "--size", predict_size, "--batch", "1", "--predict", *weights, "--predict-images", "1" if opts.smoke else "3", "--predict-rounds", "1" if opts.smoke else "3", "--json", str(out / "bench" / f"{model}-predict.json")], log)
        failed += [f"{model} predict bench (exit {code})"] if code else []

    results = json.loads((out / "compare" / "results.json").read_text())
    rows = ["| model | mIoU | small-object IoU | iIoU | Boundary IoU | steps | train img/s | predict img/s | peak MB (train) | % of conv ceiling |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for model in MODELS:
        agg = results["aggregate"].get(model, {})
        metrics = agg.get("metrics") or {}
        train, predict = bench_figures(out / "bench" / f"{model}-train.json"), bench_figures(out / "bench" / f"{model}-predict.json")
        cells = [stat(metrics.get(k)) for k in ("mIoU", "small_object_iou", "iIoU", "boundary_iou")]
        steps = agg.get("step") or {}
        cells += [fmt(steps.get("mean"), "{:.0f}"), fmt(train.get("img_per_s"), "{:.1f}"), fmt(predict.get("predict"), "{:.2f}"), fmt(train.get("peak_mb"), "{:.0f}"), fmt(train.get("ceiling"), "{:.0%}")]
        rows.append(f"| {model} | " + " | ".join(cells) + " |")
    machine = results["environment"]["machine"]
    head = f"street study: {seeds} seed(s), {budget:g} s of training per run on {opts.device} ({machine.get('gpu') or machine.get('cpu')}); predict at {predict_size}, train step at {train_size} px"
    table = head + "\n\n" + "\n".join(rows) + "\n" + (f"\nfailed: {'; '.join(failed)}; see {log}\n" if failed else "")
    (out / "table.md").write_text(table)
    print(table)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
