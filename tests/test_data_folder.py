"""Image and mask reading for every kind on disk, classes.yaml, FolderDataset, build_datasets."""

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from segdil.config import DataConfig, SynthConfig
from segdil.data import build_datasets
from segdil.data.folder import FolderDataset, read_classes
from segdil.data.io import IMAGE_EXTS, load_image, load_mask, save_mask
from segdil.errors import SegdilError

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(6, 7, 3), dtype=np.uint8)
GRAY = RNG.integers(0, 256, size=(6, 7), dtype=np.uint8)
WIDE = RNG.integers(0, 65536, size=(6, 7, 3), dtype=np.uint16)


def test_image_exts_are_lowercase_with_dot():
    assert all(e.startswith(".") and e == e.lower() for e in IMAGE_EXTS)
    assert {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"} <= set(IMAGE_EXTS)


@pytest.mark.parametrize("name", ["rgb.png", "rgb.bmp", "rgb.tif"])
def test_rgb_images_load_exactly(tmp_path, name):
    Image.fromarray(RGB).save(tmp_path / name)
    out = load_image(tmp_path / name)
    assert out.dtype == np.uint8 and out.shape == (6, 7, 3) and np.array_equal(out, RGB)


def test_jpeg_loads_as_rgb(tmp_path):
    flat = np.zeros((16, 16, 3), np.uint8)
    flat[:, :8] = (200, 30, 30)
    flat[:, 8:] = (30, 30, 200)
    Image.fromarray(flat).save(tmp_path / "a.jpeg", quality=95, subsampling=0)
    out = load_image(tmp_path / "a.jpeg")
    assert out.shape == (16, 16, 3) and np.abs(out.astype(int) - flat).mean() < 6


def test_grayscale_is_copied_to_three_channels(tmp_path):
    Image.fromarray(GRAY).save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    assert out.shape == (6, 7, 3) and all(np.array_equal(out[..., c], GRAY) for c in range(3))
    Image.fromarray(GRAY > 128).save(tmp_path / "bits.png")  # 1-bit
    bits = load_image(tmp_path / "bits.png")
    assert set(np.unique(bits)) <= {0, 255} and np.array_equal(bits[..., 0] == 255, GRAY > 128)


def test_rgba_drops_alpha(tmp_path):
    rgba = np.dstack([RGB, np.full((6, 7), 10, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert np.array_equal(load_image(tmp_path / "a.png"), RGB)


def test_palette_image_is_expanded_to_colours(tmp_path):
    indices = np.array([[0, 1], [2, 1]], np.uint8)
    image = Image.fromarray(indices)
    image.putpalette([10, 20, 30, 200, 100, 0, 0, 0, 255] + [0] * 759)
    image.save(tmp_path / "p.png")
    out = load_image(tmp_path / "p.png")
    assert out[0, 0].tolist() == [10, 20, 30] and out[0, 1].tolist() == [200, 100, 0] and out[1, 0].tolist() == [0, 0, 255]


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16_bit_images_keep_the_high_byte(tmp_path, ext):
    cv2.imwrite(str(tmp_path / f"c{ext}"), WIDE[..., ::-1])  # OpenCV writes BGR
    cv2.imwrite(str(tmp_path / f"g{ext}"), WIDE[..., 0])
    colour, gray = load_image(tmp_path / f"c{ext}"), load_image(tmp_path / f"g{ext}")
    assert colour.dtype == np.uint8 and gray.shape == (6, 7, 3)
    assert np.abs(colour.astype(int) - (WIDE >> 8)).max() <= 1
    assert np.array_equal(gray[..., 0], (WIDE[..., 0] >> 8).astype(np.uint8))


def test_masks_read_indices(tmp_path):
    mask = np.array([[0, 1, 2], [255, 3, 1]], np.uint8)
    Image.fromarray(mask).save(tmp_path / "l.png")
    assert np.array_equal(load_mask(tmp_path / "l.png"), mask)
    save_mask(tmp_path / "p.png", mask, palette=[(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255)])
    with Image.open(tmp_path / "p.png") as written:
        assert written.mode == "P" and written.getpalette()[3:6] == [255, 0, 0]
    assert np.array_equal(load_mask(tmp_path / "p.png"), mask)  # indices, not colours
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    cv2.imwrite(str(tmp_path / "w.png"), mask.astype(np.uint16))
    with Image.open(tmp_path / "w.png") as wide:
        assert wide.mode.startswith("I")
    assert np.array_equal(load_mask(tmp_path / "w.png"), mask)
    cv2.imwrite(str(tmp_path / "big.png"), (mask.astype(np.uint16) * 300))
    with pytest.raises(SegdilError, match="big.png: 16-bit mask"):
        load_mask(tmp_path / "big.png")


def test_rgb_mask_raises_naming_the_file(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "m.png")
    with pytest.raises(SegdilError, match=r"m\.png: RGB mask"):
        load_mask(tmp_path / "m.png")


def test_broken_files_raise_naming_the_file(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    big = RNG.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "big.jpg")
    jpeg = (tmp_path / "big.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    for name, reason in [("cut.png", "truncated"), ("text.png", "not an image"), ("empty.png", "empty file"), ("cut.jpg", "truncated"), ("missing.png", "not found")]:
        with pytest.raises(SegdilError, match=f"{name}: .*{reason}"):
            load_image(tmp_path / name)
    with pytest.raises(SegdilError, match="cut.png"):
        load_mask(tmp_path / "cut.png")


def test_read_classes(tmp_path):
    (tmp_path / "classes.yaml").write_text("classes: [background, car]\ncolors: [[0, 0, 0], [255, 0, 0]]\nreduce_zero_label: true\n")
    info = read_classes(tmp_path)
    assert info.names == ["background", "car"] and info.colors == [(0, 0, 0), (255, 0, 0)] and info.reduce_zero_label is True
    (tmp_path / "classes.yaml").write_text("classes:\n- {name: sky, color: [0, 0, 255]}\n- {name: tree, color: [0, 255, 0]}\n")
    info = read_classes(tmp_path)
    assert info.names == ["sky", "tree"] and info.colors[1] == (0, 255, 0) and info.reduce_zero_label is False
    for text, message in [
        ("names: [a]", "classes"),
        ("classes: [a, a]", "repeat"),
        ("classes: [a, b]\ncolors: [[0, 0, 0]]", "colors"),
        ("classes: [a]\ncolors: [[0, 0, 300]]", "colour of class 'a'"),
        ("classes: [a]\nextra: 1", "unknown key"),
        ("classes: [a\n", "not valid YAML"),
    ]:
        (tmp_path / "classes.yaml").write_text(text)
        with pytest.raises(SegdilError, match=message):
            read_classes(tmp_path)
    (tmp_path / "classes.yaml").unlink()
    with pytest.raises(SegdilError, match="classes.yaml: not found"):
        read_classes(tmp_path)


def _folder(root, masks, classes="classes: [background, a, b]\n", split="train"):
    (root / split / "images").mkdir(parents=True, exist_ok=True)
    (root / split / "masks").mkdir(parents=True, exist_ok=True)
    (root / "classes.yaml").write_text(classes)
    for i, mask in enumerate(masks):
        Image.fromarray(np.full(mask.shape + (3,), 40 * i, np.uint8)).save(root / split / "images" / f"im{i}.jpg" if i % 2 else root / split / "images" / f"im{i}.png")
        save_mask(root / split / "masks" / f"im{i}.png", mask)


def test_folder_dataset_items(tmp_path):
    masks = [np.array([[0, 1], [2, 255]], np.uint8), np.array([[1, 1], [0, 0]], np.uint8)]
    _folder(tmp_path, masks)
    ds = FolderDataset(tmp_path, "train")
    assert len(ds) == 2 and ds.class_names == ["background", "a", "b"]
    image, mask = ds[0]
    assert image.dtype == torch.float32 and image.shape == (3, 2, 2)
    assert mask.dtype == torch.int64 and mask.tolist() == [[0, 1], [2, 255]]
    assert torch.allclose(image[0, 0, 0], torch.tensor((0 - 0.485) / 0.229))
    assert ds[1][1].tolist() == [[1, 1], [0, 0]] and torch.equal(ds[5][1], ds[1][1])  # key k -> pair k % len
    with pytest.raises(SegdilError, match="split folder not found"):
        FolderDataset(tmp_path, "val")
    (tmp_path / "train" / "masks" / "im1.png").unlink()
    with pytest.raises(SegdilError, match="im1.jpg: no mask"):
        FolderDataset(tmp_path, "train")


def test_reduce_zero_label(tmp_path):
    _folder(tmp_path, [np.array([[0, 1], [2, 255]], np.uint8)], classes="classes: [a, b]\nreduce_zero_label: true\n")
    assert FolderDataset(tmp_path, "train")[0][1].tolist() == [[255, 0], [1, 255]]


def test_build_datasets_folder_and_synthetic(tmp_path):
    masks = [np.zeros((20, 24), np.uint8), np.ones((20, 24), np.uint8)]
    _folder(tmp_path, masks, split="train")
    _folder(tmp_path, masks[:1], split="val")
    cfg = DataConfig(root=str(tmp_path), crop_size=16, val_pad_multiple=8)
    train, val, names = build_datasets(cfg)
    assert names == ["background", "a", "b"] and len(train) == 2 and len(val) == 1
    assert train[0][0].shape == (3, 16, 16)
    image, mask = val[0]
    assert image.shape == (3, 24, 24) and (mask[20:] == 255).all() and (mask[:20] == 0).all()

    synth = DataConfig(synth=SynthConfig(n_train=3, n_val=2, size=32, max_object=16.0), crop_size=24)
    train, val, names = build_datasets(synth)
    assert names == ["background", "disc", "square", "triangle", "line"]
    assert len(train) == 3 and train[0][0].shape == (3, 24, 24) and val[0][0].shape == (3, 32, 32)

    (tmp_path / "val" / "masks" / "im0.png").write_text("broken")
    with pytest.raises(SegdilError, match=r"val/masks/im0\.png"):
        build_datasets(cfg)
