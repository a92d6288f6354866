"""The typed sections of a config: one dataclass per section, fields one-to-one with YAML keys."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Optional


@dataclass
class SynthConfig:
    """The built-in synthetic benchmark (see ``segdil.data.synth``)."""

    n_train: int = 256
    n_val: int = 64
    size: int = 96  # square images; street: the short side (512 -> 1024x512, 1024 -> 2048x1024)
    min_object: float = 2.0
    max_object: float = 48.0
    objects_per_image: list[int] = field(default_factory=lambda: [6, 16])
    thin_lines: bool = True
    seed: int = 0
    # hard: fields, look-alike decoys, camouflage; street: street scenes in perspective, Cityscapes
    # classes (segdil.data.synth_street; min/max_object, objects_per_image and thin_lines unused)
    scene: Literal["standard", "hard", "street"] = "standard"


@dataclass
class DataConfig:
    """Where images come from and how they are augmented.

    ``root: null`` uses the built-in synthetic benchmark, generated in memory on first use.
    ``format``: the layout of ``root``, read in place (docs/data.md): folder, voc, cityscapes, ade20k.
    """

    root: Optional[str] = None
    format: Literal["folder", "voc", "cityscapes", "ade20k"] = "folder"
    train_split: str = "train"
    val_split: str = "val"
    synth: SynthConfig = field(default_factory=SynthConfig)
    crop_size: int | Literal["auto"] = 96  # auto: see segdil.data.transforms.resolve_crop_size
    scale_range: list[float] = field(default_factory=lambda: [0.75, 1.25])
    hflip: bool = True
    vflip: bool = False
    color_jitter: float = 0.2
    noise: float = 0.0
    val_pad_multiple: int = 1
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    num_workers: int | Literal["auto"] = "auto"  # auto: workers and torch threads fit to the cores (segdil/threads.py)


@dataclass
class LossConfig:
    """Cross-entropy (ignore 255) plus optional smp terms, each with its weight."""

    ce: float = 1.0
    dice: float = 0.0
    focal: float = 0.0
    lovasz: float = 0.0
    class_weights: Optional[list[float]] = None


@dataclass
class TrainConfig:
    max_steps: int = 1500
    batch_size: int = 8
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = 0.003
    momentum: float = 0.9
    weight_decay: float = 0.0001
    schedule: Literal["poly", "cosine", "constant"] = "poly"
    warmup_steps: int = 50
    poly_power: float = 0.9
    grad_clip: Optional[float] = 5.0
    loss: LossConfig = field(default_factory=LossConfig)
    seed: int = 0
    val_every: int = 500
    ckpt_every: int = 500
    log_every: int = 10
    best_metric: str = "small_object_iou"
    device: str = "auto"
    precision: str = "auto"  # segdil.device.PRECISIONS; auto: bf16 on CUDA only (segdil.device.train_amp)
    channels_last: bool = True
    compile: bool = False
    deterministic: bool = False
    sync_bn: bool = False
    budget_s: Optional[float] = None
    init_from: Optional[str] = None  # a segdil checkpoint to warm-start from (segdil/train/warm_start.py)


@dataclass
class EvalConfig:
    """Object-metric settings (see docs/metrics.md)."""

    size_bins: list[float] = field(default_factory=lambda: [8.0, 16.0, 32.0, 64.0])
    small_threshold: float = 16.0
    background_class: Optional[int] = 0


def default_model_section() -> dict[str, Any]:
    from segdil.models import DEFAULT_MODEL

    return {"name": DEFAULT_MODEL}


@dataclass
class Config:
    model: dict[str, Any] = field(default_factory=default_model_section)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    name: str = "config"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
