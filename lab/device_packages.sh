#!/usr/bin/env bash
# Sourced by the lab's GPU scripts (device_street.sh, gpu_bench.sh) after `cd` to the repository root,
# with PYTHON set: where segdil and its needs do not import, installs the wheels carried in .whl/
# (bash lab/device_wheels.sh downloads them here) into /tmp/site and puts it on PYTHONPATH. Returns 1,
# saying how to get the wheels, when they are missing or do not install.
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
export NO_ALBUMENTATIONS_UPDATE=1
device_imports() { "$PYTHON" -c "import torch, segmentation_models_pytorch, albumentations, segdil; print('torch', torch.__version__, 'CUDA', torch.cuda.is_available())"; }
if ! device_imports 2>/dev/null; then  # on the GPU machine: smp and albumentations come from the carried wheels
    if [ ! -d .whl ]; then
        echo "smp or albumentations is missing and there is no .whl/: run bash lab/device_wheels.sh here and carry .whl" >&2
        return 1
    fi
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
    export PYTHONPATH=/tmp/site:$PYTHONPATH
    device_imports || return 1
fi
