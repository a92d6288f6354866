#!/usr/bin/env bash
# The street study (lab/street_study.py) on a lent GPU in one `run` call, inside its 10-minute limit:
#
#   bash lab/device_wheels.sh                                                  # here, once
#   run(command="bash lab/device_street.sh", carry=[".whl"], timeout_s=600)    # there
#
# Installs the carried wheels (.whl/) into /tmp/site where segdil does not import without them, runs the study
# into /tmp/street with TIME_LIMIT_S (480 s: a bench stopped at the limit gets 60 s more to end),
# then copies what comes back (at most 8 files) into $OUT: table.md, log.txt, compare's report.md
# and results.json, gpu.txt. Here, without a GPU, `DEVICE=cpu SMOKE=1 PYTHON=.venv/bin/python OUT=/tmp/s
# bash lab/device_street.sh` checks the script (a few minutes).
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-/tmp/street-out}
STUDY=${STUDY:-/tmp/street}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1
imports() { "$PYTHON" -c "import torch, segmentation_models_pytorch, albumentations, segdil; print('torch', torch.__version__, 'CUDA', torch.cuda.is_available())"; }
if ! imports 2>/dev/null; then  # on the GPU machine: smp and albumentations come from the carried wheels
    [ -d .whl ] || { echo "smp or albumentations is missing and there is no .whl/: run bash lab/device_wheels.sh here and carry .whl" >&2; exit 1; }
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    imports || exit 1
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv >"$OUT/gpu.txt" 2>&1 || lscpu >"$OUT/gpu.txt"
"$PYTHON" lab/street_study.py --device "${DEVICE:-cuda}" --out "$STUDY" --time-limit-s "${TIME_LIMIT_S:-480}" ${SMOKE:+--smoke}
rc=$?
for f in table.md log.txt compare/report.md compare/results.json; do
    [ -f "$STUDY/$f" ] && cp "$STUDY/$f" "$OUT/"
done
[ -f "$OUT/table.md" ] && cat "$OUT/table.md"
exit $rc
