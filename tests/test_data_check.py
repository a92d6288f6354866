"""`segdil data check`: the summary of a good dataset and one message per broken file."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from segdil.cli import cli
from segdil.data.check import check_dataset, ensure_valid
from segdil.data.io import save_mask
from segdil.errors import SegdilError


def _image(path, h=12, w=16):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(path)


def _mask(path, mask):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_mask(path, mask)


def _good(root):
    """Two splits; train/a has a 2x2 'a' object and a 5x5 'b' object, 255 in one corner."""
    (root / "classes.yaml").write_text("classes: [background, a, b]\n")
    a = np.zeros((12, 16), np.uint8)
    a[1:3, 1:3] = 1
    a[5:10, 6:11] = 2
    a[0, 15] = 255
    b = np.zeros((12, 16), np.uint8)
    b[2:4, 10:16] = 1
    for split, stem, mask in [("train", "a", a), ("train", "b", b), ("val", "c", b)]:
        _image(root / split / "images" / f"{stem}.png")
        _mask(root / split / "masks" / f"{stem}.png", mask)
    return root


def _run(root, *args):
    return CliRunner().invoke(cli, ["data", "check", str(root), *args])


def test_good_dataset_summary(tmp_path):
    root = _good(tmp_path)
    result = check_dataset(root)
    assert result.problems == []
    train = result.summary["splits"]["train"]
    assert train["images"] == 2 and train["pixels"] == 2 * 12 * 16 and train["ignore_pixels"] == 1
    assert train["class_pixels"] == [2 * 192 - 4 - 25 - 1 - 12, 4 + 12, 25]
    # object sizes sqrt(area): a -> 2 and sqrt(12) (both < 4); b -> 5 (4-8)
    assert train["object_sizes"]["a"] == [2, 0, 0, 0, 0, 0, 0]
    assert train["object_sizes"]["b"] == [0, 1, 0, 0, 0, 0, 0]
    assert result.summary["splits"]["val"]["images"] == 1
    out = _run(root)
    assert out.exit_code == 0, out.output
    assert "[train] 2 images" in out.output and "no problems found" in out.output
    ensure_valid(root, ["train", "val"])


def _expect(root, fragment, path):
    """The check fails with exit code 2 and lists ``fragment`` on a line that starts with ``path``."""
    out = _run(root)
    assert out.exit_code == 2, out.output
    lines = [line.strip() for line in out.output.splitlines()]
    assert any(line.startswith(str(path)) and fragment in line for line in lines), out.output
    with pytest.raises(SegdilError) as info:
        ensure_valid(root)
    assert str(path) in info.value.message and fragment in info.value.message


def test_missing_mask(tmp_path):
    root = _good(tmp_path)
    _image(root / "train" / "images" / "extra.jpg")
    _expect(root, "no mask; expected", root / "train" / "images" / "extra.jpg")


def test_mask_without_image(tmp_path):
    root = _good(tmp_path)
    _mask(root / "val" / "masks" / "lonely.png", np.zeros((12, 16), np.uint8))
    _expect(root, "mask without an image", root / "val" / "masks" / "lonely.png")


def test_size_mismatch(tmp_path):
    root = _good(tmp_path)
    _mask(root / "train" / "masks" / "a.png", np.zeros((12, 15), np.uint8))
    _expect(root, "size mismatch, mask is 15x12 but a.png is 16x12", root / "train" / "masks" / "a.png")


def test_truncated_image(tmp_path):
    root = _good(tmp_path)
    path = root / "train" / "images" / "b.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])
    _expect(root, "truncated", path)


def test_non_image_files(tmp_path):
    root = _good(tmp_path)
    (root / "train" / "images" / "notes.txt").write_text("hello")
    _expect(root, "not an image file (extension '.txt')", root / "train" / "images" / "notes.txt")
    (root / "train" / "images" / "notes.txt").unlink()
    (root / "val" / "images" / "c.png").write_text("not really a png")
    _expect(root, "not an image file", root / "val" / "images" / "c.png")


def test_rgb_mask(tmp_path):
    root = _good(tmp_path)
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(root / "train" / "masks" / "a.png")
    _expect(root, "RGB mask", root / "train" / "masks" / "a.png")


def test_values_out_of_range(tmp_path):
    root = _good(tmp_path)
    mask = np.zeros((12, 16), np.uint8)
    mask[0, 0], mask[0, 1] = 3, 7
    _mask(root / "val" / "masks" / "c.png", mask)
    _expect(root, "values 3, 7 out of range (3 classes, so values 0-2", root / "val" / "masks" / "c.png")


def test_reduce_zero_label_allows_one_more_value(tmp_path):
    root = _good(tmp_path)
    (root / "classes.yaml").write_text("classes: [a, b]\nreduce_zero_label: true\n")
    assert check_dataset(root).problems == []
    (root / "classes.yaml").write_text("classes: [a]\nreduce_zero_label: true\n")
    assert "values 2 out of range (1 classes with reduce_zero_label" in check_dataset(root).problems[0]


def test_binary_0_255_masks(tmp_path):
    (tmp_path / "classes.yaml").write_text("classes: [background, object]\n")
    for stem in ("x", "y"):
        mask = np.zeros((12, 16), np.uint8)
        mask[3:6, 3:6] = 255
        _image(tmp_path / "train" / "images" / f"{stem}.png")
        _mask(tmp_path / "train" / "masks" / f"{stem}.png", mask)
    _expect(tmp_path, "looks like a 0/255 binary mask", tmp_path / "train" / "masks" / "x.png")
    assert "mask[mask == 255] = 1" in check_dataset(tmp_path).problems[0]
    # y gets class indices: x, still only 0/255, is flagged by name all the same (issue #14)
    mask = np.zeros((12, 16), np.uint8)
    mask[0, 0] = 1
    _mask(tmp_path / "train" / "masks" / "y.png", mask)
    problems = check_dataset(tmp_path).problems
    assert len(problems) == 1 and problems[0].startswith(str(tmp_path / "train" / "masks" / "x.png"))
    # 255 as a real ignore region next to foreground classes is fine
    mask[3:6, 3:6] = 255
    _mask(tmp_path / "train" / "masks" / "y.png", mask)
    _mask(tmp_path / "train" / "masks" / "x.png", mask)
    assert check_dataset(tmp_path).problems == []


def test_empty_split(tmp_path):
    root = _good(tmp_path)
    for path in (root / "val" / "images").iterdir():
        path.unlink()
    (root / "val" / "masks" / "c.png").unlink()
    _expect(root, "empty split", root / "val" / "images")


def test_missing_split_classes_and_root(tmp_path):
    root = _good(tmp_path)
    result = check_dataset(root, ["train", "test"])
    assert result.problems == [f"{root / 'test' / 'images'}: split folder not found; expected {root / 'test' / 'images'} and {root / 'test' / 'masks'}"]
    (root / "classes.yaml").unlink()
    _expect(root, "not found", root / "classes.yaml")
    missing = _run(tmp_path / "nowhere")
    assert missing.exit_code == 2 and "dataset folder not found" in missing.output


def test_every_problem_is_listed(tmp_path):
    root = _good(tmp_path)
    _image(root / "train" / "images" / "extra.jpg")
    (root / "val" / "images" / "notes.md").write_text("x")
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(root / "train" / "masks" / "b.png")
    problems = check_dataset(root).problems
    assert len(problems) == 3
    with pytest.raises(SegdilError, match=r"\(\+1 more\)"):
        ensure_valid(root, shown=2)
