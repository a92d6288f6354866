#!/usr/bin/env bash
# Downloads, here, the wheels a lent GPU machine lacks for segdil (its python3 is 3.12 with torch,
# numpy, opencv, scipy, click, pyyaml, tqdm, matplotlib, timm, huggingface-hub, safetensors, pillow;
# not smp, albumentations or their needs), at the versions of this checkout's .venv, into .whl/
# (ignored; `run` carries it):
#
#   bash lab/device_wheels.sh           # then run(command="bash lab/device_street.sh", carry=[".whl"], timeout_s=600)
set -eu
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
PACKAGES="segmentation-models-pytorch albumentations albucore pydantic pydantic-core typing-inspection annotated-types simsimd stringzilla"
pins=$("$PYTHON" -c 'import sys, importlib.metadata as m; print(" ".join(f"{p}=={m.version(p)}" for p in sys.argv[1:]))' $PACKAGES)
rm -rf .whl
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl $pins
echo "$(ls .whl | wc -l) wheels in .whl ($(du -sh .whl | cut -f1)): $pins"
