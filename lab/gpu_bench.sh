#!/usr/bin/env bash
# GPU figures for docs/performance.md, in one run on one CUDA GPU (H100/H200), within BUDGET_S seconds.
#
#   PYTHON=.venv/bin/python OUT=/tmp/gpu BUDGET_S=450 bash lab/gpu_bench.sh
#
# Needs a python with torch (CUDA), numpy, click, pyyaml and opencv; segdil is imported from this checkout
# (PYTHONPATH=.). Where smp or albumentations is missing (the lent machines' python), it installs the wheels
# carried in .whl/ (lab/device_packages.sh): bash lab/device_wheels.sh here first, then carry .whl.
# Parts run in order of importance, each in its own process with a timeout cut to the time left,
# so a slow torch.compile loses only its own part. Writes two files:
#   $OUT/gpu_bench.json  every part's full result (or why it is missing) and a summary against the targets
#   $OUT/gpu_bench.txt   the printed tables
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-./gpu_bench_out}
BUDGET_S=${BUDGET_S:-450}
mkdir -p "$OUT"
source lab/device_packages.sh || exit 1
PARTS=$(mktemp -d)
LOG="$OUT/gpu_bench.txt"
: >"$LOG"
START=$(date +%s)

say() { echo "$@" | tee -a "$LOG"; }

# run_part NAME LIMIT_S ARGS...: `segdil bench ARGS --json $PARTS/NAME.json`, at most LIMIT_S and never past the budget
run_part() {
    local name=$1 limit=$2
    shift 2
    local left=$((BUDGET_S - ($(date +%s) - START) - 15))
    if [ "$left" -lt 30 ]; then
        say "== $name: skipped, ${left}s of the budget left"
        echo "{\"skipped\": \"budget: ${left}s left\"}" >"$PARTS/$name.json"
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    say "== $name (limit ${limit}s): segdil bench $*"
    local t0=$(date +%s)
    timeout --signal=TERM --kill-after=10 "$limit" "$PYTHON" -m segdil bench "$@" --json "$PARTS/$name.json" 2>&1 | grep -v "^W1\|^  warnings.warn" | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    say "   ($name: exit $rc, $(( $(date +%s) - t0 ))s)"
    if [ ! -s "$PARTS/$name.json" ]; then
        echo "{\"failed\": \"exit $rc after $(( $(date +%s) - t0 ))s (124: time limit)\"}" >"$PARTS/$name.json"
    fi
}

"$PYTHON" - <<'EOF' 2>&1 | tee -a "$LOG"
import torch
assert torch.cuda.is_available(), "no CUDA device: this script measures the GPU"
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
EOF
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader 2>/dev/null | tee -a "$LOG"

HDC=(--model hdc --set "model.widths=[64]" --set "model.rates=[1,2,5]" --set model.blocks=4)

# First the figures not yet measured on a GPU (parts 1-6 were, on 2026-11-28):
# A. the flagship against the U-Net-r18 in training, bf16 channels_last, eager and compiled: the img/s ratio
run_part flagship_train 200 --model configs/hdc-context_synth.yaml --size 512 --batch 16 --matrix --steps 15 --warmup 3 --no-data \
    --variants channels_last+amp,channels_last+amp+compile
run_part unet_train 200 --model configs/unet-r18_synth.yaml --size 512 --batch 16 --matrix --steps 15 --warmup 3 --no-data \
    --variants channels_last+amp,channels_last+amp+compile
# B. segdil predict end to end at 2048x1024 (decode -> mask PNG) against a naive fp32 forward per image
for model in hdc_synth hdc-context_synth unet-r18_synth; do
    run_part "predict_$model" 90 --model "configs/$model.yaml" --infer --size 2048x1024 --batch 1 --steps 5 --warmup 2 --no-data \
        --predict-images 8 --predict-rounds 3
done
# 1. what one 3x3 64->64 convolution reaches (bf16, channels_last), dilation 1, 2, 5
run_part conv_ceiling 60 --conv-ceiling --size 512 --batch 16 --steps 20 --warmup 5
# 2. the 12-layer 64-channel HDC, training, eager: the naive baseline and each optimisation; the data loader beside
run_part hdc_train_eager 100 "${HDC[@]}" --size 512 --batch 16 --matrix --steps 15 --warmup 3 \
    --variants naive,channels_last,amp,channels_last+amp,channels_last+amp+memory_saver --set data.num_workers=8
# 3. the same with torch.compile (warm-up = compilation of forward and backward)
run_part hdc_train_compile 240 "${HDC[@]}" --size 512 --batch 16 --matrix --steps 15 --warmup 3 --no-data \
    --variants naive,channels_last+amp+compile,channels_last+amp+compile+memory_saver
# 4. 1024x1024, batch 8: bf16 channels_last eager, without and with the memory saver (each alone in its process)
run_part hdc_1024 60 "${HDC[@]}" --size 1024 --batch 8 --steps 8 --warmup 2 --no-data
run_part hdc_1024_memory_saver 60 "${HDC[@]}" --size 1024 --batch 8 --steps 8 --warmup 2 --no-data --memory-saver
# 5. the FCN (pooling) baseline at 512, batch 16
run_part fcn_train 60 --model fcn --size 512 --batch 16 --matrix --steps 15 --warmup 3 --no-data --variants naive,channels_last+amp
# 6. inference: eager eval against BatchNorm folding and the fast defaults
run_part hdc_infer 60 "${HDC[@]}" --size 512 --batch 16 --infer --matrix --steps 15 --warmup 3 --no-data \
    --variants naive,fuse,channels_last+amp,channels_last+amp+fuse

