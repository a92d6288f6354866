"""Augmentation pipelines, per-key seeding (also across worker processes), normalisation, loaders."""

import random

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from segdil.config import DataConfig, SynthConfig
from segdil.data import build_datasets
from segdil.data.loader import build_loader
from segdil.data.transforms import apply_transform, build_train_transform, build_val_transform, to_tensor
from segdil.errors import SegdilError

IMAGE = np.random.default_rng(0).integers(1, 256, size=(10, 12, 3), dtype=np.uint8)
MASK = np.zeros((10, 12), np.uint8)
MASK[:, ::2] = 2  # stripes of 0 and 2: linear interpolation would create 1


def test_train_transform_crops_pads_and_keeps_mask_values():
    cfg = DataConfig(crop_size=16, scale_range=[0.5, 2.0], color_jitter=0.0, noise=0.0)
    transform = build_train_transform(cfg)
    padded = 0
    for key in range(20):
        image, mask = apply_transform(transform, IMAGE, MASK, 0, key)
        assert image.shape == (16, 16, 3) and image.dtype == np.uint8 and mask.shape == (16, 16)
        assert set(np.unique(mask).tolist()) <= {0, 2, 255}  # nearest for masks, 255 for padding
        if (mask == 255).any():
            padded += 1
            assert (image[mask == 255] == 0).all()  # images are padded with 0
            assert (image[mask != 255] > 0).any()
    assert padded > 0


def test_train_transform_with_jitter_and_noise_runs():
    cfg = DataConfig(crop_size=8, color_jitter=0.3, noise=0.1, vflip=True)
    image, mask = apply_transform(build_train_transform(cfg), IMAGE, MASK, 0, 1)
    assert image.shape == (8, 8, 3) and mask.shape == (8, 8)
    with pytest.raises(SegdilError, match="data.scale_range"):
        build_train_transform(DataConfig(scale_range=[1.5, 0.5]))
    with pytest.raises(SegdilError, match="data.noise"):
        build_train_transform(DataConfig(noise=3.0))


def test_val_transform_pads_bottom_right_to_a_multiple():
    image, mask = apply_transform(build_val_transform(DataConfig(val_pad_multiple=8)), IMAGE, MASK, 0, 0)
    assert image.shape == (16, 16, 3) and mask.shape == (16, 16)
    assert np.array_equal(image[:10, :12], IMAGE) and np.array_equal(mask[:10, :12], MASK)
    assert (mask[10:] == 255).all() and (mask[:, 12:] == 255).all() and (image[10:] == 0).all()
    image, mask = apply_transform(build_val_transform(DataConfig()), IMAGE, MASK, 0, 0)
    assert np.array_equal(image, IMAGE) and np.array_equal(mask, MASK)


def test_same_key_same_augmentation_whatever_the_global_state():
    transform = build_train_transform(DataConfig(crop_size=8, scale_range=[0.6, 1.6], color_jitter=0.3, noise=0.05))
    outputs = []
    for global_seed in (1, 2):
        np.random.seed(global_seed)
        random.seed(global_seed)
        torch.manual_seed(global_seed)
        outputs.append([apply_transform(transform, IMAGE, MASK, 7, key) for key in range(6)])
    for (a_img, a_mask), (b_img, b_mask) in zip(*outputs):
        assert np.array_equal(a_img, b_img) and np.array_equal(a_mask, b_mask)
    assert len({out[0].tobytes() for out in outputs[0]}) == 6  # each key its own augmentation
    other_seed = apply_transform(transform, IMAGE, MASK, 8, 0)[0]
    assert not np.array_equal(other_seed, outputs[0][0][0])


def test_steps_draw_from_one_stream_so_flips_are_independent():
    transform = build_train_transform(DataConfig(crop_size=0, scale_range=[1.0, 1.0], color_jitter=0.0, hflip=True, vflip=True))
    seen = set()
    for key in range(40):
        image, _ = apply_transform(transform, IMAGE, MASK, 0, key)
        seen.add(next(name for name, flipped in [("none", IMAGE), ("h", IMAGE[:, ::-1]), ("v", IMAGE[::-1]), ("hv", IMAGE[::-1, ::-1])] if np.array_equal(image, flipped)))
    assert seen == {"none", "h", "v", "hv"}


def test_to_tensor_normalises():
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.5]
    tensor = to_tensor(IMAGE, mean, std)
    assert tensor.dtype == torch.float32 and tensor.shape == (3, 10, 12) and tensor.is_contiguous()
    expected = (IMAGE[2, 3, 1] / 255 - 0.4) / 0.25
    assert tensor[1, 2, 3].item() == pytest.approx(expected, abs=1e-6)


class KeyList(torch.utils.data.Sampler):
    def __init__(self, keys):
        self.keys = keys

    def __iter__(self):
        return iter(self.keys)

    def __len__(self):
        return len(self.keys)


def test_same_key_same_batch_across_worker_processes():
    cfg = DataConfig(synth=SynthConfig(n_train=4, n_val=1, size=24, max_object=12.0), crop_size=16, color_jitter=0.2, noise=0.05)
    train, _, _ = build_datasets(cfg)
    n = len(train)
    keys = [3, 3, 3 + n, 5]  # batch i is loaded by worker i % 2
    loader = build_loader(train, 1, sampler=KeyList(keys), num_workers=2, seed=0)
    assert loader.persistent_workers and loader.pin_memory == torch.cuda.is_available()
    batches = list(loader)
    assert torch.equal(batches[0][0], batches[1][0]) and torch.equal(batches[0][1], batches[1][1])
    in_process_image, in_process_mask = train[3]
    assert torch.equal(batches[0][0][0], in_process_image) and torch.equal(batches[0][1][0], in_process_mask)
    assert not torch.equal(batches[2][0], batches[0][0])  # same sample, next epoch: new augmentation
    again = list(build_loader(train, 2, sampler=KeyList(keys), num_workers=2, seed=1))
    assert torch.equal(again[1][0][0], batches[2][0][0]) and torch.equal(again[1][0][1], batches[3][0][0])


class Ids(Dataset):
    def __len__(self):
        return 12

    def __getitem__(self, index):
        return index


def test_shuffled_order_follows_the_seed():
    orders = [torch.cat(list(build_loader(Ids(), 4, shuffle=True, seed=seed))).tolist() for seed in (1, 1, 2)]
    assert orders[0] == orders[1] and orders[0] != orders[2] and sorted(orders[0]) == list(range(12))
    dropped = list(build_loader(Ids(), 5, drop_last=True))
    assert len(dropped) == 2 and not build_loader(Ids(), 5).persistent_workers


class GlobalDraws(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        return torch.tensor([np.random.randint(1 << 30), random.randrange(1 << 30), int(torch.randint(1 << 30, ()))])


def test_workers_are_seeded_from_the_loader_seed():
    runs = [torch.cat(list(build_loader(GlobalDraws(), 1, num_workers=2, seed=seed))).tolist() for seed in (3, 3, 4)]
    assert runs[0] == runs[1]
    for source in range(3):  # numpy, random, torch: each follows the loader seed ...
        assert runs[0][0][source] != runs[2][0][source]
        assert runs[0][0][source] != runs[0][1][source]  # ... and differs between workers (items 0 and 1)
