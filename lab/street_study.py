"""The street study on one machine in one command, ending in one table (made for a lent GPU: it
stops starting work at ``--time-limit-s``, 540 s by default, so one 10-minute call returns a table).

    python lab/street_study.py --device cuda --out /tmp/street            # the study
    python lab/street_study.py --device cpu --smoke --out /tmp/street     # a few minutes' check of the script

Writes the street scenes once (``segdil data synth --scene street``: the configs' 64 training and 16
validation scenes, read from disk by every run rather than generated per loader worker, which on a
GPU would take most of a short budget), trains every model of configs/street/ alike (``segdil
compare``, 3 seeds, an equal wall-clock budget each, validated on whole scenes through the exact
tiled predictor), then per model times a
training step against the conv ceiling (``segdil bench --train --vs-ceiling``) and ``segdil predict``
end to end at 2048x1024 (``segdil bench --infer --predict``), and prints per model: mIoU,
small-object IoU, iIoU, Boundary IoU, train img/s, predict img/s, peak memory, % of the conv ceiling;
with the time then left, ``segdil bench --sizes`` per model adds the largest whole 2:1 image it
trains on (batch 2) within the device's memory.

Within the time limit: compare gets all but ``--bench-reserve-s`` and 90 s of it; if it runs out,
compare is stopped (SIGTERM) and its report written in those 90 s for the seeds every model finished
(compare trains seed by seed). Benches run in order of the models (the flagship first) while time
is left; the table is rewritten after each step, so a run killed from outside still leaves the
latest one. Everything it
ran is under OUT (``compare/`` with its report, ``bench/*.json``, ``table.md``, ``log.txt``).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("hdc-context", "hdc", "fcn-pool4", "fcn8s", "unet-r18", "deeplabv3-r18")
# --smoke: tiny scenes and steps, so the whole script runs on a CPU in a few minutes
SMOKE_SCENES = ["--size", "128x64", "--n-train", "4", "--n-val", "2"]
SMOKE_SET = ["data.crop_size=64", "train.batch_size=2"]
MIN_BENCH_S = 30  # a bench is not started with less time left than this
SIZES_S = 60  # a sizes sweep (bench --sizes) is not started with less time left than this
REPORT_S = 90  # kept for compare's report when compare is stopped at the time limit (it builds every model, draws the figures)


def run(args: list[str], log: Path, timeout_s: float | None = None) -> int | None:
    """Run a segdil command, its output appended to ``log``; None when it was stopped at ``timeout_s``."""
    print("$", " ".join(args), flush=True)
    with open(log, "a") as f:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # compare stops its run after the step; bench just ends
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            return None


def scene_args() -> list[str]:
    """``segdil data synth`` options for the scenes configs/street/ generate in memory (its data.synth)."""
    synth = yaml.safe_load((ROOT / "configs" / "street" / "_base_street.yaml").read_text())["data"]["synth"]
    return ["--size", str(synth["size"]), "--n-train", str(synth["n_train"]), "--n-val", str(synth["n_val"]), "--seed", str(synth.get("seed", 0))]


def outcome(code: int | None) -> str:
    return "time limit" if code is None else f"exit {code}"


def finished_seeds(runs: Path, models: tuple[str, ...], seeds: int) -> int:
    """How many seeds, from seed 0 on, every model finished in compare's ``runs`` folder."""
    done = 0
    while done < seeds and all((runs / m / f"seed{done}" / "run.json").is_file() for m in models):
        done += 1
    return done


def stat(node) -> str:
    return "–" if not isinstance(node, dict) or node.get("mean") is None else f"{node['mean']:.3f}" + (f" ± {node['std']:.3f}" if node.get("std") else "")


def bench_figures(path: Path) -> dict:
    if not path.is_file():
        return {}
    result = json.loads(path.read_text())
    variant = (result.get("variants") or [{}])[0]
    return {"img_per_s": variant.get("img_per_s"), "peak_mb": variant.get("peak_memory_mb"), "ceiling": variant.get("ceiling_share"), "predict": (result.get("predict") or {}).get("predict_img_per_s")}


