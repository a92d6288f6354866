"""Where computation runs and in which precision: one device resolver, one autocast policy.

Training, validation, inference, compare and bench all take their device from
:func:`resolve_device` and their autocast from :func:`autocast`. The policy: bf16 where the
hardware computes it natively (CUDA with bf16, CPUs with AVX512-BF16 or AMX), float32 elsewhere.
Training follows ``train.amp``: ``auto`` turns bf16 on for CUDA only (a CPU run stays bit-exact
with earlier float32 runs), ``bf16`` everywhere, ``off`` never.
"""

from __future__ import annotations

import contextlib

import torch

from segdil.errors import SegdilError


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
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

    if not torch.backends.cpu.get_cpu_capability().upper().startswith(("AVX512", "AMX")):
        return False
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "ALL").strip().upper()
    return cap.startswith(BF16_ONEDNN_ISAS)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: CUDA with bf16, CPUs with AVX512-BF16 or AMX
    (and torch's and oneDNN's instruction sets not capped below them, :func:`cpu_isa_allows_bf16`)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return any(check() for check in checks if check is not None) and cpu_isa_allows_bf16()
    return False


def train_amp(setting: str, device: torch.device) -> bool:
    """``train.amp`` (auto, bf16, off) → whether training runs in bf16 autocast."""
    return setting == "bf16" or (setting == "auto" and device.type == "cuda")


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast when ``enabled``, else nothing."""
    if not enabled:
        return contextlib.nullcontext()
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