"$PYTHON" - "$PARTS" "$OUT/gpu_bench.json" <<'EOF' 2>&1 | tee -a "$LOG"
import json, pathlib, sys

parts = {p.stem: json.loads(p.read_text()) for p in sorted(pathlib.Path(sys.argv[1]).glob("*.json"))}

def row(part, name):
    for r in parts.get(part, {}).get("variants", []):
        if r["name"] == name:
            return r
    return None

conv = parts.get("conv_ceiling", {}).get("rows", [])
fwd = [r for r in conv if r["pass"] == "forward"]
ceiling = max((r["tflops"] for r in fwd), default=None)
train_rows = [r for p in ("hdc_train_eager", "hdc_train_compile") for r in parts.get(p, {}).get("variants", []) if r["name"] != "naive"]
best = max(train_rows, key=lambda r: r["img_per_s"], default=None)
saver = [r for r in train_rows if r["memory_saver"]]
summary = {
    "conv_ceiling_forward_tflops": {r["dilation"]: r["tflops"] for r in fwd},
    "conv_ceiling_forward_backward_tflops": {r["dilation"]: r["tflops"] for r in conv if r["pass"] != "forward"},
    "hdc_512_naive": row("hdc_train_eager", "naive"),
    "hdc_512_eager_fast": row("hdc_train_eager", "channels_last+amp"),
    "hdc_512_best": best,
    "hdc_512_best_fraction_of_conv_ceiling": round(best["tflops"] / ceiling, 3) if best and ceiling and best["tflops"] else None,
    "hdc_512_memory_saver_lowest_peak_mb": min((r["peak_memory_mb"] for r in saver), default=None),
    "hdc_1024_peak_mb": (parts.get("hdc_1024", {}).get("variants") or [{}])[0].get("peak_memory_mb"),
    "hdc_1024_memory_saver_peak_mb": (parts.get("hdc_1024_memory_saver", {}).get("variants") or [{}])[0].get("peak_memory_mb"),
    "fcn_512_fast": row("fcn_train", "channels_last+amp"),
    "flagship_over_unet_train_img_per_s": {
        name: round(row("flagship_train", name)["img_per_s"] / row("unet_train", name)["img_per_s"], 3)
        for name in ("channels_last+amp", "channels_last+amp+compile")
        if row("flagship_train", name) and row("unet_train", name)
    },
    "predict_2048x1024": {
        part[len("predict_"):]: {k: parts[part]["predict"][k] for k in ("naive_img_per_s", "predict_img_per_s", "speedup", "pixel_agreement_min", "inference")}
        for part in parts
        if part.startswith("predict_") and "predict" in parts[part]
    },
    "targets": {"hdc_512_img_per_s": 340, "fraction_of_conv_ceiling": 0.75, "hdc_512_memory_saver_peak_mb": 6.7e3, "hdc_1024_memory_saver_peak_mb": 13.3e3},
}
pathlib.Path(sys.argv[2]).write_text(json.dumps({"summary": summary, "parts": parts}, indent=2) + "\n")

print("\n== summary (targets: >= 340 img/s, >= 75 % of the conv ceiling; memory saver <= 6.7 GB at 512/16, <= 13.3 GB at 1024/8)")
print(f"conv ceiling, forward TFLOP/s by dilation: {summary['conv_ceiling_forward_tflops']}")
for label, r in (("HDC naive", summary["hdc_512_naive"]), ("HDC eager fast", summary["hdc_512_eager_fast"]), ("HDC best", best), ("FCN fast", summary["fcn_512_fast"])):
    if r:
        print(f"{label:<16} {r['name']:<40} {r['img_per_s']:>8.1f} img/s {r['tflops'] or 0:>7.1f} TFLOP/s {r['peak_memory_mb'] or 0:>9.0f} MB")
print(f"best / conv ceiling: {summary['hdc_512_best_fraction_of_conv_ceiling']}")
print(f"memory saver peak at 512/16: {summary['hdc_512_memory_saver_lowest_peak_mb']} MB; at 1024/8: {summary['hdc_1024_memory_saver_peak_mb']} MB (without: {summary['hdc_1024_peak_mb']} MB)")
print(f"flagship / U-Net-r18 training img/s at 512/16: {summary['flagship_over_unet_train_img_per_s']}")
for name, p in summary["predict_2048x1024"].items():
    print(f"predict {name} 2048x1024: {p['predict_img_per_s']} img/s end to end against {p['naive_img_per_s']} naive fp32 ({p['speedup']}x), agreement {100 * p['pixel_agreement_min']:.3f} % ({p['inference']})")
missing = {k: v for k, v in parts.items() if "variants" not in v and "rows" not in v and "predict" not in v}
if missing:
    print(f"parts without figures: {missing}")
EOF
rm -rf "$PARTS"
say "total $(( $(date +%s) - START ))s; wrote $OUT/gpu_bench.json and $LOG"