def largest_train_image(path: Path) -> str:
    """'W×H' of the largest whole 2:1 image one model trains on within the device's memory (the
    memory saver's in brackets), from ``bench --sizes --train``'s JSON; '–' without one."""
    if not path.is_file():
        return "–"
    found = [(name, fit.get("wide")) for name, fit in json.loads(path.read_text())["models"][0]["largest_image"].items() if fit]
    if not found:
        return "–"
    return found[0][1] + "".join(f" ({wide} saver)" for _, wide in found[1:])


def fmt(value, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def table(out: Path, head: str, notes: list[str]) -> str:
    """The study's table from ``out/compare/results.json`` and ``out/bench/*.json``, with ``notes`` below it."""
    results = json.loads((out / "compare" / "results.json").read_text())
    rows = [
        "| model | mIoU | small-object IoU | iIoU | Boundary IoU | steps | train img/s | predict img/s | peak MB (train) | % of conv ceiling | largest 2:1 train image |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for model in MODELS:
        agg = results["aggregate"].get(model, {})
        metrics = agg.get("metrics") or {}
        train, predict = bench_figures(out / "bench" / f"{model}-train.json"), bench_figures(out / "bench" / f"{model}-predict.json")
        cells = [stat(metrics.get(k)) for k in ("mIoU", "small_object_iou", "iIoU", "boundary_iou")]
        steps = agg.get("step") or {}
        cells += [fmt(steps.get("mean"), "{:.0f}"), fmt(train.get("img_per_s"), "{:.1f}"), fmt(predict.get("predict"), "{:.2f}"), fmt(train.get("peak_mb"), "{:.0f}"), fmt(train.get("ceiling"), "{:.0%}"), largest_train_image(out / "bench" / f"{model}-sizes.json")]
        rows.append(f"| {model} | " + " | ".join(cells) + " |")
    machine = results["environment"]["machine"]
    return f"{head} ({machine.get('gpu') or machine.get('cpu')})\n\n" + "\n".join(rows) + "\n" + "".join(f"\n{note}" for note in notes) + ("\n" if notes else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=Path("runs/street-study"))
    parser.add_argument("--seeds", type=int, default=None, help="default 3 (--smoke: 1)")
    parser.add_argument("--budget-s", type=float, default=12.0, help="training seconds per run (6 models x 3 seeds x 12 s = 3.6 min)")
    parser.add_argument("--time-limit-s", type=float, default=540.0, help="no work is started past this many seconds from the start")
    parser.add_argument("--bench-reserve-s", type=float, default=150.0, help="of the time limit, the seconds kept for the benches")
    parser.add_argument("--train-size", default="512", help="crop side for the training-step benchmark")
    parser.add_argument("--predict-size", default="2048x1024")
    parser.add_argument("--smoke", action="store_true", help="tiny scenes and steps: check the script, not the models")
    opts = parser.parse_args()
    start = time.monotonic()
    left = lambda: opts.time_limit_s - (time.monotonic() - start)  # noqa: E731
    out = opts.out.resolve()
    (out / "bench").mkdir(parents=True, exist_ok=True)
    log = out / "log.txt"
    (out / "table.md").unlink(missing_ok=True)  # no earlier run's table survives a failure of this one
    py = [sys.executable, "-m", "segdil"]
    configs = [str(ROOT / "configs" / "street" / f"{m}.yaml") for m in MODELS]
    data = out / "scenes"
    if run([*py, "data", "synth", str(data), "--scene", "street", *(SMOKE_SCENES if opts.smoke else scene_args()), "--overwrite"], log) != 0:
        raise SystemExit(f"segdil data synth failed; see {log}")
    # equal wall-clock: no validation or checkpoint inside the budget (the last step still does both)
    quiet = [f"data.root={data}", "data.format=cityscapes", "train.val_every=1000000000", "train.ckpt_every=1000000000"]
    overrides = [x for item in (SMOKE_SET if opts.smoke else []) + quiet for x in ("--set", item)]
    budget = 2.0 if opts.smoke else opts.budget_s
    seeds = opts.seeds or (1 if opts.smoke else 3)
    compare = lambda n: [*py, "compare", *configs, "--seeds", str(n), "--budget-s", str(budget), "--device", opts.device, "--out", str(out / "compare"), *overrides]  # noqa: E731
    notes = []
    code = run(compare(seeds), log, timeout_s=max(left() - opts.bench_reserve_s - REPORT_S, MIN_BENCH_S))
    if code is None:
        done = finished_seeds(out / "compare" / "runs", MODELS, seeds)
        if done == 0:
            raise SystemExit(f"segdil compare reached the time limit before every model finished seed 0; raise --time-limit-s or lower --budget-s (see {log})")
        notes.append(f"compare stopped at the time limit: {done} of {seeds} seeds, all models")
        seeds, code = done, run(compare(done), log, timeout_s=max(left() - opts.bench_reserve_s, REPORT_S))  # reuses the finished runs, writes the report
    if code != 0:
        raise SystemExit(f"segdil compare failed ({outcome(code)}); see {log}")
    train_size, predict_size = ("64", "128x64") if opts.smoke else (opts.train_size, opts.predict_size)
    sizes = "64,128x64" if opts.smoke else "256,512,1024x512,2048x1024"
    head = f"street study: {seeds} seed(s), {budget:g} s of training per run on {opts.device}; predict at {predict_size}, train step at {train_size} px"
    failed = []  # a failed bench leaves its cells empty (not an earlier run's JSON) and is named below the table

    def write_table() -> str:
        text = table(out, head, notes + ([f"failed or skipped: {'; '.join(failed)}; see {log}"] if failed else []))
        (out / "table.md").write_text(text)
        return text

    def bench(name: str, args: list[str], result: Path, min_left_s: float) -> bool:
        """``segdil bench ARGS --json RESULT`` within the time left (a failure named in ``failed``);
        False, and RESULT absent, when less than ``min_left_s`` is left."""
        result.unlink(missing_ok=True)
        if left() < min_left_s:
            return False
        code = run([*py, "bench", *args, "--json", str(result)], log, timeout_s=left())
        failed.extend([f"{name} ({outcome(code)})"] if code != 0 else [])
        write_table()
        return True

    write_table()
    for model, config in zip(MODELS, configs):
        common = ["--model", config, "--device", opts.device, "--no-data", "--overwrite", "--steps", "2" if opts.smoke else "10", "--warmup", "1" if opts.smoke else "3"]
        trained = out / "compare" / "runs" / model / "seed0" / "last.pt"  # its bf16 guard acts on trained logits
        weights = ["--checkpoint", str(trained)] if trained.is_file() else []
        benches = {
            "train": ["--train", "--size", train_size, "--batch", "2" if opts.smoke else "8", "--vs-ceiling", "--conv-channels", "32"],
            "predict": ["--infer", "--size", predict_size, "--batch", "1", "--predict", *weights, "--predict-images", "1" if opts.smoke else "3", "--predict-rounds", "1" if opts.smoke else "3"],
        }
        for kind, args in benches.items():
            if not bench(f"{model} {kind} bench", [*common, *args], out / "bench" / f"{model}-{kind}.json", MIN_BENCH_S):
                failed.append(f"{model} {kind} bench (not started: {max(left(), 0):.0f} s of the time limit left)")
    sweep = ["--device", opts.device, "--no-data", "--overwrite", "--train", "--batch", "2", "--sizes", sizes]
    # with the time left: the largest image each model trains on whole (batch 2)
    unswept = [model for model, config in zip(MODELS, configs) if not bench(f"{model} sizes bench", ["--model", config, *sweep], out / "bench" / f"{model}-sizes.json", SIZES_S)]
    if unswept:
        notes.append(f"largest 2:1 train image not measured (less than {SIZES_S} s left): {', '.join(unswept)}")
    print(write_table())
    print(f"{time.monotonic() - start:.0f} s in all")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
