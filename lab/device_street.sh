#!/usr/bin/env bash
# The street study (lab/street_study.py) on a lent GPU in one `run` call, inside its 10-minute limit:
#
#   bash lab/device_wheels.sh                                                  # here, once
#   run(command="bash lab/device_street.sh", carry=[".whl"], timeout_s=600)    # there
#
# Installs the carried wheels (.whl/) where segdil does not import without them (lab/device_packages.sh), runs the study
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
export PYTHONUNBUFFERED=1
source lab/device_packages.sh || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv >"$OUT/gpu.txt" 2>&1 || lscpu >"$OUT/gpu.txt"
"$PYTHON" lab/street_study.py --device "${DEVICE:-cuda}" --out "$STUDY" --time-limit-s "${TIME_LIMIT_S:-480}" ${SMOKE:+--smoke}
rc=$?
for f in table.md log.txt compare/report.md compare/results.json; do
    [ -f "$STUDY/$f" ] && cp "$STUDY/$f" "$OUT/"
done
[ -f "$OUT/table.md" ] && cat "$OUT/table.md"
exit $rc
