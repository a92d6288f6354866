"""Memory of this process (resident set, its peak) and of one variant measured in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch

from segdil.bench.variants import Variant


def _proc_status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset this process's peak resident set size to its current size (Linux ``clear_refs`` 5)."""
    try:
        fd = os.open("/proc/self/clear_refs", os.O_WRONLY)  # a kernel control file, not data
        try:
            os.write(fd, b"5")
        finally:
            os.close(fd)
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """Peak resident set size: ``VmHWM`` where readable, else ``ru_maxrss``."""
    hwm = _proc_status_kib("VmHWM")
    if hwm is not None:
        return hwm * 1024
    import resource  # Unix only; Linux reads VmHWM above

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def rss_bytes() -> int | None:
    rss = _proc_status_kib("VmRSS")
    return None if rss is None else rss * 1024



def peak_rss_mb() -> float:
    return peak_rss_bytes() / 2**20


def current_rss_mb() -> float:
    rss = rss_bytes()
    return 0.0 if rss is None else rss / 2**20


def memory_probe(model_args: dict[str, Any], variant: Variant, mode: str, size: int, batch: int, compile_backend: str) -> dict[str, float]:
    """Run two steps of ``variant`` in this process and report its peak RSS (call in a fresh process)."""
    from segdil.bench.step_runner import build_runner

    dev = torch.device("cpu")
    runner = build_runner(model_args, variant, mode, size, batch, dev, compile_backend)
    before = current_rss_mb()
    runner.step()
    runner.step()
    return {"peak_rss_mb": peak_rss_mb(), "rss_before_mb": before}


def memory_probe_process(model_args: dict[str, Any], variant: Variant, mode: str, size: int | tuple[int, int], batch: int, compile_backend: str, threads: int) -> subprocess.CompletedProcess:
    """Run :func:`memory_probe` in a fresh process; its last stdout line is the JSON figures."""
    request = json.dumps({"model_args": model_args, "variant": asdict(variant), "mode": mode, "size": size, "batch": batch, "compile_backend": compile_backend})
    code = "import json,sys; from segdil.bench.memory import _probe_main; _probe_main(sys.argv[1])"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return subprocess.run([sys.executable, "-c", code, request], capture_output=True, text=True, env=env)


def memory_in_subprocess(model_args: dict[str, Any], variant: Variant, mode: str, size: int, batch: int, compile_backend: str, threads: int) -> dict[str, float]:
    proc = memory_probe_process(model_args, variant, mode, size, batch, compile_backend, threads)
    if proc.returncode != 0:
        warnings.warn(f"memory probe of {variant.name} failed: {proc.stderr.strip().splitlines()[-1:]}", stacklevel=2)
        return {}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _probe_main(request: str) -> None:
    args = json.loads(request)
    variant = Variant(**{f.name: args["variant"][f.name] for f in fields(Variant)})
    print(json.dumps(memory_probe(args["model_args"], variant, args["mode"], args["size"], args["batch"], args["compile_backend"])))
