"""Bad-input rows: config values and their ranges, before any work dir exists (issue #30)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from bad_input_kit import train_args


def _file(t: Path, name: str, text: str) -> Path:
    (t / name).write_text(text)
    return t / name


def _payload(t: Path, name: str = "evil.pt") -> Path:
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model_args": {"name": "hdc"}, "model": {}, "extra": Payload()}, t / name)
    return t / name


def _foreign_weights(t: Path) -> Path:
    """A state_dict saved from another encoder: one name, of another shape."""
    torch.save({"conv1.weight": torch.zeros(3)}, t / "other.pth")
    return t / "other.pth"


def _folder(t: Path) -> Path:
    (t / "runs" / "old").mkdir(parents=True)
    return t / "runs" / "old"


SMP = "model.name=smp"  # another model name: TINY's hdc widths go with it
CASES: dict[str, tuple[Callable[[Path], list], int, tuple[str, ...]]] = {
    # model arguments the constructor takes but cannot train: found on the meta device, named by argument
    "widths-0": (lambda t: train_args(t / "run", "model.widths=[0]"), 2, ("model.widths=[0]", "no weights", "the default is")),
    "widths-huge": (lambda t: train_args(t / "run", "model.widths=[1000000]"), 2, ("model.widths=[1000000]", "parameters need at least", "this machine has")),
    "crop_size-0": (lambda t: train_args(t / "run", "data.crop_size=0"), 2, ("data.crop_size", ">= 8")),
    "mean-two-values": (lambda t: train_args(t / "run", "data.mean=[1,2]"), 2, ("data.mean", "3 values")),
    "size_bins-decreasing": (lambda t: train_args(t / "run", "eval.size_bins=[32,8]"), 2, ("eval.size_bins", "out of order", "increasing")),
    "scale_range-reversed": (lambda t: train_args(t / "run", "data.scale_range=[2,1]"), 2, ("data.scale_range", "out of order")),
    # what a step would allocate, against the machine's memory
    "crop_size-huge": (lambda t: train_args(t / "run", "data.crop_size=100000"), 2, ("data.crop_size=100000", "needs at least", "this machine has")),
    "batch_size-huge": (lambda t: train_args(t / "run", "train.batch_size=1000000000"), 2, ("train.batch_size=1000000000", "needs at least", "this machine has")),
    "scale_range-huge": (lambda t: train_args(t / "run", "data.scale_range=[1,1000000]"), 2, ("data.scale_range", "needs at least")),
    "seed-huge": (lambda t: train_args(t / "run", "train.seed=1000000000000"), 2, ("train.seed", "<= 4,294,967,295")),
    "num_workers-huge": (lambda t: train_args(t / "run", "data.num_workers=100000"), 2, ("data.num_workers", "<= 256")),
    # a config with nothing in it is not a default run
    "empty-config": (lambda t: train_args(t / "run", config=_file(t, "c.yaml", "")), 2, ("c.yaml is empty", "configs/hdc_synth.yaml")),
    "comment-only-config": (lambda t: train_args(t / "run", config=_file(t, "c.yaml", "# my settings\n\n")), 2, ("c.yaml is empty",)),
    # encoder weights: checked before the work dir, nothing downloaded (a name smp does not know, a file)
    "encoder_weights-bogus-name": (lambda t: train_args(t / "run", SMP, "model.encoder_weights=imagenett"), 2, ("model.encoder_weights='imagenett'", "names smp knows")),
    "encoder_weights-missing-file": (lambda t: train_args(t / "run", SMP, f"model.encoder_weights={t / 'gone.pth'}"), 2, ("model.encoder_weights=", "gone.pth", "no such local weights file")),
    "encoder_weights-pickle-payload": (lambda t: train_args(t / "run", SMP, f"model.encoder_weights={_payload(t)}"), 2, ("model.encoder_weights=", "evil.pt", "Python objects")),
    "encoder_weights-text-file": (lambda t: train_args(t / "run", SMP, f"model.encoder_weights={_file(t, 'w.pth', 'not weights')}"), 2, ("model.encoder_weights=", "w.pth", "a text file")),
    "encoder_weights-another-encoder": (lambda t: train_args(t / "run", SMP, f"model.encoder_weights={_foreign_weights(t)}"), 2, ("other.pth", "do not fit the resnet18 encoder", "missing", "another shape")),
    "context-encoder-weights-another-encoder": (
        lambda t: train_args(t / "run", "model.name=hdc_context", "model.context_encoder=resnet18", f"model.encoder_weights={_foreign_weights(t)}"),
        2, ("other.pth", "do not fit the resnet18 encoder"),
    ),
    "encoder_weights-folder": (lambda t: train_args(t / "run", SMP, f"model.encoder_weights={_folder(t)}"), 2, ("model.encoder_weights=", "a folder")),
    # train.init_from: one accurate line, before the work dir
    "init_from-missing": (lambda t: train_args(t / "run", f"train.init_from={t / 'gone.pt'}"), 2, ("train.init_from", "gone.pt", "checkpoint not found")),
    "init_from-empty": (lambda t: train_args(t / "run", f"train.init_from={_file(t, 'e.pt', '')}"), 2, ("train.init_from", "e.pt", "empty file")),
    "init_from-pickle-payload": (lambda t: train_args(t / "run", f"train.init_from={_payload(t)}"), 2, ("train.init_from", "evil.pt", "Python objects")),
    "init_from-text-file": (lambda t: train_args(t / "run", f"train.init_from={_file(t, 'notes.pt', 'my notes')}"), 2, ("train.init_from", "notes.pt", "a text file", "'my notes'")),
    "init_from-folder": (lambda t: train_args(t / "run", f"train.init_from={_folder(t)}"), 2, ("train.init_from", "a folder", "last.pt")),
    "model-init_from-legacy": (lambda t: train_args(t / "run", f"model.init_from={_folder(t)}"), 2, ("model.init_from", "use train.init_from")),
}
