"""Everything a checkpoint needs beyond the weights: RNG states, and the run's work dir."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segdil.errors import SegdilError


def rng_state() -> dict[str, Any]:
    """All RNG states, in types that ``torch.load(weights_only=True)`` accepts."""
    algo, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"algo": algo, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state((np_state["algo"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"], np_state["has_gauss"], np_state["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_work_dir(config_name: str, work_dir: str | None, resume: bool) -> Path:
    """``runs/<config name>/<timestamp>`` by default; an existing run is only reused by ``--resume``."""
    if work_dir is None:
        base = Path("runs") / config_name
        if resume:
            runs = sorted(p for p in base.glob("*") if (p / "last.pt").is_file()) if base.is_dir() else []
            if not runs:
                raise SegdilError(f"--resume: no run with last.pt under {base}/; pass --work-dir of the run to resume")
            return runs[-1]
        path = base / time.strftime("%Y%m%d-%H%M%S")
        while path.exists():
            path = path.with_name(path.name + "_")
        return path
    path = Path(work_dir)
    if path.exists() and not path.is_dir():
        raise SegdilError(f"--work-dir {path}: is a file, not a folder; choose a folder (it is created if missing)")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise SegdilError(f"--work-dir {path}: {parent} is a file, not a folder; choose another place")
    if resume:
        if not (path / "last.pt").is_file():
            hint = " (the run stopped before its first checkpoint: start it again without --resume)" if is_stub(path) else ""
            raise SegdilError(f"--resume: {path / 'last.pt'} not found{hint}; start without --resume or pick the run's work dir")
    elif path.exists() and any(path.iterdir()) and not is_stub(path):
        if (path / "last.pt").is_file() or (path / "best.pt").is_file():
            raise SegdilError(f"--work-dir {path}: already holds a run; pass --resume to continue it or choose a new folder")
        raise SegdilError(f"--work-dir {path}: not empty and holds no checkpoint; choose an empty or new folder (or remove {path} if it is a run that never saved)")
    return path


STUB_FILES = {"config.yaml", "metrics.jsonl", "tb", ".lock"}


def is_stub(path: Path) -> bool:
    """A work dir that a run created but never saved a checkpoint or a metric into: reusable."""
    if not path.is_dir():
        return False
    names = {p.name for p in path.iterdir()}
    if not names <= STUB_FILES:
        return False
    jsonl = path / "metrics.jsonl"
    tb = path / "tb"
    return (not jsonl.exists() or jsonl.stat().st_size == 0) and (not tb.exists() or not any(p.is_file() and "tfevents" not in p.name for p in tb.rglob("*")))
