"""Bad-input rows: predict, rf, bench and export: names, checkpoints, sizes (issue #30)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from bad_input_kit import checkpoint


def _ckpt(t: Path) -> Path:
    return checkpoint(t / "ckb.pt")


CASES: dict[str, tuple[Callable[[Path], list], int, tuple[str, ...]]] = {
    "bench-json-is-checkpoint": (lambda t: ["bench", "--infer", "--predict", "--checkpoint", _ckpt(t), "--json", t / "ckb.pt", "--overwrite"], 2, ("ckb.pt", "is the input")),
    "bench-size-1": (lambda t: ["bench", "--size", 1, "--batch", 1, "--steps", 1, "--warmup", 0, "--no-data"], 2, ("--size 1x1", "at least 8x8")),
    "bench-size-huge": (lambda t: ["bench", "--size", 100000, "--steps", 1, "--no-data"], 2, ("--size 100000x100000", "GB", "available")),
    "bench-size-huge-wide": (lambda t: ["bench", "--size", "100000x50000", "--infer", "--no-predict", "--steps", 1, "--no-data"], 2, ("--size 100000x50000", "GB")),
    "bench-batch-huge": (lambda t: ["bench", "--size", 64, "--batch", 100000, "--steps", 1, "--no-data"], 2, ("--batch 100000", "GB")),
    "predict-name-over-the-limit": (lambda t: ["predict", _ckpt(t), t / ("x" * 5000 + ".png"), "--out", t / "out"], 2, ("5004 bytes", "255")),
    "predict-input-missing": (lambda t: ["predict", _ckpt(t), t / "nothing.png", "--out", t / "out"], 2, ("nothing.png", "not found")),
}
CASES.update({
    "export-huge-example": (lambda t: ["export", _ckpt(t), "--onnx", t / "m.onnx", "--height", 100000, "--width", 100000], 2, ("--height 100000 --width 100000", "GB")),
    "rf-erf-huge": (lambda t: ["rf", "--set", "model.name=hdc", "--erf", t / "h.png", "--size", 60000], 2, ("--erf at 60000x60000", "GB")),
    "rf-rates-long": (lambda t: ["rf", "--rates", ",".join(["1"] * 5000)], 2, ("9,999 characters", "at most 256")),
    "rf-rates-many-layers": (lambda t: ["rf", "--rates", ",".join(["1", "2", "5"] * 100)], 2, ("300 layers", "at most 256")),
})
