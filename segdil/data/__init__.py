"""Data: image/mask reading, the synthetic benchmark, folder datasets, checks, augmentation, loaders."""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations would otherwise query PyPI on import

from torch.utils.data import Dataset  # noqa: E402

from segdil.config import DataConfig  # noqa: E402


def build_datasets(cfg: DataConfig, *, seed: int | None = None) -> tuple[Dataset, Dataset, list[str]]:
    """Train and val datasets with their transforms, and the class names.

    ``cfg.root`` None: the synthetic benchmark, generated in memory. Otherwise the folder dataset at
    ``cfg.root``, checked first (``ensure_valid``): broken data is refused with messages naming files;
    ``cfg.format`` voc, cityscapes or ade20k: that layout read in place (``segdil.data.formats``).
    ``seed`` seeds the augmentation (default: ``cfg.synth.seed`` for synthetic data, 0 for folders).
    """
    # this __init__ runs with every segdil.data import (segdil.data.io, ...): albumentations, OpenCV
    # and the dataset readers load when datasets are built, not when an image is read
    from segdil.data.transforms import build_train_transform, build_val_transform

    train_tf, val_tf = build_train_transform(cfg), build_val_transform(cfg)
    norm = {"mean": cfg.mean, "std": cfg.std}
    if cfg.root is None:
        from segdil.data.synth import SyntheticSegmentation

        train = SyntheticSegmentation("train", cfg.synth, train_tf, seed=seed, **norm)
        val = SyntheticSegmentation("val", cfg.synth, val_tf, seed=seed, **norm)
        return train, val, list(train.class_names)

    from segdil.data.check import ensure_valid
    from segdil.data.folder import FolderDataset

    seed = 0 if seed is None else seed
    if cfg.format != "folder":
        from segdil.data.formats import build_format_datasets

        return build_format_datasets(cfg, train_tf, val_tf, seed, norm)
    ensure_valid(cfg.root, [cfg.train_split, cfg.val_split])
    train = FolderDataset(cfg.root, cfg.train_split, train_tf, seed=seed, **norm)
    val = FolderDataset(cfg.root, cfg.val_split, val_tf, seed=seed, **norm)
    return train, val, list(train.class_names)
