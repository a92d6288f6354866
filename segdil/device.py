"""Where computation runs and in which precision: one device resolver, one autocast policy.

Training, validation, inference, compare and bench all take their device from
:func:`resolve_device` and their autocast from :func:`autocast`. The policy: bf16 where the
hardware computes it natively (CUDA with bf16, CPUs with AVX512-BF16 or AMX), float32 elsewhere.

One vocabulary names precision everywhere (``train.precision``, ``--precision`` of ``segdil
predict``, ``eval`` and ``bench``, ``segdil.load(..., precision=...)``): :data:`PRECISIONS`, checked
by :func:`check_precision`. ``bf16`` is bf16 autocast on any device, ``fp32`` never; ``auto`` is bf16
where it is fast and safe for the job: training (:func:`train_amp`) on CUDA only (a CPU run stays
bit-exact with earlier float32 runs); inference and bench (:func:`inference_amp`) on CUDA and on
CPUs with native bf16.

torch is imported inside the functions, so the command modules can name :data:`PRECISIONS` in
their options without importing torch (``segdil --help`` stays fast).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from segdil.errors import SegdilError, shown

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "bf16", "fp32")  # train.precision, --precision (predict, eval, bench), the API


def check_precision(value: Any, where: str = "precision") -> str:
    """``value`` when it is one of :data:`PRECISIONS`; else a one-line error naming ``where``."""
    if not isinstance(value, str) or value not in PRECISIONS:
        raise SegdilError(f"{where}: {shown(value)} is not a precision; use one of {', '.join(PRECISIONS)}")
    return value


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    import torch

    if isinstance(name, torch.device):
        return name
    name = str(name).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise SegdilError(f"device {name!r}: CUDA is not available here; use --device cpu or --device auto")
        device = torch.device(name)
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            valid = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
            raise SegdilError(f"device {name!r}: only {count} CUDA device(s) present; use {valid}")
        return device
    raise SegdilError(f"device {name[:40]!r}: unknown device; valid values are auto, cpu, cuda")


BF16_ONEDNN_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX10", "ALL")


def cpu_isa_allows_bf16() -> bool:
    """Whether torch and oneDNN may use the CPU's bf16 instructions: not when ``ATEN_CPU_CAPABILITY``
    holds torch's kernels below AVX-512 or ``ONEDNN_MAX_CPU_ISA`` (``DNNL_MAX_CPU_ISA``) caps oneDNN
    below AVX512_CORE_BF16 (e.g. an AVX2-only CPU emulated on a newer one)."""
    import os

    import torch

    if not torch.backends.cpu.get_cpu_capability().upper().startswith(("AVX512", "AMX")):
        return False
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "ALL").strip().upper()
    return cap.startswith(BF16_ONEDNN_ISAS)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: CUDA with bf16, CPUs with AVX512-BF16 or AMX
    (and torch's and oneDNN's instruction sets not capped below them, :func:`cpu_isa_allows_bf16`)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return any(check() for check in checks if check is not None) and cpu_isa_allows_bf16()
    return False


def train_amp(precision: str, device: torch.device) -> bool:
    """``train.precision`` → whether training runs in bf16 autocast (``auto``: on CUDA only)."""
    precision = check_precision(precision, "train.precision")
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def inference_amp(precision: str, device: torch.device) -> bool:
    """``--precision`` of inference and bench → bf16 autocast? (``auto``: where :func:`native_bf16`)."""
    precision = check_precision(precision, "--precision")
    return native_bf16(device) if precision == "auto" else precision == "bf16"


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast when ``enabled``, else nothing."""
    if not enabled:
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16)


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    import platform
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def environment(device: torch.device) -> dict:
    """What speed figures depend on besides the model: device, library versions, backend switches."""
    import datetime
    import os

    import torch

    env = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else f"{cpu_name()} ({os.cpu_count()} cpus)",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "date": datetime.date.today().isoformat(),
    }
    if device.type == "cuda":
        env.update(cudnn_benchmark=torch.backends.cudnn.benchmark, cudnn_allow_tf32=torch.backends.cudnn.allow_tf32, cuda=torch.version.cuda)
    else:
        env.update(mkldnn=torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled, cpu_capability=torch.backends.cpu.get_cpu_capability(), cpu_native_bf16=native_bf16(device))
    return env
