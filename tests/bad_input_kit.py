"""Shared kit of the bad-input rows (tests/test_bad_inputs.py and the area tables in tests/bad_input_cases/):
fixtures written per case, the tree snapshot, the one-line-error assertion."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
from click.testing import CliRunner
from PIL import Image

from segdil.checkpoint import save_checkpoint
from segdil.cli import cli
from segdil.config import Config
from segdil.data.io import save_mask
from segdil.models import create_model, model_class

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "hdc_synth.yaml"
TINY = [
    "data.synth.size=32", "data.synth.n_train=8", "data.synth.n_val=2", "data.synth.max_object=12", "data.crop_size=32",
    "data.num_workers=0", "train.batch_size=4", "train.warmup_steps=1", "train.log_every=1", "train.val_every=1000",
    "train.ckpt_every=1", "train.max_steps=2", "model.widths=[8]", "model.blocks=1",
]


def train_args(work_dir: Path | str, *extra: str, config: Path | str = CONFIG) -> list[str]:
    args = ["train", str(config), "--work-dir", str(work_dir)]
    for item in [*TINY, *extra]:
        args += ["--set", item]
    return args


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file and folder under ``root``: size and content hash (folders: -1)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_dir() and not path.is_symlink():
            out[rel] = (-1, "")
        elif path.is_file():
            try:
                out[rel] = (path.stat().st_size, hashlib.sha1(path.read_bytes()).hexdigest())
            except PermissionError:  # a row's unreadable file: its size and time
                out[rel] = (path.stat().st_size, f"unreadable {path.stat().st_mtime_ns}")
    return out


def invoke(args: list[str]):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, code: int, *needles: str, listed: bool = False) -> str:
    """One ``Error:`` line holding ``needles`` (with ``listed``: ``data check``'s problem list may hold them)."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    for needle in needles:
        assert needle in (result.output if listed else lines[0]), (needle, result.output)
    assert len(lines[0]) < 700, lines[0]
    return lines[0]


# --------------------------------------------------------------------------- fixtures written per case


def dataset(root: Path, names=("bg", "a", "b"), size: int = 24, odd: Callable[[Path], None] | None = None) -> Path:
    """A folder dataset: train and val, two images each, classes ``names``."""
    (root / "classes.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "classes.yaml").write_text(f"classes: [{', '.join(names)}]\n")
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for stem in ("a", "b"):
            (root / split / "images").mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / split / "images" / f"{stem}.png")
            mask = np.zeros((size, size), np.uint8)
            mask[4:10, 4:10] = 1
            mask[12:16, 2:20] = len(names) - 1
            save_mask(root / split / "masks" / f"{stem}.png", mask)
    if odd:
        odd(root)
    return root


def checkpoint(path: Path, num_classes: int = 3, **args_change) -> Path:
    args = {"name": "hdc", "num_classes": num_classes, **model_class("hdc").tiny_args()}
    model = create_model(**args)
    names = ["bg", "a", "b", "c", "d", "e"][:num_classes]
    ckpt = {"model_args": {**args, **args_change}, "model": model.state_dict(), "config": Config().to_dict(), "class_names": names}
    save_checkpoint(ckpt, path)
    return path


def header_only_png(path: Path, width: int, height: int) -> Path:
    """A valid PNG signature and IHDR for a huge image, no pixel data: tiny on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""
