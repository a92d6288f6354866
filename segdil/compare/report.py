"""The comparison report: :func:`write_report` builds it from ``results.json`` and writes ``report.md``
and ``report.html``; :func:`provenance` is what the report says about the run, taken when it starts.

Building (:mod:`segdil.compare.report_sections`, from the blocks and words of
:mod:`segdil.compare.report_blocks`) is apart from rendering (:mod:`segdil.compare.report_render`).
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Sequence

import torch

from segdil import __version__
from segdil.compare.report_render import write_rendered
from segdil.compare.report_sections import build_blocks
from segdil.device import cpu_name, native_bf16


def write_report(results: dict[str, Any], figures: dict[str, Path], out: Path) -> Path:
    """Write ``out/report.md`` and ``out/report.html``; returns the path of report.md."""
    return write_rendered(build_blocks(results, figures), Path(out))


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def cpu_class() -> str:
    """The vector instructions torch's CPU kernels use and whether bf16 is native: the class speed figures depend on."""
    capability = torch.backends.cpu.get_cpu_capability()
    return f"{capability}, " + ("native bf16" if native_bf16(torch.device("cpu")) else "no native bf16")


def provenance(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The command line, the machine, the versions and the date, taken when the comparison starts
    (``results.json``'s ``environment`` and the report's last section). Not
    :func:`segdil.device.environment`: that is what a bench's speed figures depend on (device, backend switches)."""
    argv = list(sys.argv if argv is None else argv)
    if argv and Path(argv[0]).name in ("segdil", "__main__.py"):
        argv[0] = "segdil"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "command": shlex.join(argv),
        "cwd": str(Path.cwd()),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_name(),
            "cpu_class": cpu_class(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "gpu": gpu,
            "gpu_count": torch.cuda.device_count() if gpu else 0,
            "platform": platform.platform(),
            "load_average": load,
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "segmentation-models-pytorch": _version("segmentation-models-pytorch"),
            "segdil": __version__,
            "numpy": _version("numpy"),
            "albumentations": _version("albumentations"),
            "opencv-python-headless": _version("opencv-python-headless"),
        },
    }
